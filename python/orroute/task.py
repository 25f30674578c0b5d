"""The unit of work of the plan: a ``Task`` that ``AIModelManager.execute_task`` runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._exceptions import InvalidArgumentError

__all__ = ["Task", "Message"]

Message = Mapping[str, Any]


@dataclass
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
        budget: most this one task may cost, in USD.

    >>> Task(type="coding", messages="Write a haiku about C++").messages[0]["role"]
    'user'
    """

    id: str | None = None
    type: str = "general"
    messages: Sequence[Message] | str = ()
    input_size: int | None = None
    max_tokens: int | None = None
    project: str | None = None
    capabilities: Sequence[str] = ()
    quality: float | None = None
    budget: Decimal | float | int | str | None = None
    conversation: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.id is None:
            self.id = uuid.uuid4().hex
        if isinstance(self.messages, str):
            self.messages = [{"role": "user", "content": self.messages}]
        else:
            self.messages = list(self.messages)
        for i, m in enumerate(self.messages):
            if not isinstance(m, Mapping) or "role" not in m:
                raise InvalidArgumentError(f"task message {i} must be a mapping with a 'role'")
        if not isinstance(self.type, str) or not self.type:
            raise InvalidArgumentError("task type must be a non-empty string")
        if self.input_size is not None and self.input_size < 0:
            raise InvalidArgumentError(f"input_size must be >= 0, got {self.input_size}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InvalidArgumentError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.quality is not None and not 0.0 <= self.quality <= 1.0:
            raise InvalidArgumentError(f"quality must be in [0, 1], got {self.quality}")
        if self.budget is not None:
            self.budget = Decimal(str(self.budget))
            if self.budget < 0:
                raise InvalidArgumentError(f"budget must be >= 0, got {self.budget}")
        self.capabilities = tuple(self.capabilities)
