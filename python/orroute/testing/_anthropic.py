"""FakeAnthropic: a loopback server speaking Anthropic's Messages API, with FakeOpenRouter's faults.

It is a FakeOpenRouter underneath: the same HTTP plumbing, model table, deterministic replies,
token counting, timing profiles and fault injection (``fail``, ``script``, ``Fault``). Only the
wire format differs: ``POST /v1/messages`` in, Anthropic's JSON or SSE events out, Anthropic's
error shape (``{"type":"error","error":{"type","message"}}``, 529 for overloaded) and
``x-api-key`` (or bearer) authentication.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._http_server import Connection, RawRequest, head_bytes
from ._faults import Fault
from ._replies import split_pieces
from ._server import (
    _HANG,
    _JSON,
    _RESET,
    _SERVER,
    FakeOpenRouter,
    RecordedRequest,
    _chunk_frame,
    _dumps,
    _HttpError,
    _Reply,
    _Secret,
)

__all__ = ["ANTHROPIC_VERSION", "FakeAnthropic"]

ANTHROPIC_VERSION = "2023-06-01"
_MESSAGES = "/v1/messages"

# Anthropic's documented error types by HTTP status.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error")


def _text_of(content: Any) -> str:
    """The text of an Anthropic content (string or blocks), for token counting."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(str(block.get("name", "")) + json.dumps(block.get("input", {})))
        elif kind == "tool_result":
            parts.append(_text_of(block.get("content", "")))
    return "".join(parts)


def _has_cache_control(body: Mapping[str, Any]) -> bool:
    blocks: list[Any] = []
    system = body.get("system")
    if isinstance(system, list):
        blocks += system
    for msg in body.get("messages") or ():
        if isinstance(msg, dict) and isinstance(msg.get("content"), list):
            blocks += msg["content"]
    blocks += list(body.get("tools") or ())
    return any(isinstance(b, dict) and b.get("cache_control") for b in blocks)


class FakeAnthropic(FakeOpenRouter):
    """A loopback server that speaks Anthropic's Messages API (``POST /v1/messages``).

    Same arguments, model table, profiles and faults as ``FakeOpenRouter`` (models are named as
    Anthropic names them, e.g. ``claude-sonnet-4-5``; unknown names are priced $1/M prompt and
    $2/M completion tokens by the fake's own accounting, which only matters for ``total_usage``).
    ``max_tokens`` is required, as at Anthropic. Prompt caching is explicit: a request with a
    ``cache_control`` block writes its prefix (everything but the last message) to the cache
    (``cache_creation_input_tokens``); a later request with the same prefix reads it
    (``cache_read_input_tokens``).

    >>> with FakeAnthropic() as fake:
    ...     fake.base_url.endswith("/v1")
    True
    """

    def __init__(
        self,
        models: Iterable[str | Mapping[str, Any]] | None = (
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "claude-opus-4-1",
        ),
        *,
        api_key: str | Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("cache_min_tokens", None)  # Anthropic caches only what is marked
        super().__init__(models, api_key=api_key, **options)
        self._explicit_cache: set[str] = set()
        self._cache_lock = threading.Lock()

    def start(self) -> FakeAnthropic:
        """Starts listening (idempotent). Returns self."""
        super().start()
        return self

    def __enter__(self) -> FakeAnthropic:  # noqa: PYI034
        return self.start()

    async def __aenter__(self) -> FakeAnthropic:  # noqa: PYI034
        return self.start()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"FakeAnthropic({state}, models={len(self._models)})"

    @property
    def base_url(self) -> str:
        """The URL to configure as an Anthropic provider's base URL (``.../v1``)."""
        return f"{self.url}/v1"

    # --- routing ----------------------------------------------------------------------------------

    def _route(
        self, conn: Connection, raw: RawRequest, rec: RecordedRequest, chunked: bool, close: bool
    ) -> Any:
        if "x-api-key" in rec.headers:
            rec.headers["x-api-key"] = _Secret(rec.headers["x-api-key"])
        if rec.path != _MESSAGES:
            raise _HttpError(Fault.status_error(404, f"Not found: {rec.path}"))
        if raw.method != "POST":
            raise _HttpError(Fault.status_error(405, "Method not allowed"))
        if self._keys is not None:
            # x-api-key, or a bearer token (the official SDK sends its key either way by version)
            key = rec.headers.get("x-api-key") or rec.api_key
            value = key.reveal() if isinstance(key, _Secret) else None
            if value is None or value not in self._keys:
                raise _HttpError(Fault.status_error(401, "invalid x-api-key"))
        if rec.headers.get("anthropic-version") is None:
            raise _HttpError(Fault.bad_request("anthropic-version: header is required"))
        return self._messages(conn, rec, chunked, close)

    def _messages(self, conn: Connection, rec: RecordedRequest, chunked: bool, close: bool) -> Any:
        body = rec.json
        if not isinstance(body, dict):
            raise _HttpError(Fault.bad_request("Request body must be a JSON object."))
        model = body.get("model")
        rec.model = model if isinstance(model, str) else None
        rec.stream = bool(body.get("stream"))
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _HttpError(Fault.bad_request("max_tokens: Field required"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HttpError(Fault.bad_request("messages: at least one message is required"))
        roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
        if any(r not in ("user", "assistant") for r in roles) or roles[0] != "user":
            raise _HttpError(
                Fault.bad_request("messages: roles must be user/assistant, starting with user")
            )
        if any(a == b for a, b in itertools.pairwise(roles)):
            raise _HttpError(Fault.bad_request("messages: roles must alternate"))
        served = self._resolve(rec.model) if rec.model else None
        if served is None or served != rec.model:
            raise _HttpError(Fault.status_error(404, f"model: {rec.model}"))
        fault = self._take_fault(served)
        rec.fault = fault
        if fault is not None and fault.is_status:
            raise _HttpError(fault)
        if fault is not None and fault.kind == "raw":
            rec.status = fault.status
            return self._play(conn, self._raw_events(fault), rec, stream=rec.stream)
        chat = self._as_chat(body)
        reply = self._make_reply(served, chat, rec.body)
        rec.served_model = served
        rec.generation_id = reply.gen_id
        writes, reads = self._cache_usage(served, body, reply)
        profile = self._profile(served)
        if rec.stream:
            events = self._anthropic_stream(reply, writes, reads, fault, profile, chunked, close)
        else:
            events = self._anthropic_plain(reply, writes, reads, fault, profile, close)
        if fault is None or fault.kind in ("delay", "slow_drip", "malformed_json"):
            self._book(reply, rec, events)
        rec.status = 200 if fault is None or fault.kind not in ("hang", "reset") else None
        return self._play(conn, events, rec, stream=rec.stream)

    # --- translation ------------------------------------------------------------------------------

    @staticmethod
    def _as_chat(body: Mapping[str, Any]) -> dict[str, Any]:
        """The request in chat-completions shape, for the shared reply generator."""
        chat_messages: list[dict[str, Any]] = []
        system = body.get("system")
        if system:
            chat_messages.append({"role": "system", "content": _text_of(system)})
        for m in body["messages"]:
            chat_messages.append({"role": m["role"], "content": _text_of(m.get("content"))})
        chat: dict[str, Any] = {
            "model": body["model"],
            "messages": chat_messages,
            "max_tokens": body["max_tokens"],
        }
        if body.get("stop_sequences"):
            chat["stop"] = list(body["stop_sequences"])
        tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("name")]
        if tools:
            chat["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t["name"],
                        "description": t.get("description", ""),
                        "parameters": t.get("input_schema") or {"type": "object"},
                    },
                }
                for t in tools
            ]
            choice = body.get("tool_choice") or {"type": "auto"}
            kind = choice.get("type") if isinstance(choice, dict) else "auto"
            if kind == "any":
                chat["tool_choice"] = "required"
            elif kind == "tool":
                chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
            elif kind == "none":
                chat["tool_choice"] = "none"
        return chat

    def _cache_usage(self, model: str, body: Mapping[str, Any], reply: _Reply) -> tuple[int, int]:
        """(cache_creation_input_tokens, cache_read_input_tokens) of an explicit-cache request."""
        if not _has_cache_control(body):
            return 0, 0
        prefix = {k: body.get(k) for k in ("system", "tools")}
        prefix["messages"] = body["messages"][:-1]
        digest = hashlib.sha256((model + json.dumps(prefix, sort_keys=True)).encode()).hexdigest()
        chat = self._as_chat({**body, "messages": body["messages"][:-1] or body["messages"][:1]})
        tokens = self._accounting.prompt_tokens(model, chat["messages"], chat.get("tools"))
        tokens = max(0, min(tokens, reply.prompt_tokens - 1))
        with self._cache_lock:
            hit = digest in self._explicit_cache
            self._explicit_cache.add(digest)
        return (0, tokens) if hit else (tokens, 0)

    @staticmethod
    def _usage_json(reply: _Reply, writes: int, reads: int, output: int) -> dict[str, int]:
        return {
            "input_tokens": reply.prompt_tokens - writes - reads,
            "cache_creation_input_tokens": writes,
            "cache_read_input_tokens": reads,
            "output_tokens": output,
        }

    def _content_blocks(self, reply: _Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.content:
            blocks.append({"type": "text", "text": reply.content})
        for call in reply.tool_calls or ():
            blocks.append(
                {
                    "type": "tool_use",
                    "id": "toolu_" + call["id"].removeprefix("call_"),
                    "name": call["function"]["name"],
                    "input": json.loads(call["function"]["arguments"] or "{}"),
                }
            )
        return blocks

    def _message_id(self, reply: _Reply) -> str:
        return "msg_" + reply.gen_id.rsplit("-", 1)[-1]

    # --- response bytes ---------------------------------------------------------------------------

    def _anthropic_plain(
        self,
        reply: _Reply,
        writes: int,
        reads: int,
        fault: Fault | None,
        profile: Any,
        close: bool,
    ) -> list[tuple[float, Any]]:
        wait = profile.latency + profile.ttft
        if profile.tokens_per_second:
            wait += reply.completion_tokens / profile.tokens_per_second
        body = _dumps(
            {
                "id": self._message_id(reply),
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": self._content_blocks(reply),
                "stop_reason": _STOP_REASONS.get(reply.finish_reason, "end_turn"),
                "stop_sequence": None,
                "usage": self._usage_json(reply, writes, reads, reply.completion_tokens),
            }
        )
        if fault is not None and fault.kind == "malformed_json":
            body = body[: max(1, len(body) // 2)]
        head = head_bytes(
            200,
            [_JSON, _SERVER, ("request-id", "req_" + reply.gen_id.rsplit("-", 1)[-1])],
            length=len(body),
            close=close,
        )
        return self._apply_fault([(wait, head + body)], fault)

    def _anthropic_stream(
        self,
        reply: _Reply,
        writes: int,
        reads: int,
        fault: Fault | None,
        profile: Any,
        chunked: bool,
        close: bool,
    ) -> list[tuple[float, Any]]:
        frame = _chunk_frame if chunked else (lambda b: b)

        def event(name: str, data: Mapping[str, Any]) -> bytes:
            return frame(b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n")

        head = head_bytes(
            200,
            [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), _SERVER],
            chunked=chunked,
            close=close or not chunked,
        )
        start = {
            "type": "message_start",
            "message": {
                "id": self._message_id(reply),
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": self._usage_json(reply, writes, reads, 1),
            },
        }
        events: list[tuple[float, Any]] = [
            (
                profile.latency,
                head + event("message_start", start) + event("ping", {"type": "ping"}),
            )
        ]
        # Every content delta, in order; the fault's after_tokens counts these.
        deltas: list[bytes] = []
        index = 0
        if reply.content:
            deltas.append(
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in reply.pieces or split_pieces(reply.content):
                deltas.append(
                    event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            deltas.append(
                event("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1
        for block in self._content_blocks(reply):
            if block["type"] != "tool_use":
                continue
            deltas.append(
                event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {**block, "input": {}},
                    },
                )
            )
            for frag in split_pieces(json.dumps(block["input"])) or [""]:
                deltas.append(
                    event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": frag},
                        },
                    )
                )
            deltas.append(
                event("content_block_stop", {"type": "content_block_stop", "index": index})
            )
            index += 1
        per = 0.0
        if profile.tokens_per_second:
            per = reply.completion_tokens / profile.tokens_per_second / max(1, len(deltas))
        after = fault.after_tokens if fault is not None else None
        mid = fault is not None and (
            fault.kind == "stream_error" or (fault.kind in ("hang", "reset") and after is not None)
        )
        stop_at = min(len(deltas), after or 0) if mid else len(deltas)
        for i, d in enumerate(deltas[:stop_at]):
            if fault is not None and fault.kind == "malformed_json" and i == (after or 0):
                events.append((0.0, frame(b'event: content_block_delta\ndata: {"type": "cont\n\n')))
            events.append((profile.ttft if i == 0 else per, d))
        if mid and fault is not None and fault.kind in ("hang", "reset"):
            events.append((0.0, _HANG if fault.kind == "hang" else _RESET))
            return self._apply_fault(events, replace(fault, kind="none"))
        if fault is not None and fault.kind == "stream_error":
            error = {
                "type": "error",
                "error": {"type": _error_type(fault.status), "message": fault.message},
            }
            events.append((per, event("error", error) + (b"0\r\n\r\n" if chunked else b"")))
            return self._apply_fault(events, replace(fault, kind="none"))
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _STOP_REASONS.get(reply.finish_reason, "end_turn"),
                "stop_sequence": None,
            },
            "usage": {"output_tokens": reply.completion_tokens},
        }
        tail = (
            event("message_delta", delta)
            + event("message_stop", {"type": "message_stop"})
            + (b"0\r\n\r\n" if chunked else b"")
        )
        events.append((0.0, tail))
        return self._apply_fault(events, fault)

    def _error_events(self, fault: Fault, close: bool, rec: RecordedRequest) -> list[Any]:
        headers = dict(fault.headers)
        headers.pop("X-RateLimit-Reset", None)  # Anthropic sends anthropic-ratelimit-* instead
        body = _dumps(
            {
                "type": "error",
                "error": {"type": _error_type(fault.status), "message": fault.message},
            }
        )
        head = head_bytes(
            fault.status,
            [_JSON, _SERVER, ("request-id", f"req_{int(time.time() * 1000):x}"), *headers.items()],
            length=len(body),
            close=close,
        )
        return [(0.0, head + body)]
