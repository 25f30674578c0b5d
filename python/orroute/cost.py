"""Costs, budgets and the usage ledger: the plan's ``CostTracker``, backed by the C++ ledger.

Every amount is a :class:`decimal.Decimal` of USD and exact (the core keeps 18 decimal places).
Budgets are reservations: :meth:`CostTracker.reserve` atomically checks every matching budget and
books the worst-case cost, :meth:`Reservation.settle` records the actual cost and frees the rest;
this holds across threads and processes sharing one ledger file.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from ._alerts import AlertEvent, dispatch
from ._engine.wiring import give_back_leases
from ._exceptions import (
    ApprovalDeniedError,
    BudgetExceededError,
    InvalidArgumentError,
    NotFoundInCatalogError,
)

if TYPE_CHECKING:
    import pandas
    from typing_extensions import Self

    from .task import Task

__all__ = [
    "AlertEvent",
    "ApprovalRequest",
    "BudgetStatus",
    "CostTracker",
    "ReportRow",
    "Reservation",
    "UsageRecord",
    "default_ledger_path",
]

_log = logging.getLogger("orroute.cost")
_US = 1_000_000
Amount = Decimal | int | float | str
Clock = Callable[[], "datetime | float"]

#: Output tokens assumed when a task has no max_tokens and the ledger has seen nothing like it.
DEFAULT_EXPECTED_COMPLETION_TOKENS = 1024
#: Quantile of past completions used as the learned expectation.
LEARNED_QUANTILE = 0.9


def default_ledger_path() -> Path:
    """Where ``CostTracker()`` keeps its ledger: ``ledger.sqlite3`` in ``$ORROUTE_HOME``, else in
    the platform's user data directory (``config.default_home``: the settings' one answer)."""
    from .config import default_ledger_path as _default

    return _default()


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / _US, tz=timezone.utc)


def _to_us(value: datetime | float | None) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError("datetimes passed to the ledger must be timezone-aware")
        return round(value.timestamp() * _US)
    return round(float(value) * _US)


def _tags(tags: Mapping[str, str] | None) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in (tags or {}).items()]


def _scope_text(project: str | None, conversation: str | None, tag: Any) -> str:
    given = [x for x in (project, conversation, tag) if x is not None]
    if len(given) > 1:
        raise InvalidArgumentError("a budget has one scope: project, conversation or tag")
    if project is not None:
        return f"project:{project}"
    if conversation is not None:
        return f"conversation:{conversation}"
    if tag is not None:
        if isinstance(tag, Mapping):
            if len(tag) != 1:
                raise InvalidArgumentError("tag budget takes one key=value pair")
            ((k, v),) = tag.items()
        elif isinstance(tag, tuple):
            k, v = tag
        else:
            k, sep, v = str(tag).partition("=")
            if not sep:
                raise InvalidArgumentError(f"tag must be 'key=value', got {tag!r}")
        return f"tag:{k}={v}"
    return "global"


@dataclass(frozen=True)
class BudgetStatus:
    """A budget in its current window. ``remaining = max(0, limit - spent - reserved)``."""

    name: str
    scope: str
    period: str
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    remaining: Decimal
    window: tuple[datetime, datetime | None]
    policy: str
    time_zone: str
    thresholds: tuple[int, ...]

    @property
    def fraction_used(self) -> float:
        """Settled spend as a fraction of the limit (display only)."""
        return float(self.spent / self.limit) if self.limit else float(self.spent > 0)

    @classmethod
    def _from(cls, s: Any) -> BudgetStatus:
        b = s.budget
        end = None if b.period == "total" else _dt(s.window_end)
        return cls(
            name=b.name,
            scope=b.scope,
            period=b.period,
            limit=b.limit,
            spent=s.spent,
            reserved=s.reserved,
            remaining=s.remaining,
            window=(_dt(s.window_start), end),
            policy=b.policy,
            time_zone=b.time_zone,
            thresholds=tuple(b.thresholds),
        )


@dataclass(frozen=True)
class ApprovalRequest:
    """What the approval hook is asked about."""

    estimate: Decimal
    project: str
    conversation: str
    tags: dict[str, str]
    model: str
    task_id: str


@dataclass(frozen=True)
class UsageRecord:
    """One recorded call (a ledger row)."""

    id: int
    time: datetime
    project: str
    conversation: str
    tags: dict[str, str]
    task_id: str
    task_type: str
    model_requested: str
    model: str
    provider: str
    generation_id: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    estimated_cost: Decimal | None
    cost: Decimal
    latency_s: float | None
    ttft_s: float | None
    outcome: str
    error_class: str
    attempts: int
    #: where ``cost`` came from: "upstream" (the reply's usage.cost, checked), "catalog",
    #: "tokenizer", "metered" or "reservation", with ": <why>" when the upstream's figure was
    #: replaced (docs/cost.md); "" for calls recorded by hand.
    cost_source: str = ""
    #: whether the row is a call made, of its model: not a reclaim's booking (outcome
    #: ``abandoned``: the money of calls whose process never settled them) nor a refund. Call
    #: counts, error counts and a model's statistics count calls only; totals count every row.
    is_call: bool = True

    @classmethod
    def _from(cls, c: Any) -> UsageRecord:
        return cls(
            id=c.id,
            time=_dt(c.at),
            project=c.scope.project,
            conversation=c.scope.conversation,
            tags=dict(c.scope.tags),
            task_id=c.task_id,
            task_type=c.task_type,
            model_requested=c.model_requested,
            model=c.model_used,
            provider=c.provider,
            generation_id=c.generation_id,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens,
            cached_tokens=c.cached_tokens,
            cache_write_tokens=c.cache_write_tokens,
            reasoning_tokens=c.reasoning_tokens,
            estimated_cost=c.estimated_cost,
            cost=c.cost,
            latency_s=None if c.latency_us < 0 else c.latency_us / _US,
            ttft_s=None if c.ttft_us < 0 else c.ttft_us / _US,
            outcome=c.outcome,
            error_class=c.error_class,
            attempts=c.attempts,
            cost_source=c.cost_source,
            is_call=c.is_call,
        )


@dataclass(frozen=True)
class ReportRow:
    """One group of :meth:`CostTracker.report`. ``estimate_error`` is
    (estimated - actual) / actual over the calls that had an estimate (None if none did)."""

    period: str
    key: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    estimated: Decimal
    estimate_error: float | None
    mean_latency_s: float | None

    @classmethod
    def _from(cls, r: Any) -> ReportRow:
        err = None
        if r.cost_of_estimated:
            err = float((r.estimated - r.cost_of_estimated) / r.cost_of_estimated)
        lat = r.latency_us_sum / r.latency_count / _US if r.latency_count else None
        return cls(
            period=r.period,
            key=r.key,
            calls=r.calls,
            errors=r.errors,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            cost=r.cost,
            estimated=r.estimated,
            estimate_error=err,
            mean_latency_s=lat,
        )


@dataclass
class Reservation:
    """Worst-case cost booked against every matching budget. Settle it with the actual cost, or
    release it; as a context manager it is released on exit unless settled, or unless the ledger
    failed to write its settle (a full disk): that call was made and billed, so its reservation
    stays held until its ttl.

    >>> with tracker.reserve("0.05", project="demo") as r:  # doctest: +SKIP
    ...     r.settle("0.0123", model="openai/gpt-4o-mini", prompt_tokens=900)
    """

    id: int
    amount: Decimal
    remaining: Decimal | None
    _tracker: CostTracker = field(repr=False)
    _fields: dict[str, Any] = field(default_factory=dict, repr=False)
    done: bool = False
    _write_failed: bool = field(default=False, repr=False)

    def settle(self, actual_usd: Amount, **call: Any) -> int:
        """Records the call at its actual cost and frees the rest of the reservation.

        Keyword arguments are the columns of :meth:`CostTracker.record_call`. Returns the row id
        (0 when the tracker writes settles behind: ``CostTracker(settle_delay=...)``).
        """
        if self.done:
            raise InvalidArgumentError(f"reservation {self.id} was already settled or released")
        fields = {**self._fields, **call}
        fields.setdefault("estimated_cost", self.amount)
        row = self._tracker._call_record(cost=actual_usd, **fields)
        try:
            out = self._tracker._core.settle(self.id, row)
        except InvalidArgumentError:
            raise  # the call's figures were refused: nothing reached the ledger
        except Exception:
            self._write_failed = True
            raise
        self.done = True  # only now: a failed settle may be tried again (or released)
        self._tracker._dispatch(out.alerts)
        return int(out.call_id)

    def release(self) -> None:
        """Frees the reservation without recording a call (the call failed or was not made)."""
        if not self.done:
            self.done = True
            self._tracker._core.release(self.id)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        # A settle the ledger failed to write was for a call made and billed: releasing its
        # reservation handed the money back to the budget with nothing recorded.
        if not self._write_failed:
            self.release()


def _is_redis_url(location: str) -> bool:
    return location.startswith(("redis://", "rediss://"))


class CostTracker:
    """The plan's cost tracker: estimates, budgets, reservations, alerts and the usage ledger.

    Args:
        ledger: ``None`` for the default file (:func:`default_ledger_path`), a path,
            ``":memory:"`` (private to this tracker), or a Redis URL
            ``"redis://[[user]:password@]host[:port][/db][?prefix=...]"`` shared by every
            process on every machine that uses it (see docs/redis.md).
        catalog: an ``orroute.Catalog`` for pricing estimates (the bundled one if omitted).
        clock: returns "now" as an aware datetime or epoch seconds (tests inject one).
        webhook_url: alerts are also POSTed there as JSON.
        approval_above, approval_hook: calls estimated above this many USD need
            ``approval_hook(ApprovalRequest) -> bool`` to allow them.
        busy_timeout: seconds a writer waits for another process's transaction.
        leases: serve reservations from this process's budget leases (an allowance taken from
            the matching budgets in one transaction; budgets stay exact, see docs/cost.md).
            ``False``: one database transaction per reservation.
        settle_delay: seconds a lease-served settle may wait in memory before it is written
            (with others, in one transaction: many times the calls/s across processes). 0 (the
            default): every settle is written before it returns. With a delay, ``settle()``
            returns row id 0, this tracker's own reads still see every settle, other processes
            see it within the delay (or 64 calls, or this tracker's next read), and its alerts
            fire from the settle that writes it; a process killed with settles waiting has its
            whole budget lease counted as spent (the rows are lost, the budget holds). See
            docs/cost.md. Ignored for Redis.

    >>> tracker = orroute.CostTracker(":memory:")  # doctest: +SKIP
    >>> tracker.set_budget(10, period="daily", project="demo")  # doctest: +SKIP
    """

    def __init__(
        self,
        ledger: str | os.PathLike[str] | None = None,
        *,
        catalog: Any = None,
        clock: Clock | None = None,
        webhook_url: str | None = None,
        approval_above: Amount | None = None,
        approval_hook: Callable[[ApprovalRequest], bool] | None = None,
        busy_timeout: float = 30.0,
        leases: bool = True,
        settle_delay: float = 0.0,
    ) -> None:
        self._redis = isinstance(ledger, str) and _is_redis_url(ledger)
        if ledger is None:
            path = default_ledger_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._path = str(path)
        elif self._redis:
            self._path = str(ledger)
        elif str(ledger) == ":memory:":
            self._path = ":memory:"
        else:
            path = Path(ledger).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._path = str(path)
        if not busy_timeout >= 0:  # NaN too
            raise InvalidArgumentError(f"busy_timeout must be >= 0 seconds, got {busy_timeout}")
        # SQLite's busy timeout is an int of milliseconds: inf (and anything over ~23 days) is
        # its longest wait
        self._busy_ms = int(min(busy_timeout, 2_000_000.0) * 1000)
        self._leases = bool(leases)
        if not 0 <= settle_delay <= 60:
            raise InvalidArgumentError("settle_delay must be between 0 and 60 seconds")
        self._settle_delay_us = int(settle_delay * 1_000_000)
        self._catalog = catalog
        self._clock = clock
        self.webhook_url = webhook_url
        self._webhooks: list[threading.Thread] = []
        self._callbacks: list[Callable[[AlertEvent], None]] = []
        self._approval: tuple[Amount | None, Any] = (None, None)
        # the engines of managers given this tracker as their ledger: they apply its approval rule
        self._approval_engines: weakref.WeakSet[Any] = weakref.WeakSet()
        # Why this tracker's budgets, cutoff and approval rule would bind nothing they seem to
        # (a manager's private tracker: see _refuse_if_unbound), or None.
        self._unbound: str | None = None
        self._open()
        if approval_above is not None:
            self.set_approval(approval_above, approval_hook)

    # ---- plumbing ----

    def _open(self) -> None:
        # Usable in a forked child as is: the core ledger opens its own connection there.
        self._core: Any  # _core.SqliteLedger or _core.RedisLedger
        if self._redis:
            if not _core.redis_available():
                raise InvalidArgumentError(
                    "this orroute was built without the Redis ledger (hiredis missing at build "
                    "time; install libhiredis-dev and reinstall)"
                )
            self._core = _core.RedisLedger(
                self._path, command_timeout_ms=max(self._busy_ms, 1000)
            )
        else:
            self._core = _core.SqliteLedger(
                self._path,
                busy_timeout_ms=self._busy_ms,
                leases=self._leases,
                settle_delay_us=self._settle_delay_us,
            )
            # Unused lease money goes back to the budgets at exit even if the tracker is still
            # referenced then (the C++ destructor does it otherwise).
            self._finalizer = weakref.finalize(
                self, give_back_leases, self._core
            )
        self._guard = _core.BudgetGuard(self._core)
        above, hook = self._approval
        if above is not None:
            self._guard.set_approval(above, hook)

    @property
    def path(self) -> str:
        """The ledger file (or ``":memory:"``); for Redis, the URL without its password."""
        if self._redis:
            return str(self._core.url)
        return self._path

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"redis"``."""
        return "redis" if self._redis else "sqlite"

    @property
    def leases(self) -> bool:
        """Whether reservations are served from this process's budget leases (never for
        Redis: every reservation is one server-side script)."""
        return False if self._redis else bool(self._core.leases)

    def close(self) -> None:
        """Writes the settles waiting (``settle_delay``) and gives this process's unused lease
        money back to the budgets (other processes then see it as free). The tracker stays
        usable; also done at exit. No-op for Redis."""
        if not self._redis:
            self.flush()
            self._core.release_leases()

    def flush(self) -> None:
        """Writes the settles waiting in memory (``settle_delay``) now and fires the alerts
        they crossed, and those a reclaim inside a ``reserve`` crossed (its spend booked; the
        next settle fires them otherwise)."""
        self._dispatch(self._core.flush_settles())

    def _now_us(self) -> int:
        if self._clock is None:
            return 0  # the core reads the clock itself
        return _to_us(self._clock())

    def _call_record(self, *, cost: Amount, **f: Any) -> Any:
        row = _core.CallRecord()
        row.cost = cost  # type: ignore[assignment]  # the binding parses any Amount
        row.at = _to_us(f.pop("time", None)) or self._now_us()
        row.scope = _core.SpendScope(
            f.pop("project", None) or "",
            f.pop("conversation", None) or "",
            _tags(f.pop("tags", None)),
        )
        model = f.pop("model", None) or ""
        row.model_used = f.pop("model_used", None) or model
        row.model_requested = f.pop("model_requested", None) or row.model_used
        est = f.pop("estimated_cost", None)
        row.estimated_cost = None if est is None else est
        for name in ("latency", "ttft"):
            v = f.pop(name, None)
            setattr(row, f"{name}_us", -1 if v is None else round(float(v) * _US))
        for k, v in f.items():
            if k not in _CALL_FIELDS:
                raise InvalidArgumentError(f"unknown call field {k!r}")
            setattr(row, k, v if v is not None else _CALL_FIELDS[k])
        return row

    def _dispatch(self, alerts: Iterable[Any]) -> None:
        dispatch(alerts, self._callbacks, self.webhook_url, self._webhooks)

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Waits (up to ``timeout`` seconds) for the webhook POSTs still in flight; they are sent
        from background threads so that a slow hook never stalls the call that spent."""
        for th in list(self._webhooks):
            th.join(timeout)

    # ---- the plan's API ----

    def estimate_cost(self, task: Task, model: str | None = None) -> Decimal:
        """Worst-case cost of running ``task`` (on ``model``, if given), in USD, exact.

        A task with messages is planned by the engine itself (``AIModelManager.plan``; this
        tracker's manager's engine when it came from ``manager.cost_tracker``): the same model
        (``model``, else ``task.model``, else the router's first candidate), the same prompt
        count and the same output bound (``max_tokens``, else the router's default), so the
        estimate is exactly what a budget reserves for the task.

        A task given by size only (``task.input_size``: no text to plan) is priced by the plan's
        formula: ``input_size`` prompt tokens; output ``task.max_tokens``, else the 90th
        percentile of what this ledger has seen for the task type and model, else 1024; ``model``
        else the one ``ModelSelector`` picks for the task's type, size and budget.
        """
        from .task import Task

        model = model or (task.get("model") if isinstance(task, Mapping) else
                          getattr(task, "model", None))
        task = Task.coerce(task)
        if task.messages and task.input_size is None:
            return self._planned_cost(task, model)
        if not model:
            model = self._model_for_task(task)
        prompt = task.input_size
        if prompt is None:
            try:
                from .tokenizer import count_tokens
            except ImportError as exc:  # pragma: no cover - the tokenizer ships with orroute
                raise InvalidArgumentError("no tokenizer available: give task.input_size") from exc
            prompt = count_tokens(task.messages, model=model)
        completion = task.max_tokens or self.expected_completion_tokens(task.type, model)
        return self._price(model, int(prompt), int(completion))

    def _planned_cost(self, task: Task, model: str | None) -> Decimal:
        """The engine's estimate for ``task``: the amount its reservation holds."""
        from . import _engine

        planner = getattr(self, "_planner", None)
        if planner is None:
            catalog = self._catalog
            if catalog is None:
                from .catalog import Catalog

                catalog = self._catalog = Catalog.bundled()
            planner = self._planner = _engine.planner(getattr(catalog, "_core", catalog))
        plan = planner.plan(_engine.task_request(task, model=model))
        if plan["estimate"] is None:  # the model cannot be priced: say which, as the catalog does
            return self._price(plan["candidates"][0], plan["prompt_tokens"], plan["max_tokens"])
        return Decimal(plan["estimate"])

    def _model_for_task(self, task: Task) -> str:
        """The plan's ``_get_model_for_task``: the model the selector picks for the task."""
        from .selector import ModelSelector
        from .tokenizer import count_tokens

        size = task.input_size if task.input_size is not None else int(count_tokens(task.messages))
        selector = getattr(self, "_selector", None)
        if selector is None:
            selector = self._selector = ModelSelector()
        return selector.select_model(task.type, size, task.budget)

    def expected_completion_tokens(self, task_type: str, model: str) -> int:
        """Learned expectation of output tokens: a high percentile of past completions."""
        q = self._core.completion_quantile(task_type, model, LEARNED_QUANTILE, 1000)
        return int(q) if q is not None else DEFAULT_EXPECTED_COMPLETION_TOKENS

    def _price(self, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
        catalog = self._catalog
        if catalog is None:
            from .catalog import Catalog

            catalog = self._catalog = Catalog.bundled()
        cost = catalog.cost(model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        return Decimal(cost)

    def track_usage(
        self, task_id: str, model: str, tokens_used: int | Mapping[str, int], cost: Amount
    ) -> int:
        """Records a call made outside the router (the plan's API). ``tokens_used`` is a total
        (booked as completion tokens) or a mapping with ``prompt``/``completion``/``cached``/
        ``cache_write``/``reasoning`` keys. Returns the row id."""
        tokens: dict[str, int] = {}
        if isinstance(tokens_used, Mapping):
            for k, v in tokens_used.items():
                key = k if k.endswith("_tokens") else f"{k}_tokens"
                tokens[key] = int(v)
        else:
            tokens["completion_tokens"] = int(tokens_used)
        return self.record_call(task_id=task_id, model=model, cost=cost, **tokens)

    def record_call(self, *, cost: Amount, model: str, **fields: Any) -> int:
        """Records one call with any of: time, project, conversation, tags, task_id, task_type,
        model_requested, provider, generation_id, prompt/completion/cached/cache_write/
        reasoning_tokens, estimated_cost, latency and ttft (seconds), outcome, error_class,
        attempts. Counts towards budgets and may fire alerts. Returns the row id."""
        return self._dispatched(self._core.record(self._call_record(cost=cost, model=model, **fields)))

    def _dispatched(self, out: Any) -> int:
        self._dispatch(out.alerts)
        return int(out.call_id)

    def record_refund(self, amount: Amount, *, call_id: int, **fields: Any) -> int:
        """Records money an upstream gave back for the recorded call ``call_id`` (the row id
        :meth:`record_call`, ``Reservation.settle`` and :meth:`usage_history` give): a row with
        outcome ``refund`` and cost ``-amount`` at that call's time, project, conversation and
        tags, so it lowers the spend of exactly the budget windows the call's cost went to.
        ``amount`` is positive and no more than the call cost less its earlier refunds; a call
        that is a refund or a reclaim's booking (outcome ``abandoned``) cannot be refunded
        (``InvalidArgumentError``, nothing written). The other keywords are
        :meth:`record_call`'s but the time and scope (the call's; model, task and generation ids
        default to the call's). The only way to book a refund: ``record_call``, ``track_usage``
        and ``Reservation.settle`` refuse a negative cost and the outcome ``refund``."""
        row = self._call_record(cost=amount, **fields)
        return self._dispatched(self._core.record_refund(call_id, row))

    # ---- budgets ----

    def set_budget(
        self,
        limit_usd: Amount,
        *,
        period: str = "total",
        project: str | None = None,
        conversation: str | None = None,
        tag: str | Mapping[str, str] | tuple[str, str] | None = None,
        policy: str = "refuse",
        time_zone: str = "UTC",
        thresholds: Sequence[float] = (50, 80, 100),
    ) -> BudgetStatus:
        """Creates or replaces the budget for one scope (global if none given) and period
        (``total``, ``daily``, ``weekly``, ``monthly``; windows start at ``time_zone``'s
        midnight, weeks on Monday). ``policy`` is ``"refuse"`` or ``"downgrade"``;
        ``thresholds`` are alert percentages of the limit."""
        self._refuse_if_unbound("a budget")
        scope = _scope_text(project, conversation, tag)
        self._core.set_budget(
            scope, period, limit_usd, time_zone, policy, [int(t) for t in thresholds]
        )
        return self.budget_status(
            period=period, project=project, conversation=conversation, tag=tag
        )

    def remove_budget(
        self,
        *,
        period: str = "total",
        project: str | None = None,
        conversation: str | None = None,
        tag: Any = None,
    ) -> bool:
        """Deletes a budget; False if there was none."""
        return bool(self._core.remove_budget(_scope_text(project, conversation, tag), period))

    def budgets(self) -> list[BudgetStatus]:
        """Every budget in its current window."""
        states = self._core.budget_states(_core.SpendScope(), self._now_us(), True)
        return [BudgetStatus._from(s) for s in states]

    def budget_status(
        self,
        *,
        period: str | None = None,
        project: str | None = None,
        conversation: str | None = None,
        tag: Any = None,
    ) -> BudgetStatus:
        """The budget for this scope (and period, if several) in its current window. Raises
        NotFoundInCatalogError if there is none."""
        scope = _scope_text(project, conversation, tag)
        want = None if period is None else _core_period(period)
        found = [b for b in self.budgets() if b.scope == scope and want in (None, b.period)]
        if not found:
            raise NotFoundInCatalogError(
                f"no budget for {scope}" + (f"/{period}" if period else "")
            )
        return found[0]

    def headroom(
        self,
        *,
        project: str | None = None,
        conversation: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Decimal | None:
        """The least any budget matching this scope has left (None if no budget applies): what a
        downgraded model must fit into."""
        scope = _core.SpendScope(project or "", conversation or "", _tags(tags))
        states = self._core.budget_states(scope, self._now_us(), False)
        return min((s.remaining for s in states), default=None)

    def reserve(
        self,
        amount_usd: Amount,
        *,
        project: str | None = None,
        conversation: str | None = None,
        tags: Mapping[str, str] | None = None,
        model: str = "",
        task_id: str = "",
        ttl: float = 900.0,
    ) -> Reservation:
        """Books ``amount_usd`` (a worst case) against every matching budget, atomically across
        threads and processes. Raises BudgetExceededError (``.policy`` says whether the budget
        asks to refuse or to downgrade; ``.remaining`` what is left), EmergencyCutoffError or
        ApprovalDeniedError. A reservation not settled within ``ttl`` seconds, or whose process
        died, is reclaimed."""
        scope = _core.SpendScope(project or "", conversation or "", _tags(tags))
        amount = _core.parse_money(amount_usd)
        out = self._guard.reserve(scope, amount, self._now_us(), int(ttl * _US), model, task_id)
        if out.status == "exceeded":  # only downgrade budgets get here; refuse ones raised
            s = out.blocking
            assert s is not None  # the core always names the blocking budget
            raise BudgetExceededError(
                f"budget {s.budget.name} would be exceeded (policy downgrade): limit "
                f"${s.budget.limit}, spent ${s.spent}, reserved ${s.reserved}, this call up to "
                f"${amount}; ${out.remaining} left",
                budget=s.budget.name,
                limit=s.budget.limit,
                spent=s.spent,
                reserved=s.reserved,
                estimate=amount,
                remaining=out.remaining,
                policy="downgrade",
            )
        fields = {
            "project": project,
            "conversation": conversation,
            "tags": tags,
            "task_id": task_id,
            "model": model,
        }
        return Reservation(
            out.reservation_id, amount, out.remaining, self, {k: v for k, v in fields.items() if v}
        )

    def reclaim(self) -> int:
        """Frees reservations that expired or whose process died; returns how many. Those booked
        as spent (their call may have been billed) fire the alerts they cross here."""
        n = int(self._core.reclaim(self._now_us()))
        self.flush()  # the alerts the reclaim's rows crossed
        return n

    def live_reservations(self) -> tuple[int, Decimal]:
        """(count, total amount) of reservations not yet settled or released, in every process."""
        n, amount = self._core.live_reservations()
        return int(n), amount

    # ---- approval, alerts, cutoff ----

    def set_approval(
        self, above_usd: Amount | None, hook: Callable[[ApprovalRequest], bool] | None
    ) -> None:
        """Calls estimated above ``above_usd`` are allowed only if ``hook`` returns True
        (``None`` removes the rule). The hook runs in the thread that reserves; it must be a plain
        function returning True or False: anything else (an async hook's coroutine, None, a
        string) refuses the call with ApprovalDeniedError."""
        if above_usd is not None:
            self._refuse_if_unbound("an approval rule")
        if above_usd is None:
            self._approval = (None, None)
            self._guard.set_approval(None, None)
            self._tell_engines()
            return
        if hook is None:
            raise InvalidArgumentError("an approval amount needs an approval hook")

        def ask(r: Any) -> bool:
            answer = hook(
                ApprovalRequest(
                    r.estimate,
                    r.scope.project,
                    r.scope.conversation,
                    dict(r.scope.tags),
                    r.model,
                    r.task_id,
                )
            )
            return _approved(answer)

        self._approval = (above_usd, ask)
        self._guard.set_approval(_core.parse_money(above_usd), ask)
        self._tell_engines()

    def _follow_approval(self, engine: Any) -> None:
        """``engine`` (a manager's, on this ledger) applies this tracker's approval rule, now and
        whenever :meth:`set_approval` changes it: its calls reserve through a guard of its own."""
        self._approval_engines.add(engine)
        self._tell_engines()

    def _tell_engines(self) -> None:
        above, ask = self._approval
        money = None if above is None else _core.parse_money(above)
        for engine in list(self._approval_engines):
            engine.set_approval(money, ask)

    def on_alert(self, callback: Callable[[AlertEvent], None]) -> Callable[[AlertEvent], None]:
        """Registers ``callback(AlertEvent)`` for threshold alerts fired by this process (each
        threshold fires once per window across all processes). Usable as a decorator."""
        self._callbacks.append(callback)
        return callback

    @property
    def alerts(self) -> list[AlertEvent]:
        """Every alert fired on this ledger, by any process, oldest first."""
        return [AlertEvent._from(a) for a in self._core.alerts(0)]

    def cutoff(self, reason: str = "emergency cutoff") -> None:
        """Stops all spending, in every process sharing the ledger, until :meth:`resume`."""
        self._refuse_if_unbound("the emergency cutoff")
        self._core.set_cutoff(reason)

    def _refuse_if_unbound(self, what: str) -> None:
        """Raises rather than set ``what`` where it would stop nothing: a manager's private
        tracker shares no ledger with the manager, so its budgets, cutoff and approval rule
        silently let every call of the manager through."""
        if self._unbound is not None:
            raise InvalidArgumentError(f"{what} set here would not bind {self._unbound}")

    def resume(self) -> None:
        """Lifts the emergency cutoff."""
        self._core.set_cutoff(None)

    @property
    def cutoff_reason(self) -> str | None:
        """The cutoff's reason while it is engaged, else None."""
        reason = self._core.cutoff()
        return None if reason is None else str(reason)

    # ---- history and analytics ----

    def _query(
        self,
        since: Any,
        until: Any,
        project: str | None,
        model: str | None,
        task_type: str | None,
        tag: Any,
        conversation: str | None = None,
    ) -> Any:
        q = _core.CallQuery()
        q.start = _to_us(since)
        q.end = _to_us(until)
        q.project = project or ""
        q.conversation = conversation or ""
        q.model = model or ""
        q.task_type = task_type or ""
        if tag is not None:
            k, _, v = _scope_text(None, None, tag)[4:].partition("=")
            q.tag_key, q.tag_value = k, v
        return q

    def usage_history(
        self,
        *,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        project: str | None = None,
        conversation: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        tag: Any = None,
        limit: int | None = None,
    ) -> list[UsageRecord]:
        """Recorded calls, oldest first (the newest ``limit`` if given)."""
        q = self._query(since, until, project, model, task_type, tag, conversation)
        q.limit = -1 if limit is None else int(limit)
        return [UsageRecord._from(c) for c in self._core.calls(q)]

    def total_cost(self, **filters: Any) -> Decimal:
        """Exact total cost of the calls matching the usage_history filters."""
        q = self._query(
            filters.pop("since", None),
            filters.pop("until", None),
            filters.pop("project", None),
            filters.pop("model", None),
            filters.pop("task_type", None),
            filters.pop("tag", None),
            filters.pop("conversation", None),
        )
        if filters:
            raise InvalidArgumentError(f"unknown filters {sorted(filters)}")
        return self._core.total_cost(q)

    def report(
        self,
        period: str = "all",
        by: str | None = "model",
        *,
        bucket: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        project: str | None = None,
    ) -> list[ReportRow]:
        """Spend over ``period`` grouped ``by`` a column, with exact sums and the estimate error.

        Args:
            period: the time range: ``"today"``, ``"week"`` (this ISO week), ``"month"`` (this
                month), all UTC, or ``"all"``. ``since``/``until`` narrow it further.
            by: model, model_requested, project, provider, task_type, conversation, outcome,
                error_class, task_id, ``tag:<key>``, None; or a time bucket (hour, day, week,
                month) to get one row per bucket.
            bucket: a time bucket to combine with a column ``by`` (e.g. per day per model).
        """
        ranges = {"today": "daily", "day": "daily", "daily": "daily", "week": "weekly",
                  "weekly": "weekly", "month": "monthly", "monthly": "monthly"}
        if period not in ranges and period not in ("all", "total"):
            raise InvalidArgumentError(
                f"report period must be today, week, month or all, got {period!r}")
        q = self._query(since, until, project, None, None, None)
        if period in ranges:
            now = self._now_us() or _core.now_us()
            start, end = _core.window_bounds(ranges[period], "UTC", now)
            q.start = max(q.start, start)
            q.end = min(q.end, end) if q.end else end
        buckets = ("hour", "day", "week", "month")
        if by in buckets:
            if bucket is not None:
                raise InvalidArgumentError("give a time bucket either as `by` or as `bucket`")
            bucket, by = by, None
        if bucket is not None and bucket not in buckets:
            raise InvalidArgumentError(f"bucket must be one of {buckets}, got {bucket!r}")
        rows = self._core.report(q, bucket or "total", by or "")
        return [ReportRow._from(r) for r in rows]

    def to_dataframe(self, **filters: Any) -> pandas.DataFrame:
        """The usage history as a pandas DataFrame (one row per call; money columns as Decimal
        plus float ``*_usd`` columns for plotting). Takes usage_history's filters."""
        import pandas as pd

        rows = self.usage_history(**filters)
        cols = list(UsageRecord.__dataclass_fields__)
        df = pd.DataFrame([[getattr(r, c) for c in cols] for r in rows], columns=cols)
        df["cost_usd"] = df["cost"].astype(float)
        df["estimated_cost_usd"] = (
            df["estimated_cost"].map(lambda v: None if v is None else float(v)).astype(float)
        )
        return df

    def __repr__(self) -> str:
        return f"CostTracker({self.path!r})"  # for Redis: the URL without its password


def _approved(answer: object) -> bool:
    """Whether an approval hook's ``answer`` allows the call: only ``True`` does. Read with
    ``bool()``, an async hook's coroutine (never run) and any truthy garbage approved it."""
    if answer is True or answer is False:
        return answer
    close = getattr(answer, "close", None)
    if close is not None and hasattr(answer, "__await__"):
        close()  # a coroutine never awaited: no "never awaited" warning later
    raise ApprovalDeniedError(
        f"the approval hook returned {type(answer).__name__}, not True or False (an async hook "
        "cannot be awaited where a call reserves: give a plain function); the call is refused"
    )


def _core_period(period: str) -> str:
    return {"day": "daily", "week": "weekly", "month": "monthly", "all": "total"}.get(
        period, period
    )


_CALL_FIELDS: dict[str, Any] = {
    "task_id": "",
    "task_type": "",
    "provider": "",
    "generation_id": "",
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cached_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
    "outcome": "ok",
    "error_class": "",
    "attempts": 1,
}
