"""``CoordinatedBolt``: tells a bolt when it has seen every tuple of a request.

Storm's ``CoordinatedBolt``, which ``LinearDRPCTopologyBuilder`` wraps around
each user bolt. Every tuple's first value is the request id. A wrapped bolt
counts, per request and per downstream task, the tuples it emitted; when it
has finished a request it sends each downstream task the count on the
direct stream :data:`COORDINATED_STREAM`. A downstream task has seen every
tuple of the request when it got a count from every upstream task it
expects (``"single"``: one report; ``"all"``: one per upstream task) and
acked as many tuples as the counts add up to. Then its delegate's
``finished_id(id)`` runs (a :class:`~squall.drpc.batch.BatchBolt`'s
``finish_batch``) and it reports its own counts downstream.

The last bolt, when it has a ``finished_id``, also waits for the request id
from ``prepare-request``'s ``id`` stream (``id_stream``), so that the tuple
tree stays alive until it has finished.

Coordination tuples are held (not acked) until the request finishes, and the
counts sent downstream are anchored to the tuple that finished it: a
request's tuple tree completes only after its last bolt finished. A failure
anywhere fails the held tuples, so the spout fails the request at once.
Tracking of requests that never finish (their tree failed or timed out) is
dropped after ``topology.message.timeout.secs``, on tick tuples.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from squall import config as C
from squall.api.component import Bolt
from squall.api.context import TopologyContext
from squall.api.errors import FailedError
from squall.api.tuple import Tuple
from squall.drpc.batch import BatchBolt, BatchBoltExecutor

#: Storm's literal coordination stream id (``Constants.COORDINATED_STREAM_ID``).
COORDINATED_STREAM = "org.apache.storm.coordination.CoordinatedBolt/coord-stream"

#: How often tracking state is checked for requests that will never finish.
EXPIRY_TICK_SECS = 2

SINGLE = "single"
ALL = "all"

_REGULAR, _COORD, _ID = 0, 1, 2


class _Tracking:
    __slots__ = (
        "ack_tuples",
        "born",
        "expected",
        "failed",
        "received",
        "received_id",
        "reports",
        "task_emitted",
    )

    def __init__(self, received_id: bool, born: float) -> None:
        self.reports = 0
        self.expected = 0
        self.received = 0
        self.received_id = received_id
        self.failed = False
        self.task_emitted: dict[int, int] = {}
        self.ack_tuples: list[Tuple] = []
        self.born = born


class _CoordinatedCollector:
    """The delegate's collector: counts emits per request and target task, watches acks."""

    def __init__(self, owner: CoordinatedBolt, auto_anchor: bool) -> None:
        self._owner = owner
        self._auto_anchor = auto_anchor

    def emit(
        self,
        tup: Sequence[Any],
        stream: str | None = None,
        anchors: Sequence[Tuple] | None = None,
        direct_task: int | None = None,
        need_task_ids: bool = False,
    ) -> list[int] | None:
        owner = self._owner
        if anchors is None and not self._auto_anchor:
            anchors = ()
        tasks: list[int] = owner._collector.emit(
            tup, stream=stream, anchors=anchors, direct_task=direct_task, need_task_ids=True
        )
        track = owner._tracked.get(tup[0]) if len(tup) else None
        if track is not None:
            counts = track.task_emitted
            for t in tasks:
                counts[t] = counts.get(t, 0) + 1
        return tasks if need_task_ids else None

    def ack(self, tup: Tuple) -> None:
        self._owner._delegate_ack(tup)

    def fail(self, tup: Tuple) -> None:
        self._owner._delegate_fail(tup)

    def reset_timeout(self, tup: Tuple) -> None:
        self._owner._collector.reset_timeout(tup)

    def report_error(self, error: BaseException) -> None:
        self._owner._collector.report_error(error)

    def report_metric(self, name: str, value: Any) -> None:
        self._owner._collector.report_metric(name, value)


class CoordinatedBolt(Bolt):
    """Wraps ``delegate`` (a Bolt or BatchBolt class) with request coordination.

    Args:
        delegate: the user's bolt class.
        delegate_kwargs: its constructor arguments.
        sources: upstream component -> ``"single"`` (one count report per request)
            or ``"all"`` (one report from each of its tasks).
        id_stream: ``(component, stream)`` carrying request ids that the bolt must
            see before finishing (Storm's ``IdStreamSpec``), or None.
        forward_ticks: pass tick tuples to the delegate (it asked for them).
    """

    # Acks are the coordination's business: it counts them and holds some back.
    auto_ack: ClassVar[bool] = False
    auto_fail: ClassVar[bool] = False

    def __init__(
        self,
        delegate: type[Bolt] | type[BatchBolt],
        delegate_kwargs: Mapping[str, Any] | None = None,
        sources: Mapping[str, str] | None = None,
        id_stream: tuple[str, str] | None = None,
        forward_ticks: bool = False,
    ) -> None:
        super().__init__()
        self.delegate_cls = delegate
        self.delegate_kwargs = dict(delegate_kwargs or {})
        self.sources = dict(sources or {})
        for comp, kind in self.sources.items():
            if kind not in (SINGLE, ALL):
                raise ValueError(f"CoordinatedBolt source {comp!r}: expected 'single' or 'all'")
        self.id_stream = tuple(id_stream) if id_stream is not None else None
        self.forward_ticks = forward_ticks
        self._tracked: OrderedDict[Any, _Tracking] = OrderedDict()
        self._age = 0.0
        self._processing: Tuple | None = None
        self._handled = False

    def initialize(self, conf: Mapping[str, Any], context: TopologyContext) -> None:
        self._timeout = float(conf.get(C.TOPOLOGY_MESSAGE_TIMEOUT_SECS) or 30)
        self._num_reports = sum(
            1 if kind == SINGLE else len(context.get_component_tasks(comp))
            for comp, kind in self.sources.items()
        )
        out: list[int] = []
        for comp in context.targets.get(COORDINATED_STREAM, {}):
            out.extend(context.get_component_tasks(comp))
        self._count_out_tasks = sorted(set(out))
        cls = self.delegate_cls
        if isinstance(cls, type) and issubclass(cls, BatchBolt):
            collector = _CoordinatedCollector(self, True)
            self._delegate: Any = BatchBoltExecutor(
                cls, self.delegate_kwargs, conf, context, collector, self.logger
            )
        else:
            d = cls(**self.delegate_kwargs)
            collector = _CoordinatedCollector(self, bool(getattr(cls, "auto_anchor", True)))
            d.conf = conf
            d.context = context
            d.logger = self.logger
            d._collector = collector
            d.initialize(conf, context)
            self._delegate = d
        self._d_auto_ack = bool(getattr(self._delegate, "auto_ack", True))
        self._d_auto_fail = bool(getattr(self._delegate, "auto_fail", True))
        self._finished = getattr(self._delegate, "finished_id", None)
        self._failed = getattr(self._delegate, "failed_id", None)
        self._timed_out = getattr(self._delegate, "timeout_id", None)

    @property
    def delegate(self) -> Any:
        """The wrapped bolt instance (or the batch executor of a BatchBolt class)."""
        return self._delegate

    # -- tuples ------------------------------------------------------------------
    def process(self, tup: Tuple) -> None:
        rid = tup.values[0]
        stream = tup.stream
        if stream == COORDINATED_STREAM and tup.component in self.sources:
            kind = _COORD
        elif self.id_stream is not None and (tup.component, stream) == self.id_stream:
            kind = _ID
        else:
            kind = _REGULAR
        track = self._tracked.get(rid)
        if track is None:
            track = _Tracking(self.id_stream is None, self._age)
            self._tracked[rid] = track
        if kind == _ID:
            track.received_id = True
            self._check(tup, _ID, rid)
        elif kind == _COORD:
            track.reports += 1
            track.expected += int(tup.values[1])
            self._check(tup, _COORD, rid)
        else:
            self._run_delegate(tup)

    def _run_delegate(self, tup: Tuple) -> None:
        self._processing = tup
        self._handled = False
        try:
            self._delegate.process(tup)
        except Exception as e:
            if not isinstance(e, FailedError):
                self.report_error(e)
            if (isinstance(e, FailedError) or self._d_auto_fail) and not self._handled:
                self._delegate_fail(tup)
            return
        finally:
            self._processing = None
        if self._d_auto_ack and not self._handled:
            self._delegate_ack(tup)

    def _delegate_ack(self, tup: Tuple) -> None:
        if tup is self._processing:
            self._handled = True
        rid = tup.values[0]
        track = self._tracked.get(rid)
        if track is not None:
            track.received += 1
        if self._check(tup, _REGULAR, rid):
            self.fail(tup)
        else:
            self.ack(tup)

    def _delegate_fail(self, tup: Tuple) -> None:
        if tup is self._processing:
            self._handled = True
        rid = tup.values[0]
        track = self._tracked.get(rid)
        if track is not None:
            track.failed = True
        self._check(tup, _REGULAR, rid)
        self.fail(tup)

    def _check(self, tup: Tuple, kind: int, rid: Any) -> bool:
        """Storm's ``checkFinishId``: finish or fail the request if its time has come.

        Returns True if the request failed (the caller fails a regular tuple).
        """
        track = self._tracked.get(rid)
        if track is None:
            # The request already finished, failed or expired: a late coordination
            # tuple belongs to a dead tree.
            if kind != _REGULAR:
                self.fail(tup)
            return False
        delayed = False
        if (self.id_stream is None and kind == _COORD) or (
            self.id_stream is not None and kind == _ID
        ):
            # Held until the request finishes: keeps its tuple tree alive.
            track.ack_tuples.append(tup)
            delayed = True
        if (
            not track.failed
            and track.received_id
            and (
                not self.sources
                or (track.reports == self._num_reports and track.expected == track.received)
            )
        ):
            self._finish(tup, rid, track)
        if track.failed:
            for t in track.ack_tuples:
                self.fail(t)
            track.ack_tuples.clear()
            self._tracked.pop(rid, None)
            if self._failed is not None:
                self._failed(rid)
            if not delayed and kind != _REGULAR:
                self.fail(tup)
            return True
        if not delayed and kind != _REGULAR:
            self.ack(tup)
        return False

    def _finish(self, tup: Tuple, rid: Any, track: _Tracking) -> None:
        if self._finished is not None:
            try:
                self._finished(rid)
            except Exception as e:
                if not isinstance(e, FailedError):
                    self.report_error(e)
                track.failed = True
                return
        emitted = track.task_emitted
        for task in self._count_out_tasks:
            self._collector.emit(
                [rid, emitted.get(task, 0)],
                stream=COORDINATED_STREAM,
                anchors=[tup],
                direct_task=task,
            )
        for t in track.ack_tuples:
            self.ack(t)
        track.ack_tuples.clear()
        self._tracked.pop(rid, None)

    def process_tick(self, tup: Tuple) -> None:
        # Drop requests older than the message timeout: their trees are gone.
        self._age += float(tup.values[0] or EXPIRY_TICK_SECS)
        tracked = self._tracked
        horizon = self._age - self._timeout
        while tracked:
            rid, track = next(iter(tracked.items()))
            if track.born >= horizon:
                break
            tracked.popitem(last=False)
            if self._timed_out is not None:
                self._timed_out(rid)
        if self.forward_ticks:
            self._delegate.process_tick(tup)

    def cleanup(self) -> None:
        cleanup = getattr(self._delegate, "cleanup", None)
        if callable(cleanup):
            cleanup()


__all__ = ["ALL", "COORDINATED_STREAM", "EXPIRY_TICK_SECS", "SINGLE", "CoordinatedBolt"]
