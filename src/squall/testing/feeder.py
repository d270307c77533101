"""A spout the test feeds by hand, and trackers that record what was acked or failed.

Storm's ``FeederSpout`` and ``AckFailMapTracker``, in Python casing. Everything
here lives in the memory of the process that created it, so it works with
in-process topologies only (``LocalCluster`` with ``topology.workers = 1``,
simulated time or not), never with worker processes or a real cluster.

>>> from squall import Bolt, TopologyBuilder
>>> from squall.testing import FeederSpout, simulated_cluster
>>> class Sink(Bolt):
...     def process(self, tup):
...         pass
>>> feeder = FeederSpout(["word"])
>>> builder = TopologyBuilder()
>>> _ = builder.set_spout("words", feeder)
>>> _ = builder.set_bolt("sink", Sink).shuffle_grouping("words")
>>> with simulated_cluster() as cluster:
...     _ = cluster.submit("feed", builder)
...     feeder.feed(["dog"], msg_id=1)
...     cluster.run_until_idle()
...     feeder.tracker.acked
1
[1]
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

from squall.api.component import Spout
from squall.api.context import TopologyContext
from squall.api.ids import DEFAULT_STREAM
from squall.api.stream import Stream


@runtime_checkable
class AckFailDelegate(Protocol):
    """What a feeder tells about its tuples (Storm's ``AckFailDelegate``)."""

    def ack(self, msg_id: Any) -> None: ...

    def fail(self, msg_id: Any) -> None: ...


class AckFailTracker:
    """Records the message ids a spout saw acked and failed, in order.

    Thread-safe: the engine's loop thread records while the test thread reads.
    Storm's ``AckFailMapTracker`` (``is_acked``/``is_failed``) and ``AckTracker``
    (``num_acks``/``reset``) in one class.

    >>> t = AckFailTracker()
    >>> t.ack(1); t.fail(2); t.ack(3)
    >>> t.acked, t.failed, t.num_acks, t.is_acked(3), t.is_failed(1)
    ([1, 3], [2], 2, True, False)
    >>> t.reset(); t.num_acks
    0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acked: list[Any] = []
        self._failed: list[Any] = []

    # -- the delegate side, called by spouts ------------------------------------
    def ack(self, msg_id: Any) -> None:
        with self._lock:
            self._acked.append(msg_id)

    def fail(self, msg_id: Any) -> None:
        with self._lock:
            self._failed.append(msg_id)

    # -- the test side ----------------------------------------------------------
    @property
    def acked(self) -> list[Any]:
        """Acked message ids, oldest first (a copy)."""
        with self._lock:
            return list(self._acked)

    @property
    def failed(self) -> list[Any]:
        """Failed (or timed out) message ids, oldest first (a copy)."""
        with self._lock:
            return list(self._failed)

    @property
    def num_acks(self) -> int:
        with self._lock:
            return len(self._acked)

    @property
    def num_fails(self) -> int:
        with self._lock:
            return len(self._failed)

    def is_acked(self, msg_id: Any) -> bool:
        with self._lock:
            return msg_id in self._acked

    def is_failed(self, msg_id: Any) -> bool:
        with self._lock:
            return msg_id in self._failed

    def reset(self) -> None:
        """Forget everything recorded so far (Storm's ``resetNumAcks``)."""
        with self._lock:
            self._acked.clear()
            self._failed.clear()

    def __repr__(self) -> str:
        return f"AckFailTracker(acked={self.acked!r}, failed={self.failed!r})"


#: Storm's name for a tracker that counts acks; here it is the same class.
AckTracker = AckFailTracker


class _Feed:
    """The state one feeder's tasks share with the test: a queue and a delegate."""

    __slots__ = ("delegate", "fed", "fields", "pid", "queue", "tracker")

    def __init__(self, fields: tuple[str, ...], tracker: AckFailTracker) -> None:
        self.fields = fields
        # (values, msg_id or None); deque appends and pops are atomic, so the test
        # thread can feed while the engine thread runs.
        self.queue: deque[tuple[list[Any], Any]] = deque()
        self.tracker = tracker
        self.delegate: AckFailDelegate = tracker
        self.pid = os.getpid()
        self.fed = 0


class _TrackerOf:
    """``feeder.tracker`` on the class the test holds (a read-only class attribute)."""

    def __get__(self, obj: object, owner: type[FeederSpout]) -> AckFailTracker:
        return owner._state().tracker


class _FeederMeta(type):
    """Calling the unbound ``FeederSpout`` with fields makes a new bound spout class.

    The engine instantiates component classes itself (one instance per task), so
    the object the test holds must be a class; calling a bound class with no
    arguments is the engine making a task instance.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if getattr(cls, "_feed", None) is None:
            return cls._bind(*args, **kwargs)  # type: ignore[attr-defined]
        return super().__call__(*args, **kwargs)


class FeederSpout(Spout, metaclass=_FeederMeta):
    """A spout that emits what the test feeds it (Storm's ``FeederSpout``).

    ``FeederSpout(fields)`` returns a new spout *class* bound to its own queue and
    tracker: pass it wherever a spout class goes (``builder.set_spout("1", feeder)``
    or ``feeder.spec()`` in a ``Topology``), and call ``feeder.feed(...)`` from the
    test. Each call to ``next_tuple`` emits at most one fed tuple; with several
    tasks, they share the queue.

    In-process only: it raises at ``initialize`` in any other process.

    Args:
        fields: the output fields of its default stream.
        tracker: where acks and fails are recorded; a fresh
            :class:`AckFailTracker` by default (``feeder.tracker``).

    >>> feeder = FeederSpout(["n"])
    >>> feeder.feed([1], msg_id="a")
    'a'
    >>> feeder.pending_feeds()
    1
    """

    _feed: ClassVar[_Feed | None] = None

    @classmethod
    def _bind(
        cls, fields: Iterable[str] | None = None, *, tracker: AckFailTracker | None = None
    ) -> type[FeederSpout]:
        if fields is None:
            raise TypeError("FeederSpout(fields): give the output field names, e.g. ['word']")
        stream = Stream(fields)  # validates the field names
        feed = _Feed(stream.fields, tracker if tracker is not None else AckFailTracker())
        name = f"{cls.__name__}[{','.join(stream.fields)}]"
        ns: dict[str, Any] = {
            "_feed": feed,
            "outputs": list(stream.fields),
            "__module__": cls.__module__,
            "__qualname__": name,
        }
        bound = _FeederMeta(name, (cls,), ns)
        return cast("type[FeederSpout]", bound)

    # -- the test side (class methods: the test holds the class) ----------------
    @classmethod
    def _state(cls) -> _Feed:
        feed = cls._feed
        if feed is None:
            raise TypeError(
                "call FeederSpout(fields) first and use the class it returns, "
                "e.g. feeder = FeederSpout(['word']); feeder.feed(['dog'])"
            )
        return feed

    @classmethod
    def feed(cls, values: Sequence[Any], msg_id: Any = None, *, reliable: bool = True) -> Any:
        """Queue ``values`` for the next ``next_tuple`` call; returns the message id.

        Args:
            values: one value per declared field.
            msg_id: the id given to ``ack``/``fail``; a fresh UUID string when
                omitted (Storm's behaviour).
            reliable: ``False`` emits without a message id: untracked, never
                acked or failed.

        Raises:
            ValueError: ``values`` does not have one value per field.
        """
        feed = cls._state()
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise TypeError(
                f"{cls.__name__}.feed: values must be a list with one value per field "
                f"{list(feed.fields)}, got {values!r}"
            )
        if len(values) != len(feed.fields):
            raise ValueError(
                f"{cls.__name__}.feed: {len(values)} value(s) {list(values)!r} for "
                f"{len(feed.fields)} field(s) {list(feed.fields)}"
            )
        if not reliable:
            msg_id = None
        elif msg_id is None:
            msg_id = str(uuid.uuid4())
        feed.queue.append((list(values), msg_id))
        return msg_id

    @classmethod
    def feed_many(cls, rows: Iterable[Sequence[Any]]) -> list[Any]:
        """Feed several tuples with fresh ids; returns the ids in order."""
        return [cls.feed(row) for row in rows]

    @classmethod
    def pending_feeds(cls) -> int:
        """How many fed tuples have not been emitted yet."""
        return len(cls._state().queue)

    @classmethod
    def set_ack_fail_delegate(cls, delegate: AckFailDelegate) -> None:
        """Send acks and fails to ``delegate`` instead of ``tracker`` (Storm's name)."""
        if not isinstance(delegate, AckFailDelegate):
            raise TypeError(f"{delegate!r} needs ack(msg_id) and fail(msg_id) methods")
        cls._state().delegate = delegate

    #: The :class:`AckFailTracker` this feeder's acks and fails are recorded in.
    tracker = _TrackerOf()

    # -- the spout side (instances made by the engine) --------------------------
    def __init__(self) -> None:
        super().__init__()
        self._in_flight: set[Any] = set()

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        feed = self._state()
        if feed.pid != os.getpid():
            raise RuntimeError(
                f"{type(self).__name__} (component {context.component_id!r}) works only in the "
                "process that created it; run the topology in-process (topology.workers = 1)"
            )
        self._shared = feed

    def next_tuple(self) -> None:
        try:
            values, msg_id = self._shared.queue.popleft()
        except IndexError:
            return
        self._shared.fed += 1
        if msg_id is not None:
            self._in_flight.add(msg_id)
        self.emit(values, tup_id=msg_id, stream=DEFAULT_STREAM)

    def ack(self, tup_id: Any) -> None:
        self._in_flight.discard(tup_id)
        self._shared.delegate.ack(tup_id)

    def fail(self, tup_id: Any) -> None:
        self._in_flight.discard(tup_id)
        self._shared.delegate.fail(tup_id)

    def is_exhausted(self) -> bool:
        """Nothing left to emit and every emitted tree acked or failed."""
        return not self._shared.queue and not self._in_flight
