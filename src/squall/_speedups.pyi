from collections.abc import Callable, Sequence
from typing import Any

def make_values(cls: type[tuple[Any, ...]], seq: Sequence[Any]) -> Any: ...
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

class Emitter:
    fallback: Callable[..., Any]
    def __init__(self, routes: dict[Any, Any], fallback: Callable[..., Any]) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
