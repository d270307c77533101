from collections.abc import Callable, Sequence
from typing import Any

def make_values(cls: type[tuple[Any, ...]], seq: Sequence[Any]) -> Any: ...
def acker_apply(buckets: list[dict[Any, Any]], msgs: list[Any], out: Any, now: float) -> int: ...
def make_values_many(cls: type[tuple[Any, ...]], seqs: list[Any]) -> list[Any]: ...
def run_unanchored(
    process: Callable[[Any], Any], vals: list[Any], on_error: Callable[[Any, Exception], Any]
) -> None: ...

class SelfDescriptor:
    def __get__(self, obj: Any, owner: Any = None) -> Any: ...

class RouteBase:
    cls: Any
    width: int
    one: Any
    fcache: Any
    fidx: int
    staging: Any
    emitted: int
    sink: bool
    acking: bool
    rstaging: Any

def run_anchored(
    emitter: Emitter | None,
    process: Callable[[Any], Any],
    vals: list[Any],
    roots: list[Any],
    on_error: Callable[[Any, Exception], Any],
    pending_acks: dict[int, int],
    auto_ack: bool,
) -> int: ...

class AckedTuple:
    values: Any
    _roots: dict[int, int] | None
    _ack_val: int | None
    component: str
    stream: str
    task: int
    id: str
    is_tick: bool
    def __init__(self, values: Any, roots: dict[int, int] | None) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: Any) -> Any: ...
    def __iter__(self) -> Any: ...

class Emitter:
    fallback: Callable[..., Any]
    current: Any
    def __init__(
        self,
        routes: dict[Any, Any],
        fallback: Callable[..., Any],
        seed: int = ...,
        auto_anchor: bool = ...,
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
