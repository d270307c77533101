"""Engine inbox entries <-> msgpack frames: how tuple batches cross a process boundary.

A frame is one msgpack array holding a list of inbox entries (the shapes in
``squall.runtime.messages``). The whole list is packed by msgpack's C packer in
one call, so the per-tuple cost of sending is msgpack's, not Python's. On the
way in, each ``DATA`` entry's values become instances of the value class of
their (component, stream, source task) again, so a bolt in another worker sees
exactly what a bolt in the same worker sees.

What may cross: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``,
``bytes``, lists, tuples and dicts of these. Tuples nested *inside* a value
arrive as lists (as with Storm's multilang JSON). Anything else (a ``set``, a
``datetime``, an object) is refused with an error that names the component,
task, stream and field. Nothing received is ever unpickled.

>>> from squall.api.tuple import values_class
>>> Word = values_class("split", "default", ("word",), 3)
>>> entries = [(DATA, 5, "split", "default", 3, [Word.make(["dog"])], None)]
>>> frames = BatchEncoder().encode(entries)
>>> decoded = BatchDecoder({("split", "default"): ("word",)}).decode(frames[0])
>>> t = decoded[0][5][0]
>>> t.word, t.component, t.task, type(t) is Word
('dog', 'split', 3, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import msgpack

from squall import speedups
from squall.api.topology import TopologyDef
from squall.api.tuple import ValuesTuple, values_class

# The entry tags of ``squall.runtime.messages`` (this layer sits below the runtime,
# so it cannot import them; a unit test pins that the two agree).
DATA: Final = 0
ACKER: Final = 1
SPOUT_ACK: Final = 2
TICK: Final = 3

#: Config key (Squall's own) for the largest frame a worker sends or accepts.
MAX_FRAME_BYTES_KEY: Final = "squall.transport.max.frame.bytes"
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024 * 1024

_MSGPACK_TYPES = "None, bool, int (64-bit), float, str, bytes, and lists, tuples and dicts of them"

_make_many = speedups.make_values_many


class SerializationError(ValueError):
    """A batch could not be encoded or decoded; the message says where and why."""


class UnencodableValueError(SerializationError):
    """A tuple holds a value that cannot cross to another worker.

    Attributes:
        component: the component that emitted the tuple.
        stream: the stream it was emitted on.
        task: the emitting task.
    """

    def __init__(self, message: str, component: str, stream: str, task: int) -> None:
        super().__init__(message)
        self.component = component
        self.stream = stream
        self.task = task


class FrameTooLargeError(SerializationError):
    """A frame (or a single tuple) is larger than the frame size limit."""

    def __init__(
        self, message: str, component: str | None = None, stream: str | None = None, task: int = 0
    ) -> None:
        super().__init__(message)
        self.component = component
        self.stream = stream
        self.task = task


class BatchDecodeError(SerializationError):
    """A received frame is not a well-formed batch for this topology."""


class BatchEncoder:
    """Packs lists of inbox entries into frames of at most ``max_frame_bytes``.

    Args:
        max_frame_bytes: the largest frame to produce; bigger batches are split,
            and a single tuple bigger than this is refused.

    >>> enc = BatchEncoder(max_frame_bytes=64)
    >>> entries = [(ACKER, 1, [(0, n, n, 2) for n in range(20)])]
    >>> frames = enc.encode(entries)
    >>> len(frames) > 1 and all(len(f) <= 64 for f in frames)
    True
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes <= 0:
            raise ValueError(f"max_frame_bytes must be > 0, got {max_frame_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)

    def encode(
        self,
        entries: Sequence[tuple[Any, ...]],
        on_error: Callable[[SerializationError], None] | None = None,
    ) -> list[bytes]:
        """Encode ``entries`` into one frame (more only if they exceed the size limit).

        Tuples that cannot be encoded raise :class:`UnencodableValueError` (or
        :class:`FrameTooLargeError`), unless ``on_error`` is given: then each
        offending entry is reported to it once, its bad tuples are left out, and
        the rest is encoded.
        """
        try:
            frame: bytes = self._packer.pack(entries)
        except (TypeError, ValueError, OverflowError):
            entries = self._without_bad_values(entries, on_error)
            if not entries:
                return []
            frame = self._packer.pack(entries)
        if len(frame) <= self.max_frame_bytes:
            return [frame]
        out: list[bytes] = []
        self._split(list(entries), out, on_error)
        return out

    # -- the slow paths: only taken when something is wrong or too big -----------
    def _without_bad_values(
        self,
        entries: Sequence[tuple[Any, ...]],
        on_error: Callable[[SerializationError], None] | None,
    ) -> list[tuple[Any, ...]]:
        pack = self._packer.pack
        kept: list[tuple[Any, ...]] = []
        for entry in entries:
            try:
                pack(entry)
                kept.append(entry)
                continue
            except (TypeError, ValueError, OverflowError) as e:
                if entry[0] != DATA:
                    raise SerializationError(
                        f"internal: cannot encode a kind-{entry[0]} entry for task {entry[1]}: {e}"
                    ) from e
            _, dest, comp, stream, src, vals, roots = entry
            good_vals: list[Any] = []
            good_roots: list[Any] = []
            first_bad: tuple[Any, BaseException] | None = None
            bad = 0
            for i, v in enumerate(vals):
                try:
                    pack(v)
                    if roots is not None:
                        pack(roots[i])
                except (TypeError, ValueError, OverflowError) as e:
                    bad += 1
                    if first_bad is None:
                        first_bad = (v, e)
                    continue
                good_vals.append(v)
                if roots is not None:
                    good_roots.append(roots[i])
            if first_bad is not None:
                err = _unencodable(comp, stream, src, first_bad[0], first_bad[1], bad)
                if on_error is None:
                    raise err
                on_error(err)
            if good_vals:
                kept.append(
                    (
                        DATA,
                        dest,
                        comp,
                        stream,
                        src,
                        good_vals,
                        good_roots if roots is not None else None,
                    )
                )
        return kept

    def _split(
        self,
        entries: list[tuple[Any, ...]],
        out: list[bytes],
        on_error: Callable[[SerializationError], None] | None,
    ) -> None:
        frame: bytes = self._packer.pack(entries)
        if len(frame) <= self.max_frame_bytes:
            out.append(frame)
            return
        if len(entries) > 1:
            half = len(entries) // 2
            self._split(entries[:half], out, on_error)
            self._split(entries[half:], out, on_error)
            return
        entry = entries[0]
        if entry[0] == DATA:
            _, dest, comp, stream, src, vals, roots = entry
            if len(vals) > 1:
                h = len(vals) // 2
                r1, r2 = (roots[:h], roots[h:]) if roots is not None else (None, None)
                self._split([(DATA, dest, comp, stream, src, vals[:h], r1)], out, on_error)
                self._split([(DATA, dest, comp, stream, src, vals[h:], r2)], out, on_error)
                return
            err = FrameTooLargeError(
                f"component {comp!r} task {src} stream {stream!r}: a tuple of {len(frame)} bytes "
                f"is larger than the {self.max_frame_bytes}-byte frame limit "
                f"({MAX_FRAME_BYTES_KEY}); it cannot be sent to another worker: "
                f"{_short(vals[0])}",
                comp,
                stream,
                src,
            )
            if on_error is None:
                raise err
            on_error(err)
            return
        kind, dest, msgs = entry
        if len(msgs) > 1:
            h = len(msgs) // 2
            self._split([(kind, dest, msgs[:h])], out, on_error)
            self._split([(kind, dest, msgs[h:])], out, on_error)
            return
        raise FrameTooLargeError(
            f"internal: a single kind-{kind} message does not fit in {self.max_frame_bytes} bytes"
        )


class _StreamInfo:
    __slots__ = ("classes", "component", "fields", "stream", "width")

    def __init__(self, component: str, stream: str, fields: tuple[str, ...]) -> None:
        self.component = component
        self.stream = stream
        self.fields = fields
        self.width = len(fields)
        self.classes: dict[int, type[ValuesTuple]] = {}

    def cls(self, task: int) -> type[ValuesTuple]:
        c = self.classes.get(task)
        if c is None:
            c = values_class(self.component, self.stream, self.fields, task)
            self.classes[task] = c
        return c


class BatchDecoder:
    """Turns frames back into inbox entries, values rebuilt as their value classes.

    Args:
        stream_fields: ``(component, stream) -> field names`` for every stream that
            may arrive (see :meth:`for_topology`).
        max_frame_bytes: frames longer than this are refused before decoding.
    """

    def __init__(
        self,
        stream_fields: Mapping[tuple[str, str], Sequence[str]],
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._streams: dict[tuple[str, str], _StreamInfo] = {
            (c, s): _StreamInfo(c, s, tuple(f)) for (c, s), f in stream_fields.items()
        }

    @classmethod
    def for_topology(
        cls, topology: TopologyDef, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> BatchDecoder:
        """A decoder that knows every stream of ``topology``."""
        return cls(stream_fields_of(topology), max_frame_bytes)

    def decode(self, frame: bytes | memoryview | bytearray) -> list[tuple[Any, ...]]:
        """Decode one frame into a list of inbox entries; raises :class:`BatchDecodeError`."""
        size = len(frame) if not isinstance(frame, memoryview) else frame.nbytes
        if size > self.max_frame_bytes:
            raise FrameTooLargeError(
                f"refusing a {size}-byte frame: larger than the {self.max_frame_bytes}-byte limit "
                f"({MAX_FRAME_BYTES_KEY})"
            )
        # unpackb bounds every length it reads by the frame's own size, so checking the
        # frame size above caps what decoding can allocate.
        try:
            raw = msgpack.unpackb(
                frame,
                raw=False,
                strict_map_key=False,
                use_list=True,
            )
        except Exception as err:  # msgpack raises several unrelated types on bad input
            raise BatchDecodeError(
                f"frame is not valid msgpack: {type(err).__name__}: {err}"
            ) from err
        if type(raw) is not list:
            raise BatchDecodeError(f"frame must hold a list of entries, got {type(raw).__name__}")
        out: list[tuple[Any, ...]] = []
        streams = self._streams
        for i, e in enumerate(raw):
            if type(e) is not list or not e:
                raise BatchDecodeError(f"entry {i}: expected a non-empty list, got {_short(e)}")
            kind = e[0]
            if kind == DATA and len(e) == 7:
                _, dest, comp, stream, src, vals, roots = e
                info = streams.get((comp, stream)) if type(comp) is type(stream) is str else None
                if info is None:
                    raise BatchDecodeError(
                        f"entry {i}: tuples of unknown stream {comp!r}:{stream!r}"
                    )
                if type(dest) is not int or type(src) is not int or type(vals) is not list:
                    raise BatchDecodeError(
                        f"entry {i} ({comp!r}:{stream!r}): malformed header {_short(e[:5])}"
                    )
                if roots is not None and (type(roots) is not list or len(roots) != len(vals)):
                    raise BatchDecodeError(
                        f"entry {i} ({comp!r}:{stream!r}): anchors do not match the values"
                    )
                cls = info.cls(src)
                try:
                    values = _make_many(cls, vals)
                except TypeError as err:
                    raise BatchDecodeError(
                        f"entry {i} ({comp!r}:{stream!r}): a tuple is not a list of values"
                    ) from err
                if any(map(info.width.__ne__, map(len, values))):
                    raise BatchDecodeError(
                        f"entry {i} ({comp!r}:{stream!r}): a tuple does not have the "
                        f"{info.width} field(s) {list(info.fields)} of the stream"
                    )
                out.append((DATA, dest, info.component, info.stream, src, values, roots))
            elif kind in (ACKER, SPOUT_ACK) and len(e) == 3:
                if type(e[1]) is not int or type(e[2]) is not list:
                    raise BatchDecodeError(f"entry {i}: malformed kind-{kind} entry {_short(e)}")
                out.append((kind, e[1], e[2]))
            else:
                raise BatchDecodeError(f"entry {i}: unknown entry {_short(e)}")
        return out


def stream_fields_of(topology: TopologyDef) -> dict[tuple[str, str], tuple[str, ...]]:
    """``(component, stream) -> fields`` for every declared output stream of ``topology``."""
    return {
        (c.name, s): tuple(st.fields)
        for c in topology.components.values()
        for s, st in c.outputs.items()
    }


def _unencodable(
    comp: str, stream: str, task: int, value: Any, error: BaseException, count: int
) -> UnencodableValueError:
    where = _find_bad(value, getattr(type(value), "fields", ()))
    more = f" ({count} such tuples in this batch were dropped)" if count > 1 else ""
    return UnencodableValueError(
        f"component {comp!r} task {task} stream {stream!r}: {where} cannot be sent to another "
        f"worker ({type(error).__name__}: {error}){more}. Values that cross workers must be "
        f"{_MSGPACK_TYPES}. Tuple: {_short(value)}",
        comp,
        stream,
        task,
    )


def _find_bad(value: Any, fields: Sequence[str]) -> str:
    """Describe the first value inside a tuple that msgpack cannot encode."""
    for i, v in enumerate(value) if isinstance(value, Iterable) else ():
        path = _bad_path(v)
        if path is not None:
            name = f"field {fields[i]!r}" if i < len(fields) else f"value {i}"
            return f"{name}{path[0]} holds {path[1]}"
    return "the tuple"


def _bad_path(v: Any) -> tuple[str, str] | None:
    if v is None or isinstance(v, bool | float | str | bytes):
        return None
    if isinstance(v, int):
        if -(1 << 63) <= v < (1 << 64):
            return None
        return ("", f"an integer outside 64 bits ({v})")
    if isinstance(v, list | tuple):
        for i, x in enumerate(v):
            p = _bad_path(x)
            if p is not None:
                return (f"[{i}]{p[0]}", p[1])
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            p = _bad_path(k)
            if p is not None:
                return (f" (a key){p[0]}", p[1])
            p = _bad_path(x)
            if p is not None:
                return (f"[{k!r}]{p[0]}", p[1])
        return None
    return ("", f"a {type(v).__name__}")


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"
