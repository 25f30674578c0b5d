"""The one door to the C++ engine and network client.

Only this module touches ``_core.Engine``, ``_core.NetClient`` and the asyncio bridge: the client,
the manager, the cascade, the gateway and the command line go through it. It holds

- settings → engine config (:func:`engine_config`) and → network client (:func:`new_client`);
- the asyncio bridge (:func:`bridge`, :func:`wait`): one eventfd per event loop, signalled by the
  transport thread, which never takes the GIL;
- the ONE table from a failure (a network call's error, an engine result) to an exception
  (:func:`api_error`, :func:`result_error`); the gateway presents the same exceptions as HTTP;
- typed plan and result records (:class:`Plan`, :class:`RunResult`) and :class:`Engine`, the
  handle the rest of the package holds instead of ``_core.Engine``.

Catalog, tokenizer, selector and verify bindings are used where they are: they decide nothing
about sending.
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from . import _core
from . import _exceptions as _exc

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Engine",
    "LoopBridge",
    "Plan",
    "RunResult",
    "api_error",
    "bridge",
    "chat_reply",
    "chat_request_problem",
    "engine_config",
    "engine_of",
    "engine_task",
    "new_client",
    "planner",
    "result_error",
    "task_request",
    "wait",
    "wait_any",
]

# ------------------------------------------------------------------------------------------------
# Typed records of what the engine returns (dicts at run time: no copy on the hot path).


class Plan(TypedDict):
    """What the router would do for a task (``Engine.plan``); the reservation uses the same."""

    candidates: list[str]
    reasons: list[str]
    complexity: dict[str, Any]
    task_type: str
    prompt_tokens: int
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
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    cost_source: str
    cost_problem: str
    cut_at_reservation: bool
    alerts: list[Any]
    budget_refused: bool
    budget_error_type: str
    budget_error_kind: Any
    nothing_sent: bool
    attempts: list[dict[str, Any]]
    api_error: ApiErrorInfo | None
    plan: Plan


# ------------------------------------------------------------------------------------------------
# The asyncio bridge


class LoopBridge:
    """One eventfd per event loop: the transport thread signals a token, the loop's reader
    resolves the future of the call that has news."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.notifier = _core.Notifier()
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.next_token = 1
        loop.add_reader(self.notifier.fd, self._drain)

    def _drain(self) -> None:
        for token in self.notifier.drain():
            fut = self.waiters.pop(token, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def wait(self, armable: Any) -> None:
        """Until ``armable`` (a call, stream, pending result or streamed run) has news."""
        token = self.next_token
        self.next_token += 1
        fut = self.loop.create_future()
        self.waiters[token] = fut
        armable.arm(self.notifier, token)
        try:
            await fut
        finally:
            self.waiters.pop(token, None)


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBridge] = (
    weakref.WeakKeyDictionary()
)


def bridge() -> LoopBridge:
    """The running loop's bridge (made on first use)."""
    # asyncio is imported here, on the first async call, not by `import orroute`: a sync client is
    # usable without it (importing asyncio is most of the time to a usable client).
    from asyncio import get_running_loop

    loop = get_running_loop()
    b = _bridges.get(loop)
    if b is None:
        b = _bridges[loop] = LoopBridge(loop)
    return b


async def wait_any(armables: Sequence[Any]) -> None:
    """Until one of ``armables`` has news: one future armed on every one (no task per run)."""
    b = bridge()
    fut = b.loop.create_future()
    tokens = []
    for armable in armables:
        token = b.next_token
        b.next_token += 1
        b.waiters[token] = fut
        tokens.append(token)
        armable.arm(b.notifier, token)
    try:
        await fut
    finally:
        for token in tokens:
            b.waiters.pop(token, None)


class BlockingWaiter:
    """:class:`LoopBridge` for a thread without an event loop (sync streaming): an eventfd of
    its own, waited on with ``select`` (the GIL released)."""

    def __init__(self) -> None:
        self.notifier = _core.Notifier()

    def wait(self, armable: Any) -> None:
        """Until ``armable`` has news (at once when a chunk or the end is already waiting)."""
        import select

        armable.arm(self.notifier, 1)
        select.select([self.notifier.fd], [], [])
        self.notifier.drain()


async def wait(armable: Any) -> None:
    """Waits for ``armable`` to finish; cancelling the await cancels it (the upstream transfer
    stops, a reservation is released)."""
    if getattr(armable, "done", False) is True:
        return
    try:
        await bridge().wait(armable)
    except BaseException:
        armable.cancel()
        raise


# ------------------------------------------------------------------------------------------------
# The one failure -> exception table


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
        text = body if isinstance(body, str) else repr(body)
        snippet = text[:200] + ("..." if len(text) > 200 else "")
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


# ------------------------------------------------------------------------------------------------
# Settings -> network client and engine config


def user_agent() -> str:
    from . import __version__

    return f"orroute/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]}"


def new_client(
    *,
    base_url: str,
    api_keys: Sequence[str],
    app_name: str,
    app_url: str,
    timeouts: Any,
    stream_timeouts: Any,
    max_retries: int,
) -> Any:
    """A network client (one libcurl event loop thread): retries with backoff (honouring
    Retry-After up to a minute), key rotation, app attribution headers."""
    return _core.NetClient(
        base_url=base_url,
        api_keys=list(api_keys),
        app_name=app_name,
        app_url=app_url,
        user_agent=user_agent(),
        timeouts=timeouts,
        stream_timeouts=stream_timeouts,
        max_retries=max_retries,
        backoff_base=0.5,
        backoff_max=8.0,
        max_retry_after=60.0,
    )


def stream_of(call: Any) -> Any:
    """The chunk reader of a started streamed chat call."""
    return _core.ChatStream(call)


_BREAKER_FIELDS = {
    "failures": "breaker_failures",
    "failure_rate": "breaker_failure_rate",
    "min_calls": "breaker_min_calls",
    "window": "breaker_window",
    "cooldown": "breaker_cooldown",
    "successes_to_close": "breaker_successes_to_close",
}


def engine_config(
    *,
    base_url: str,
    api_keys: Sequence[str],
    app_name: str | None,
    app_url: str | None,
    strategy: str,
    timeout: float,
    max_retries: int,
    retry_base_delay: float,
    max_retry_wait: float,
    max_admission_wait: float,
    thresholds: Sequence[float],
    fallbacks: Sequence[str],
    preferred_model: str | None,
    server_side_fallbacks: int,
    default_max_tokens: int,
    max_candidates: int,
    refresh_catalog: bool,
    unpriced_model_price: tuple[Decimal, Decimal] | None,
    cost_check_multiple: int,
    router_state: str | None,
    breaker: Mapping[str, Any] | None,
    limits: Mapping[str, Mapping[str, Any]] | None,
) -> Any:
    """The engine's configuration from the manager's (already resolved) settings."""
    cfg = _core.EngineConfig()
    cfg.base_url = base_url.rstrip("/")
    cfg.api_keys = [k for k in api_keys if k]
    if app_name:
        cfg.app_name = app_name
    if app_url:
        cfg.app_url = app_url
    cfg.strategy = strategy
    cfg.timeout = float(timeout)
    cfg.max_retries = int(max_retries)
    cfg.retry_base_delay = float(retry_base_delay)
    cfg.max_server_wait = float(max_retry_wait)
    cfg.max_admission_wait = float(max_admission_wait)
    if len(thresholds) != 3:
        raise _exc.InvalidArgumentError("thresholds must be three numbers (low, medium, high)")
    low, mid, high = (float(t) for t in thresholds)
    cfg.thresholds = (low, mid, high)
    cfg.fallbacks = list(fallbacks or [])
    cfg.preferred_model = preferred_model or ""
    cfg.server_side_fallbacks = int(server_side_fallbacks)
    cfg.default_max_tokens = int(default_max_tokens)
    cfg.max_candidates = int(max_candidates)
    cfg.refresh_catalog = bool(refresh_catalog)
    cfg.unpriced_model_price = unpriced_model_price
    cfg.cost_check_multiple = int(cost_check_multiple)
    if router_state:
        if not _core.redis_available():
            raise _exc.InvalidArgumentError(
                "router_state needs the Redis backend, and this orroute was built without hiredis"
            )
        cfg.router_state = str(router_state)
    for name, value in (breaker or {}).items():
        attr = _BREAKER_FIELDS.get(name)
        if attr is None:
            raise _exc.InvalidArgumentError(f"unknown breaker setting {name!r}")
        setattr(cfg, attr, value)
    for scope, spec in (limits or {}).items():
        cfg.set_limit(limit_scope(scope), **limit_args(scope, spec))
    return cfg


def limit_scope(scope: str) -> str:
    """``"key"``, ``"model:<id>"`` (a bare model id gets the prefix) or another scope as is."""
    if scope == "key" or ":" in scope.split("/")[0]:
        return scope
    return f"model:{scope}"


_LIMIT_NAMES = {
    "limit_requests": "requests",
    "requests": "requests",
    "limit_input": "input_tokens",
    "input_tokens": "input_tokens",
    "limit_output": "output_tokens",
    "output_tokens": "output_tokens",
    "window": "window",
}


def limit_args(scope: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A rate limit's fields (the plan's ``limit_requests`` ... or the engine's names)."""
    out: dict[str, Any] = {}
    for k, v in spec.items():
        if k not in _LIMIT_NAMES:
            raise _exc.InvalidArgumentError(f"unknown rate limit field {k!r} for {scope!r}")
        out[_LIMIT_NAMES[k]] = float(v) if k == "window" else int(v)
    return out


# ------------------------------------------------------------------------------------------------
# Tasks and the engine handle


def engine_task(
    request_json: str,
    *,
    task_type: str | None = None,
    task_id: str = "",
    stream: bool = False,
    fallbacks: Sequence[str] | None = None,
    strategy: str | None = None,
    capabilities: Sequence[str] | None = None,
    max_cost: Decimal | None = None,
    min_quality: float | None = None,
    project: str | None = None,
    conversation: str | None = None,
    tags: Sequence[tuple[str, str]] | None = None,
    use_cache: bool = True,
) -> Any:
    """An engine task: the request body (JSON text, kept as sent but ``model``, set per attempt)
    and how to route it (``use_cache=False``: not answered from the response cache)."""
    et = _core.EngineTask()
    et.request_json = request_json
    if task_type:
        et.task_type = task_type
    if task_id:
        et.task_id = task_id
    et.stream = stream
    if fallbacks:
        et.fallbacks = list(fallbacks)
    if strategy is not None:
        et.strategy = strategy
    if capabilities:
        et.capabilities = list(capabilities)
    if max_cost is not None:
        et.max_cost = max_cost
    if min_quality is not None:
        et.min_quality = float(min_quality)
    if project:
        et.project = project
    if conversation:
        et.conversation = conversation
    if tags:
        et.tags = list(tags)
    if not use_cache:
        et.use_cache = False
    return et


def task_request(task: Any, *, stream: bool = False, model: str | None = None,
                 pin: bool = False, project: str | None = None) -> Any:
    """The engine task of an :class:`orroute.Task`: its messages and output bound as the request
    body, ``model`` first (``pin``: that model only, no fallback), its budget, quality floor,
    project (else ``project``), conversation and tags."""
    from .task import Task

    task = Task.coerce(task)
    if not task.messages:
        raise _exc.InvalidArgumentError("task has no messages")
    body: dict[str, Any] = {**task.params, "messages": list(task.messages)}
    if task.max_tokens is not None:
        body["max_tokens"] = task.max_tokens
    if model:
        body["model"] = model
    return engine_task(
        json.dumps(body, ensure_ascii=False),
        task_type=task.type,
        task_id=task.id or "",
        stream=stream,
        fallbacks=[model] if pin and model else None,
        max_cost=Decimal(task.budget) if task.budget is not None else None,
        min_quality=task.quality,
        project=task.project or project,
        conversation=task.conversation,
        tags=sorted((str(k), str(v)) for k, v in task.tags.items()) if task.tags else None,
        use_cache=task.cache,
    )


def planner(catalog: Any, strategy: str = "balanced") -> Engine:
    """An engine that only plans (no key, no ledger, the given catalog as is): what
    ``CostTracker.estimate_cost`` and ``simulate`` ask when no manager's engine is at hand. It
    plans, counts and prices exactly as a manager's engine with the same catalog and strategy
    (the estimate is the amount that engine reserves)."""
    from .selector import bundled_priors_path

    cfg = _core.EngineConfig()
    cfg.refresh_catalog = False
    cfg.strategy = strategy
    return Engine(cfg, catalog, None, bundled_priors_path().read_text(encoding="utf-8"))


def engine_of(manager: Any) -> Engine:
    """The engine an :class:`orroute.AIModelManager` routes with (the gateway relays on it)."""
    door: Engine = manager._door
    return door


class Engine:
    """The router's engine (``_core.Engine``): plan, run (blocking, awaited or streamed), health,
    metrics, budgets, limits, feedback. Held by :class:`orroute.AIModelManager`; the gateway and
    the cascade reach it through the manager's ``_door``."""

    __slots__ = ("_core", "catalog", "net")

    def __init__(self, config: Any, catalog: Any, ledger_path: str | None, priors: str) -> None:
        self._core = _core.Engine(config, catalog, ledger_path, priors)
        self.catalog = self._core.catalog  # the core catalog the engine prices with
        self.net = self._core.net_client  # its libcurl loop, for plain GETs (health, credits)

    def plan(self, task: Any) -> Plan:
        return self._core.plan(task)  # type: ignore[return-value]

    def run(self, task: Any) -> RunResult:
        """Runs ``task`` to the end (GIL released while waiting)."""
        return self._core.run(task)  # type: ignore[return-value]

    def submit(self, task: Any) -> Any:
        """Starts ``task``; the returned pending result has ``result()`` and ``body()`` (the
        reply's bytes as received) once awaited with :func:`wait`."""
        return self._core.submit_async(task)

    async def run_async(self, task: Any) -> RunResult:
        """Runs ``task`` on the network thread; cancelling the await cancels it."""
        pending = self._core.submit_async(task)
        await wait(pending)
        return pending.result()  # type: ignore[return-value]

    def stream(self, task: Any, capacity: int) -> Any:
        """Starts a streamed run: ``take()`` / ``take_sse()`` chunks (at most ``capacity`` wait;
        beyond that the upstream transfer pauses), ``finished()``, ``result()``, ``cancel()``."""
        return self._core.submit_stream(task, capacity)

    async def get_json(self, path: str, *, timeouts: Any = (5.0, None, None, 10.0)
                       ) -> tuple[int, Any]:
        """GET ``path`` on the engine's endpoint through its own libcurl loop: (status, JSON), or
        (0, None) when unreachable."""
        call = self.net.start("GET", path, max_retries=0, timeouts=timeouts)
        await wait(call)
        if call.ok:
            return call.status(), call.body_json()
        return int(call.error().get("status") or 0), None

    def health(self) -> dict[str, Any]:
        return self._core.health()

    def metrics(self) -> list[dict[str, Any]]:
        return self._core.metrics()

    def set_response_cache(self, cache: Any) -> None:
        """Answers repeated requests from ``cache`` (an :class:`orroute.cache.ResponseCache`),
        consulted before anything is reserved (see docs/observability.md)."""
        self._core.set_response_cache(cache._core, cache.allow_sampling)

    def record_feedback(self, model: str, task_type: str, score: float, source: str,
                        result_id: str) -> None:
        self._core.record_feedback(model, task_type, score, source, result_id)

    def set_limit(self, scope: str, spec: Mapping[str, Any]) -> None:
        self._core.set_limit(limit_scope(scope), **limit_args(scope, spec))

    def set_budget(self, scope: str, period: str, limit: Decimal, policy: str) -> None:
        self._core.set_budget(scope, period, limit, policy)

    def reserved(self) -> tuple[int, Decimal]:
        return self._core.reserved()

    def spent(self) -> Decimal:
        return self._core.spent()
