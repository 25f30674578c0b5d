"""The analyst's questions, answered from your own ledger.

Every function takes a :class:`orroute.CostTracker` (the ledger: a SQLite file or a Redis URL) and
returns plain dataclasses, so the command line (``orroute analytics ...``), the notebooks and your
own code read the same figures:

* :func:`spend`: spend by model, provider, project, task type, conversation, tag (``user`` is
  ``tag:user``) or time bucket, with exact sums;
* :func:`forecast`: where each budget's period will end, with an interval, and the chance of
  going over;
* :func:`savings`: what the same calls would have cost on a baseline model of your choice;
* :func:`trends`: calls, errors, fallbacks and cache hits per hour/day/week/month;
* :func:`estimates`: the router's expected cost against the actual cost (the estimate, not the
  worst-case reservation);
* :func:`performance`: per model latency/TTFT p50/p95/p99, success rate, quality from your
  feedback, cost per call;
* :func:`feedback` / :func:`record_feedback`: quality scores kept in the ledger (the router's
  selector reads them when it starts);
* :func:`cheaper_alternatives`: which of your calls could have gone to a cheaper model of at least
  the same quality, by your feedback (else the selector's priors);
* :func:`cascades` / :func:`cascade_summary`: your verify-then-escalate runs (``execute_cascade``,
  the gateway's ``orroute/cascade``): how often the cheap stage's answer stood, what they cost
  against the final model alone, and your feedback on each stage's model.

Money is :class:`decimal.Decimal` and exact (summed by the ledger or in Decimal); ratios, rates and
latencies are floats.

>>> tracker = orroute.CostTracker("ledger.sqlite3")  # doctest: +SKIP
>>> [(r.key, r.cost) for r in orroute.analytics.spend(tracker, by="model")]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidArgumentError, NoModelAvailableError, NotFoundInCatalogError

if TYPE_CHECKING:
    from .cost import CostTracker, UsageRecord

__all__ = [
    "Alternative",
    "CascadeRun",
    "CascadeSummary",
    "EstimateRow",
    "FeedbackRow",
    "Forecast",
    "ModelPerformance",
    "Savings",
    "SpendRow",
    "TrendRow",
    "cascade_summary",
    "cascades",
    "cheaper_alternatives",
    "estimates",
    "feedback",
    "forecast",
    "percentile",
    "performance",
    "record_feedback",
    "savings",
    "spend",
    "trends",
]

#: Columns :func:`spend` groups by (besides ``tag:<key>`` and the time buckets).
SPEND_BY = ("model", "model_requested", "provider", "project", "task_type", "conversation",
            "user", "outcome", "error_class")
BUCKETS = ("hour", "day", "week", "month")
#: The ``outcome`` of a call answered from orroute's response cache.
CACHE_HIT_OUTCOME = "cache_hit"
_ZERO = Decimal(0)


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if value.tzinfo is None:
        raise InvalidArgumentError("datetimes must be timezone-aware")
    return value.astimezone(timezone.utc)


def _ratio(part: Decimal, whole: Decimal) -> float:
    return float(part / whole) if whole else 0.0


# --- spend ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendRow:
    """One group of :func:`spend`. ``period`` is the bucket ("2025-03-01"; a week is labelled by
    its Monday) or ``"total"``; ``key`` the group ("" when grouped by time only). ``share`` is
    this row's part of the total cost."""

    period: str
    key: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    share: float
    mean_latency_s: float | None


def spend(tracker: CostTracker, by: str = "model", *, bucket: str | None = None,
          since: datetime | None = None, until: datetime | None = None,
          project: str | None = None) -> list[SpendRow]:
    """Spend grouped ``by`` a column (:data:`SPEND_BY`, ``tag:<key>``, or a time bucket: hour,
    day, week, month), optionally per time ``bucket`` too. Rows sorted by period, then by cost
    (highest first). Sums are the ledger's own (exact).

    >>> spend(tracker, by="user", bucket="day")  # doctest: +SKIP
    """
    if by == "user":
        by = "tag:user"
    if by not in (*SPEND_BY, *BUCKETS) and not by.startswith("tag:"):
        raise InvalidArgumentError(
            f"cannot group spend by {by!r}: one of {', '.join(SPEND_BY + BUCKETS)} or tag:<key>")
    rows = tracker.report("all", by, bucket=bucket, since=since, until=until, project=project)
    total = sum((r.cost for r in rows), _ZERO)
    out = [SpendRow(period=r.period, key=r.key, calls=r.calls, errors=r.errors,
                    prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                    cost=r.cost, share=_ratio(r.cost, total), mean_latency_s=r.mean_latency_s)
           for r in rows]
    out.sort(key=lambda r: (r.period, -r.cost, r.key))
    return out


# --- forecast -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """Where a budget's current period is heading.

    ``projected = spent + rate x remaining time``, with ``rate`` the mean spend per ``unit``
    (hour for daily budgets, else day; UTC-aligned) over the units of the recent history that
    ended before now: the whole units of the lookback, or, in a ledger younger than that, every
    unit from the one of the first call (counted whole: spending began there). The
    ``level`` interval ``[low, high]`` is a normal prediction interval for the remaining spend
    (variance of the per-unit spend times the remaining units, plus the uncertainty of the
    mean); ``probability_over`` is the chance, under the same model, that the period ends above
    the limit. A total budget has no period end: ``exhausted_at`` is when the rate reaches the
    limit (None at a zero rate). ``samples`` is how many whole units the rate is based on; with
    none (less than an hour or a day of history) there is no rate and no forecast. Amounts are
    rounded to the ledger's precision (1e-18 USD).
    """

    budget: str
    period: str
    limit: Decimal
    spent: Decimal
    reserved: Decimal
    window_start: datetime
    window_end: datetime | None
    now: datetime
    unit: str
    samples: int
    rate: Decimal | None
    projected: Decimal | None
    low: Decimal | None
    high: Decimal | None
    level: float
    probability_over: float | None
    exhausted_at: datetime | None

    @property
    def projected_share(self) -> float | None:
        """Projected spend as a fraction of the limit."""
        if self.projected is None:
            return None
        return _ratio(self.projected, self.limit) if self.limit else None


def _scope_filters(scope: str) -> dict[str, Any]:
    kind, _, value = scope.partition(":")
    if kind == "project":
        return {"project": value}
    if kind == "conversation":
        return {"conversation": value}
    if kind == "tag":
        return {"tag": value}
    return {}


def _q(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("1e-12"))


def _exact(value: Decimal) -> Decimal:
    """A quotient rounded to the ledger's precision (attodollars)."""
    return value.quantize(Decimal("1e-18"))


def forecast(tracker: CostTracker, *, budget: str | None = None, now: datetime | None = None,
             level: float = 0.9, history: timedelta | None = None) -> list[Forecast]:
    """A forecast for every budget (or the one named ``budget``, e.g. ``"project:demo/daily"``).

    Args:
        now: the instant to forecast from (default: now).
        level: the prediction interval's coverage (0 < level < 1).
        history: how far back the rate is learned (default 48 hours for daily budgets, else 28
            days; never before the first call in the ledger).
    """
    if not 0 < level < 1:
        raise InvalidArgumentError("level must be between 0 and 1")
    now = _utc(now)
    statuses = tracker.budgets()
    if budget is not None:
        statuses = [b for b in statuses if b.name == budget]
        if not statuses:
            raise NotFoundInCatalogError(f"no budget named {budget!r}")
    z = statistics.NormalDist().inv_cdf((1 + level) / 2)
    out = []
    for b in statuses:
        unit = timedelta(hours=1) if b.period == "daily" else timedelta(days=1)
        lookback = history or (timedelta(hours=48) if b.period == "daily" else timedelta(days=28))
        filters = _scope_filters(b.scope)
        calls = tracker.usage_history(since=now - lookback, until=now, **filters)
        older = tracker.usage_history(until=now - lookback, limit=1, **filters)
        # the history starts at the lookback, or at the first call if the ledger is younger
        first_call = calls[0].time if calls else now
        start_hist = now - lookback if older else first_call
        # whole units aligned on the epoch, ending at the start of the unit containing `now`
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        cur_unit = epoch + ((now - epoch) // unit) * unit
        if older:  # whole units inside the lookback only
            first_unit = epoch - ((epoch - start_hist) // unit) * unit
        else:  # the unit of the first call counts whole: it is where spending began
            first_unit = epoch + ((start_hist - epoch) // unit) * unit
        n = max(0, (cur_unit - first_unit) // unit)
        samples = [_ZERO] * n
        for r in calls:
            if first_unit <= r.time < cur_unit:
                samples[(r.time - first_unit) // unit] += r.cost
        window_start, window_end = b.window
        rate: Decimal | None = None
        projected = low = high = None
        p_over = None
        exhausted = None
        if n:  # otherwise less than one whole unit of history: no rate, no forecast
            rate = _exact(sum(samples, _ZERO) / n)
            sd = statistics.stdev([float(x) for x in samples]) if n > 1 else 0.0
            if window_end is not None:
                remaining = max(0.0, (window_end - now) / unit)
                projected = _exact(b.spent + rate * Decimal(repr(remaining)))
                spread = sd * math.sqrt(remaining + remaining * remaining / n)
                half = _q(z * spread)
                low, high = max(b.spent, projected - half), projected + half
                if spread > 0:
                    p_over = 1 - statistics.NormalDist(float(projected), spread).cdf(float(b.limit))
                else:
                    p_over = 1.0 if projected > b.limit else 0.0
            elif rate > 0:
                left = b.limit - b.spent
                exhausted = now + unit * max(0.0, float(left / rate))
        out.append(Forecast(
            budget=b.name, period=b.period, limit=b.limit, spent=b.spent, reserved=b.reserved,
            window_start=window_start, window_end=window_end, now=now,
            unit="hour" if unit == timedelta(hours=1) else "day", samples=n, rate=rate,
            projected=projected, low=low, high=high, level=level, probability_over=p_over,
            exhausted_at=exhausted))
    return out


# --- savings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Savings:
    """The actual cost of the successful calls against the same token counts priced exactly on
    ``baseline``. ``saved = baseline_cost - actual`` (negative: the baseline would have been
    cheaper). Calls whose tokens cannot be priced on the baseline are counted in ``unpriced``
    and left out of both sums. ``by_model`` holds (model, calls, actual, baseline cost)."""

    baseline: str
    calls: int
    unpriced: int
    actual: Decimal
    baseline_cost: Decimal
    saved: Decimal
    saved_share: float
    by_model: list[tuple[str, int, Decimal, Decimal]] = field(default_factory=list)


def _catalog(catalog: Any) -> Any:
    if catalog is not None:
        return catalog
    from .catalog import Catalog

    return Catalog.bundled()


def _price(catalog: Any, model: str, r: UsageRecord) -> Decimal:
    return Decimal(catalog.cost(model, prompt_tokens=r.prompt_tokens,
                                completion_tokens=r.completion_tokens,
                                cached_tokens=min(r.cached_tokens, r.prompt_tokens),
                                reasoning_tokens=min(r.reasoning_tokens, r.completion_tokens)))


def _token_totals(recs: Sequence[UsageRecord]) -> dict[str, int]:
    return {"prompt_tokens": sum(r.prompt_tokens for r in recs),
            "completion_tokens": sum(r.completion_tokens for r in recs),
            "cached_tokens": sum(min(r.cached_tokens, r.prompt_tokens) for r in recs),
            "reasoning_tokens": sum(min(r.reasoning_tokens, r.completion_tokens) for r in recs),
            "requests": len(recs)}


def _price_all(catalog: Any, model: str, recs: Sequence[UsageRecord],
               totals: dict[str, int]) -> Decimal:
    """The exact cost of ``recs`` on ``model``: priced once on the summed token counts when the
    model's price does not depend on the prompt's size (cost is then linear in the counts),
    call by call otherwise."""
    if not getattr(catalog[model].pricing, "tiers", None):
        return Decimal(catalog.cost(model, **totals))
    return sum((_price(catalog, model, r) for r in recs), _ZERO)


def savings(tracker: CostTracker, baseline: str, *, since: datetime | None = None,
            until: datetime | None = None, project: str | None = None,
            catalog: Any = None) -> Savings:
    """What the successful calls cost against what ``baseline`` would have cost for the same
    tokens (cached and reasoning tokens priced as the baseline prices them).

    Raises:
        NotFoundInCatalogError: ``baseline`` is not in the catalog.
    """
    catalog = _catalog(catalog)
    catalog[baseline]  # raises NotFoundInCatalogError with close matches
    actual = base = _ZERO
    calls = unpriced = 0
    per: dict[str, list[Any]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project):
        if r.outcome != "ok":
            continue
        try:
            b = _price(catalog, baseline, r)
        except InvalidArgumentError:
            unpriced += 1
            continue
        calls += 1
        actual += r.cost
        base += b
        row = per.setdefault(r.model, [0, _ZERO, _ZERO])
        row[0] += 1
        row[1] += r.cost
        row[2] += b
    by_model = sorted(((m, n, a, c) for m, (n, a, c) in per.items()), key=lambda t: -t[2])
    return Savings(baseline=baseline, calls=calls, unpriced=unpriced, actual=actual,
                   baseline_cost=base, saved=base - actual, saved_share=_ratio(base - actual, base),
                   by_model=by_model)


# --- trends ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendRow:
    """One time bucket of :func:`trends`. ``calls`` and ``errors`` count calls made (a
    reclaim's booking, outcome ``abandoned``, and a refund are none); ``cost`` is every row's.
    ``errors``: calls whose outcome is not ok;
    ``fallbacks``: calls that needed more than one attempt (a retry or another model);
    ``cache_hits``: answers from orroute's response cache (outcome ``cache_hit``);
    ``prompt_cache_hits``: calls where the provider served part of the prompt from its cache
    (cached tokens > 0)."""

    period: str
    calls: int
    errors: int
    fallbacks: int
    cache_hits: int
    prompt_cache_hits: int
    cost: Decimal

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def _label(t: datetime, bucket: str) -> str:
    if bucket == "hour":
        return t.strftime("%Y-%m-%d %H:00")
    if bucket == "day":
        return t.strftime("%Y-%m-%d")
    if bucket == "week":
        return (t - timedelta(days=t.weekday())).strftime("%Y-%m-%d")
    return t.strftime("%Y-%m")


def trends(tracker: CostTracker, bucket: str = "day", *, since: datetime | None = None,
           until: datetime | None = None, project: str | None = None) -> list[TrendRow]:
    """Calls, errors, fallbacks and cache hits per time bucket (UTC; weeks start on Monday),
    oldest first. Buckets without calls are left out."""
    if bucket not in BUCKETS:
        raise InvalidArgumentError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    acc: dict[str, list[Any]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project):
        row = acc.setdefault(_label(r.time, bucket), [0, 0, 0, 0, 0, _ZERO])
        row[0] += r.is_call
        row[1] += r.is_call and r.outcome not in ("ok", CACHE_HIT_OUTCOME)
        row[2] += r.attempts > 1
        row[3] += r.outcome == CACHE_HIT_OUTCOME
        row[4] += r.cached_tokens > 0
        row[5] += r.cost
    return [TrendRow(k, *v) for k, v in sorted(acc.items())]


# --- estimates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimateRow:
    """Estimate against actual over the calls that recorded an estimate. ``error`` is
    ``(estimated - actual) / actual`` over the group's sums (positive: over-estimated);
    ``median_ratio`` the median of per-call ``estimated / actual``."""

    key: str
    calls: int
    estimated: Decimal
    actual: Decimal
    error: float | None
    median_ratio: float | None


def estimates(tracker: CostTracker, by: str = "model", *, since: datetime | None = None,
              until: datetime | None = None, project: str | None = None) -> list[EstimateRow]:
    """How good the router's cost estimates were, per ``by`` (model, task_type, provider,
    project or ``"total"``). The router records its expected cost (prompt tokens plus the task
    type's expected output), not the worst-case reservation; rows without an estimate are
    skipped."""
    if by not in ("model", "task_type", "provider", "project", "total"):
        raise InvalidArgumentError(f"cannot group estimates by {by!r}")
    groups: dict[str, list[Any]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project):
        if r.estimated_cost is None or r.outcome != "ok":
            continue
        key = "total" if by == "total" else str(getattr(r, by))
        g = groups.setdefault(key, [0, _ZERO, _ZERO, []])
        g[0] += 1
        g[1] += r.estimated_cost
        g[2] += r.cost
        if r.cost > 0:
            g[3].append(float(r.estimated_cost / r.cost))
    out = [EstimateRow(k, n, est, act, float((est - act) / act) if act else None,
                       statistics.median(ratios) if ratios else None)
           for k, (n, est, act, ratios) in groups.items()]
    out.sort(key=lambda r: -r.actual)
    return out


# --- feedback -------------------------------------------------------------------------------------

_stores: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _store(tracker: CostTracker) -> Any:
    """The feedback store next to the tracker's ledger (one per tracker: a ``:memory:`` ledger's
    store lives as long as the tracker)."""
    store = _stores.get(tracker)
    if store is None:
        from . import _core

        store = _stores[tracker] = _core.FeedbackStore(tracker._path)
    return store


@dataclass(frozen=True)
class FeedbackRow:
    """Mean quality score of one model on one task type."""

    model: str
    task_type: str
    count: int
    mean: float


def record_feedback(tracker: CostTracker, model: str, score: float, *,
                    task_type: str = "general", source: str = "user",
                    result_id: str = "", time: datetime | None = None) -> None:
    """Keeps a quality score in [0, 1] for ``model`` on ``task_type`` in the ledger. Managers
    created afterwards on this ledger rank with it (``AIModelManager.record_feedback`` writes
    here too)."""
    from . import _core

    e = _core.FeedbackEntry()
    e.model, e.task_type, e.score = model, task_type, float(score)
    e.source, e.result_id = source, result_id
    if time is not None:
        e.at = round(_utc(time).timestamp() * 1_000_000)
    _store(tracker).add(e)


def feedback(tracker: CostTracker) -> list[FeedbackRow]:
    """Every (model, task type) with feedback in the ledger, and its mean score."""
    return [FeedbackRow(s.model, s.task_type, s.count, s.mean) for s in _store(tracker).summary()]


def _quality_by_model(tracker: CostTracker) -> dict[str, tuple[float, int]]:
    """Mean score and count per model over every task type."""
    acc: dict[str, list[float]] = {}
    for s in _store(tracker).summary():
        a = acc.setdefault(s.model, [0.0, 0])
        a[0] += s.sum
        a[1] += s.count
    return {m: (total / n, int(n)) for m, (total, n) in acc.items() if n}


# --- performance ----------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 1): the smallest value with at least
    ``q x n`` values at or below it. None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class ModelPerformance:
    """One model in :func:`performance`. ``calls`` are the calls made (a reclaim's booking,
    outcome ``abandoned``, and a refund are no call: neither a failure nor a latency); ``cost``
    is every row's, theirs included. Latency and TTFT over successful calls; ``cost_per_call``
    is ``cost`` over the calls (failed calls usually cost nothing), ``cost_per_success`` over the
    successful ones (both rounded to 1e-18 USD); ``quality`` the mean feedback score (None
    without feedback)."""

    model: str
    calls: int
    successes: int
    success_rate: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    ttft_p99: float | None
    tokens_per_second: float | None
    cost: Decimal
    cost_per_call: Decimal
    cost_per_success: Decimal | None
    quality: float | None
    feedback_count: int
    errors: dict[str, int]


def performance(tracker: CostTracker, *, since: datetime | None = None,
                until: datetime | None = None, project: str | None = None,
                task_type: str | None = None) -> list[ModelPerformance]:
    """Per model, from the calls recorded in the ledger and the feedback kept there; most
    called first."""
    by_model: dict[str, list[UsageRecord]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project,
                                   task_type=task_type):
        by_model.setdefault(r.model or r.model_requested or "?", []).append(r)
    quality = _quality_by_model(tracker)
    out = []
    for model, rows in by_model.items():
        recs = [r for r in rows if r.is_call]  # a reclaim's booking or a refund is no call
        if not recs:
            continue
        ok = [r for r in recs if r.outcome in ("ok", CACHE_HIT_OUTCOME)]
        lat = [r.latency_s for r in ok if r.latency_s is not None]
        ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
        rates = [r.completion_tokens / (r.latency_s - (r.ttft_s or 0)) for r in ok
                 if r.latency_s is not None and r.completion_tokens
                 and r.latency_s - (r.ttft_s or 0) > 0]
        errors: dict[str, int] = {}
        for r in recs:
            if r.outcome not in ("ok", CACHE_HIT_OUTCOME):
                errors[r.error_class or r.outcome] = errors.get(r.error_class or r.outcome, 0) + 1
        cost = sum((r.cost for r in rows), _ZERO)  # what the model cost, bookings included
        q, nq = quality.get(model, (None, 0))
        out.append(ModelPerformance(
            model=model, calls=len(recs), successes=len(ok), success_rate=len(ok) / len(recs),
            latency_p50=percentile(lat, 0.5), latency_p95=percentile(lat, 0.95),
            latency_p99=percentile(lat, 0.99), ttft_p50=percentile(ttft, 0.5),
            ttft_p95=percentile(ttft, 0.95), ttft_p99=percentile(ttft, 0.99),
            tokens_per_second=statistics.median(rates) if rates else None, cost=cost,
            cost_per_call=_exact(cost / len(recs)),
            cost_per_success=_exact(sum((r.cost for r in ok), _ZERO) / len(ok)) if ok else None,
            quality=q, feedback_count=nq, errors=errors))
    out.sort(key=lambda p: (-p.calls, p.model))
    return out


# --- cheaper alternatives -------------------------------------------------------------------------


@dataclass(frozen=True)
class Alternative:
    """Calls of one task type that went to ``model`` and the cheapest model of at least the
    same quality for that type (within ``tolerance``) that would have answered them for less.
    Qualities are the selector's (its priors, with your feedback for the type folded in as the
    router does); costs reprice the same tokens exactly."""

    task_type: str
    model: str
    calls: int
    cost: Decimal
    quality: float
    alternative: str
    alternative_cost: Decimal
    alternative_quality: float
    saving: Decimal
    feedback_count: int

    @property
    def saving_share(self) -> float:
        return _ratio(self.saving, self.cost)


def cheaper_alternatives(tracker: CostTracker, *, tolerance: float = 0.0,
                         since: datetime | None = None, until: datetime | None = None,
                         project: str | None = None, candidates: Sequence[str] | None = None,
                         catalog: Any = None) -> list[Alternative]:
    """Which of your calls could have gone to a cheaper model, from the ledger and your feedback.

    For each (task type, model) among the successful calls, the candidates are the models the
    selector finds suitable for the task type (capabilities, context) or ``candidates``; each
    is scored with the quality the router would use (priors, with your feedback for that type
    folded in) and the group's calls are repriced on it. The cheapest candidate whose quality is
    at least the used model's minus ``tolerance`` is reported when it is cheaper. Groups with no
    such candidate are left out; the list is sorted by saving, highest first.
    """
    from .selector import ModelSelector

    catalog = _catalog(catalog)
    scores: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    for s in _store(tracker).summary():
        scores[(s.task_type, s.model)] = s.mean
        counts[(s.task_type, s.model)] = s.count
    groups: dict[tuple[str, str], list[UsageRecord]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project):
        if r.outcome == "ok" and r.model:
            groups.setdefault((r.task_type or "general", r.model), []).append(r)
    selector = ModelSelector()
    ranked_by_type: dict[str, dict[str, float]] = {}
    out = []
    for (task_type, model), recs in groups.items():
        if task_type not in ranked_by_type:
            fed = {m: q for (t, m), q in scores.items() if t == task_type}
            size = int(statistics.median(r.prompt_tokens for r in recs))
            ranked = []
            # as the router does: a guessed type the selector does not know ranks as general
            for kind in (task_type, "general"):
                try:
                    ranked = selector.rank(kind, size, predicted_quality=fed, explain=False)
                    break
                except InvalidArgumentError:
                    continue
                except NoModelAvailableError:
                    break
            ranked_by_type[task_type] = {c.model: c.quality for c in ranked}
        quality = ranked_by_type[task_type]
        if model not in quality:
            continue  # outside the selector's view (e.g. an endpoint's own model): no comparison
        pool = list(candidates) if candidates is not None else list(quality)
        cost = sum((r.cost for r in recs), _ZERO)
        totals = _token_totals(recs)
        best: tuple[Decimal, str] | None = None
        for alt in pool:
            if alt == model or alt not in quality or quality[alt] < quality[model] - tolerance:
                continue
            try:
                alt_cost = _price_all(catalog, alt, recs, totals)
            except (InvalidArgumentError, NotFoundInCatalogError):
                continue  # not priceable (dynamic price, not in the catalog)
            if alt_cost < cost and (best is None or alt_cost < best[0]):
                best = (alt_cost, alt)
        if best is not None:
            out.append(Alternative(
                task_type=task_type, model=model, calls=len(recs), cost=cost,
                quality=quality[model], alternative=best[1], alternative_cost=best[0],
                alternative_quality=quality[best[1]], saving=cost - best[0],
                feedback_count=counts.get((task_type, model), 0)))
    out.sort(key=lambda a: -a.saving)
    return out


# --- cascades -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CascadeRun:
    """One cascade run in the ledger: the calls of one task id that carry a cascade stage tag
    (``cascade`` = ``"<stage>/<stages>"``, ``cascade_final`` = the last stage's model; written by
    ``execute_cascade`` and the gateway's ``orroute/cascade``). ``stages``: the models called, in
    stage order (the answer of the last one stood); ``calls`` counts extra samples too."""

    task_id: str
    task_type: str
    time: datetime
    stages: tuple[str, ...]
    final: str
    calls: int
    cost: Decimal
    final_cost: Decimal  # the calls on the final model (0 when the run stopped before it)
    first_call: UsageRecord = field(repr=False)

    @property
    def escalated(self) -> bool:
        return len(self.stages) > 1


def cascades(tracker: CostTracker, *, since: datetime | None = None,
             until: datetime | None = None, project: str | None = None) -> list[CascadeRun]:
    """Every cascade run in the ledger (see :class:`CascadeRun`), oldest first."""
    from ._cascade_run import FINAL_TAG, STAGE_TAG

    runs: dict[str, list[tuple[int, UsageRecord]]] = {}
    for r in tracker.usage_history(since=since, until=until, project=project):
        label = r.tags.get(STAGE_TAG, "")
        stage, _, total = label.partition("/")
        if not (stage.isdigit() and total.isdigit() and r.task_id):
            continue
        runs.setdefault(r.task_id, []).append((int(stage), r))
    out = []
    for task_id, rows in runs.items():
        rows.sort(key=lambda x: (x[0], x[1].time, x[1].id))
        stages = tuple(dict.fromkeys(r.model for _, r in rows))
        first = rows[0][1]
        final = first.tags.get(FINAL_TAG, stages[-1])
        out.append(CascadeRun(task_id, first.task_type or "general", first.time, stages, final,
                              len(rows), sum((r.cost for _, r in rows), _ZERO),
                              sum((r.cost for _, r in rows if r.model == final), _ZERO), first))
    out.sort(key=lambda c: c.time)
    return out


@dataclass(frozen=True)
class CascadeSummary:
    """Cascade runs from ``first`` (cheap stage) to ``final`` (last stage): how many, how many
    escalated, what they cost, and what the final model alone would have cost (the escalated
    runs' final calls as paid; the others' first answers repriced on it: same prompt, an answer
    of the same length; None when it cannot be priced). ``quality_first``/``quality_final``:
    your mean feedback on each model (None without feedback)."""

    first: str
    final: str
    runs: int
    escalated: int
    cost: Decimal
    final_only_cost: Decimal | None
    quality_first: float | None
    quality_final: float | None

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.runs if self.runs else 0.0

    @property
    def saving(self) -> Decimal | None:
        return None if self.final_only_cost is None else self.final_only_cost - self.cost

    @property
    def cost_share(self) -> float | None:
        """Cost of the cascades as a share of the final model alone."""
        return None if self.final_only_cost is None else _ratio(self.cost, self.final_only_cost)


def cascade_summary(tracker: CostTracker, *, since: datetime | None = None,
                    until: datetime | None = None, project: str | None = None,
                    catalog: Any = None) -> list[CascadeSummary]:
    """:func:`cascades` grouped by (first stage, final stage), most runs first."""
    catalog = _catalog(catalog)
    quality = _quality_by_model(tracker)
    groups: dict[tuple[str, str], list[CascadeRun]] = {}
    for run in cascades(tracker, since=since, until=until, project=project):
        groups.setdefault((run.stages[0], run.final), []).append(run)
    out = []
    for (first, final), runs in groups.items():
        alone: Decimal | None = _ZERO
        for run in runs:
            if alone is None:
                break
            if run.stages[-1] == final:  # reached the final model: its call is what it cost
                alone += run.final_cost
                continue
            try:
                alone += _price(catalog, final, run.first_call)
            except (InvalidArgumentError, NotFoundInCatalogError, KeyError):
                alone = None
        out.append(CascadeSummary(
            first, final, len(runs), sum(1 for r in runs if r.escalated),
            sum((r.cost for r in runs), _ZERO), alone,
            quality.get(first, (None, 0))[0], quality.get(final, (None, 0))[0]))
    out.sort(key=lambda s: -s.runs)
    return out
