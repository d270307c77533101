"""Output stream declarations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from squall.api.ids import DEFAULT_STREAM


@dataclass(frozen=True, slots=True, init=False)
class Stream:
    """A named output stream and its fields.

    >>> Stream(["word", "count"])
    Stream(fields=('word', 'count'), name='default', direct=False)
    >>> Stream(fields=["url"], name="errors", direct=True).direct
    True
    """

    fields: tuple[str, ...]
    name: str
    direct: bool

    def __init__(
        self, fields: Iterable[str], name: str = DEFAULT_STREAM, direct: bool = False
    ) -> None:
        if isinstance(fields, str):
            raise TypeError(
                f"stream {name!r}: fields must be a list of names, not the string {fields!r}"
            )
        flds = tuple(fields)
        for f in flds:
            if not isinstance(f, str) or not f:
                raise TypeError(
                    f"stream {name!r}: field names must be non-empty strings, got {f!r}"
                )
        if len(set(flds)) != len(flds):
            raise ValueError(f"stream {name!r}: duplicate field names in {list(flds)}")
        if not isinstance(name, str) or not name:
            raise TypeError(f"stream name must be a non-empty string, got {name!r}")
        object.__setattr__(self, "fields", flds)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "direct", bool(direct))


def normalize_outputs(outputs: object, owner: str) -> dict[str, Stream]:
    """Turn a component's ``outputs`` (field names or Streams) into ``{name: Stream}``.

    >>> sorted(normalize_outputs(["word"], "split"))
    ['default']
    >>> sorted(normalize_outputs([Stream(["a"]), Stream(["b"], name="other")], "c"))
    ['default', 'other']
    """
    if outputs is None:
        return {}
    if isinstance(outputs, Stream):
        outputs = [outputs]
    if not isinstance(outputs, Sequence) or isinstance(outputs, str):
        raise TypeError(
            f"component {owner!r}: outputs must be a list of field names or of Streams, "
            f"got {outputs!r}"
        )
    if all(isinstance(o, str) for o in outputs):
        return {DEFAULT_STREAM: Stream(outputs)} if outputs else {}
    result: dict[str, Stream] = {}
    for o in outputs:
        if not isinstance(o, Stream):
            raise TypeError(
                f"component {owner!r}: outputs mixes field names and Streams ({o!r}); "
                "use Stream(...) for every entry"
            )
        if o.name in result:
            raise ValueError(f"component {owner!r}: stream {o.name!r} declared twice")
        result[o.name] = o
    return result
