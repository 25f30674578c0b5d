"""``AIModelManager``: the plan's router, on the C++ engine.

The engine (reached only through ``orroute._engine``) counts, analyzes, selects, reserves, admits,
sends, retries, falls back and settles; this module turns tasks into engine requests and engine results into
Python objects and exceptions.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _core, _engine
from . import _exceptions as _exc
from ._engine import lend_terms as _lend_terms  # read on every awaited call: one global
from ._logs import logger
from .observe import _UNWATCHED, task_result_fields
from .task import Task

if TYPE_CHECKING:  # asyncio costs ~20 ms to import: only async calls load it (via _engine)
    import asyncio

    from ._cascade_run import CascadeResult

__all__ = ["AIModelManager", "Attempt", "CascadeResult", "Conversation", "TaskResult", "Usage"]


def __getattr__(name: str) -> Any:
    """``CascadeResult`` (re-exported here) loads the cascade module on first use: a manager that
    never runs a cascade does not import it (~1 ms)."""
    if name == "CascadeResult":
        from ._cascade_run import CascadeResult

        return CascadeResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FEEDBACK_MEMORY = 100_000  # results remembered for record_feedback
_LOG = "orroute.cost"  # the logger of the cost and compression warnings


@dataclass(frozen=True)
class Attempt:
    """One try of a task on one model.

    ``error`` is ``None`` for the attempt that answered, an error class (``"server"``,
    ``"rate_limited"``, ``"connection"`` ...) for a failed one, or ``"skipped:<why>"`` when the model
    was passed over without a request (circuit open, rate limited, budget, context too small).
    """

    model: str
    error: str | None
    status: int
    latency: float  # seconds, send to end
    waited: float  # seconds of backoff / rate-limit wait before it
    message: str = ""


class Usage(dict[str, int]):
    """Token counts of a result: a dict (``usage["total_tokens"]``) that also reads as attributes
    (``usage.total_tokens``, as in the plan and the ``openai`` package).

    >>> Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5).total_tokens
    5
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> int:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"usage has no {name!r}") from None


class _Lazy:
    """A dataclass field whose default means "computed by ``compute(result)`` when first read"; a
    value given or assigned is kept as is. The fields most calls never read (the parsed response,
    the attempts, the plan's parts) cost nothing until they are read."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self  # on the class: the field's default (dataclasses reads it)
        value = obj.__dict__.get(self._slot)
        if value is None:
            value = obj.__dict__[self._slot] = self._compute(obj)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        # __init__ passes the field's default, this descriptor itself: not given, computed on read
        obj.__dict__[self._slot] = None if value is self else value


def _parsed_response(result: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(result.completion_json) if result.completion_json else {}
    except ValueError:
        parsed = {}
    return parsed if isinstance(parsed, dict) else {}


def _completion_of(result: Any) -> str:
    """The reply's JSON text behind a result made by the manager, decoded when first read (the
    longest str of a call, which most calls never read): from the pending result (its
    ``completion()``) or the result dict it was made from; ``""`` when there is none."""
    details = result.__dict__.get("_details")
    if details is None:
        return ""
    if isinstance(details, Mapping):
        return details.get("completion") or ""
    text: str = details.completion()
    return text


def _details(result: Any) -> Mapping[str, Any]:
    """The engine's whole result behind a :class:`TaskResult` (attempts, plan), or ``{}``: given
    as a pending result (its ``result()`` is built on the first read) or as that dict."""
    details = result.__dict__.get("_details")
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        details = result.__dict__["_details"] = details.result()
    return details


def _attempts_of(result: Any) -> list[Attempt]:
    return _attempts(_details(result).get("attempts", ()))


def _usage_of(result: Any) -> Usage | None:
    """The :class:`Usage` of a result made by the manager, from the token counts it kept."""
    tokens = result.__dict__.get("_tokens")
    if tokens is None:
        return None  # made with usage=None
    prompt, completion = tokens
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)


def _plan_part(name: str, default: Callable[[], Any]) -> Callable[[Any], Any]:
    def compute(result: Any) -> Any:
        plan = _details(result).get("plan")
        return default() if plan is None else plan[name]
    return compute


@dataclass
class TaskResult:
    """What ``execute_task`` returns.

    Attributes:
        id: result id (pass it to ``record_feedback``).
        content: the answer's text.
        model: the model that answered.
        usage: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (a :class:`Usage`:
            ``usage["total_tokens"]`` or ``usage.total_tokens``).
        cost: settled cost in USD.
        attempts: every try, in order (see :class:`Attempt`).
        reasons: why the router chose the candidates (complexity, selector, fallbacks).
        candidates: the ordered candidates.
        task_type: declared or guessed task type.
        complexity: score in [0, 1] and tier.
        response: the completion in OpenAI shape (a dict, parsed from ``completion_json`` on
            first read).
        completion_json: the completion's JSON text as the upstream sent it (streams: as
            assembled).
        cost_source: where ``cost`` came from: ``"upstream"`` (the reply's checked usage.cost),
            ``"catalog"``, ``"tokenizer"``, ``"metered"`` (see docs/cost.md).
        cut_at_reservation: a stream stopped (finish reason ``length``) because the upstream
            went past the ``max_tokens`` it was reserved for.
        provider: with several providers (``providers=``), the one that answered, and
            ``provider_model`` its name for the model; ``""`` with one endpoint.
        compression: what prompt compression did before the call (an
            ``orroute.compress.Compressed``: tokens before and kept, the summary call), or None.
    """

    id: str
    task_id: str
    content: str
    model: str
    usage: dict[str, int]
    cost: Decimal
    # Fields as before (asdict, replace, ==, the constructor see them) whose values are made from
    # the engine's result when first read: most calls never read them. (Defaults: none given and
    # no engine result behind it, they are empty.)
    attempts: list[Attempt] = field(default=_Lazy(_attempts_of))  # type: ignore[arg-type]
    reasons: list[str] = field(default=_Lazy(_plan_part("reasons", list)))  # type: ignore[arg-type]
    candidates: list[str] = field(default=_Lazy(_plan_part("candidates", list)))  # type: ignore[arg-type]
    task_type: str = ""
    complexity: dict[str, Any] = field(default=_Lazy(_plan_part("complexity", dict)))  # type: ignore[arg-type]
    # Parsed from ``completion_json`` on first read: the engine already gave ``id`` and
    # ``content``, so most calls never need the reply parsed in Python.
    response: dict[str, Any] = field(default=_Lazy(_parsed_response), repr=False)  # type: ignore[arg-type]
    cost_source: str = ""
    cut_at_reservation: bool = False
    provider: str = ""
    provider_model: str = ""
    compression: Any = None
    # Decoded from the engine's result when first read (as ``response`` is parsed from it).
    completion_json: str = field(default=_Lazy(_completion_of), repr=False, compare=False)  # type: ignore[assignment]

    @property
    def fallbacks(self) -> int:
        """Models given up on before the one that answered."""
        return len({a.model for a in self.attempts if a.model != self.model})

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied with every field made: the engine's result is not kept."""
        state = {f"_{name}": getattr(self, name) for name in _LAZY_FIELDS}
        state.update((k, v) for k, v in self.__dict__.items()
                     if k not in _NOT_PICKLED and k not in state)
        return state


# ``usage`` is made when first read too, from the token counts the manager keeps (``_tokens``):
# a Usage (a dict subclass made from keywords, then freed) was ~2.2k instructions of every call.
# Set after the class is made: the field keeps no default (its place in the constructor's
# arguments), and the dataclass __init__'s ``self.usage = usage`` stores the value given.
class _LazyUsage(_Lazy):
    """``usage``: a value given or assigned (None too) replaces the counts it is made from."""

    def __set__(self, obj: Any, value: Any) -> None:
        super().__set__(obj, value)
        obj.__dict__.pop("_tokens", None)


setattr(TaskResult, "usage", _LazyUsage(_usage_of))  # noqa: B010  (mypy: a field is a dict)
TaskResult.__dict__["usage"].__set_name__(TaskResult, "usage")
_LAZY_FIELDS = ("usage", "attempts", "reasons", "candidates", "complexity", "response",
                "completion_json")
_NOT_PICKLED = ("_details", "_tokens")  # what the lazy fields are made from


def _result_state() -> dict[str, Any]:
    """The instance dict of a :class:`TaskResult` made from an engine result, as its ``__init__``
    would store it, with placeholder values: the fields without a default (set by
    ``AIModelManager._result``), every defaulted field (a lazy field under its slot, empty:
    computed on first read), and ``_details``, the engine's result behind the lazy fields."""
    out: dict[str, Any] = {}
    for f in fields(TaskResult):
        if isinstance(TaskResult.__dict__.get(f.name), _Lazy):
            out["_" + f.name] = None
        elif f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:  # a fresh value per result: not shareable here
            raise TypeError(f"TaskResult.{f.name}: _result does not take factory defaults")
        else:
            out[f.name] = None
    out["task_id"] = ""
    out["_details"] = None
    out["_tokens"] = None
    return out


# `_made` makes each result's instance dict as a copy of this one, whose values the core's maker
# replaces (`_make_result`, bind_route.cpp): a dict that already has every key is neither grown
# nor resized (~6k instructions a call fewer than a keyword dict merged into an empty one), the
# dataclass __init__ (its five lazy-field setters) is not run, and no bytecode stores a field.
_RESULT_STATE = _result_state()
_make_result = _core.task_result_maker(TaskResult, _RESULT_STATE)


def _attempts(raw: Sequence[Mapping[str, Any]]) -> list[Attempt]:
    return [
        Attempt(
            model=a["model"],
            error=None if a["outcome"] == "ok" else a["outcome"],
            status=a["status"],
            latency=a["latency"],
            waited=a["waited"],
            message=a["message"],
        )
        for a in raw
    ]


def _per_token_prices(value: Any) -> tuple[Decimal, Decimal] | None:
    """``unpriced_model_price`` (USD per million tokens: a number, or prompt/completion) as the
    engine's (prompt, completion) USD per token."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        prompt, completion = value.get("prompt"), value.get("completion")
    else:
        prompt = completion = value
    try:
        p, c = Decimal(str(prompt)), Decimal(str(completion))
    except ArithmeticError:
        raise _exc.InvalidArgumentError(
            "unpriced_model_price must be USD per million tokens: a number or "
            "{'prompt': ..., 'completion': ...}"
        ) from None
    if not (p.is_finite() and c.is_finite()) or p < 0 or c < 0:
        raise _exc.InvalidArgumentError("unpriced_model_price must be finite and >= 0")
    return p / 1_000_000, c / 1_000_000


class _Pinned:
    """A model given to :meth:`AIModelManager.execute_task` by ``_run(..., pin=True)``: that
    model only, no fallback (private: never a caller's)."""

    __slots__ = ("model",)

    def __init__(self, model: str | None) -> None:
        self.model = model


class AIModelManager:
    """Routes tasks to models: select, budget, rate-limit, send, recover, settle, measure.

    Args:
        api_key: OpenRouter key (or ``OPENROUTER_API_KEY``); a list rotates keys.
        base_url: API root; any OpenAI-compatible endpoint. Its ``/models`` list is used when it
            answers, so a local endpoint's own models are selected and priced.
        strategy: ``"cost_optimized"``, ``"balanced"``, ``"performance"`` or ``"quality_first"``.
        budget: a number is a total in USD for this manager (or its ``project``); a mapping
            ``{"limit": 5, "period": "daily", "project": "p", "policy": "refuse"}`` sets the period,
            scope and policy (``"downgrade"`` tries cheaper models instead of failing).
        ledger: path of the SQLite ledger, a ``redis://`` URL (shared across machines), or a
            file- or Redis-backed :class:`orroute.CostTracker` whose ledger is shared (SQLite
            WAL, safe across processes; Redis, across machines). Omitted: an in-memory ledger
            when ``budget`` is given, else none (no reservations; ``set_budget`` then raises).
        fallbacks: exact order of models to try (otherwise the selector's ranking).
        limits: rate limits per model id, or ``"key"`` for the whole key: ``{"openai/gpt-4o":
            {"limit_requests": 60, "limit_input": 100_000, "limit_output": 20_000}}`` (per minute;
            ``"window"`` in seconds changes the period).
        preferred_model: tried first, before the ranking.
        catalog: an :class:`orroute.Catalog` (default: the bundled snapshot, replaced by the
            endpoint's ``/models`` when it answers).
        max_retries: retries of the same model on transient errors before falling back.
        max_admission_wait: seconds to wait for a rate limit before taking the next candidate.
        stream_deadline: seconds a streamed attempt may last in all (default: the core's, one
            hour), so an upstream trickling an endless answer cannot hold the call and its
            reservation; ``timeout`` is the gap allowed between two pieces of the answer.
        breaker: circuit breaker settings: ``failures`` (consecutive), ``failure_rate``,
            ``min_calls``, ``window``, ``cooldown`` (seconds), ``successes_to_close``.
        stream_queue: chunks a ``stream_task`` holds for a slow consumer before the upstream
            transfer is paused (bounded memory per stream).
        router_state: ``"redis://..."`` to share circuit breakers, rate-limit windows and
            Retry-After holds with every manager (any process, any machine) using that Redis
            server and prefix; omitted: this manager's own in-process state.
        providers: several providers (an ``orroute.provider_config.ProvidersConfig``, e.g.
            ``load_providers(settings)``): each model is tried at every provider serving it, by
            priority or its group's balancing, before the next model (docs/providers.md).
        provider_prices: a LiteLLM price table (path or JSON text) pricing the providers other
            than OpenRouter; default: the bundled Anthropic/OpenAI/Gemini prices.
        unpriced_model_price: with a ledger, calls to model ids the catalog cannot price are
            refused (:class:`orroute.UnpricedModelError`) unless this gives their price, in USD
            per million tokens: a number (input and output) or ``{"prompt": 3, "completion":
            15}``. See docs/cost.md for how variants and routers are priced.
        cost_check_multiple: an upstream ``usage.cost`` above this multiple of the catalog price
            of the reported tokens, or below its inverse, is not believed (the catalog price is
            recorded).
        webhook_url: threshold alerts of this manager's calls are POSTed there (as JSON); with a
            :class:`orroute.CostTracker` as ``ledger``, its callbacks and webhook fire too.
        compress: prompt compression before every call (an :class:`orroute.compress.Compression`
            or a mapping of its fields; a task's own ``compress`` wins). See docs/router.md.
        app_name, app_url: app attribution (``X-Title`` / ``X-OpenRouter-Title``,
            ``HTTP-Referer``), as on the client; else ``OPENROUTER_APP_NAME`` /
            ``OPENROUTER_APP_URL``. CR, LF or other control characters are refused.
        settings: an :class:`orroute.config.Settings` that supplies what is not given here (key,
            base URL, strategy, app name and URL, log level); default
            ``orroute.config.load_settings()``. The strategy is ``ORROUTE_STRATEGY``, else
            ``cost_optimized`` when ``OPENROUTER_COST_OPTIMIZATION`` is true, else balanced.
        on_request, on_response, on_error, on_budget_alert: callbacks (a callable or a list;
            sync or async) taking an :class:`orroute.observe.CallEvent` (an ``AlertEvent`` for
            budget alerts); they can neither fail nor delay a call (see :mod:`orroute.observe`).
        cache: the response cache (see :mod:`orroute.cache`): True (next to the ledger), a
            location or an :class:`orroute.cache.ResponseCache`; None follows the settings
            (``ORROUTE_CACHE`` / the config file's ``cache``); ``Task(cache=False)`` skips it.

    >>> manager = AIModelManager(api_key="sk-or-...", budget=5, fallbacks=["openai/gpt-4o-mini"])
    >>> result = manager.execute_task_sync(Task(messages="Say hi"))  # doctest: +SKIP
    """

    def __init__(
        self,
        api_key: str | Sequence[str] | None = None,
        base_url: str | None = None,
        *,
        strategy: str | None = None,
        budget: Decimal | float | str | Mapping[str, Any] | None = None,
        ledger: Any = None,
        fallbacks: Sequence[str] | None = None,
        limits: Mapping[str, Mapping[str, Any]] | None = None,
        preferred_model: str | None = None,
        catalog: Any = None,
        project: str | None = None,
        max_retries: int = 2,
        retry_base_delay: float = 0.25,
        max_retry_wait: float = 30.0,
        max_admission_wait: float = 5.0,
        breaker: Mapping[str, Any] | None = None,
        timeout: float = 600.0,
        stream_deadline: float | None = None,
        thresholds: tuple[float, float, float] = (0.3, 0.7, 0.9),
        server_side_fallbacks: int = 0,
        default_max_tokens: int = 1024,
        max_candidates: int = 4,
        app_name: str | None = None,
        app_url: str | None = None,
        refresh_catalog: bool = True,
        stream_queue: int = 64,
        router_state: str | None = None,
        providers: Any = None,
        provider_prices: str | None = None,
        unpriced_model_price: float | str | Decimal | Mapping[str, Any] | None = None,
        cost_check_multiple: int = 2,
        webhook_url: str | None = None,
        compress: Any = None,
        settings: Any = None,
        on_request: Any = None,
        on_response: Any = None,
        on_error: Any = None,
        on_budget_alert: Any = None,
        cache: Any = None,
    ) -> None:
        from .catalog import Catalog
        from .config import api_keys, runtime_settings

        settings = runtime_settings(settings)  # env, .env, config file (LOG_LEVEL applied)
        strategy = strategy or settings.strategy
        from .observe import Observer

        keys = api_keys(api_key)  # env, .env and "k1,k2" rotation: the client's rule
        self._observe = Observer("manager", on_request=on_request, on_response=on_response,
                                 on_error=on_error, on_budget_alert=on_budget_alert,
                                 secrets=keys)
        cfg = _engine.engine_config(
            base_url=base_url or settings.base_url,
            api_keys=keys,
            app_name=app_name or settings.app_name,
            app_url=app_url or settings.app_url,
            strategy=strategy,
            timeout=timeout,
            stream_deadline=stream_deadline,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
            max_retry_wait=max_retry_wait,
            max_admission_wait=max_admission_wait,
            thresholds=thresholds,
            fallbacks=fallbacks or [],
            preferred_model=preferred_model,
            server_side_fallbacks=server_side_fallbacks,
            default_max_tokens=default_max_tokens,
            max_candidates=max_candidates,
            refresh_catalog=refresh_catalog,
            unpriced_model_price=_per_token_prices(unpriced_model_price),
            cost_check_multiple=cost_check_multiple,
            router_state=router_state,
            breaker=breaker,
            limits=limits,
        )
        if providers is not None:  # a ProvidersConfig (orroute.provider_config)
            from ._providers_engine import configure_providers

            configure_providers(cfg, providers, provider_prices)
        cat = catalog if catalog is not None else Catalog.bundled()
        core_catalog: Any = getattr(cat, "_core", cat)
        ledger_path: str | None
        if ledger is None:
            # No budget and no ledger: skip reservations entirely (the SQLite round trips are most
            # of the router's added latency); spend is still counted in metrics().
            ledger_path = ":memory:" if budget is not None else None
        elif hasattr(ledger, "path") and not isinstance(ledger, (str, os.PathLike)):
            # A CostTracker: share its SQLite file (WAL, multi-process) or its Redis server
            # (`path` hides a Redis password; the private `_path` keeps the full URL).
            ledger_path = str(getattr(ledger, "_path", None) or ledger.path)
            if ledger_path == ":memory:":
                raise _exc.InvalidArgumentError(
                    "an in-memory CostTracker cannot be shared; give it a path"
                )
        else:
            ledger_path = os.fspath(ledger)
        from .catalog import bundled_priors_path

        priors = bundled_priors_path().read_text(encoding="utf-8")
        self._door = _engine.Engine(cfg, core_catalog, ledger_path, priors)
        self.cache = None
        if cache is not None or settings.cache:  # else resolve_cache's answer is None: skip its import
            from .cache import resolve_cache

            self.cache = resolve_cache(cache, settings=settings, next_to=ledger_path)
        if self.cache is not None:  # consulted by the engine before it reserves
            self._door.set_response_cache(self.cache)
        if int(stream_queue) < 1:
            raise _exc.InvalidArgumentError("stream_queue must be >= 1")
        self._stream_queue = int(stream_queue)
        self._has_ledger = ledger_path is not None
        # Alerts of this manager's calls fire here (and through a CostTracker given as ledger).
        self._tracker = ledger if hasattr(ledger, "_dispatch") else None
        if self._tracker is not None:
            self._tracker._follow_approval(self._door)  # its approval hook guards these calls too
        self._alert_callbacks: list[Callable[[Any], None]] = []
        self._webhook_url = webhook_url
        self._webhooks: list[Any] = []
        self._project = project
        self._compress = None
        if compress is not None:  # Compression.coerce(None) is None: skip its import
            from .compress import Compression

            self._compress = Compression.coerce(compress)
        # result id -> (model, task type) for record_feedback (see _made)
        self._results: dict[str, tuple[str, str]] = {}
        self._older_results: dict[str, tuple[str, str]] = {}
        self._base_url = cfg.base_url
        self._strategy = strategy
        self._ledger_path = ledger_path
        self._selector: Any = None
        self._cost_tracker: Any = self._tracker
        if budget is not None:
            self.set_budget(budget)

    def __repr__(self) -> str:  # never shows the key
        return f"AIModelManager(base_url={self._base_url!r})"

    # -- the plan's parts -----------------------------------------------------------------------
    @property
    def selector(self) -> Any:
        """The plan's ``manager.selector``: an :class:`orroute.ModelSelector` over the engine's
        catalog (the endpoint's ``/models`` when it answered, else the one given or bundled), with
        this manager's strategy and the bundled quality priors, as the engine ranks."""
        if self._selector is None:
            from .catalog import Catalog
            from .selector import ModelSelector

            self._selector = ModelSelector(Catalog(self._door.catalog),
                                           strategy=self._strategy)
        return self._selector

    @property
    def cost_tracker(self) -> Any:
        """The plan's ``manager.cost_tracker``: the :class:`orroute.CostTracker` given as
        ``ledger``, or one on the same ledger file or Redis server. With no shared ledger (none,
        or the in-memory one a bare ``budget`` makes) it is a private in-memory tracker: its
        ``estimate_cost`` and ``track_usage`` work, this manager's own spend stays in
        :meth:`spent`, and its ``set_budget``, ``cutoff`` and ``set_approval`` raise
        InvalidArgumentError (they would not bind this manager's calls)."""
        if self._cost_tracker is None:
            from .catalog import Catalog
            from .cost import CostTracker

            path = self._ledger_path if self._ledger_path not in (None, ":memory:") else None
            tracker = CostTracker(path or ":memory:", catalog=Catalog(self._door.catalog))
            tracker._selector = self.selector  # the plan's _get_model_for_task: this selector
            tracker._planner = self._door  # estimate_cost: this engine's plan, as it reserves
            if path is None:  # its own ledger, not the engine's: money rules set on it bind nothing
                tracker._unbound = (
                    "this manager's calls: it has no shared ledger; give AIModelManager(ledger=a "
                    "path, a redis:// URL or a CostTracker) to share one (or set_budget on the "
                    "manager)")
            self._cost_tracker = tracker
        return self._cost_tracker

    # -- budgets --------------------------------------------------------------------------------
    def set_budget(self, budget: Decimal | float | str | Mapping[str, Any]) -> None:
        """Adds (or replaces) a budget; see the ``budget`` argument of the constructor."""
        if isinstance(budget, Mapping):
            limit = budget["limit"]
            period = budget.get("period", "total")
            project = budget.get("project", self._project)
            policy = budget.get("policy", "refuse")
        else:
            limit, period, project, policy = budget, "total", self._project, "refuse"
        scope = f"project:{project}" if project else "global"
        try:
            amount = Decimal(str(limit))
        except ArithmeticError:  # decimal.InvalidOperation: "five"
            raise _exc.InvalidArgumentError(
                f"budget must be an amount in USD such as 5 or '2.50' (or a mapping with a "
                f"'limit'), got {limit!r}") from None
        self._door.set_budget(scope, str(period), amount, str(policy))

    def spent(self) -> Decimal:
        """Settled spend in USD: the ledger's total, or (without a ledger) the cost of this
        manager's successful calls."""
        if self._has_ledger:
            return self._door.spent()
        return sum((r["cost"] for r in self._door.metrics()), Decimal(0))

    def reserved(self) -> tuple[int, Decimal]:
        """Live reservations: how many and how much (USD)."""
        count, amount = self._door.reserved()
        return count, amount

    def close(self) -> None:
        """Gives this process's unused budget lease money back to the ledger file's budgets
        (other processes see it free); also done at exit. The manager stays usable."""
        self._door.release_leases()

    # -- running tasks -------------------------------------------------------------------------
    def _engine_task(self, task: Task, *, stream: bool = False, model: str | None = None,
                     pin: bool = False) -> Any:
        return _engine.task_request(task, stream=stream, model=model, pin=pin,
                                    project=self._project)

    @property
    def callbacks(self) -> Any:
        """The :class:`orroute.observe.Observer` of this manager's calls:
        ``manager.callbacks.add("on_response", fn)`` registers one more callback."""
        return self._observe

    def _observed(self, task: Task, model: str | None, stream: bool) -> Any:
        observe = self._observe
        if not observe._watched():  # the usual call: no event's fields gathered (~2k instructions)
            return _UNWATCHED
        return observe.start(model=model, stream=stream, messages=task.messages,
                             params={"max_tokens": task.max_tokens} if task.max_tokens else None,
                             project=task.project or self._project)

    def on_alert(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Registers ``callback(AlertEvent)`` for budget thresholds crossed by this manager's
        calls (each threshold fires once per window across every process sharing the ledger).
        Usable as a decorator."""
        self._alert_callbacks.append(callback)
        return callback

    def _settled(self, alerts: Any, model: str, cost_source: str, cost_problem: str) -> None:
        """Presents what the engine settled: fires its alerts and logs a replaced upstream cost."""
        if alerts:
            from ._alerts import dispatch

            dispatch(alerts, self._alert_callbacks, self._webhook_url, self._webhooks)
            self._observe.budget_alerts(alerts)
            if self._tracker is not None:
                self._tracker._dispatch(alerts)
        if cost_problem:
            logger(_LOG).warning("%s: cost from %s (%s)", model, cost_source, cost_problem)

    def _result(self, res: Mapping[str, Any], task_id: str = "",
                compression: Any = None) -> TaskResult:
        """The :class:`TaskResult` of an engine result dict ``res`` (``result()``, a run's or a
        stream's; raises its error), with :meth:`_made`'s ``task_id`` and ``compression``."""
        ok = res["ok"]
        return self._made((ok, res["model"], res["completion"], res["completion_id"],
                           res["content"], res["prompt_tokens"], res["completion_tokens"],
                           res["cost"], res.get("cost_source", ""), res.get("cost_problem", ""),
                           res.get("cut_at_reservation", False), res.get("provider", ""),
                           res.get("provider_model", ""), res.get("alerts"),
                           res["plan"]["task_type"] if ok else ""), res, task_id, compression)

    def _made(self, summary: tuple[Any, ...], details: Any, task_id: str = "",
              compression: Any = None) -> TaskResult:
        """The :class:`TaskResult` of a call's ``summary`` (``PendingResult.summary()``'s tuple,
        or :meth:`_result`'s of a dict); raises its error. ``details``: the pending result (whose
        whole result, attempts and plan, is built only when a field that needs it is read) or
        the result dict; ``task_id`` and ``compression``: the result's fields of those names."""
        # the summary's figures read where needed (its order: bind_route.cpp's figures(), then
        # the task type; the core's maker puts the rest in the result)
        model, cost_problem, alerts = summary[1], summary[9], summary[13]
        if alerts or cost_problem:
            self._settled(alerts, model, summary[8], cost_problem)
        if not summary[0]:
            full = details if isinstance(details, Mapping) else details.result()
            err = _engine.result_error(full)
            err.attempts = _attempts(full["attempts"])  # type: ignore[attr-defined]
            raise err
        result_id = summary[3] or os.urandom(12).hex()
        # a copy of _RESULT_STATE with the figures, `task_id`, `compression` and `_details` (what
        # attempts, reasons, candidates and complexity are made from) in place, made in the core
        result: TaskResult = _make_result(summary, details, result_id, task_id, compression)
        self._remember(result_id, model, summary[14])
        return result

    def _remember(self, result_id: str, model: str, task_type: str) -> None:
        """record_feedback's memory of a result: two plain dicts, the newer one replacing the
        older when full (the last _FEEDBACK_MEMORY results are always there; an OrderedDict's
        insert and its length test cost ~0.6k instructions a call more). execute_task's result
        made in the core is remembered so too, written out there."""
        results = self._results
        results[result_id] = (model, task_type)
        if len(results) >= _FEEDBACK_MEMORY:
            self._older_results, self._results = results, {}

    def plan(self, task: Task) -> _engine.Plan:
        """What the router would do for ``task``: candidates, reasons, complexity, prompt and
        output tokens, and ``estimate``, the exact amount a budget reserves for it."""
        return self._door.plan(self._engine_task(task))

    def execute_task_sync(self, task: Task, *, model: str | None = None) -> TaskResult:
        """Runs ``task`` and blocks until it is done (the GIL is released while waiting).

        Raises:
            BudgetError: the estimate exceeds a budget (before any network call).
            NoModelAvailableError: every candidate was skipped (circuits open, limits, context).
            APIError: the last failure when every candidate failed (402 stops at once).
        """
        return self._run_sync(task, model)

    def _run_sync(self, task: Task, model: str | None, pin: bool = False) -> TaskResult:
        task, compressed = self._compressed_sync(Task.coerce(task), model)
        call = self._observed(task, model, False)
        try:  # as in _run: no `with call` for an unwatched call
            r = self._result(self._door.run(self._engine_task(task, model=model, pin=pin)),
                             task.id or "", compressed)
            if call is not _UNWATCHED and call.watched:
                call.done(**task_result_fields(r))
        except BaseException as e:
            call.raised(e)
            raise
        return r

    def _compresses(self, task: Task) -> bool:
        """Whether ``task`` may be compressed at all (compress.options_for is not None): when
        neither the manager nor the task asks for it, a call skips the compression step."""
        own = task.compress
        return self._compress is not None or not (own is None or own is False)

    def _compressed_sync(self, task: Task, model: str | None) -> tuple[Task, Any]:
        """``task`` after prompt compression (orroute/compress.py), and what it did."""
        if not self._compresses(task):
            return task, None
        from .compress import apply, prepare

        prep = prepare(self, task, model, self._door.catalog)
        if prep is None:
            return task, None
        if prep.summary_task is None:
            return apply(task, prep, None)
        try:
            summary = self._run_sync(prep.summary_task, prep.options.summarize_with, pin=True)
        except _exc.OrRouteError as e:  # no summary: the older turns are dropped instead
            logger(_LOG).warning("compression: the summary call failed (%s); trimming",
                                 type(e).__name__)
            return apply(task, prep, None, type(e).__name__)
        return apply(task, prep, summary)

    async def _compressed(self, task: Task, model: str | None) -> tuple[Task, Any]:
        """:meth:`_compressed_sync` on the event loop."""
        from .compress import apply, prepare

        prep = prepare(self, task, model, self._door.catalog)
        if prep is None:
            return task, None
        if prep.summary_task is None:
            return apply(task, prep, None)
        try:
            summary = await self._run(prep.summary_task, prep.options.summarize_with, pin=True)
        except _exc.OrRouteError as e:  # no summary: the older turns are dropped instead
            logger(_LOG).warning("compression: the summary call failed (%s); trimming",
                                 type(e).__name__)
            return apply(task, prep, None, type(e).__name__)
        return apply(task, prep, summary)

    async def execute_task(self, task: Task, *, model: str | None = None) -> TaskResult:
        """Runs ``task`` on the engine's network thread; cancelling the await cancels the request
        and releases its budget reservation. Raises like :meth:`execute_task_sync`."""
        # the body is here, not in a coroutine this one awaits (~1.3k instructions a call more):
        # _run's pinned model comes as a _Pinned (that model only, no fallback)
        pin = False
        if model.__class__ is _Pinned:
            model, pin = model.model, True  # type: ignore[union-attr]
        if task.__class__ is not Task:
            task = Task.coerce(task)
        compressed = None
        # else no coroutine nor import for a step that does nothing; _compresses is the rule,
        # asked only when the manager or the task names a compression at all (its frame was
        # ~0.6k instructions of every call)
        if (self._compress is not None or task.compress is not None) and self._compresses(task):
            task, compressed = await self._compressed(task, model)
        # asked first, as the client does: _observed's frame only for a watched call
        call = self._observed(task, model, False) if self._observe._watched() else _UNWATCHED
        try:  # not `with call`: its two methods cost an unwatched call ~2.7k instructions
            # on the engine's network thread (or, while this event loop has nothing else to do,
            # on its thread: the loop lent to it); cancelling the await cancels the run
            # (bridge.lend_terms, submit and serve_idle in one core call: the summary when the
            # result came while this thread served the network loop, else None: awaited)
            # A plain success finished inside comes back as its TaskResult alone, made there by
            # _made's maker (_make_result): no summary to read in Python (~1.5k instructions).
            bridge, notifier, loop_fd, serve = _lend_terms(False)
            task_id = task.id or ""
            r = self._door.submit_task(task, model, pin, self._project, notifier,
                                       not bridge.waiters, loop_fd, serve, _make_result, task_id,
                                       compressed)
            if r.__class__ is TaskResult:
                # _remember's insert, written out: its frame cost ~0.7k instructions a call
                results = self._results
                results[r.id] = (r.model, r.task_type)
                if len(results) >= _FEEDBACK_MEMORY:
                    self._older_results, self._results = results, {}
            else:
                pending, done = r
                if done is None:  # a PendingResult (finished inside: a FinishedResult, no await)
                    await _engine.wait(pending)
                    done = pending.summary()  # type: ignore[union-attr]
                r = self._made(done, pending, task_id, compressed)
            if call is not _UNWATCHED and call.watched:
                call.done(**task_result_fields(r))
        except BaseException as e:  # as `with call` would: a watched call ends failed or cancelled
            call.raised(e)
            raise
        return r

    async def _run(self, task: Task, model: str | None, pin: bool = False) -> TaskResult:
        """:meth:`execute_task`, with ``pin``: ``model`` only, no fallback (compression's summary
        call, a cascade's stages)."""
        # this class's, not a subclass's override: the pinned model is never a caller's to see
        return await AIModelManager.execute_task(
            self, task, model=_Pinned(model) if pin else model)  # type: ignore[arg-type]

    async def execute_cascade(self, task: Task, cascade: Any, *, task_type: str | None = None,
                              stream: bool = False) -> Any:
        """Runs ``task`` through a cascade: an ``orroute.routing.VerifiedCascade`` (cheap model
        first, verify, escalate on failure) or an agreement ``CascadeRouter``. Every stage is an
        :meth:`execute_task` on the stage's model only, reserved, settled and recorded.

        Returns a :class:`CascadeResult` (accepted answer, stages with verdicts, summed cost), or
        with ``stream=True`` (VerifiedCascade only) a ``CascadeStream`` to iterate: the final
        stage streams. Raises like :meth:`execute_task` (a failing stage stops the cascade).
        """
        from ._cascade_run import CascadeStream, VerifiedCascade, run_cascade

        if stream:
            if not isinstance(cascade, VerifiedCascade):
                raise _exc.InvalidArgumentError("stream=True needs a VerifiedCascade")
            return CascadeStream(self, task, cascade)
        return await run_cascade(self, task, cascade, task_type=task_type)

    def execute_cascade_sync(self, task: Task, cascade: Any, *, task_type: str | None = None,
                             stream: bool = False) -> Any:
        """Blocking :meth:`execute_cascade` (stages and samples run one after another). With
        ``stream=True`` (VerifiedCascade only) a ``CascadeStreamSync`` to iterate (a plain
        ``for`` loop): the final stage streams; leaving the loop early cancels it."""
        from ._cascade_run import CascadeStreamSync, VerifiedCascade, run_cascade_sync

        if stream:
            if not isinstance(cascade, VerifiedCascade):
                raise _exc.InvalidArgumentError("stream=True needs a VerifiedCascade")
            return CascadeStreamSync(self, task, cascade)
        return run_cascade_sync(self, task, cascade, task_type=task_type)

    async def stream_task(
        self, task: Task, *, model: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Streams ``task``: yields chunks (OpenAI ``chat.completion.chunk`` dicts) as they arrive.

        Retries and fallbacks happen before the first chunk; an error after content was yielded
        raises :class:`orroute.StreamError`. Leaving the loop early cancels the request.
        """
        async for item in self._stream_settled(task, model=model):
            if isinstance(item, dict):
                yield item

    async def _stream_settled(
        self, task: Task, *, model: str | None = None, pin: bool = False
    ) -> AsyncIterator[dict[str, Any] | TaskResult]:
        """:meth:`stream_task`'s loop: yields the chunks, then the settled :class:`TaskResult`
        (alerts fired; a failure raises). Cascades stream their final stage through it."""
        task, compressed = await self._compressed(Task.coerce(task), model)
        run = self._door.stream(
            self._engine_task(task, stream=True, model=model, pin=pin), self._stream_queue
        )
        bridge = _engine.bridge()  # one eventfd per loop: the transport thread never takes the GIL
        finished = False
        call = self._observed(task, model, True)
        try:
            while True:
                # A bounded hand-off: at most ~stream_queue chunks wait here; beyond that the
                # engine pauses the upstream transfer until this loop catches up.
                for data in run.take():
                    yield json.loads(data)
                if run.finished():
                    finished = True
                    res = run.result()
                    assert res is not None  # finished() implies the result is set
                    with call:
                        r = self._result(res)  # alerts fire; a failure raises
                        if call.watched:
                            call.done(**task_result_fields(r))
                    r.compression = compressed
                    yield r
                    return
                await bridge.wait(run)
        finally:
            call.__exit__(None, None, None)  # no-op once ended; else the consumer left early
            if not finished:
                run.cancel()

    def stream_task_sync(self, task: Task, *, model: str | None = None
                         ) -> Iterator[dict[str, Any]]:
        """Blocking :meth:`stream_task`: a generator of chunks for a plain ``for`` loop (the GIL
        is released while waiting). Closing it, or dropping it early, cancels the request."""
        for item in self._stream_settled_sync(task, model=model):
            if isinstance(item, dict):
                yield item

    def _stream_settled_sync(
        self, task: Task, *, model: str | None = None, pin: bool = False
    ) -> Iterator[dict[str, Any] | TaskResult]:
        """:meth:`_stream_settled` for a thread without an event loop: the same bounded hand-off,
        waiting on an eventfd of its own instead of the loop's."""
        task, compressed = self._compressed_sync(Task.coerce(task), model)
        run = self._door.stream(
            self._engine_task(task, stream=True, model=model, pin=pin), self._stream_queue
        )
        waiter = _engine.BlockingWaiter()
        finished = False
        try:
            while True:
                for data in run.take():
                    yield json.loads(data)
                if run.finished():
                    finished = True
                    res = run.result()
                    assert res is not None  # finished() implies the result is set
                    result = self._result(res)  # alerts fire; a failure raises
                    result.compression = compressed
                    yield result
                    return
                waiter.wait(run)
        finally:
            if not finished:
                run.cancel()

    # -- conversation ---------------------------------------------------------------------------
    def conversation(
        self,
        *,
        system: str | None = None,
        model: str | None = None,
        task_type: str = "general",
        budget: Decimal | float | str | None = None,
        project: str | None = None,
        max_history_tokens: int = 8000,
        keep_recent: int = 6,
        summarizer: Callable[[list[dict[str, Any]]], str | Awaitable[str]] | None = None,
        id: str | None = None,
    ) -> Conversation:
        """A multi-turn conversation that re-selects the model every turn (see :class:`Conversation`)."""
        return Conversation(
            self,
            system=system,
            model=model,
            task_type=task_type,
            budget=budget,
            project=project,
            max_history_tokens=max_history_tokens,
            keep_recent=keep_recent,
            summarizer=summarizer,
            id=id,
        )

    # -- observability --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"overall": "ok"|"degraded"|"down", "models": {id: {"state": "ok"|"degraded"|
        "circuit_open"|"rate_limited", "reason", "breaker", "retry_in", "success_rate", ...}},
        "breakers": [{"key", "kind": "model"|"provider"|"endpoint", "name", "state":
        "open"|"half_open", "retry_in", "consecutive_failures", "times_opened"}, ...]}``.

        ``breakers`` lists every breaker that is not closed: a model's, a provider's (named by
        OpenRouter's replies, e.g. ``"Together"``) or the endpoint's (the base URL's host, which
        takes failures with no reply). ``overall`` is ``degraded`` while any is open (``down`` when
        no model can be called, or the endpoint's is open)."""
        return self._door.health()

    def metrics(self, *, as_dataframe: bool = False) -> Any:
        """Per-model performance: calls, successes, success rate, errors by class, retries,
        fallbacks, tokens, cost and cost per success, latency / TTFT / tokens-per-second p50, p95,
        p99 over the metrics window. A dict keyed by model, or a pandas DataFrame."""
        rows = self._door.metrics()
        if as_dataframe:
            import pandas as pd  # lazy: pandas is an optional dependency

            frame = pd.DataFrame(rows)
            return frame.set_index("model") if not frame.empty else frame
        return {r["model"]: {k: v for k, v in r.items() if k != "model"} for r in rows}

    def metrics_frame(self) -> Any:
        """``metrics(as_dataframe=True)``."""
        return self.metrics(as_dataframe=True)

    def record_feedback(self, result_id: str, score: float) -> None:
        """Scores a result in [0, 1]; kept per model and task type and used by later selections
        (also by managers created later on the same ledger: the score is stored there).

        Raises:
            NotFoundInCatalogError: ``result_id`` is not a result of this manager.
            InvalidArgumentError: ``score`` is outside [0, 1].
        """
        entry = self._results.get(result_id) or self._older_results.get(result_id)
        if entry is None:
            raise _exc.NotFoundInCatalogError(f"unknown result id {result_id!r}")
        if not 0.0 <= float(score) <= 1.0:
            raise _exc.InvalidArgumentError(f"score must be in [0, 1], got {score}")
        model, task_type = entry
        # kept in the ledger (when the manager has one): later managers rank with it
        self._door.record_feedback(model, task_type, float(score), "user", result_id)

    def set_limit(self, scope: str, **limit: Any) -> None:
        """Sets a rate limit at run time (same keys as the ``limits`` argument)."""
        self._door.set_limit(scope, limit)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class Conversation:
    """Turns with one manager; the model is re-selected every turn.

    - upgrades after a failure or a poor score (``feedback`` below 0.5): the next turns ask for a
      higher minimum quality;
    - downgrades when its ``budget`` runs low: each turn may cost at most what is left, so the
      router picks cheaper models;
    - ``switch_model(id)`` pins a model (``switch_model(None)`` unpins);
    - keeps the history within ``max_history_tokens`` by prompt compression's rule (C++,
      docs/router.md): the system prompt and the last ``keep_recent`` messages stay (a tool call
      with its results); older turns are dropped, or replaced by a summary when a
      ``summarizer`` (a callable taking the dropped messages, sync or async) is given.
    """

    def __init__(
        self,
        manager: AIModelManager,
        *,
        system: str | None,
        model: str | None,
        task_type: str,
        budget: Decimal | float | str | None,
        project: str | None,
        max_history_tokens: int,
        keep_recent: int,
        summarizer: Callable[[list[dict[str, Any]]], str | Awaitable[str]] | None,
        id: str | None,
    ) -> None:
        if max_history_tokens < 1 or keep_recent < 1:
            raise _exc.InvalidArgumentError("max_history_tokens and keep_recent must be >= 1")
        self._manager = manager
        self.id = id or os.urandom(8).hex()
        self.system = system
        self.model = model
        self.task_type = task_type
        self.budget = Decimal(str(budget)) if budget is not None else None
        self.project = project
        self.max_history_tokens = max_history_tokens
        self.keep_recent = keep_recent
        self.summarizer = summarizer
        self.history: list[dict[str, Any]] = []
        self.summary: str | None = None
        self.spent = Decimal(0)
        self.min_quality: float | None = None
        self.results: list[TaskResult] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """What the next turn sends: system prompt, summary (if any), kept history."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        if self.summary:
            out.append(
                {
                    "role": "system",
                    "content": f"Summary of the earlier conversation: {self.summary}",
                }
            )
        return out + self.history

    def switch_model(self, model: str | None) -> None:
        """Pins ``model`` for the next turns (``None``: back to per-turn selection)."""
        self.model = model

    def feedback(self, score: float) -> None:
        """Scores the last answer; a poor score (< 0.5) upgrades the next turns."""
        if self.results:
            self._manager.record_feedback(self.results[-1].id, score)
        if score < 0.5:
            self._upgrade()

    def _upgrade(self) -> None:
        self.min_quality = min(0.95, (self.min_quality or 0.5) + 0.15)

    def _fold(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """(kept, dropped) history when the next turn would pass ``max_history_tokens``, by
        prompt compression's rule (``cpp/orroute/route/compression.h``: system messages and
        the last ``keep_recent`` messages stay, a tool call keeps its results, older turns
        fold); None when it fits."""
        from . import _core

        rule = _core.CompressionRule()
        rule.max_prompt_tokens = self.max_history_tokens
        rule.keep_last = self.keep_recent
        messages = self.messages
        try:
            plan = _core.plan_compression(self.model or "openai/gpt-4o",
                                          json.dumps(messages, ensure_ascii=False, default=str),
                                          rule)
        except _exc.OrRouteError:  # content the tokenizer cannot read: keep the last turns
            cut = max(0, len(self.history) - self.keep_recent)
            return (self.history[cut:], self.history[:cut]) if cut else None
        if not plan.compress:
            return None
        head = len(messages) - len(self.history)  # the system prompt and the summary
        folded = {i - head for i in plan.fold}
        return ([m for i, m in enumerate(self.history) if i not in folded],
                [m for i, m in enumerate(self.history) if i in folded])

    async def _trim(self) -> None:
        fold = self._fold()
        if fold is None:
            return
        keep, dropped = fold
        if dropped and self.summarizer is not None:
            previous = [{"role": "system", "content": self.summary}] if self.summary else []
            out = self.summarizer(previous + dropped)
            self.summary = (
                await out if isinstance(out, Awaitable) else out
            )
        self.history = keep

    def _task(self) -> Task:
        budget = None
        if self.budget is not None:
            budget = max(Decimal(0), self.budget - self.spent)
        return Task(
            type=self.task_type,
            messages=self.messages,
            project=self.project,
            budget=budget,
            quality=self.min_quality,
            conversation=self.id,
        )

    async def send(self, content: str, **_: Any) -> TaskResult:
        """Adds a user turn, runs it, appends the answer and returns the result."""
        self.history.append({"role": "user", "content": content})
        await self._trim()
        try:
            result = await self._manager.execute_task(self._task(), model=self.model)
        except _exc.APIError:
            self.history.pop()
            self._upgrade()
            raise
        self._record(result)
        return result

    def send_sync(self, content: str) -> TaskResult:
        """:meth:`send` for synchronous code (the summarizer, if any, must then be synchronous)."""
        self.history.append({"role": "user", "content": content})
        if self._fold() is not None:
            import asyncio

            asyncio.run(self._trim())
        try:
            result = self._manager.execute_task_sync(self._task(), model=self.model)
        except _exc.APIError:
            self.history.pop()
            self._upgrade()
            raise
        self._record(result)
        return result

    def _record(self, result: TaskResult) -> None:
        self.history.append({"role": "assistant", "content": result.content})
        self.spent += result.cost
        self.results.append(result)
        if any(a.error and not a.error.startswith("skipped:") for a in result.attempts):
            self._upgrade()
