"""Typed records of what the engine returns: a plan and a run's result (dicts at run time, so
nothing is copied on the hot path; the types are for readers and mypy)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict

__all__ = ["ApiErrorInfo", "Plan", "RunResult"]


class Plan(TypedDict):
    """What the router would do for a task (``Engine.plan``); the reservation uses the same."""

    candidates: list[str]
    reasons: list[str]
    complexity: dict[str, Any]
    task_type: str
    prompt_tokens: int  # the first candidate's count (explicit order), else the reference's
    max_tokens: int
    estimate: Decimal | None


class ApiErrorInfo(TypedDict, total=False):
    """The upstream failure inside a :class:`RunResult` (``api_error``)."""

    kind: str  # status | connection | timeout | stream | cancelled
    status: int
    message: str
    code_json: str
    metadata_json: str
    generation_id: str
    retry_after: float | None


class RunResult(TypedDict, total=False):
    """One finished engine run (``Engine.run`` and friends)."""

    ok: bool
    error: str | None
    http_status: int
    message: str
    model: str
    served_model: str
    completion: str
    completion_id: str | None  # ok: the reply's id ("" when it has none); else None
    content: str | None  # ok: the first choice's message text (text parts joined); else None
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    cost_source: str
    cost_problem: str
    cut_at_reservation: bool
    provider: str  # several providers: the one that answered (or was tried last); else ""
    provider_model: str  # its name for the model
    alerts: list[Any]
    budget_refused: bool
    budget_error_type: str
    budget_error_kind: Any
    nothing_sent: bool
    attempts: list[dict[str, Any]]
    api_error: ApiErrorInfo | None
    plan: Plan
