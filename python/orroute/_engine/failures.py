"""The one table from a failure to an exception: a network call's error and an engine result's
failure become the same :class:`orroute.APIError` subclass (or budget / no-model / cancelled
error) whichever entry point met them; the gateway presents these exceptions as HTTP. And the one
chat-request check (C++), for the gateway's bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .. import _core
from .. import _exceptions as _exc

__all__ = ["api_error", "call_result", "chat_reply", "chat_request_problem", "chat_result",
           "check_body_error", "result_error"]


def _metadata(api: Mapping[str, Any]) -> dict[str, Any]:
    meta = api.get("metadata")
    if meta is None and api.get("metadata_json"):
        try:
            meta = json.loads(api["metadata_json"])
        except ValueError:
            meta = None
    return meta if isinstance(meta, dict) else {}


def _code(api: Mapping[str, Any]) -> Any:
    if "code" in api:
        return api["code"]
    text = api.get("code_json")
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def api_error(
    api: Mapping[str, Any], *, partial: str = "", fallback_status: int = 0, stream: bool = False
) -> _exc.APIError:
    """The exception for a failed upstream call: a network call's ``error()`` or an engine
    result's ``api_error`` (``kind``: status, connection, timeout, stream, cancelled).

    ``fallback_status`` is the HTTP status to use when the error carries none; ``stream`` forces
    a :class:`StreamError` (the stream broke after content was sent)."""
    kind = api.get("kind") or "status"
    status = int(api.get("status") or 0)
    message = str(api.get("message") or "request failed")
    kw: dict[str, Any] = {
        "code": _code(api),
        "metadata": _metadata(api),
        "generation_id": api.get("generation_id") or None,
        "body": api.get("body"),
    }
    if stream or kind == "stream":
        return _exc.StreamError(message, partial=partial,
                                status_code=status or fallback_status or None, **kw)
    if kind == "timeout":
        return _exc.APITimeoutError(message, status_code=status or None, **kw)
    if kind == "cancelled":
        return _exc.APIConnectionError("the request was cancelled", **kw)
    if kind == "connection":
        return _exc.APIConnectionError(message, status_code=status or None, **kw)
    status = status or fallback_status
    cls = _exc.status_error_class(status) if status else _exc.APIStatusError
    if cls is _exc.RateLimitError:
        return _exc.RateLimitError(
            message, retry_after=api.get("retry_after"), status_code=status, **kw
        )
    return cls(message, status_code=status, **kw)


def result_error(res: Mapping[str, Any]) -> BaseException:
    """The exception for a failed engine result (every entry point: manager, cascade, gateway).
    ``attempts`` (the raw attempt records) is attached to it."""
    message = res["message"] or "request failed"
    err: BaseException
    if res["budget_refused"]:
        cls = getattr(_exc, res["budget_error_type"] or "BudgetExceededError",
                      _exc.BudgetExceededError)
        err = cls(message)
    elif res["error"] == "cancelled":
        from asyncio import CancelledError  # only an async call can have been cancelled

        err = CancelledError(message)
    elif res["nothing_sent"]:
        err = _exc.NoModelAvailableError(message)
    else:
        api = res["api_error"]
        if api is None:
            api = {"kind": "status", "status": res["http_status"], "message": message}
        elif not api.get("message"):
            api = {**api, "message": message}
        if res["error"] == "timeout" and not api.get("status") and api.get("kind") != "stream":
            api = {**api, "kind": "timeout"}
        err = api_error(api, fallback_status=int(res["http_status"] or 0),
                        stream=res["error"] == "stream_broken")
    setattr(err, "attempts", res["attempts"])  # noqa: B010 - any of the classes above
    return err


def chat_reply(body: Any, status: int) -> dict[str, Any]:
    """A 2xx chat reply (already past :func:`call_result`) as a dict: it must be a JSON object
    (not JSON, too deep or a list is an :class:`APIError`)."""
    if not isinstance(body, dict):
        # the one rule for quoting upstream text: cut, control characters escaped
        from .._logs import log_text

        snippet = log_text(body if isinstance(body, str) else repr(body))
        raise _exc.APIResponseValidationError(
            f"the server's reply is not a JSON object (HTTP {status}): {snippet}",
            status_code=status,
            body=snippet,
        )
    return body


def check_body_error(body: Any) -> None:
    """A 2xx JSON body with a top-level error and no result is an error too."""
    if (
        isinstance(body, dict)
        and isinstance(body.get("error"), dict)
        and "choices" not in body
        and "data" not in body
    ):
        e = body["error"]
        code = e.get("code")
        raise api_error({
            "kind": "status",
            "status": code if isinstance(code, int) and code >= 400 else 500,
            "message": str(e.get("message") or "error"),
            "code": code,
            "metadata": e.get("metadata"),
            "body": body,
            "generation_id": body.get("id"),
        })


def chat_request_problem(text: bytes | str, *, require_model: bool = False,
                         max_n: int = 0) -> tuple[str, str] | None:
    """The first rule a chat request (JSON text) breaks, as ``(field, message)``, or None. The
    one rule set (C++, net/protocol.cpp): the engine applies it to every task, the client to
    every chat call, the gateway to every body."""
    problem = _core.check_chat_request(text, require_model, max_n)
    return None if problem is None else (problem[0], problem[1])


def call_result(call: Any) -> Any:
    """The JSON body of a finished network call, or its exception."""
    if not call.ok:
        raise api_error(call.error())
    body = call.body_json()
    check_body_error(body)
    return body


def chat_result(call: Any) -> Any:
    """The reply of a finished chat call, kept parsed in the core (a ``_core.JsonRef``, whose
    fields become Python values as they are read), or its exception: :func:`call_result`'s
    rules and :func:`chat_reply`'s."""
    if not call.ok:
        raise api_error(call.error())
    body = call.reply()
    if type(body) is not _core.JsonRef:  # not a JSON object
        chat_reply(body, call.status())  # raises
    if "error" in body:  # perhaps an error in a 2xx reply: its rule reads the dict
        check_body_error(body.to_py())
    return body
