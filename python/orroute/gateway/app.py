"""The gateway's request handling: routes, authentication, validation, model resolution, relay.

Runs on one event loop (the server's); ``GatewayApp.handle`` is called by the shared HTTP/1.1
protocol in ``orroute._http_server`` for every parsed request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote

from .. import _core, _engine
from .._client_surface import wants_usage_chunk, without_usage_chunk
from .._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    NoModelAvailableError,
    ParseError,
    PermissionDeniedError,
    RateLimitError,
    UnpricedModelError,
)
from .._http_server import Connection, RawRequest, head_bytes
from ..observe import observe_result
from ._json import dumps, loads
from .cascade import CASCADE_ALIAS, CascadeRoute
from .choices import merge_choices
from .collector import Collector
from .embeddings import EmbeddingsRoute
from .errors import HttpError, bad_field
from .keys import GatewayKey, KeyStore
from .messages import MESSAGES_PATHS, serve_messages
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .metrics import GatewayMetrics, route_of
from .outcome import SERVER as _SERVER
from .outcome import SSE as _SSE
from .outcome import ChatOutcome
from .outcome import sent as _sent
from .response_events import ResponseEvents
from .responses import first_choice, from_chat, obj, to_chat
from .reuse import Reused
from .scrub import scrub_secrets
from .settings import ALIASES, GatewaySettings
from .stream_n import relay_n
from .validate import task_type_header, validate_chat

__all__ = ["GatewayApp", "HttpError", "validate_chat"]

_log = logging.getLogger("orroute.gateway")
_JSON = ("Content-Type", "application/json")
# OpenAI clients use base_url .../v1; OpenRouter-style ones .../api/v1; some none
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/api/v1/chat/completions", "/chat/completions"})
_EMBEDDINGS_PATHS = frozenset({"/v1/embeddings", "/api/v1/embeddings", "/embeddings"})
_RESPONSES_PATHS = frozenset({"/v1/responses", "/api/v1/responses", "/responses"})
_MODELS_PATHS = frozenset({"/v1/models", "/api/v1/models", "/models"})
_MODEL_PREFIXES = ("/v1/models/", "/api/v1/models/", "/models/")
_VERSION = "0.1.0"
_HEALTH_REUSE = 1.0  # seconds an upstream check answers /health for
_CREDITS_REUSE = 5.0  # seconds an upstream /credits answers every key's requests for


def _usd(d: Any) -> str:
    return f"{Decimal(d).normalize():f}"


def _amount(value: Any) -> Decimal | None:
    """An amount of USD the upstream sent as a JSON number (finite), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    amount = Decimal(str(value))
    return amount if amount.is_finite() else None


_bad = bad_field


class GatewayApp:
    """Routes requests; one per server, used from the server's event loop only.

    Completions run on the router's engine (``manager``: an ``orroute.AIModelManager``): it
    reserves, admits under the rate limits, sends over its libcurl loop, retries with backoff
    (honouring Retry-After), skips open circuits, falls back and settles."""

    def __init__(self, settings: GatewaySettings, *, keys: KeyStore, tracker: Any, catalog: Any,
                 selector: Any, manager: Any) -> None:
        self.settings = settings
        self.keys = keys
        self.tracker = tracker
        self.catalog = catalog
        self.selector = selector
        self.manager = manager
        self.engine = _engine.engine_of(manager)
        self.observe = manager._observe.with_source("gateway")  # logs, callbacks, spans
        self.started = time.time()
        self.conns: set[Connection] = set()
        self.in_flight = 0
        self._streams: set[Any] = set()  # the engine runs being relayed
        self._paused_before = 0
        self.requests = 0
        # the settings' keys and the manager's (in process, the transport's app has none itself)
        self._secrets = [k.encode() for k in dict.fromkeys(
            [*settings.api_keys(), *self.observe.secrets])]
        self._openapi: bytes | None = None
        self._health_check = Reused(_HEALTH_REUSE, 1)  # one for every client: needs no key
        # /credits asks the upstream with the gateway's key, whoever asks: one answer for all
        self._credits_check = Reused(_CREDITS_REUSE, 1)
        self._models_v1: bytes | None = None
        self._models_ai: bytes | None = None
        self._embeddings = EmbeddingsRoute(self)
        self._cascade = CascadeRoute(self, ChatOutcome, [*_SSE, _SERVER])
        self.metrics = GatewayMetrics(self)
        self.http_server: Any = None  # the HttpServer, once listening (its counters: /metrics)

    # --- App protocol ---------------------------------------------------------------------------

    def _connection_opened(self, conn: Connection) -> None:
        self.conns.add(conn)

    def _connection_closed(self, conn: Connection) -> None:
        self.conns.discard(conn)

    def _handle(self, conn: Connection, raw: RawRequest) -> Coroutine[Any, Any, None] | None:
        started = time.perf_counter()
        conn.last_status = 0
        pending = self._dispatch(conn, raw)
        route = route_of(raw.target.partition("?")[0])
        if pending is None:
            self.metrics.observe(route, conn.last_status or 500, started)
            return None
        return self._observed(pending, conn, route, started)

    async def _observed(self, pending: Coroutine[Any, Any, None], conn: Connection, route: str,
                        started: float) -> None:
        status = 500  # a handler that raised is answered 500 by the HTTP layer
        try:
            await pending
            status = conn.last_status or 500
        except asyncio.CancelledError:
            status = conn.last_status or 499  # the client left first (nginx's 499)
            raise
        finally:
            self.metrics.observe(route, status, started)

    def _dispatch(self, conn: Connection, raw: RawRequest) -> Coroutine[Any, Any, None] | None:
        self.requests += 1
        # An answer to HEAD must carry no body; ours do (errors): close after it so the client
        # cannot read the body as the next response.
        close = not raw.keep_alive or raw.method == "HEAD"
        try:
            path, _, query = raw.target.partition("?")
            method = raw.method
            if path in _CHAT_PATHS:
                if method != "POST":
                    raise HttpError(405, "use POST", type_="method_not_allowed")
                key = self._auth(raw)
                return self._chat(conn, raw, key, close)
            if path in _RESPONSES_PATHS:
                if method != "POST":
                    raise HttpError(405, "use POST", type_="method_not_allowed")
                key = self._auth(raw)
                return self._responses(conn, raw, key, close)
            if path in _EMBEDDINGS_PATHS:
                if method != "POST":
                    raise HttpError(405, "use POST", type_="method_not_allowed")
                key = self._auth(raw)
                return self._embeddings.serve(conn, raw, key, close)
            if path in MESSAGES_PATHS:  # Anthropic's Messages API (messages.py)
                return serve_messages(self, conn, raw, close)
            if method == "GET":
                return self._get(conn, raw, path, query, close)
            if method == "POST" and path == "/api/v1/ai/test":
                key = self._auth(raw)
                return self._ai_test(conn, raw, key, close)
            if method == "OPTIONS":
                self._send(conn, 204, b"", close, extra=[("Allow", "GET, POST, OPTIONS")])
                return None
            raise HttpError(404 if method in ("POST", "GET") else 405,
                            f"no route for {method} {path}", type_="not_found")
        except HttpError as e:
            self._send(conn, e.status, e.body(), close)
            return None

    # --- plumbing -------------------------------------------------------------------------------

    def _send(self, conn: Connection, status: int, body: bytes, close: bool,
              extra: list[tuple[str, str]] | None = None) -> None:
        headers = [_JSON, _SERVER]
        if extra:
            headers.extend(extra)
        conn.last_status = status
        conn.write(head_bytes(status, headers, length=len(body), close=close) + body)

    def _scrub(self, data: bytes) -> bytes:
        """Removes the upstream key(s) from bytes that came from upstream (error bodies, and
        answers whose choice carries the upstream's error), escaped or not."""
        return scrub_secrets(data, self._secrets)

    def _scrub_text(self, text: str) -> str:
        return self._scrub(text.encode()).decode(errors="replace")

    def _auth(self, raw: RawRequest) -> GatewayKey:
        auth = raw.headers.get("authorization") or ""
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token:
            token = raw.headers.get("x-api-key", "").strip()
        if not token:
            raise HttpError(401, "missing gateway key: send 'Authorization: Bearer <key>'",
                            type_="authentication_error", code="missing_key")
        rec = self.keys.verify(token)
        if rec is None:
            raise HttpError(401, "invalid or revoked gateway key", type_="authentication_error",
                            code="invalid_key")
        return rec

    def _budget_message(self, res: dict[str, Any], project: str, runs: int = 1) -> str:
        """The 402 message: the project's budget, spent, remaining, and this request's worst
        case, its ``runs`` completions together (refusals are rare: reading the budget here
        costs nothing on the normal path)."""
        if res["budget_error_type"] == "EmergencyCutoffError":
            return f"spending is stopped (emergency cutoff): {res['message']}"
        parts = [f"budget exceeded for project {project!r}"]
        try:
            b = self.tracker.budget_status(project=project)
        except Exception:  # noqa: BLE001 - a global budget refused: the engine's words say which
            b = None
        if b is not None:
            parts += [f"budget ${Decimal(b.limit).normalize():f}",
                      f"spent ${Decimal(b.spent).normalize():f}",
                      f"remaining ${Decimal(b.remaining).normalize():f}"]
        est = res["plan"].get("estimate")
        if est is not None:
            each = Decimal(est)
            parts.append(f"this request may cost up to ${(each * runs).normalize():f}" + (
                f" ({runs} completions at up to ${each.normalize():f} each)" if runs > 1 else ""))
        parts.append(res["message"])
        return "; ".join(parts)

    # --- model resolution -----------------------------------------------------------------------

    def resolve(self, body: dict[str, Any]) -> list[str] | str:
        """What the request's ``model`` field names: a route's models in order (the engine's
        exact order: it skips open circuits and exhausted rate limits, retries, then falls
        back), a single model id, or, for an alias, the strategy name the engine ranks with."""
        name: str = body["model"]
        route = self.settings.routes.get(name)
        if route is not None:
            return list(route) if self.settings.fallback_enabled else route[:1]
        if name == "orroute/auto":
            return self.settings.strategy
        return ALIASES.get(name) or [name]

    @staticmethod
    def _capabilities(body: dict[str, Any]) -> list[str]:
        """Capabilities an alias's candidates need for this body."""
        caps: list[str] = []
        if body.get("tools"):
            caps.append("tools")
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            caps.append("structured_outputs")
        return caps

    # --- chat -----------------------------------------------------------------------------------

    async def _answer_errors(self, conn: Connection, close: bool,
                             work: Coroutine[Any, Any, Any]) -> None:
        """Runs a completion route, answering the errors it may raise before it wrote anything."""
        try:
            await work
        except HttpError as e:
            self._send(conn, e.status, e.body(), close)
        except (InvalidArgumentError, ParseError) as e:  # the engine refused it before sending
            field = str(e).split(" ", 1)[0].strip("'\":")  # its messages start with the field
            param = field if field.replace("_", "").isalnum() else "body"
            self._send(conn, 400, HttpError(400, str(e), param=param).body(), close)
        except NoModelAvailableError as e:
            self._send(conn, 503, HttpError(503, str(e), type_="service_unavailable",
                                            code="no_model_available").body(), close)

    @staticmethod
    def _json_body(raw: RawRequest) -> Any:
        try:
            return loads(raw.body)
        except ValueError:
            raise _bad("body", "the request body is not valid JSON") from None

    async def _chat(self, conn: Connection, raw: RawRequest, key: GatewayKey, close: bool) -> None:
        async def work() -> None:
            body = validate_chat(self._json_body(raw), raw.body)
            n = body.get("n") or 1
            if n > 1:
                await self._chat_n(conn, raw, body, key, close, n)
            else:
                await self._run_chat(conn, raw, body, key, close, raw.body)

        await self._answer_errors(conn, close, work())

    async def _responses(self, conn: Connection, raw: RawRequest, key: GatewayKey,
                         close: bool) -> None:
        """``POST /v1/responses``: the Responses request as a chat completion (responses.py)."""
        async def work() -> None:
            request = self._json_body(raw)
            chat = to_chat(request)
            chat_raw = dumps(chat)
            validate_chat(chat, chat_raw)
            if chat.get("stream"):
                et = self._task(chat, raw, key, chat_raw)
                self.in_flight += 1
                try:
                    await self._relay_stream(conn, raw, et, key, close,
                                             ResponseEvents(request, chat["model"]),
                                             self._observe_call(chat, key))
                finally:
                    self.in_flight -= 1
                return
            reply = Collector()
            out = await self._run_chat(reply, raw, chat, key, False, chat_raw)  # type: ignore[arg-type]
            headers = out.headers() if out is not None else None
            if reply.status != 200:
                self._send(conn, reply.status, reply.body, close, headers)
                return
            self._send(conn, 200, dumps(from_chat(loads(reply.body), request)), close, headers)

        await self._answer_errors(conn, close, work())

    async def _chat_n(self, conn: Connection, raw: RawRequest, body: dict[str, Any],
                      key: GatewayKey, close: bool, n: int) -> None:
        """``n`` choices: n completions run concurrently, merged (choices.py), or streamed
        together (stream_n.py). Any failure is answered as that completion's error; what the
        others cost is in the ledger."""
        one = {k: v for k, v in body.items() if k != "n"}
        one_raw = dumps(one)
        # Before any of the n is sent the budgets must hold all of them, or none is sent (not
        # answered 402 after some were paid for and thrown away): the first run reserves for
        # all n, all or none, and each run settles its own share (cost/prepaid.h).
        prepaid = _core.Prepaid(n)
        if body.get("stream"):
            await relay_n(self, conn, raw, one, key, close, n, prepaid)
            return
        parts = [Collector() for _ in range(n)]
        # n choices ask for n answers: never n copies of one cached answer
        outs = await asyncio.gather(*(self._run_chat(c, raw, one, key, False, one_raw,  # type: ignore[arg-type]
                                                     use_cache=False, prepaid=prepaid)
                                      for c in parts))
        failed = next((i for i, c in enumerate(parts) if c.status != 200), None)
        if failed is not None:
            out = outs[failed]
            self._send(conn, parts[failed].status, parts[failed].body, close,
                       out.headers() if out is not None else None)
            return
        merged = merge_choices([loads(c.body) for c in parts])
        done = [o for o in outs if o is not None]
        headers = ChatOutcome(done[0].model, sum(o.attempts for o in done)).headers()
        self._send(conn, 200, dumps(merged), close, headers)

    def _task(self, body: dict[str, Any], raw: RawRequest, key: GatewayKey,
              raw_body: bytes, *, use_cache: bool = True, prepaid: Any = None) -> Any:
        """The engine task: the client's body as sent, the candidates in order, the key's
        project (drawing its share of ``prepaid``, see _chat_n). The engine keeps every field but
        ``model`` (set per attempt)."""
        if body["model"] == CASCADE_ALIAS:  # served by CascadeRoute, one choice at a time
            raise _bad("model", "orroute/cascade streams one choice of a chat completion (n = 1)")
        resolved = self.resolve(body)
        alias = isinstance(resolved, str)  # the engine's selector ranks, with its metrics
        et = _engine.engine_task(
            raw_body.decode(),  # valid UTF-8: it parsed as JSON
            task_type=task_type_header(raw.headers),
            stream=bool(body.get("stream")),
            fallbacks=None if alias else resolved,  # type: ignore[arg-type]
            strategy=resolved if alias else None,  # type: ignore[arg-type]
            capabilities=self._capabilities(body) if alias else None,
            project=key.project,
            tags=[("gateway_key", key.id)],
            # per-call opt-out of the response cache
            use_cache=use_cache and raw.headers.get("x-orroute-cache", "").strip().lower()
            not in ("0", "false", "no", "off"),
        )
        if prepaid is not None:
            et.prepaid = prepaid
        return et

    def _observe_call(self, body: dict[str, Any], key: GatewayKey) -> Any:
        """Starts the log line, callbacks and span of one chat call."""
        model = body.get("model")
        return self.observe.start(
            model=model if isinstance(model, str) else None, stream=bool(body.get("stream")),
            messages=body.get("messages"),
            params={k: v for k, v in body.items() if k not in ("model", "messages")},
            project=key.project)

    def _settled(self, res: dict[str, Any], observed: Any = None) -> None:
        """Budget thresholds this call crossed fire through the tracker (callbacks, webhook);
        the call's observation ends with the engine's result."""
        if res.get("alerts"):
            self.tracker._dispatch(res["alerts"])
            self.observe.budget_alerts(res["alerts"])
        if observed is not None:
            observe_result(observed, res)

    def _failure(self, res: dict[str, Any], project: str,
                 runs: int = 1) -> tuple[int, bytes, list[tuple[str, str]]]:
        """Status, error body and headers for a run (one of ``runs`` completions reserved
        together) that failed before anything was relayed: the engine's result goes through the
        one result → exception table (``orroute._engine``), and the exception is presented as
        HTTP here."""
        err = _engine.result_error(res)
        if isinstance(err, UnpricedModelError):
            return 400, HttpError(400, res["message"], param="model",
                                  code="unpriced_model").body(), []
        if res["budget_refused"]:
            return 402, HttpError(402, self._budget_message(res, project, runs),
                                  type_="insufficient_quota", code="budget_exceeded").body(), []
        if isinstance(err, NoModelAvailableError):
            return 503, HttpError(503, f"no model available: {res['message']}",
                                  type_="service_unavailable", code="no_model_available").body(), []
        if not isinstance(err, APIError):  # cancelled by the engine itself
            err = APIError(res["message"] or "request failed",
                           status_code=res["http_status"] or None)
        return self.upstream_failure(err)

    def upstream_failure(self, err: APIError) -> tuple[int, bytes, list[tuple[str, str]]]:
        """An upstream failure as the gateway answers it: unreachable 502, too slow 504, the
        gateway's own upstream key rejected 502 (never the client's fault), else the upstream's
        status and message (keys scrubbed), with Retry-After when it asked for one."""
        if isinstance(err, APITimeoutError):
            return 504, HttpError(504, "the upstream did not answer in time",
                                  type_="upstream_error", code="upstream_timeout").body(), []
        if isinstance(err, APIConnectionError):
            return 502, HttpError(502, self._scrub_text(err.message or "upstream unreachable"),
                                  type_="upstream_error", code="upstream_unreachable").body(), []
        if isinstance(err, (AuthenticationError, PermissionDeniedError)):
            # the server's upstream key, not the client's
            _log.error("upstream rejected the gateway's upstream key (%s)", err.status_code)
            return 502, HttpError(502, "the upstream rejected the gateway's credentials",
                                  type_="upstream_error", code="upstream_auth").body(), []
        status = err.status_code or 502
        if status < 400:
            status = 502
        body: dict[str, Any] = {"message": self._scrub_text(err.message or "upstream error"),
                                "type": "upstream_error", "code": status}
        if err.metadata:
            try:
                body["metadata"] = loads(self._scrub(dumps(err.metadata)))
            except ValueError:
                pass
        headers = []
        if isinstance(err, RateLimitError) and err.retry_after is not None:
            headers.append(("Retry-After", str(max(0, round(err.retry_after)))))
        return status, dumps({"error": body}), headers

    async def _run_chat(self, conn: Connection, raw: RawRequest, body: dict[str, Any],
                        key: GatewayKey, close: bool, raw_body: bytes, *,
                        use_cache: bool = True, prepaid: Any = None) -> ChatOutcome | None:
        if body["model"] == CASCADE_ALIAS:
            return await self._cascade.serve(conn, raw, body, key, close)
        et = self._task(body, raw, key, raw_body, use_cache=use_cache, prepaid=prepaid)
        observed = self._observe_call(body, key)
        self.in_flight += 1
        try:
            if et.stream:
                return await self._relay_stream(conn, raw, et, key, close, observed=observed,
                                                usage_chunk=wants_usage_chunk(body))
            pending = self.engine.submit(et)
            # the client left: the upstream call stops, the hold is released
            await _engine.wait(pending)
            res = pending.result()
            self._settled(res, observed)
            out = ChatOutcome(res["model"], _sent(res["attempts"]))
            extra = out.headers()
            if res["ok"]:
                # a 200 can carry upstream words too (a choice's error): scrubbed like errors
                self._send(conn, 200, self._scrub(pending.body()), close, extra)
                return out
            status, payload, headers = self._failure(res, key.project,
                                                     prepaid.runs if prepaid is not None else 1)
            self._send(conn, status, payload, close, extra + headers)
            return out if status != 402 else None
        finally:
            observed.__exit__(None, None, None)  # no-op once ended; else the client left
            self.in_flight -= 1

    async def _relay_stream(self, conn: Connection, raw: RawRequest, et: Any, key: GatewayKey,
                            close: bool, events: ResponseEvents | None = None,
                            observed: Any = None,
                            usage_chunk: bool = True) -> ChatOutcome | None:
        """Relays a stream as the engine hands it over: each chunk's JSON text framed as ``data:
        <text>`` (never re-encoded), then ``data: [DONE]``; or, with ``events``, each chunk as
        the Responses API's events. The engine's queue is bounded: when this client reads
        slowly, the upstream transfer is paused instead of buffered. ``usage_chunk`` False (the
        client did not ask with ``stream_options.include_usage``) leaves out the usage chunk the
        upstream sends anyway (the engine asks for it to settle the call), as openai does."""
        run = self.engine.stream(et, self.settings.stream_queue)
        bridge = _engine.bridge()
        finished = False
        self._streams.add(run)

        def take() -> bytes:
            if events is None:
                sse: bytes = run.take_sse()
                return sse if usage_chunk else without_usage_chunk(sse)
            return b"".join(events.chunk(loads(c)) for c in run.take())

        try:
            await bridge.wait(run)
            opening = events.start() if events is not None else b""  # numbered before chunks
            data = take()
            if not data and run.finished():  # failed (or empty) before anything came
                finished = True
                res = run.result()
                self._settled(res, observed)
                out = ChatOutcome(res["model"], _sent(res["attempts"]))
                extra = out.headers()
                if not res["ok"]:
                    status, payload, headers = self._failure(res, key.project)
                    self._send(conn, status, payload, close, extra + headers)
                    return out if status != 402 else None
            else:
                out = ChatOutcome(run.model(), run.attempts())
                extra = out.headers()
            chunked = raw.version != "HTTP/1.0"
            conn.last_status = 200
            conn.write(head_bytes(200, [*_SSE, _SERVER, *extra], chunked=chunked,
                                  close=close or not chunked))
            data = opening + data
            while True:
                if data:
                    conn.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
                    await conn.drain()  # a slow client: the queue fills, the upstream pauses
                if conn.closed:
                    return out
                if run.finished():
                    break
                await bridge.wait(run)
                data = take()
            finished = True
            res = run.result()
            self._settled(res, observed)
            tail = b""
            if events is not None:
                if res["ok"]:
                    tail = events.end()
                else:
                    tail = events.failed(loads(self._failure(res, key.project)[1])["error"])
            else:
                if not res["ok"]:  # broke after content was relayed: tell the client in-band
                    _, payload, _ = self._failure(res, key.project)
                    tail = b"data: " + payload + b"\n\n"
                tail += b"data: [DONE]\n\n"
            conn.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(tail), tail) if chunked else tail)
            if not chunked:
                conn.close()
            return out
        finally:
            self._streams.discard(run)
            self._paused_before += run.pauses()
            if observed is not None:
                observed.__exit__(None, None, None)  # no-op once ended; else the client left
            if not finished:
                run.cancel()  # client gone or handler cancelled: stop upstream, release the hold

    def stream_pauses(self) -> int:
        """Times a stream's upstream transfer was paused because its client read slowly."""
        return self._paused_before + sum(r.pauses() for r in self._streams)

    # --- GET routes -----------------------------------------------------------------------------

    def _get(self, conn: Connection, raw: RawRequest, path: str, query: str,
             close: bool) -> Coroutine[Any, Any, None] | None:
        if path in _MODELS_PATHS:
            self._auth(raw)
            self._send(conn, 200, self._v1_models(), close)
            return None
        for prefix in _MODEL_PREFIXES:
            if path.startswith(prefix):
                self._auth(raw)
                self._send(conn, 200, dumps(self._v1_model(unquote(path[len(prefix):]))), close)
                return None
        if path == "/metrics":
            conn.last_status = 200
            body = self.metrics.render()
            conn.write(head_bytes(200, [("Content-Type", METRICS_TYPE), _SERVER],
                                  length=len(body), close=close) + body)
            return None
        if path == "/openapi.json":
            if self._openapi is None:
                from .openapi import openapi_spec

                self._openapi = dumps(openapi_spec(self.settings))
            self._send(conn, 200, self._openapi, close)
            return None
        if path == "/api/v1/ai/health" or path == "/health":
            return self._health(conn, close)
        if path == "/api/v1/ai/models":
            self._auth(raw)
            self._send(conn, 200, self._ai_models(), close)
            return None
        if path.startswith("/api/v1/ai/models/"):
            self._auth(raw)
            model_id = unquote(path[len("/api/v1/ai/models/"):])
            self._send(conn, 200, dumps(self._ai_model(model_id)), close)
            return None
        if path == "/api/v1/ai/usage":
            key = self._auth(raw)
            return self._usage_route(conn, key, dict(parse_qsl(query)), close)
        if path == "/api/v1/ai/credits":
            key = self._auth(raw)
            return self._credits(conn, key, close)
        raise HttpError(404, f"no route for GET {path}", type_="not_found")

    def _v1_models(self) -> bytes:
        if self._models_v1 is None:
            created = int(self.started)
            data = [{"id": a, "object": "model", "created": created, "owned_by": "orroute"}
                    for a in ALIASES]
            data += [{"id": r, "object": "model", "created": created, "owned_by": "orroute-route"}
                     for r in self.settings.routes]
            for m in self.catalog:
                data.append({"id": m.id, "object": "model", "created": created,
                             "owned_by": m.id.partition("/")[0]})
            self._models_v1 = dumps({"object": "list", "data": data})
        return self._models_v1

    def _v1_model(self, model_id: str) -> dict[str, Any]:
        """One entry of ``/v1/models`` (OpenAI's model object): an alias, a route or a catalog
        model; 404 ``model_not_found`` otherwise."""
        created = int(self.started)
        if model_id in ALIASES:
            owner = "orroute"
        elif model_id in self.settings.routes:
            owner = "orroute-route"
        elif self.catalog.get(model_id) is not None:
            owner = model_id.partition("/")[0]
        else:
            raise HttpError(404, f"The model '{model_id[:200]}' does not exist",
                            type_="invalid_request_error", param="model",
                            code="model_not_found")
        return {"id": model_id, "object": "model", "created": created, "owned_by": owner}

    def _model_dict(self, m: Any) -> dict[str, Any]:
        p = m.pricing
        return {
            "id": m.id, "name": m.name, "context_length": m.context_length,
            "max_completion_tokens": m.max_completion_tokens, "modality": m.modality,
            "capabilities": list(m.capabilities),
            "pricing": {"prompt_per_mtok": _usd(p.prompt * 1_000_000),
                        "completion_per_mtok": _usd(p.completion * 1_000_000),
                        "dynamic": p.dynamic},
            "supported_parameters": list(m.supported_parameters),
        }

    def _ai_models(self) -> bytes:
        if self._models_ai is None:
            models = [self._model_dict(m) for m in self.catalog]
            self._models_ai = dumps({
                "models": models, "count": len(models),
                "aliases": {a: (self.settings.strategy if a == "orroute/auto" else s)
                            for a, s in ALIASES.items()},
                "routes": self.settings.routes,
            })
        return self._models_ai

    def _ai_model(self, model_id: str) -> dict[str, Any]:
        if model_id in self.settings.routes:
            return {"id": model_id, "route": self.settings.routes[model_id]}
        if model_id in ALIASES:
            return {"id": model_id, "alias": True, "strategy": ALIASES[model_id]}
        m = self.catalog.get(model_id)
        if m is None:
            raise HttpError(404, f"unknown model '{_core.client_text(model_id)}'", type_="not_found",
                            param="model_id", code="model_not_found")
        d = self._model_dict(m)
        spec = getattr(self.selector, "models", {}).get(model_id)
        if spec is not None:
            d["tier"] = spec.tier
            d["quality"] = spec.quality
            d["cost_per_1k"] = str(spec.cost_per_1k)
        try:
            d["example_cost_1k_in_500_out"] = str(self.catalog.cost(
                model_id, prompt_tokens=1000, completion_tokens=500))
        except Exception:  # noqa: BLE001, S110 - a dynamic price has no example
            pass
        return d

    async def _usage_route(self, conn: Connection, key: GatewayKey, query: dict[str, str],
                           close: bool) -> None:
        period = query.get("period", "total")
        if period not in ("hour", "day", "week", "month", "total"):
            error = _bad("period", "'period' must be one of hour, day, week, month, total")
            self._send(conn, error.status, error.body(), close)
            return
        # The ledger's reading (a project's 300,000 calls: ~2 s) off the event loop, which it
        # held up for every other client; any key may ask.
        usage = await asyncio.get_running_loop().run_in_executor(None, self._usage, key, period)
        usage["gateway"] = {"in_flight": self.in_flight, "requests_served": self.requests,
                            "open_connections": len(self.conns)}
        self._send(conn, 200, dumps(usage), close)

    def _usage(self, key: GatewayKey, period: str) -> dict[str, Any]:
        """The project's calls and budgets in the ledger (in a worker thread)."""
        t = self.tracker
        project = key.project
        rows = t.report(period, by="model", project=project)
        by_model = [{"model": r.key, "period": r.period, "requests": r.calls, "errors": r.errors,
                     "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                     "cost": str(r.cost), "mean_latency_s": r.mean_latency_s} for r in rows]
        total = sum((Decimal(r.cost) for r in rows), Decimal(0))
        budgets = []
        for b in t.budgets():
            if b.scope == f"project:{project}" or b.scope == "global":
                budgets.append({"scope": b.scope, "period": b.period, "limit": str(b.limit),
                                "spent": str(b.spent), "reserved": str(b.reserved),
                                "remaining": str(b.remaining), "policy": b.policy})
        return {
            "project": project, "key_id": key.id, "period": period,
            "requests": sum(r.calls for r in rows),
            "prompt_tokens": sum(r.prompt_tokens for r in rows),
            "completion_tokens": sum(r.completion_tokens for r in rows),
            "total_cost": str(total), "by_model": by_model, "budgets": budgets,
        }

    async def _upstream_json(self, path: str) -> tuple[int, Any]:
        """GET ``path`` on the upstream through the engine's own libcurl loop (one network stack).
        Status 0: unreachable."""
        return await self.engine.get_json(path)

    async def _check_upstream(self) -> dict[str, Any]:
        """The upstream part of /health: its answer to ``GET /key`` with the gateway's key."""
        t0 = time.perf_counter()
        status, _ = await self._upstream_json("/key")
        if not status:
            return {"reachable": False, "error": "unreachable"}
        return {"reachable": True, "status": status, "authenticated": status == 200,
                "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}

    async def _health(self, conn: Connection, close: bool) -> None:
        # /health needs no key: one check answers everyone's of a second (300 pipelined
        # /health were 300 upstream requests with the gateway's credentials)
        upstream = await self._health_check.get("", self._check_upstream)
        try:
            self.tracker.live_reservations()
            ledger = {"ok": True, "path": f"{self.settings.ledger_path()}"}  # no Redis password
        except Exception as e:  # noqa: BLE001
            ledger = {"ok": False, "error": type(e).__name__}
        router = self.manager.health()
        healthy = upstream.get("authenticated") and ledger["ok"] and router["overall"] != "down"
        # degraded (still 200) while any breaker, model or provider, is open or probing
        state = "healthy" if healthy and router["overall"] == "ok" else "degraded"
        body = {"status": state, "version": _VERSION,
                "pid": os.getpid(),  # which worker answered (`orroute serve --workers N`)
                "uptime_s": round(time.time() - self.started, 3), "upstream": upstream,
                "ledger": ledger, "router": router, "models": len(self.catalog),
                "in_flight": self.in_flight,
                "streams": {"open": len(self._streams), "pauses": self.stream_pauses()}}
        self._send(conn, 200 if healthy else 503, dumps(body), close)

    async def _credits(self, conn: Connection, key: GatewayKey, close: bool) -> None:
        status, data = await self._credits_check.get("", lambda: self._upstream_json("/credits"))
        if not status:
            self._send(conn, 502, HttpError(502, "the upstream cannot be reached",
                                            type_="upstream_error").body(), close)
            return
        d = data.get("data") if isinstance(data, dict) else None
        total = _amount(d.get("total_credits", 0)) if isinstance(d, dict) else None
        used = _amount(d.get("total_usage", 0)) if isinstance(d, dict) else None
        if status != 200 or total is None or used is None:
            self._send(conn, 502, HttpError(502, f"upstream /credits answered {status} without"
                                            " the credits as numbers",
                                            type_="upstream_error").body(), close)
            return
        project_budget = None
        for b in self.tracker.budgets():
            if b.scope == f"project:{key.project}":
                project_budget = {"period": b.period, "limit": str(b.limit),
                                  "spent": str(b.spent), "remaining": str(b.remaining)}
                break
        body = {"total_credits": str(total), "total_usage": str(used),
                "remaining": str(total - used), "project": key.project,
                "project_budget": project_budget}
        self._send(conn, 200, dumps(body), close)

    async def _ai_test(self, conn: Connection, raw: RawRequest, key: GatewayKey,
                       close: bool) -> None:
        try:
            try:
                req = loads(raw.body) if raw.body.strip() else {}
            except ValueError:
                raise _bad("body", "the request body is not valid JSON") from None
            if not isinstance(req, dict):
                raise _bad("body", "the request body must be a JSON object")
            message = req.get("message", "Say hello in one short sentence.")
            if not isinstance(message, str) or not message:
                raise _bad("message", "'message' must be a non-empty string")
            model = req.get("model", "orroute/auto")
            if not isinstance(model, str) or not model:
                raise _bad("model", "'model' must be a non-empty string")
            max_tokens = req.get("max_tokens", 64)
            if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
                raise _bad("max_tokens", "'max_tokens' must be a positive integer")
            body = {"model": model, "messages": [{"role": "user", "content": message}],
                    "max_tokens": max_tokens}
            collector = Collector()
            t0 = time.perf_counter()
            reply = await self._run_chat(collector, raw, body, key, False,  # type: ignore[arg-type]
                                         dumps(body))
            latency = time.perf_counter() - t0
            if reply is None or collector.status != 200:
                try:
                    err = loads(collector.body)
                except ValueError:
                    err = {"error": {"message": "upstream error"}}
                out = {"success": False, "status": collector.status,
                       "error": (err.get("error") or {}).get("message") if isinstance(err, dict)
                       else None,
                       "model": reply.model if reply else None}
                self._send(conn, 200, dumps(out), close)
                return
            data = obj(loads(collector.body))
            choice = first_choice(data)
            out = {"success": True, "model": data.get("model") or reply.model,
                   "requested": model, "content": obj(choice.get("message")).get("content"),
                   "finish_reason": choice.get("finish_reason"), "usage": data.get("usage"),
                   "latency_ms": round(latency * 1000, 2), "attempts": reply.attempts}
            self._send(conn, 200, dumps(out), close)
        except HttpError as e:
            self._send(conn, e.status, e.body(), close)
