"""OpenAI's Responses API (``POST /v1/responses``) translated onto chat completions.

The openai-agents SDK's default model and langchain's ``use_responses_api`` call it. The gateway
is stateless: a request carries its whole conversation in ``input`` (``previous_response_id``,
``background`` and hosted tools are refused with a 400 naming the field). A request becomes one
chat completion body (:func:`to_chat`); the completion becomes a Response object
(:func:`from_chat`), or, streamed, each chat chunk becomes the Responses events that carry the
same text and tool-call arguments (``response_events.ResponseEvents``).
"""

from __future__ import annotations

import time
from typing import Any

from .errors import bad_field
from .validate import positive_int

__all__ = ["call_item", "envelope", "finish", "first_choice", "from_chat", "message_item", "obj",
           "to_chat", "usage_of"]

_PASS = ("temperature", "top_p", "parallel_tool_calls", "user", "seed", "provider", "models",
         "transforms", "usage")
_REFUSED = ("previous_response_id", "background", "conversation", "prompt")


def _text_of(content: Any, where: str) -> str:
    """The text of an output/tool-output ``content``: a string, or parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for j, p in enumerate(content):
            if not isinstance(p, dict) or not isinstance(p.get("text", ""), str):
                raise bad_field(f"{where}[{j}]", f"'{where}[{j}]' must be a text part")
            out.append(p.get("text", ""))
        return "".join(out)
    raise bad_field(where, f"'{where}' must be a string or an array of parts")


def _parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    """Input message content as chat content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_field(where, f"'{where}' must be a string or an array of parts")
    parts: list[dict[str, Any]] = []
    for j, p in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(p, dict):
            raise bad_field(at, f"'{at}' must be an object")
        kind = p.get("type")
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(p.get("text"), str):
                raise bad_field(f"{at}.text", f"'{at}.text' must be a string")
            parts.append({"type": "text", "text": p["text"]})
        elif kind == "input_image":
            url = p.get("image_url")
            if not isinstance(url, str):
                raise bad_field(f"{at}.image_url", f"'{at}.image_url' must be a URL string")
            image: dict[str, Any] = {"url": url}
            if isinstance(p.get("detail"), str):
                image["detail"] = p["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            file = {k: p[k] for k in ("filename", "file_data", "file_id") if k in p}
            parts.append({"type": "file", "file": file})
        else:
            raise bad_field(f"{at}.type", f"'{at}.type' {str(kind)[:40]!r} is not supported")
    return parts


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_field("instructions", "'instructions' must be a string")
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise bad_field("input", "'input' must be a string or a non-empty array of items")
    for i, item in enumerate(items):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_field(at, f"'{at}' must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad_field(f"{at}.role", f"'{at}.role' must be user, assistant, system or "
                                "developer")
            content = item.get("content")
            if role == "assistant":
                messages.append({"role": "assistant",
                                 "content": _text_of(content, f"{at}.content")})
            else:
                messages.append({"role": role, "content": _parts(content, f"{at}.content")})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")}}
            if not all(isinstance(v, str) for v in (call["id"], item.get("name"),
                                                     item.get("arguments"))):
                raise bad_field(at, f"'{at}' needs call_id, name and arguments strings")
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)  # parallel calls share one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise bad_field(f"{at}.call_id", f"'{at}.call_id' must be a string")
            messages.append({"role": "tool", "tool_call_id": item["call_id"],
                             "content": _text_of(item.get("output", ""), f"{at}.output")})
        elif kind == "reasoning":
            continue  # the model's earlier reasoning: chat completions take none back
        else:
            raise bad_field(f"{at}.type", f"'{at}.type' {str(kind)[:40]!r} is not supported")
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad_field("tools", "'tools' must be an array")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type") != "function":
            raise bad_field(f"tools[{i}]", f"'tools[{i}]': only function tools are supported")
        if not isinstance(t.get("name"), str):
            raise bad_field(f"tools[{i}].name", f"'tools[{i}].name' must be a string")
        fn = {k: t[k] for k in ("name", "description", "parameters", "strict")
              if t.get(k) is not None}
        out.append({"type": "function", "function": fn})
    return out


def to_chat(body: Any) -> dict[str, Any]:
    """The chat completion body that a Responses request asks for; HttpError(400) naming the
    field otherwise."""
    if not isinstance(body, dict):
        raise bad_field("body", "the request body must be a JSON object")
    for name in _REFUSED:
        if body.get(name):
            raise bad_field(name, f"'{name}' is not supported: the gateway keeps no state; send "
                            "the whole conversation in 'input'")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_field("model", "'model' must be a non-empty string")
    chat: dict[str, Any] = {"model": model, "messages": _messages(body)}
    if "stream" in body:
        if not isinstance(body["stream"], bool):
            raise bad_field("stream", "'stream' must be a boolean")
        chat["stream"] = body["stream"]
    limit = positive_int(body, "max_output_tokens")
    if limit is not None:
        chat["max_tokens"] = limit
    for name in _PASS:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        chat["tool_choice"] = choice
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
            chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt.get("type") == "json_object":
            chat["response_format"] = {"type": "json_object"}
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        chat["reasoning"] = {"effort": reasoning["effort"]}
    return chat


# A completion is the upstream's bytes relayed (the engine checked its usage for the ledger, not
# its shape): what is read from it here is read as the shape OpenAI documents, or as absent.

def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    """A token count: a non-negative whole number, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def first_choice(chat: dict[str, Any]) -> dict[str, Any]:
    """The completion's first choice, or an empty one."""
    choices = chat.get("choices")
    return obj(choices[0]) if isinstance(choices, list) and choices else {}


def usage_of(u: Any) -> dict[str, Any] | None:
    if not isinstance(u, dict):
        return None
    pt = _count(u.get("prompt_tokens"))
    ct = _count(u.get("completion_tokens"))
    cached = _count(obj(u.get("prompt_tokens_details")).get("cached_tokens"))
    reasoning = _count(obj(u.get("completion_tokens_details")).get("reasoning_tokens"))
    out: dict[str, Any] = {
        "input_tokens": pt, "input_tokens_details": {"cached_tokens": cached,
                                                     "cache_write_tokens": 0},
        "output_tokens": ct, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": _count(u.get("total_tokens")) or pt + ct,
    }
    if u.get("cost") is not None:
        out["cost"] = u["cost"]  # OpenRouter's exact cost (USD), as on chat completions
    return out


def envelope(rid: str, request: dict[str, Any], model: str, created: int, status: str
              ) -> dict[str, Any]:
    """The fields every Response object has, from the request that asked for it."""
    return {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "model": model, "output": [], "error": None, "incomplete_details": None,
        "instructions": request.get("instructions"), "metadata": request.get("metadata") or {},
        "max_output_tokens": request.get("max_output_tokens"),
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "temperature": request.get("temperature"), "top_p": request.get("top_p"),
        "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
        "text": request.get("text") or {"format": {"type": "text"}},
        "reasoning": request.get("reasoning"), "store": False, "truncation": "disabled",
        "previous_response_id": None, "usage": None,
    }


def message_item(mid: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": mid, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def call_item(call: dict[str, Any], i: int, rid: str, status: str = "completed"
               ) -> dict[str, Any]:
    fn = obj(call.get("function"))
    return {"type": "function_call", "id": f"fc_{rid[5:]}_{i}",
            "call_id": _text(call.get("id")) or f"call_{rid[5:]}_{i}",
            "name": _text(fn.get("name")), "arguments": _text(fn.get("arguments")),
            "status": status}


def finish(resp: dict[str, Any], finish_reason: Any) -> None:
    if finish_reason == "length":
        resp["status"] = "incomplete"
        resp["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        resp["status"] = "incomplete"
        resp["incomplete_details"] = {"reason": "content_filter"}


def from_chat(chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """The Response object for a chat completion answered to :func:`to_chat`'s body."""
    rid = "resp_" + str(chat.get("id") or f"{time.time_ns():x}")
    resp = envelope(rid, request, str(chat.get("model") or request.get("model")),
                     int(chat.get("created") or time.time()), "completed")
    choice = first_choice(chat)
    message = obj(choice.get("message"))
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append({"type": "reasoning", "id": f"rs_{rid[5:]}", "status": "completed",
                       "summary": [{"type": "summary_text", "text": reasoning}]})
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(message_item(f"msg_{rid[5:]}", content))
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        if isinstance(call, dict):
            output.append(call_item(call, i, rid))
    resp["output"] = output
    resp["usage"] = usage_of(chat.get("usage"))
    finish(resp, choice.get("finish_reason"))
    return resp
