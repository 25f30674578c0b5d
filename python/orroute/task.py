"""The unit of work of the plan: a ``Task`` that ``AIModelManager.execute_task`` runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal

from ._exceptions import InvalidArgumentError

TYPE_CHECKING = False  # typing is not imported at run time: `import orroute` stays fast
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    Message = Mapping[str, Any]

__all__ = ["Task"]


class Task:
    """A task for a model: its messages, what it needs, and what it may cost.

    Args:
        id: task id recorded in the ledger (a fresh one if omitted).
        type: task type of the plan (``"coding"``, ``"reasoning"``, ``"general"``, ...).
        messages: chat messages in OpenAI shape; a string is taken as one user message.
        input_size: prompt size in tokens; counted from ``messages`` when omitted.
        max_tokens: upper bound on output tokens (drives the worst-case cost reservation).
        project: project the spend is booked to.
        capabilities: capabilities the model must have (``"tools"``, ``"vision"``, ...).
        quality: minimum quality in [0, 1] the caller wants, if any.
        budget: most this one task may cost, in USD (stored as ``decimal.Decimal``).
        conversation: conversation the spend is booked to.
        tags: extra budget scopes, e.g. ``{"user": "alice", "team": "search"}``.
        params: other request fields, sent as given (``{"temperature": 0.7}``).
        cache: False skips the manager's response cache for this task (see orroute.cache).

    >>> Task(type="coding", messages="Write a haiku about C++").messages[0]["role"]
    'user'
    """

    __slots__ = (
        "budget",
        "cache",
        "capabilities",
        "conversation",
        "id",
        "input_size",
        "max_tokens",
        "messages",
        "params",
        "project",
        "quality",
        "tags",
        "type",
    )

    def __init__(
        self,
        id: str | None = None,
        type: str = "general",
        messages: Sequence[Message] | str = (),
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
    ) -> None:
        if not isinstance(type, str) or not type:
            raise InvalidArgumentError("task type must be a non-empty string")
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        msgs = list(messages)
        for i, m in enumerate(msgs):
            if not isinstance(m, Mapping) or "role" not in m:
                raise InvalidArgumentError(f"task message {i} must be a mapping with a 'role'")
        if input_size is not None and input_size < 0:
            raise InvalidArgumentError(f"input_size must be >= 0, got {input_size}")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidArgumentError(f"max_tokens must be >= 1, got {max_tokens}")
        if quality is not None and not 0.0 <= quality <= 1.0:
            raise InvalidArgumentError(f"quality must be in [0, 1], got {quality}")
        if budget is not None:
            try:
                budget = Decimal(str(budget))
            except ArithmeticError:
                raise InvalidArgumentError(f"budget must be an amount in USD, got {budget!r}") from None
            if not budget.is_finite() or budget < 0:
                raise InvalidArgumentError(f"budget must be >= 0, got {budget}")
        self.id = id if id is not None else os.urandom(16).hex()
        self.type = type
        self.messages: list[Message] = msgs
        self.input_size = input_size
        self.max_tokens = max_tokens
        self.project = project
        self.capabilities = tuple(capabilities)
        self.quality = quality
        self.budget = budget
        self.conversation = conversation
        self.tags = dict(tags or {})
        # request fields sent as given (temperature, top_p, stop, tools, ...); messages, model,
        # stream and max_tokens are the task's own
        self.params = {str(k): v for k, v in (params or {}).items()
                       if k not in ("messages", "model", "stream", "max_tokens")}
        self.cache = bool(cache)

    def __repr__(self) -> str:
        return (
            f"Task(id={self.id!r}, type={self.type!r}, messages=<{len(self.messages)}>, "
            f"max_tokens={self.max_tokens!r}, project={self.project!r}, budget={self.budget!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    @classmethod
    def coerce(cls, task: Any) -> Task:
        """A :class:`Task` from a Task, a mapping or any object with the plan's fields.

        Fields read (as keys or attributes): ``id``, ``type``, ``messages`` (or ``input``: a
        string or messages), ``input_size``, ``max_tokens``, ``project``, ``capabilities``,
        ``quality``, ``budget``, ``conversation``, ``tags``. Missing fields take the defaults of
        the constructor; the values are validated as there.

        Raises:
            InvalidArgumentError: a field has a bad value, or both ``messages`` and ``input``
                are given and differ.

        >>> Task.coerce({"type": "coding", "input": "hi", "max_tokens": 50}).max_tokens
        50
        """
        if isinstance(task, Task):
            return task
        if isinstance(task, Mapping):
            def get(name: str) -> Any:
                return task.get(name)
        elif task is None or isinstance(task, (str, bytes)):
            raise InvalidArgumentError(
                f"expected a task (orroute.Task, a mapping or an object with the plan's fields), "
                f"got {type(task).__name__}"
            )
        else:
            def get(name: str) -> Any:
                return getattr(task, name, None)
        messages, text = get("messages"), get("input")
        if messages is not None and text is not None and messages != text:
            raise InvalidArgumentError("task gives both 'messages' and 'input'; give one")
        fields: dict[str, Any] = {
            "messages": messages if messages is not None else (text if text is not None else ())
        }
        for name in ("id", "type", "input_size", "max_tokens", "project", "capabilities",
                     "quality", "budget", "conversation", "tags", "params", "cache"):
            value = get(name)
            if value is not None:
                fields[name] = value
        return cls(**fields)
