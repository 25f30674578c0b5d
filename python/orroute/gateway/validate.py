"""Checks a chat completion body before anything is reserved or sent: every field the gateway or
the engine reads must have the type OpenAI's API gives it, or the client gets a 400 naming the
field (never a dropped connection or a 500)."""

from __future__ import annotations

from typing import Any

from .errors import bad_field

__all__ = ["MAX_N", "positive_int", "validate_chat"]

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
MAX_N = 8  # choices per request: each is a separate upstream completion, reserved on its own


def positive_int(body: dict[str, Any], name: str, *, maximum: int | None = None) -> int | None:
    """``body[name]`` if absent/None or a positive integer (at most ``maximum``); else 400."""
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise bad_field(name, f"'{name}' must be a positive integer")
    if maximum is not None and v > maximum:
        raise bad_field(name, f"'{name}' must be at most {maximum}")
    return v


def _validate_messages(messages: Any) -> None:
    if messages is None:
        raise bad_field("messages", "'messages' is required")
    if not isinstance(messages, list) or not messages:
        raise bad_field("messages", "'messages' must be a non-empty array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad_field(f"messages[{i}]", f"'messages[{i}]' must be an object")
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:  # an object is not even hashable
            raise bad_field(f"messages[{i}].role",
                            f"'messages[{i}].role' must be one of {sorted(_ROLES)}, got "
                            f"{str(role)[:40]!r}")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_field(f"messages[{i}].content",
                            f"'messages[{i}].content' must be a string or an array of parts")
        if isinstance(content, list) and not all(isinstance(p, dict) for p in content):
            raise bad_field(f"messages[{i}].content",
                            f"'messages[{i}].content' parts must be objects")
        if content is None and role in ("user", "system"):
            raise bad_field(f"messages[{i}].content", f"'messages[{i}].content' is required")
        calls = m.get("tool_calls")
        if calls is not None and not (isinstance(calls, list)
                                      and all(isinstance(c, dict) for c in calls)):
            raise bad_field(f"messages[{i}].tool_calls",
                            f"'messages[{i}].tool_calls' must be an array of objects")


def _validate_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_field("tools", "'tools' must be an array of tool objects")
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            raise bad_field(f"tools[{i}]", f"'tools[{i}]' must be an object")
        if t.get("type", "function") == "function":
            fn = t.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise bad_field(f"tools[{i}].function",
                                f"'tools[{i}].function' must be an object with a 'name' string")
            params = fn.get("parameters")
            if params is not None and not isinstance(params, dict):
                raise bad_field(f"tools[{i}].function.parameters",
                                f"'tools[{i}].function.parameters' must be a JSON Schema object")


def validate_chat(body: Any) -> dict[str, Any]:
    """The parsed body if it is a well-formed chat request; HttpError(400) naming the field."""
    if not isinstance(body, dict):
        raise bad_field("body", "the request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise bad_field("model", "'model' is required (a model id, orroute/auto, or a route name)")
    if not isinstance(model, str) or not model.strip():
        raise bad_field("model", "'model' must be a non-empty string")
    _validate_messages(body.get("messages"))
    if "stream" in body and not isinstance(body["stream"], bool):
        raise bad_field("stream", "'stream' must be a boolean")
    positive_int(body, "max_tokens")
    positive_int(body, "max_completion_tokens")
    positive_int(body, "n", maximum=MAX_N)
    for name, lo, hi in (("temperature", 0, 2), ("top_p", 0, 1)):
        v = body.get(name)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                              or not lo <= v <= hi):
            raise bad_field(name, f"'{name}' must be a number between {lo} and {hi}")
    _validate_tools(body.get("tools"))
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, (str, dict)):
        raise bad_field("tool_choice", "'tool_choice' must be a string or an object")
    for name in ("response_format", "stream_options", "provider", "reasoning", "usage"):
        v = body.get(name)
        if v is not None and not isinstance(v, dict):
            raise bad_field(name, f"'{name}' must be an object")
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
        raise bad_field("stop", "'stop' must be a string or an array of strings")
    return body

