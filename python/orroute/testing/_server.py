"""FakeOpenRouter: a loopback server speaking OpenRouter's wire format, with latency and faults."""

from __future__ import annotations

import asyncio
import itertools
import json
import marshal
import random
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._http_server import (
    Connection,
    HttpLimits,
    HttpServer,
    RawRequest,
    head_bytes,
    serve_in_thread,
)
from .._http_server import new_event_loop as _new_loop
from . import _replies as R
from ._embeddings import EmbeddingError, embed
from ._faults import Fault

__all__ = ["FakeOpenRouter", "Headers", "ModelProfile", "RecordedRequest", "serve_forever"]

_BASE = "/api/v1"
_JSON = ("Content-Type", "application/json")
_SERVER = ("Server", "orroute-fake")
_KEEPALIVE_COMMENT = b": OPENROUTER PROCESSING\n\n"
# /generation stats kept for the latest calls only: a long run (a benchmark, a soak test) must
# not grow the server without bound, nor its garbage collector's work with every call served.
# Each is kept as bytes (marshal of plain values), never as the call's objects: objects kept per
# call and freed 10,000 calls later balance the collector's count of new objects (one freed for
# each made), so no young collection ran while ~70,000 accumulated, and the one that finally did
# stalled every connection for 20-45 ms (session 20: a benchmark's p99 at concurrency 64).
_GENERATIONS_KEPT = 10_000
_PH_ID = "gen-##########-####################"  # same width as real generation ids
_PH_ID_B = _PH_ID.encode()
_PH_CREATED = 1_111_111_111
_PH_CREATED_B = b'"created":1111111111'
_HANG = object()
_RESET = object()
_CLOSE = object()
_ALNUM = string.ascii_letters + string.digits

Reply = str | Mapping[str, Any] | Callable[[dict[str, Any]], "str | Mapping[str, Any]"]


class _Secret(str):
    """A string that compares as itself but prints masked (for Authorization values)."""

    def __repr__(self) -> str:
        return repr(_mask(str.__str__(self)))

    def __str__(self) -> str:
        return _mask(str.__str__(self))

    def __format__(self, spec: str) -> str:
        return format(_mask(str.__str__(self)), spec)

    def reveal(self) -> str:
        """The real value."""
        return str.__str__(self)


def _mask(value: str) -> str:
    scheme, _, token = value.rpartition(" ")
    shown = token[:6] + "..." if len(token) > 12 else "***"
    return f"{scheme} {shown}" if scheme else shown


class Headers(dict[str, str]):
    """Request headers with lower-case keys; lookups are case-insensitive. The Authorization
    value compares equal to what was sent but is masked in ``repr``/``str``/formatting."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


@dataclass
class RecordedRequest:
    """A request the fake received.

    Attributes:
        method, path, query: ``path`` is the full path (``/api/v1/chat/completions``); ``endpoint``
            is the part after the base path (``/chat/completions``).
        headers: the request headers (Authorization kept but masked when printed).
        body, json: raw body and its parsed JSON (None if empty or not JSON).
        model: the model requested (``json["model"]``), served_model: the one that answered.
        stream: whether a stream was requested. time: ``time.time()`` on arrival.
        status: the HTTP status answered (None for hang/reset). fault: the fault applied, if any.
        generation_id: id of the completion when one was produced.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any
    time: float
    model: str | None = None
    served_model: str | None = None
    stream: bool = False
    status: int | None = None
    fault: Fault | None = None
    generation_id: str | None = None

    @property
    def endpoint(self) -> str:
        return self.path.removeprefix(_BASE)

    @property
    def api_key(self) -> _Secret | None:
        """The bearer token sent (masked when printed; ``.reveal()`` gives the value)."""
        auth = self.headers.get("authorization")
        value = auth.reveal() if isinstance(auth, _Secret) else str(auth or "")
        if not value.lower().startswith("bearer "):
            return None
        return _Secret(value[7:].strip())

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages") or []) if isinstance(self.json, dict) else []


@dataclass(frozen=True)
class ModelProfile:
    """Timing of one model's answers. ``latency``: seconds before the response starts;
    ``ttft``: further seconds before the first content chunk; ``tokens_per_second``: pace of the
    rest (None = all at once). ``provider``: the provider name reported (default from the author)."""

    latency: float = 0.0
    ttft: float = 0.0
    tokens_per_second: float | None = None
    provider: str | None = None


@dataclass
class _Reply:
    model: str
    provider: str
    gen_id: str
    created: int
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    prompt_cost: Decimal
    completion_cost: Decimal
    pieces: list[str] = field(default_factory=list)
    reasoning: str | None = None  # None: no reasoning; excluded reasoning is "" (billed, not shown)
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    usage_fault: Fault | None = None  # a Fault.lying_usage / no_usage in effect

    def usage(self, completion_tokens: int | None = None) -> dict[str, Any] | None:
        u = self._usage(completion_tokens)
        return u if self.usage_fault is None else self.usage_fault.patch_usage(u)

    def _usage(self, completion_tokens: int | None = None) -> dict[str, Any]:
        ct = self.completion_tokens if completion_tokens is None else completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": ct,
            "total_tokens": self.prompt_tokens + ct,
            "cost": float(self.cost),
            "is_byok": False,
            "prompt_tokens_details": {
                "cached_tokens": self.cached_tokens,
                "cache_write_tokens": 0,
                "audio_tokens": 0,
                "video_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "image_tokens": 0,
                "audio_tokens": 0,
            },
            "cost_details": {
                "upstream_inference_cost": None,
                "upstream_inference_prompt_cost": float(self.prompt_cost),
                "upstream_inference_completions_cost": float(self.completion_cost),
            },
        }


class _HttpError(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_encode_str: Callable[[str], str] = getattr(json.encoder, "c_encode_basestring", None) or (
    json.encoder.py_encode_basestring
)


def _dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


try:  # optional speed-up; same JSON meaning
    import orjson as _orjson

    def _dumps(obj: Any) -> bytes:
        try:
            return _orjson.dumps(obj)
        except _orjson.JSONEncodeError:  # nested past orjson's 254 levels (a caller's `user`)
            return _ENCODER.encode(obj).encode()

except ImportError:  # pragma: no cover - depends on the environment
    pass


def _content_delta(text: str, role: bool) -> bytes:
    lead = b'{"role":"assistant","content":' if role else b'{"content":'
    return lead + _encode_str(text).encode() + b"}"


class FakeOpenRouter:
    """A loopback HTTP server that speaks OpenRouter's API, for tests and benchmarks.

    It runs its own event loop in a background thread, so sync and async code can use it alike.
    Replies are deterministic from the request; usage and ``cost`` come from the catalog's prices.

    Args:
        models: the model table: None for orroute's bundled catalog snapshot, or a list of model
            ids (known ids keep their bundled entry, unknown ones get a synthetic entry priced
            $1/M prompt and $2/M completion tokens) and/or ``/models`` entry dicts.
        latency, ttft, tokens_per_second: default timing of every model (see ``ModelProfile``).
        seed: folded into every reply's seed; same seed + same request = same reply.
        api_key: None accepts any or no key; a key (or several) makes every endpoint but
            ``/models`` answer 401 to requests without one of them.
        credits: account credits in USD; completions answer 402 once their cost has used them up.
        generation_delay: seconds after a completion during which ``/generation`` answers 404.
        keepalive_interval: seconds between ``: OPENROUTER PROCESSING`` comments while a stream
            waits for its first token.
        cache_min_tokens: implicit prompt caching: a prompt that extends an earlier prompt of at
            least this many tokens (same model, model with a cache-read price) reports those
            tokens as ``cached_tokens`` and is priced accordingly. None turns caching off.
        coalesce: paced stream chunks due within this many seconds of each other go out in one
            write (early, never late): bounds timer wake-ups per stream so thousands of paced
            streams stay cheap. 0 = one write per chunk.
        host, port: where to listen (port 0 = a free port).
        record: keep every request in ``requests`` (turn off for long benchmarks).
        use_uvloop: None = use uvloop when installed.
        http_limits: header/body sizes and timeouts of its HTTP server (an
            ``orroute.gateway.HttpLimits``; None: its defaults, without a connection cap).

    >>> with FakeOpenRouter() as fake:
    ...     fake.base_url.startswith("http://127.0.0.1:")
    True
    """

    _models: dict[str, dict[str, Any]]
    _models_body: bytes | None
    _reply_cache: dict[tuple[str, bytes], tuple[Any, ...]]
    _stream_cache: dict[tuple[Any, ...], list[tuple[float, Any]]]
    _accounting: R.Accounting

    def __init__(
        self,
        models: Iterable[str | Mapping[str, Any]] | None = None,
        *,
        latency: float = 0.0,
        ttft: float = 0.0,
        tokens_per_second: float | None = None,
        seed: int = 0,
        api_key: str | Sequence[str] | None = None,
        credits: float | Decimal | str = 1_000_000,
        generation_delay: float = 0.0,
        keepalive_interval: float = 1.0,
        cache_min_tokens: int | None = 1024,
        coalesce: float = 0.01,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
        use_uvloop: bool | None = None,
        http_limits: HttpLimits | None = None,
    ) -> None:
        self.host = host
        self._http_limits = http_limits
        self._port = port
        self.seed = seed
        self.generation_delay = generation_delay
        self.keepalive_interval = keepalive_interval
        self.cache_min_tokens = cache_min_tokens
        self.coalesce = coalesce
        self.record = record
        self._use_uvloop = use_uvloop
        self._default_profile = ModelProfile(latency, ttft, tokens_per_second)
        if isinstance(api_key, str):
            api_key = [api_key]
        self._keys = frozenset(api_key) if api_key is not None else None
        self._initial_credits = Decimal(str(credits))
        self._init_models = list(models) if models is not None else None
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HttpServer | None = None
        self._conns: set[Connection] = set()
        self._open_streams = 0
        self._reset_state()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeOpenRouter:
        """Starts listening (idempotent). Returns self."""
        if self._thread is not None:
            return self
        loop = _new_loop(self._use_uvloop)

        async def listen() -> None:
            # a test server holds as many connections as a test opens (bench/fake_server.py
            # holds 5,000 streams): no cap of its own unless asked
            limits = self._http_limits or HttpLimits(max_connections=1 << 20)
            self._server = HttpServer(self, limits)
            await self._server.start(self.host, self._port)
            self._port = self._server.port

        self._loop = loop
        try:
            self._thread = serve_in_thread(loop, listen, name="FakeOpenRouter")
        except BaseException:
            self._loop = None
            raise
        return self

    def stop(self) -> None:
        """Closes every connection and stops the server thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self._conns):
                conn.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for _ in range(100):  # let the transports finish closing
                if not self._conns:
                    break
                await asyncio.sleep(0.001)
            if self._server is not None:
                await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
            self._loop = None
            self._server = None

    close = stop

    def __enter__(self) -> FakeOpenRouter:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenRouter:  # noqa: PYI034
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def __repr__(self) -> str:
        state = f"listening on {self.base_url}" if self._thread else "stopped"
        return f"<FakeOpenRouter {state}, {len(self._requests)} requests>"

    # --- addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no path)."""
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The API base URL to give a client: ``http://127.0.0.1:PORT/api/v1``."""
        return f"{self.url}{_BASE}"

    # --- configuration ----------------------------------------------------------------------------

    def set_model_profile(
        self,
        model: str,
        *,
        latency: float | None = None,
        ttft: float | None = None,
        tokens_per_second: float | None = None,
        provider: str | None = None,
    ) -> None:
        """Sets the timing of one model's answers (unset fields keep their current value).
        ``model="*"`` changes the default of every model."""
        with self._lock:
            base = self._default_profile if model == "*" else self._profile(model)
            given = {
                "latency": latency,
                "ttft": ttft,
                "tokens_per_second": tokens_per_second,
                "provider": provider,
            }
            changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            new = replace(base, **changes)
            if model == "*":
                self._default_profile = new
            else:
                self._profiles[model] = new

    def add_model(
        self,
        model_id: str,
        *,
        prompt_price: str | Decimal | float = R.DEFAULT_PROMPT_PRICE,
        completion_price: str | Decimal | float = R.DEFAULT_COMPLETION_PRICE,
        request_price: str | Decimal | float | None = None,
        context_length: int | None = 128_000,
        max_completion_tokens: int | None = 16_384,
        **fields: Any,
    ) -> dict[str, Any]:
        """Adds (or replaces) a model in the table; prices are USD per token. Returns the entry."""
        entry = R.synth_model(
            model_id,
            prompt_price,
            completion_price,
            context_length=context_length,
            max_completion_tokens=max_completion_tokens,
            request_price=request_price,
        )
        entry.update(fields)
        with self._lock:
            self._models[model_id] = entry
            self._models_body = None
            self._accounting.models_changed()
            self._reply_cache = {}
            self._stream_cache = {}
        return entry

    def fail(self, target: str, fault: Fault | None, *, times: int | None = None) -> None:
        """Makes every request for ``target`` fail with ``fault`` (None clears it), or only the
        next ``times`` requests. ``target`` is a model id, ``"*"`` (every model), or an endpoint
        path such as ``"/credits"``.

        >>> fake = FakeOpenRouter(); fake.fail("openai/gpt-4o", Fault.rate_limit(retry_after=2))
        """
        with self._lock:
            if times is not None:
                self._scripts.setdefault(target, deque()).extend([fault] * times)
            elif fault is None:
                self._always.pop(target, None)
            else:
                self._always[target] = fault

    def script(self, target: str, sequence: Iterable[Fault | None]) -> None:
        """Queues one outcome per coming request for ``target``: a Fault, or None for a normal
        answer. When the script is used up, ``fail``'s setting (or normal answers) applies again.

        >>> fake = FakeOpenRouter(); fake.script("m/a", [Fault.server_error(502), None])
        """
        with self._lock:
            self._scripts.setdefault(target, deque()).extend(sequence)

    def clear_faults(self, target: str | None = None) -> None:
        """Removes the faults and scripts of ``target`` (of every target when None)."""
        with self._lock:
            if target is None:
                self._always.clear()
                self._scripts.clear()
            else:
                self._always.pop(target, None)
                self._scripts.pop(target, None)

    def set_reply(self, target: str, reply: Reply | None) -> None:
        """Fixes what ``target`` (a model id or ``"*"``) answers: a string, a dict with
        ``content`` and/or ``tool_calls`` (OpenAI shape, ``arguments`` as str or dict), or a
        callable taking the request body and returning either. None restores generated replies."""
        with self._lock:
            if reply is None:
                self._replies.pop(target, None)
            else:
                self._replies[target] = reply
            self._reply_cache = {}
            self._stream_cache = {}

    def reset(self) -> None:
        """Forgets requests, faults, scripts, replies, profiles, added models, generations and
        spending: the fake is as it was constructed (open connections are kept)."""
        with self._lock:
            self._reset_state()

    # --- observation ------------------------------------------------------------------------------

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since the start: how well a client reuses its connections."""
        return self._server.accepted if self._server is not None else 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The chat completion requests that asked for ``model`` or were served by it."""
        with self._lock:
            return [r for r in self._requests if model in (r.model, r.served_model)]

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def request_count(self) -> int:
        """Requests received so far (counted even when ``record`` is off)."""
        return self._request_count

    @property
    def open_connections(self) -> int:
        """Client connections currently open."""
        return len(self._conns)

    @property
    def open_streams(self) -> int:
        """Streaming responses in progress (headers sent, not finished)."""
        return self._open_streams

    @property
    def total_usage(self) -> Decimal:
        """USD spent so far on this fake (sum of the ``usage.cost`` it reported)."""
        return self._usage

    @property
    def model_ids(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Polls ``predicate`` until true or ``timeout``; returns its last value. Useful because
        closes are seen by the server a moment after the client makes them:
        ``fake.wait_until(lambda: fake.open_streams == 0)``."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    # --- state ------------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._models = {}
        bundled = {m["id"]: m for m in R.bundled_models()}
        if self._init_models is None:
            self._models = dict(bundled)
        else:
            for m in self._init_models:
                if isinstance(m, str):
                    self._models[m] = dict(bundled.get(m) or R.synth_model(m))
                else:
                    self._models[str(m["id"])] = {**R.synth_model(str(m["id"])), **dict(m)}
        self._models_body = None
        self._reply_cache = {}
        self._stream_cache = {}
        self._accounting = R.Accounting(self._models, bundled=self._init_models is None)
        self._profiles: dict[str, ModelProfile] = {}
        self._always: dict[str, Fault] = {}
        self._scripts: dict[str, deque[Fault | None]] = {}
        self._replies: dict[str, Reply] = {}
        self._requests: list[RecordedRequest] = []
        self._request_count = 0
        self._generations: dict[str, bytes] = {}  # id -> marshal of (ready at, stats fields)
        self._prompt_cache: dict[bytes, int] = {}
        self._usage = Decimal(0)
        self._credits = self._initial_credits
        self._ids = random.Random(self.seed)
        self._counter = itertools.count(1)

    def _profile(self, model: str) -> ModelProfile:
        return self._profiles.get(model, self._default_profile)

    def _take_fault(self, target: str, wildcard: bool = True) -> Fault | None:
        with self._lock:
            for key in (target, "*") if wildcard else (target,):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
                fault = self._always.get(key)
                if fault is not None:
                    return fault
            return None

    def _resolve(self, model: str) -> str | None:
        if model in self._models:
            return model
        if model == "openrouter/auto":
            for pick in ("openai/gpt-4o-mini", "openai/gpt-4o"):
                if pick in self._models:
                    return pick
            return next(iter(self._models), None)
        base, sep, _variant = model.partition(":")
        if sep and base in self._models:
            return base
        return None

    def _new_gen_id(self) -> str:
        return f"gen-{int(time.time())}-{self._ids.getrandbits(80):020x}"

    # --- connection callbacks (event loop thread) -------------------------------------------------

    def _connection_opened(self, conn: Connection) -> None:
        self._conns.add(conn)

    def _connection_closed(self, conn: Connection) -> None:
        self._conns.discard(conn)

    def _handle(self, conn: Connection, raw: RawRequest) -> Any:
        self._request_count += 1
        split = urlsplit(raw.target)
        path = split.path
        headers = Headers(raw.headers)
        if "authorization" in headers:
            headers["authorization"] = _Secret(headers["authorization"])
        body: Any = None
        if raw.body:
            try:
                body = json.loads(raw.body)
            except (ValueError, RecursionError):  # nested past the parser's reach: not JSON to us
                body = None
        rec = RecordedRequest(
            method=raw.method,
            path=path,
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=raw.body,
            json=body,
            time=time.time(),
        )
        if self.record:
            with self._lock:
                self._requests.append(rec)
        chunked = raw.version != "HTTP/1.0"
        close = not raw.keep_alive
        try:
            return self._route(conn, raw, rec, chunked, close)
        except _HttpError as e:
            fault = e.fault
        except Exception as e:  # noqa: BLE001 - a bug in the fake must not hang the client
            fault = Fault.status_error(500, f"FakeOpenRouter internal error: {e!r}")
        rec.status = fault.status
        return self._play(conn, self._error_events(fault, close, rec), rec, stream=False)

    # --- routing ----------------------------------------------------------------------------------

    def _route(
        self, conn: Connection, raw: RawRequest, rec: RecordedRequest, chunked: bool, close: bool
    ) -> Any:
        endpoint = rec.endpoint
        if not rec.path.startswith(_BASE):
            raise _HttpError(Fault.status_error(404, f"Not found: {rec.path}"))
        is_models = endpoint.startswith(("/models", "/model/"))
        if self._keys is not None and not is_models:
            self._check_key(rec)
        if endpoint == "/chat/completions":
            if raw.method != "POST":
                raise _HttpError(Fault.status_error(405, "Method not allowed"))
            return self._chat(conn, rec, chunked, close)
        if endpoint == "/embeddings":
            if raw.method != "POST":
                raise _HttpError(Fault.status_error(405, "Method not allowed"))
            return self._embeddings(conn, rec, close)
        if raw.method != "GET":
            raise _HttpError(Fault.status_error(405, "Method not allowed"))
        fault = self._take_fault(endpoint, wildcard=False)
        rec.fault = fault
        if fault is not None and fault.is_status:
            raise _HttpError(fault)
        if fault is not None and fault.kind == "raw":  # e.g. a /credits answer of any shape
            rec.status = fault.status
            return self._play(conn, self._raw_events(fault), rec, stream=False)
        if endpoint == "/models" or endpoint == "/models/user":
            body = self._models_json(rec.query)
        elif endpoint == "/models/count":
            body = _dumps({"data": {"count": len(self._models)}})
        elif endpoint.startswith("/model/") or (
            endpoint.startswith("/models/") and endpoint.endswith("/endpoints")
        ):
            body = self._model_json(endpoint)
        elif endpoint == "/credits":
            body = _dumps(
                {"data": {"total_credits": float(self._credits), "total_usage": float(self._usage)}}
            )
        elif endpoint in ("/key", "/auth/key"):
            body = self._key_json(rec)
        elif endpoint == "/generation":
            body = self._generation_json(rec.query.get("id", ""))
        else:
            raise _HttpError(Fault.status_error(404, f"Not found: {rec.path}"))
        if fault is not None and fault.kind == "malformed_json":
            body = body[: max(1, len(body) // 2)]
        rec.status = 200
        head = head_bytes(200, [_JSON, _SERVER], length=len(body), close=close)
        return self._play(conn, self._apply_fault([(0.0, head + body)], fault), rec, stream=False)

    def _check_key(self, rec: RecordedRequest) -> None:
        auth = rec.headers.get("authorization")
        if not auth:
            raise _HttpError(Fault.status_error(401, "Missing Authentication header"))
        key = rec.api_key
        if key is None or key.reveal() not in (self._keys or ()):
            raise _HttpError(Fault.status_error(401, "User not found."))

    def _models_json(self, query: Mapping[str, str]) -> bytes:
        wanted = [p for p in query.get("supported_parameters", "").split(",") if p]
        if not wanted:
            with self._lock:
                if self._models_body is None:
                    data = list(self._models.values())
                    self._models_body = _dumps(
                        {"data": data, "total_count": len(data), "links": {"next": None}}
                    )
                return self._models_body
        data = [
            m
            for m in self._models.values()
            if all(p in (m.get("supported_parameters") or ()) for p in wanted)
        ]
        return _dumps({"data": data, "total_count": len(data), "links": {"next": None}})

    def _model_json(self, endpoint: str) -> bytes:
        if endpoint.startswith("/model/"):
            model_id = endpoint[len("/model/") :]
        else:
            model_id = endpoint[len("/models/") : -len("/endpoints")]
        resolved = self._resolve(model_id)
        if resolved is None:
            raise _HttpError(Fault.status_error(404, f"Model {model_id} not found"))
        m = self._models[resolved]
        if endpoint.startswith("/model/"):
            return _dumps({"data": m})
        endpoint_entry = {
            "name": f"{R.provider_for(resolved)} | {resolved}",
            "model_id": resolved,
            "model_name": m.get("name"),
            "provider_name": self._profile(resolved).provider or R.provider_for(resolved),
            "tag": resolved.split("/", 1)[0],
            "context_length": m.get("context_length"),
            "max_completion_tokens": (m.get("top_provider") or {}).get("max_completion_tokens"),
            "max_prompt_tokens": None,
            "pricing": m.get("pricing"),
            "quantization": None,
            "status": 0,
            "supported_parameters": m.get("supported_parameters"),
            "supports_implicit_caching": False,
            "uptime_last_30m": 100.0,
        }
        data = {k: m.get(k) for k in ("id", "name", "created", "description", "architecture")}
        data["endpoints"] = [endpoint_entry]
        return _dumps({"data": data})

    def _key_json(self, rec: RecordedRequest) -> bytes:
        key = rec.api_key
        raw = key.reveal() if key is not None else ""
        label = f"{raw[:10]}...{raw[-3:]}" if len(raw) > 16 else "sk-or-v1-fake"
        usage = float(self._usage)
        limit = float(self._credits)
        return _dumps(
            {
                "data": {
                    "label": label,
                    "limit": limit,
                    "limit_remaining": max(0.0, limit - usage),
                    "limit_reset": None,
                    "include_byok_in_limit": False,
                    "usage": usage,
                    "usage_daily": usage,
                    "usage_weekly": usage,
                    "usage_monthly": usage,
                    "byok_usage": 0,
                    "byok_usage_daily": 0,
                    "byok_usage_weekly": 0,
                    "byok_usage_monthly": 0,
                    "is_free_tier": False,
                    "is_management_key": False,
                    "is_provisioning_key": False,
                    "expires_at": None,
                    "creator_user_id": "user_fake",
                    "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated"},
                }
            }
        )

    def _generation_json(self, gen_id: str) -> bytes:
        with self._lock:
            entry = self._generations.get(gen_id)
        kept = marshal.loads(entry) if entry is not None else None
        if kept is None or time.monotonic() < kept[0]:
            raise _HttpError(Fault.status_error(404, f"Generation {gen_id} not found"))
        return _dumps({"data": _generation_stats(*kept[1:])})

    # --- embeddings -------------------------------------------------------------------------------

    def _embeddings(self, conn: Connection, rec: RecordedRequest, close: bool) -> Any:
        body = rec.json
        model = body.get("model") if isinstance(body, dict) else None
        rec.model = model if isinstance(model, str) else None
        served = self._resolve(rec.model) if rec.model else None
        if served is None:
            raise _HttpError(Fault.bad_request(f"{rec.model} is not a valid model ID"))
        fault = self._take_fault(served)
        rec.fault = fault
        if fault is not None and fault.is_status:
            raise _HttpError(fault)
        if fault is not None and fault.kind == "raw":
            rec.status = fault.status
            return self._play(conn, self._raw_events(fault), rec, stream=False)
        acct = self._accounting
        try:
            reply, cost = embed(body, served, self.seed, acct.text_tokens,
                                lambda m, t: acct.cost(m, t, 0)[0])
        except EmbeddingError as e:
            raise _HttpError(e.fault) from None
        with self._lock:
            self._usage += cost
        rec.served_model = served
        rec.status = 200
        data = _dumps(reply)
        head = head_bytes(200, [_JSON, _SERVER], length=len(data), close=close)
        return self._play(conn, self._apply_fault([(0.0, head + data)], fault), rec, stream=False)

    # --- chat completions -------------------------------------------------------------------------

    def _chat(self, conn: Connection, rec: RecordedRequest, chunked: bool, close: bool) -> Any:
        body = rec.json
        if not isinstance(body, dict):
            raise _HttpError(Fault.bad_request("Request body must be a JSON object."))
        rec.stream = bool(body.get("stream"))
        model = body.get("model")
        rec.model = model if isinstance(model, str) else None
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HttpError(Fault.bad_request("'messages' must be a non-empty array."))
        fallbacks = body.get("models") or []
        if not isinstance(fallbacks, list) or not all(isinstance(m, str) for m in fallbacks):
            raise _HttpError(Fault.bad_request("'models' must be an array of model ids."))
        if len(fallbacks) > 3:
            raise _HttpError(Fault.bad_request("'models' array must have 3 items or fewer."))
        candidates = [rec.model] if rec.model else []
        candidates += [m for m in fallbacks if m not in candidates]
        if not candidates:
            raise _HttpError(Fault.bad_request("No model specified."))
        if self._usage >= self._credits:
            raise _HttpError(Fault.payment_required("Insufficient credits. Add more credits."))

        error: Fault | None = None
        for cand in candidates:
            served = self._resolve(cand)
            if served is None:
                error = Fault.bad_request(f"{cand} is not a valid model ID")
                continue
            fault = self._take_fault(cand)
            if fault is None and served != cand:
                fault = self._take_fault(served)
            if fault is not None and fault.is_status:
                if fault.status == 403 and fault.metadata.get("model_slug", 1) is None:
                    fault = replace(fault, metadata={**fault.metadata, "model_slug": served})
                error = fault
                continue
            break
        else:
            assert error is not None
            rec.fault = error
            raise _HttpError(error)

        rec.served_model = served
        rec.fault = fault
        if fault is not None and fault.kind == "raw":
            rec.status = fault.status
            return self._play(conn, self._raw_events(fault), rec, stream=rec.stream)
        reply = self._make_reply(served, body, rec.body)
        if fault is not None and fault.is_reply_fault:
            reply = self._faulty_reply(reply, fault)
        rec.generation_id = reply.gen_id
        profile = self._profile(served)
        if profile.provider:
            reply.provider = profile.provider
        if (
            rec.stream
            and fault is None
            and not callable(self._replies.get(served, self._replies.get("*")))
        ):
            events = self._cached_stream_events(reply, rec.body, profile, chunked, close)
        elif rec.stream:
            events = self._stream_events(reply, profile, fault, chunked, close)
        else:
            events = self._plain_events(reply, profile, fault, close)
        if fault is None or fault.is_reply_fault or fault.kind in (
            "delay", "slow_drip", "malformed_json"
        ):
            self._book(reply, rec, events)
        elif fault.kind == "stream_error":
            partial = "".join(reply.pieces[: fault.after_tokens or 0])
            self._book(reply, rec, events, partial)
        rec.status = 200 if fault is None or fault.kind not in ("hang", "reset") else None
        return self._play(conn, events, rec, stream=rec.stream)

    def _cached_stream_events(
        self, reply: _Reply, raw: bytes, profile: ModelProfile, chunked: bool, close: bool
    ) -> list[tuple[float, Any]]:
        """The stream of a fault-free reply, from a template with placeholder id and created
        (both fixed-width, so the chunk framing stays valid)."""
        key = (
            reply.model,
            raw,
            profile,
            chunked,
            close,
            self.keepalive_interval,
            self.coalesce,
            reply.cached_tokens,
        )
        template = self._stream_cache.get(key)
        if template is None:
            placeholder = replace(reply, gen_id=_PH_ID, created=_PH_CREATED)
            template = self._stream_events(placeholder, profile, None, chunked, close)
            if len(self._stream_cache) >= 1024:
                self._stream_cache.clear()
            self._stream_cache[key] = template
        gen_id = reply.gen_id.encode()
        created = b'"created":%d' % reply.created
        if len(gen_id) != len(_PH_ID):
            return self._stream_events(reply, profile, None, chunked, close)
        return [
            (d, b.replace(_PH_ID_B, gen_id).replace(_PH_CREATED_B, created)) for d, b in template
        ]

    def _faulty_reply(self, reply: _Reply, fault: Fault) -> _Reply:
        """The reply as a usage fault shapes it (see Fault.lying_usage / ignore_max_tokens)."""
        if fault.kind == "ignore_max_tokens":
            acct = self._accounting
            reply = fault.overrun(
                reply,
                lambda text: acct.text_tokens(reply.model, text),
                lambda n: acct.cost(reply.model, reply.prompt_tokens, n),
            )
        return replace(reply, usage_fault=fault)

    def _make_reply(self, model: str, body: dict[str, Any], raw: bytes) -> _Reply:
        """A fresh reply (new generation id); its content comes from a cache keyed by the raw
        request, since it is a pure function of it (unless a reply callable is set)."""
        fixed = self._replies.get(model, self._replies.get("*"))
        key = (model, raw)
        core = None if callable(fixed) else self._reply_cache.get(key)
        if core is None:
            core = self._reply_core(model, body, fixed)
            if not callable(fixed):
                if len(self._reply_cache) >= 4096:
                    self._reply_cache.clear()
                self._reply_cache[key] = core
        with self._lock:
            gen_id = self._new_gen_id()
        reply = _Reply(model, R.provider_for(model), gen_id, int(time.time()), *core)
        if self.cache_min_tokens is not None:
            self._apply_prompt_cache(reply, body["messages"])
        return reply

    def _apply_prompt_cache(self, reply: _Reply, messages: list[Any]) -> None:
        """Implicit prompt caching: a prompt that starts with an earlier prompt of the same model
        (a continued conversation) reads that earlier prompt's tokens from the cache, if the
        model has a cache-read price and the earlier prompt had at least cache_min_tokens."""
        pricing = (self._models.get(reply.model) or {}).get("pricing") or {}
        if not pricing.get("input_cache_read"):
            return
        digests = R.prefix_digests(reply.model, messages)
        with self._lock:
            cached = 0
            for digest in reversed(digests[:-1]):
                hit = self._prompt_cache.get(digest)
                if hit is not None:
                    cached = hit
                    break
            if reply.prompt_tokens >= (self.cache_min_tokens or 0):
                if len(self._prompt_cache) >= 65536:
                    self._prompt_cache.clear()
                self._prompt_cache[digests[-1]] = reply.prompt_tokens
        if cached >= (self.cache_min_tokens or 0) and 0 < cached <= reply.prompt_tokens:
            reply.cached_tokens = cached
            reply.cost, reply.prompt_cost, reply.completion_cost = self._accounting.cost(
                reply.model,
                reply.prompt_tokens,
                reply.completion_tokens,
                reply.reasoning_tokens,
                cached,
            )

    def _reply_core(self, model: str, body: dict[str, Any], fixed: Reply | None) -> tuple[Any, ...]:
        acct = self._accounting
        messages = body["messages"]
        tools = body.get("tools")
        try:
            prompt_tokens = acct.prompt_tokens(model, messages, tools)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise _HttpError(Fault.bad_request(f"Invalid messages: {e}")) from None
        entry = self._models.get(model) or {}
        context = entry.get("context_length")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if context and prompt_tokens + (limit or 0) > context:
            raise _HttpError(
                Fault.bad_request(
                    f"This endpoint's maximum context length is {context} tokens. However, you"
                    f" requested about {prompt_tokens + (limit or 0)} tokens"
                    f" ({prompt_tokens} of text input, {limit or 0} in the output).",
                    error_type="context_length_exceeded",
                )
            )
        rng = R.rng_for(self.seed, model, body)
        content: str | None
        tool_calls: list[dict[str, Any]] | None = None
        finish = "stop"
        reasoning: str | None = None
        reasoning_tokens = 0
        wants = R.wants_reasoning(body, entry)
        if wants is not None:
            effort, budget, exclude = wants
            reasoning = R.make_reasoning(rng, messages, effort)
            cap = min(x for x in (budget, limit, 1 << 30) if isinstance(x, int) and x > 0)
            if acct.text_tokens(model, reasoning) > cap:
                reasoning = R.truncate_to_tokens(
                    reasoning, cap, lambda t: acct.text_tokens(model, t)
                )
            reasoning_tokens = acct.text_tokens(model, reasoning)
            if isinstance(limit, int):
                limit = max(0, limit - reasoning_tokens)
                if limit == 0:
                    limit = -1  # the reasoning used the whole output budget
            if exclude:
                reasoning = ""
        if fixed is not None:
            value = fixed(body) if callable(fixed) else fixed
            if isinstance(value, str):
                content = value
            else:
                content = value.get("content")
                tool_calls = _normalize_tool_calls(value.get("tool_calls"), rng)
        elif (tool := R.wants_tool_call(body)) is not None:
            fn = tool["function"]
            args = R.value_for_schema(fn.get("parameters") or {"type": "object"}, rng)
            tool_calls = _normalize_tool_calls(
                [{"function": {"name": fn.get("name", "tool"), "arguments": args}}], rng
            )
            content = None
        elif (fmt := body.get("response_format") or {}).get("type") in (
            "json_object",
            "json_schema",
        ):
            schema = (fmt.get("json_schema") or {}).get("schema")
            value = (
                R.value_for_schema(schema, rng)
                if schema
                else {"answer": R.make_text(rng, messages)}
            )
            content = json.dumps(value)
        else:
            content = R.make_text(rng, messages)
        if tool_calls:
            finish = "tool_calls"
            out_text = "".join(
                c["function"]["name"] + c["function"]["arguments"] for c in tool_calls
            )
        else:
            content = content or ""
            stops = body.get("stop")
            for s in [stops] if isinstance(stops, str) else stops or ():
                cut = content.find(s) if s else -1
                if cut >= 0:
                    content = content[:cut]
            if limit == -1:
                content, finish = "", "length"
            elif isinstance(limit, int) and limit > 0 and acct.text_tokens(model, content) > limit:
                content = R.truncate_to_tokens(content, limit, lambda t: acct.text_tokens(model, t))
                finish = "length"
            out_text = content
        completion_tokens = acct.text_tokens(model, out_text) + reasoning_tokens
        cost, pcost, ccost = acct.cost(model, prompt_tokens, completion_tokens, reasoning_tokens)
        pieces = R.split_pieces(content) if content else []
        return (
            content,
            tool_calls,
            finish,
            prompt_tokens,
            completion_tokens,
            cost,
            pcost,
            ccost,
            pieces,
            reasoning,
            reasoning_tokens,
        )

    def _book(
        self,
        reply: _Reply,
        rec: RecordedRequest,
        events: list[tuple[float, Any]],
        partial: str | None = None,
    ) -> None:
        """Charges the call and stores its /generation stats."""
        if partial is None:
            completion_tokens, cost = reply.completion_tokens, reply.cost
        else:
            completion_tokens = self._accounting.text_tokens(reply.model, partial)
            cost = self._accounting.cost(reply.model, reply.prompt_tokens, completion_tokens)[0]
        duration = sum(d for d, _ in events)
        body = rec.json if isinstance(rec.json, dict) else {}
        fields = (
            time.monotonic() + duration + self.generation_delay,  # ready at
            reply.gen_id,
            reply.created,
            reply.model,
            reply.provider,
            "error" if partial is not None else reply.finish_reason,
            reply.prompt_tokens,
            completion_tokens,
            reply.reasoning_tokens,
            reply.cached_tokens,
            float(cost),
            rec.stream,
            _plain(rec.headers.get("http-referer")),
            _plain(rec.headers.get("user-agent")),
            # the caller's two JSON values as their JSON text: marshal refuses nesting past 2,000
            # levels, which json.loads parses under a raised recursion limit
            json.dumps(body.get("user")).encode(),
            json.dumps(body.get("session_id")).encode(),
            duration,
        )
        kept = marshal.dumps(fields)
        with self._lock:
            self._usage += cost
            if len(self._generations) >= _GENERATIONS_KEPT:  # the oldest first (insertion order)
                del self._generations[next(iter(self._generations))]
            self._generations[reply.gen_id] = kept

    # --- response bytes ---------------------------------------------------------------------------

    def _plain_events(
        self, reply: _Reply, profile: ModelProfile, fault: Fault | None, close: bool
    ) -> list[tuple[float, Any]]:
        wait = profile.latency + profile.ttft
        if profile.tokens_per_second:
            wait += reply.completion_tokens / profile.tokens_per_second
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "reasoning": reply.reasoning or None,
        }
        if reply.reasoning:
            message["reasoning_details"] = [_reasoning_detail(reply.reasoning)]
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        choice: dict[str, Any] = {
            "index": 0,
            "logprobs": None,
            "finish_reason": reply.finish_reason,
            "native_finish_reason": reply.finish_reason,
            "message": message,
        }
        usage = reply.usage()
        if fault is not None and fault.kind == "stream_error":
            partial = "".join(reply.pieces[: fault.after_tokens or 0])
            message["content"] = partial
            message.pop("tool_calls", None)
            choice["finish_reason"] = choice["native_finish_reason"] = "error"
            choice["error"] = {
                "code": fault.status,
                "message": fault.message,
                "metadata": dict(fault.metadata),
            }
            usage = reply.usage(self._accounting.text_tokens(reply.model, partial))
        body = _dumps(
            {
                "id": reply.gen_id,
                "provider": reply.provider,
                "model": reply.model,
                "object": "chat.completion",
                "created": reply.created,
                "system_fingerprint": None,
                "choices": [choice],
                "usage": usage,
            }
        )
        if fault is not None and fault.kind == "malformed_json":
            body = body[: max(1, len(body) // 2)]
        head = head_bytes(
            200,
            [_JSON, _SERVER, ("X-Generation-Id", reply.gen_id)],
            length=len(body),
            close=close,
        )
        return self._apply_fault([(wait, head + body)], fault)

    def _stream_events(
        self,
        reply: _Reply,
        profile: ModelProfile,
        fault: Fault | None,
        chunked: bool,
        close: bool,
    ) -> list[tuple[float, Any]]:
        frame = _chunk_frame if chunked else (lambda b: b)
        prefix = (
            f'data: {{"id":"{reply.gen_id}","provider":{json.dumps(reply.provider)},'
            f'"model":{json.dumps(reply.model)},"object":"chat.completion.chunk",'
            f'"created":{reply.created},"choices":[{{"index":0,"delta":'
        ).encode()
        open_suffix = b',"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n'

        def chunk(delta: dict[str, Any] | bytes) -> bytes:
            return prefix + (delta if isinstance(delta, bytes) else _dumps(delta)) + open_suffix

        head = head_bytes(
            200,
            [
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                _SERVER,
                ("X-Generation-Id", reply.gen_id),
            ],
            chunked=chunked,
            close=close or not chunked,
        )
        events: list[tuple[float, Any]] = [(profile.latency, head + frame(_KEEPALIVE_COMMENT))]
        ttft = profile.ttft
        while self.keepalive_interval > 0 and ttft > self.keepalive_interval:
            events.append((self.keepalive_interval, frame(_KEEPALIVE_COMMENT)))
            ttft -= self.keepalive_interval
        # content pieces: the first carries the role
        deltas: list[dict[str, Any] | bytes] = []
        if reply.tool_calls:
            for i, call in enumerate(reply.tool_calls):
                start = {
                    "index": i,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                deltas.append({"tool_calls": [start]})
                for frag in R.split_pieces(call["function"]["arguments"]) or [""]:
                    deltas.append({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})
            first = deltas[0]
            assert isinstance(first, dict)
            if not reply.reasoning:
                deltas[0] = {"role": "assistant", "content": None, **first}
        else:
            role = not reply.reasoning
            deltas = [
                _content_delta(p, role and i == 0) for i, p in enumerate(reply.pieces or [""])
            ]
        if reply.reasoning:
            thinking: list[dict[str, Any] | bytes] = [
                {"reasoning": p, "reasoning_details": [_reasoning_detail(p)]}
                for p in R.split_pieces(reply.reasoning)
            ]
            first = thinking[0]
            assert isinstance(first, dict)
            thinking[0] = {"role": "assistant", "content": "", **first}
            deltas = thinking + deltas
        per = 0.0
        if profile.tokens_per_second:
            per = reply.completion_tokens / profile.tokens_per_second / max(1, len(deltas))
        after = fault.after_tokens if fault is not None else None
        stop_at = len(deltas)
        mid = fault is not None and (
            fault.kind == "stream_error" or (fault.kind in ("hang", "reset") and after is not None)
        )
        if mid:
            stop_at = min(len(deltas), after or 0)
        for i, delta in enumerate(deltas[:stop_at]):
            if fault is not None and fault.kind == "malformed_json" and i == (after or 0):
                events.append((0.0, frame(prefix + b'{"content": "broken\n\n')))
            events.append((ttft if i == 0 else per, frame(chunk(delta))))
        if fault is not None and fault.kind == "malformed_json" and (after or 0) >= stop_at:
            events.append((0.0, frame(prefix + b'{"content": "broken\n\n')))
        if mid and fault is not None and fault.kind in ("hang", "reset"):
            events.append(
                (ttft if stop_at == 0 else 0.0, _HANG if fault.kind == "hang" else _RESET)
            )
            return self._apply_fault(events, replace(fault, kind="none"))
        if fault is not None and fault.kind == "stream_error":
            error_event = {
                "id": reply.gen_id,
                "object": "chat.completion.chunk",
                "created": reply.created,
                "model": reply.model,
                "provider": reply.provider,
                "error": {
                    "code": fault.status,
                    "message": fault.message,
                    "metadata": dict(fault.metadata),
                },
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": ""},
                        "finish_reason": "error",
                        "native_finish_reason": "error",
                    }
                ],
            }
            tail = frame(b"data: " + _dumps(error_event) + b"\n\n")
            events.append(
                (ttft if stop_at == 0 else per, tail + (b"0\r\n\r\n" if chunked else b""))
            )
            return self._apply_fault(events, replace(fault, kind="none"))
        finish = {
            "id": reply.gen_id,
            "provider": reply.provider,
            "model": reply.model,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": reply.finish_reason,
                    "native_finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
        }
        usage_chunk = {**finish, "choices": [], "usage": reply.usage()}
        tail = (
            frame(b"data: " + _dumps(finish) + b"\n\n")
            + frame(b"data: " + _dumps(usage_chunk) + b"\n\n")
            + frame(b"data: [DONE]\n\n")
            + (b"0\r\n\r\n" if chunked else b"")
        )
        events.append((0.0, tail))
        if self.coalesce > 0 and per > 0:
            events = _coalesce(events, self.coalesce)
        return self._apply_fault(events, fault)

    def _error_events(self, fault: Fault, close: bool, rec: RecordedRequest) -> list[Any]:
        meta = dict(fault.metadata)
        headers = dict(fault.headers)
        if fault.status == 429:
            if "X-RateLimit-Reset" not in headers:
                reset = time.time() + (fault.seconds or 1)
                headers["X-RateLimit-Reset"] = str(int(reset * 1000))
            meta["headers"] = dict(headers)
        err: dict[str, Any] = {"code": fault.status, "message": fault.message}
        if meta:
            err["metadata"] = meta
        body = _dumps({"error": err, "user_id": "user_fake"})
        head = head_bytes(
            fault.status,
            [_JSON, _SERVER, *headers.items()],
            length=len(body),
            close=close,
        )
        return [(0.0, head + body)]

    def _raw_events(self, fault: Fault) -> list[tuple[float, Any]]:
        """A ``Fault.raw`` reply: its head, each body piece as one write, then the close."""
        pieces = fault.raw_body or (b"",)
        events: list[tuple[float, Any]] = [(0.0, fault.raw_head + pieces[0])]
        events += [(fault.interval, p) for p in pieces[1:]]
        events.append((fault.interval, _CLOSE))
        return events

    def _apply_fault(
        self, events: list[tuple[float, Any]], fault: Fault | None
    ) -> list[tuple[float, Any]]:
        if fault is None or fault.is_reply_fault or fault.kind in ("none", "status", "stream_error"):
            return events
        if fault.kind == "delay":
            first = events[0]
            return [(first[0] + fault.seconds, first[1]), *events[1:]]
        if fault.kind == "hang":
            return [(events[0][0], _HANG)]
        if fault.kind == "reset":
            return [(events[0][0], _RESET)]
        if fault.kind == "slow_drip":
            data = b"".join(d for _, d in events if isinstance(d, bytes))
            n = fault.chunk_size
            return [(events[0][0], data[:n])] + [
                (fault.interval, data[i : i + n]) for i in range(n, len(data), n)
            ]
        return events

    def _play(
        self, conn: Connection, events: list[tuple[float, Any]], rec: RecordedRequest, stream: bool
    ) -> Any:
        """Writes the events now if none waits, else returns the coroutine that plays them."""
        if all(d <= 0 and isinstance(b, bytes) for d, b in events):
            conn.write(b"".join(b for _, b in events))
            return None
        return self._play_async(conn, events, stream)

    async def _play_async(
        self, conn: Connection, events: list[tuple[float, Any]], stream: bool
    ) -> None:
        counted = False
        try:
            for delay, data in events:
                if delay > 0:
                    await asyncio.sleep(delay)
                if conn.closed:
                    return
                if data is _HANG:
                    await conn.wait_closed()
                    return
                if data is _RESET:
                    conn.reset()
                    return
                if data is _CLOSE:
                    conn.close()
                    return
                conn.write(data)
                if stream and not counted:
                    counted = True
                    self._open_streams += 1
                await conn.drain()
        finally:
            if counted:
                self._open_streams -= 1


def _coalesce(events: list[tuple[float, Any]], window: float) -> list[tuple[float, Any]]:
    """Merges writes due within ``window`` seconds of a group's first write into that write
    (sent early, never late), so fast streams cost one timer wake-up per window, not per token.
    SSE events stay separate on the wire; the first chunk's timing is exact."""
    out: list[tuple[float, Any]] = []
    carry = span = 0.0
    for delay, data in events:
        if (
            out
            and isinstance(data, bytes)
            and isinstance(out[-1][1], bytes)
            and span + delay < window
        ):
            out[-1] = (out[-1][0], out[-1][1] + data)
            span += delay
            carry += delay
        else:
            out.append((delay + carry, data))
            carry = span = 0.0
    return out


def _reasoning_detail(text: str) -> dict[str, Any]:
    return {"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}


def _plain(value: str | None) -> str | None:
    """A header's value as a plain ``str`` (marshal takes no subclass), unmasked."""
    return None if value is None else str.__str__(value)


def _generation_stats(
    gen_id: str,
    created: int,
    model: str,
    provider: str,
    finish: str,
    prompt_tokens: int,
    completion_tokens: int,
    reasoning_tokens: int,
    cached_tokens: int,
    cost: float,
    streamed: bool,
    referer: str | None,
    user_agent: str | None,
    user_json: bytes,
    session_id_json: bytes,
    duration: float,
) -> dict[str, Any]:
    """A call's /generation stats from the plain values `_book` kept."""
    return {
        "id": gen_id,
        "upstream_id": f"chatcmpl-{gen_id[-12:]}",
        "request_id": f"req-{gen_id[-12:]}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + ".000Z",
        "model": model,
        "provider_name": provider,
        "api_type": "completions",
        "app_id": None,
        "origin": referer or "",
        "http_referer": referer,
        "user_agent": user_agent,
        "external_user": json.loads(user_json),
        "streamed": streamed,
        "cancelled": False,
        "is_byok": False,
        "total_cost": cost,
        "usage": cost,
        "upstream_inference_cost": None,
        "cache_discount": None,
        "latency": round(duration * 1000),
        "generation_time": round(duration * 1000),
        "moderation_latency": None,
        "tokens_prompt": prompt_tokens,
        "tokens_completion": completion_tokens,
        "native_tokens_prompt": prompt_tokens,
        "native_tokens_completion": completion_tokens,
        "native_tokens_reasoning": reasoning_tokens,
        "native_tokens_cached": cached_tokens,
        "native_tokens_completion_images": 0,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_input_audio_prompt": None,
        "num_search_results": None,
        "finish_reason": finish,
        "native_finish_reason": finish,
        "session_id": json.loads(session_id_json),
    }


def _chunk_frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _normalize_tool_calls(calls: Any, rng: random.Random) -> list[dict[str, Any]] | None:
    if not calls:
        return None
    out = []
    for call in calls:
        fn = dict(call.get("function") or {})
        args = fn.get("arguments", "{}")
        out.append(
            {
                "id": call.get("id") or "call_" + "".join(rng.choices(_ALNUM, k=24)),
                "type": "function",
                "function": {
                    "name": fn.get("name", "tool"),
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def serve_forever(port: int = 8080, host: str = "127.0.0.1", **options: Any) -> None:
    """Runs a FakeOpenRouter in the foreground until interrupted (what ``orroute sim`` wraps).
    ``options`` are FakeOpenRouter's keyword arguments."""
    fake = FakeOpenRouter(port=port, host=host, **options)
    with fake:
        print(f"FakeOpenRouter listening on {fake.base_url}  (Ctrl+C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
