# Type stubs for orroute._task (orroute.Task's type, in C: cpp/pyext/task.c). Keep in step with
# it: CI runs `python -m mypy.stubtest orroute._task`. Private module: use `orroute.Task`.
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

class Task:
    id: str
    type: str
    messages: list[Mapping[str, Any]]
    input_size: int | None
    max_tokens: int | None
    project: str | None
    capabilities: tuple[str, ...]
    quality: float | None
    budget: Decimal | None
    conversation: str | None
    tags: dict[str, str]
    params: dict[str, Any]
    cache: bool
    compress: Any
    __hash__: ClassVar[None]  # type: ignore[assignment]  # mutable: not hashable
    def __init__(
        self,
        id: str | None = None,
        type: str = "general",
        messages: Sequence[Mapping[str, Any]] | str = (),
        input_size: int | None = None,
        max_tokens: int | None = None,
        project: str | None = None,
        capabilities: Sequence[str] = (),
        quality: float | None = None,
        budget: Decimal | float | str | None = None,
        conversation: str | None = None,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        cache: bool = True,
        compress: Any = None,
    ) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    @classmethod
    def coerce(cls, task: Any) -> Task: ...

def _bind(globals: dict[str, Any], /) -> None: ...
def _forget_id_prefix() -> None: ...
