"""Checks a chat completion body before anything is reserved or sent: every field the gateway or
the engine reads must have the type OpenAI's API gives it, or the client gets a 400 naming the
field (never a dropped connection or a 500)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._engine import chat_request_problem
from .._exceptions import InvalidArgumentError
from ..task import _check_type
from .errors import HttpError, bad_field

__all__ = ["MAX_N", "positive_int", "task_type_header", "validate_chat"]

MAX_N = 8  # choices per request: each is a separate upstream completion, reserved on its own


def task_type_header(headers: Mapping[str, str]) -> str | None:
    """The ``X-Orroute-Task-Type`` header, checked as ``Task(type=...)`` is (a typo of a known
    type, or a value that is not a name, is a 400 naming the header)."""
    name = headers.get("x-orroute-task-type", "").strip()
    if not name:
        return None
    try:
        _check_type(name)
    except InvalidArgumentError as e:
        raise HttpError(400, str(e), param="X-Orroute-Task-Type") from None
    return name


def positive_int(body: dict[str, Any], name: str, *, maximum: int | None = None) -> int | None:
    """``body[name]`` if absent/None or a positive integer (at most ``maximum``); else 400. For
    the fields of the other routes (``max_output_tokens``, ``dimensions``); chat requests are
    checked by :func:`validate_chat`."""
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise bad_field(name, f"'{name}' must be a positive integer")
    if maximum is not None and v > maximum:
        raise bad_field(name, f"'{name}' must be at most {maximum}")
    return v


def validate_chat(body: Any, text: bytes | str) -> dict[str, Any]:
    """``body`` (the parsed ``text``) if it is a well-formed chat request; else HttpError(400)
    naming the field. The rules are the engine's (``check_chat_request`` in net/protocol.cpp, the
    client's and the router's too); the gateway adds that ``model`` is required and ``n`` is at
    most :data:`MAX_N`."""
    problem = chat_request_problem(text, require_model=True, max_n=MAX_N)
    if problem is not None:
        raise bad_field(*problem)
    return body  # type: ignore[no-any-return]
