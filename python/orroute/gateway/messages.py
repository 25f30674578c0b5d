"""``POST /v1/messages``: Anthropic's Messages API in front of the router, so agents built on
Anthropic's SDK can point at ``orroute serve`` and be routed to any model, with budgets and the
ledger like every other route.

The request is translated to a chat completion, the chat route runs it (the same engine task,
reservation, retries, fallbacks, ledger), and its reply is translated back: a ``message`` object,
or Anthropic's stream events, or Anthropic's error shape. The translations live in the C++ core
(``cpp/orroute/provider/anthropic_inbound.*`` and ``anthropic_outbound.*``), next to the
translation the other way that the Anthropic provider uses.
"""

from __future__ import annotations

from typing import Any

from .. import _core
from .._exceptions import InvalidArgumentError, OrRouteError
from .._http_server import Connection, RawRequest
from ._json import dumps, loads
from .errors import HttpError

__all__ = ["MESSAGES_PATHS", "AnthropicEvents", "serve_messages"]

MESSAGES_PATHS = frozenset({"/v1/messages", "/api/v1/messages", "/messages"})


class AnthropicEvents:
    """A streamed chat completion as Anthropic's events (``message_start`` ... ``message_stop``);
    the relay's ``events`` hook (the same calls as ``ResponseEvents``)."""

    def __init__(self, model: str) -> None:
        self._writer = _core.AnthropicEventWriter(model)

    def start(self) -> bytes:
        return b""  # message_start goes out with the first chunk: it carries the id and model

    def chunk(self, chunk: Any) -> bytes:
        return self._writer.chunk(dumps(chunk).decode())

    def end(self) -> bytes:
        return self._writer.finish()

    def failed(self, error: dict[str, Any]) -> bytes:
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        return self._writer.fail(status, str(error.get("message") or "the stream failed"))


class _AnthropicReplies:
    """Stands between the chat route and the client's connection: a complete JSON response the
    route writes (a chat completion or an error in OpenAI's shape) is rewritten in Anthropic's
    shape; anything else (a stream's head and events) passes through unchanged."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def closed(self) -> bool:
        return self._conn.closed

    @property
    def last_status(self) -> int:
        return self._conn.last_status

    @last_status.setter
    def last_status(self, status: int) -> None:
        self._conn.last_status = status

    async def drain(self) -> None:
        await self._conn.drain()

    def close(self) -> None:
        self._conn.close()

    def write(self, data: bytes) -> None:
        head, sep, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not sep or b"content-type: application/json" not in head.lower() \
                or not lines[0].startswith(b"HTTP/1.1 "):
            self._conn.write(data)
            return
        status = int(lines[0].split(b" ", 2)[1])
        status, body = _translate(status, body)
        if status != int(lines[0].split(b" ", 2)[1]):
            lines[0] = b"HTTP/1.1 %d Bad Gateway" % status
            self._conn.last_status = status
        lines = [b"Content-Length: %d" % len(body) if ln.lower().startswith(b"content-length:")
                 else ln for ln in lines]
        self._conn.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)


def _translate(status: int, body: bytes) -> tuple[int, bytes]:
    """A chat route's JSON answer as Anthropic's: (status, body)."""
    if status == 200:
        try:
            return 200, _core.anthropic_message_from_chat(body.decode(errors="replace")).encode()
        except OrRouteError as e:  # e.g. a tool call whose arguments are not an object
            return 502, _core.anthropic_error_body(502, f"the upstream reply cannot be expressed: {e}")
    try:
        err = loads(body).get("error") or {}
        message = str(err.get("message") or "error")
    except (ValueError, AttributeError):
        message = "error"
    return status, _core.anthropic_error_body(status, message)


async def serve_messages(app: Any, conn: Connection, raw: RawRequest, close: bool) -> None:
    """``POST /v1/messages`` (plain or ``stream: true``) on the gateway ``app``. The gateway key
    comes as ``x-api-key`` (Anthropic's SDK) or a bearer token."""
    out = _AnthropicReplies(conn)
    try:
        if raw.method != "POST":
            raise HttpError(405, "use POST", type_="method_not_allowed")
        key = app._auth(raw)
    except HttpError as e:
        app._send(out, e.status, e.body(), close)
        return

    async def work() -> None:
        from .validate import validate_chat

        try:
            text = raw.body.decode("utf-8")
        except UnicodeDecodeError:  # refused, as the chat route does: not relayed half-replaced
            raise HttpError(400, "body: not valid UTF-8", param="body") from None
        try:
            chat_text = _core.chat_request_from_anthropic(text)
        except InvalidArgumentError as e:
            raise HttpError(400, str(e), param=str(e).split(" ", 1)[0].strip(":")) from None
        chat = validate_chat(loads(chat_text), chat_text)
        chat_raw = dumps(chat)
        if chat.get("stream"):
            et = app._task(chat, raw, key, chat_raw)
            app.in_flight += 1
            try:
                await app._relay_stream(out, raw, et, key, close, AnthropicEvents(chat["model"]))
            finally:
                app.in_flight -= 1
            return
        await app._run_chat(out, raw, chat, key, close, chat_raw)

    await app._answer_errors(out, close, work())  # type: ignore[arg-type]


