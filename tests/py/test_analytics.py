"""orroute.analytics and `orroute analytics ...`: every figure against a small ledger whose answers
are worked out by hand below (both backends)."""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from click.testing import CliRunner

import orroute
from orroute import analytics as A
from orroute.cli import cli

UTC = timezone.utc
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
MINI, HAIKU, BASE = "openai/gpt-4o-mini", "anthropic/claude-3-haiku", "openai/gpt-4o"

# (time, model, provider, project, user, conversation, task type, cost, estimate, prompt,
#  completion, cached, latency, ttft, outcome, attempts)
CALLS = [
    (datetime(2025, 3, 1, 10, tzinfo=UTC), MINI, "openai", "p1", "alice", "c1", "coding",
     "0.010", "0.012", 1000, 200, 0, 1.0, 0.2, "ok", 1),
    (datetime(2025, 3, 1, 12, tzinfo=UTC), HAIKU, "anthropic", "p1", "bob", "c1", "general",
     "0.020", "0.015", 2000, 400, 500, 2.0, 0.4, "ok", 2),
    (datetime(2025, 3, 2, 9, tzinfo=UTC), MINI, "openai", "p2", "alice", "c2", "coding",
     "0.030", None, 3000, 300, 0, 3.0, 0.3, "ok", 1),
    (datetime(2025, 3, 2, 15, tzinfo=UTC), MINI, "openai", "p2", "bob", "c2", "coding",
     "0", None, 500, 0, 0, None, None, "error", 1),
    (datetime(2025, 3, 3, 8, tzinfo=UTC), HAIKU, "anthropic", "p1", "alice", "c3", "general",
     "0.040", "0.050", 1500, 600, 0, 4.0, 1.0, "ok", 1),
]


@pytest.fixture
def tracker(ledger_location: str) -> orroute.CostTracker:
    t = orroute.CostTracker(ledger_location, clock=lambda: NOW)
    for (at, model, provider, project, user, conv, ttype, cost, est, pt, ct, cached, lat, ttft,
         outcome, attempts) in CALLS:
        t.record_call(time=at, cost=cost, model=model, provider=provider, project=project,
                      conversation=conv, tags={"user": user}, task_type=ttype,
                      estimated_cost=est, prompt_tokens=pt, completion_tokens=ct,
                      cached_tokens=cached, latency=lat, ttft=ttft, outcome=outcome,
                      error_class="" if outcome == "ok" else "RateLimitError",
                      attempts=attempts)
    return t


def _by(rows, attr="key"):
    return {getattr(r, attr): r for r in rows}


@pytest.mark.parametrize(("by", "expected"), [
    ("model", {MINI: "0.040", HAIKU: "0.060"}),
    ("provider", {"openai": "0.040", "anthropic": "0.060"}),
    ("project", {"p1": "0.070", "p2": "0.030"}),
    ("user", {"alice": "0.080", "bob": "0.020"}),
    ("tag:user", {"alice": "0.080", "bob": "0.020"}),
    ("conversation", {"c1": "0.030", "c2": "0.030", "c3": "0.040"}),
    ("task_type", {"coding": "0.040", "general": "0.060"}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_spend_by_column(tracker, by: str, expected: dict[str, str]) -> None:
    rows = A.spend(tracker, by=by)
    assert {r.key: r.cost for r in rows} == {k: Decimal(v) for k, v in expected.items()}
    assert all(r.period == "total" for r in rows)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    if by == "model":
        mini = _by(rows)[MINI]
        assert (mini.calls, mini.errors, mini.share) == (3, 1, pytest.approx(0.4))
        assert mini.prompt_tokens == 4500 and mini.completion_tokens == 500


def test_spend_by_day_and_per_bucket(tracker) -> None:
    days = A.spend(tracker, by="day")
    assert [(r.period, r.cost, r.calls) for r in days] == [
        ("2025-03-01", Decimal("0.030"), 2), ("2025-03-02", Decimal("0.030"), 2),
        ("2025-03-03", Decimal("0.040"), 1)]
    per_user_day = A.spend(tracker, by="user", bucket="day")
    assert {(r.period, r.key): r.cost for r in per_user_day} == {
        ("2025-03-01", "alice"): Decimal("0.010"), ("2025-03-01", "bob"): Decimal("0.020"),
        ("2025-03-02", "alice"): Decimal("0.030"), ("2025-03-02", "bob"): Decimal(0),
        ("2025-03-03", "alice"): Decimal("0.040")}
    with pytest.raises(orroute.InvalidArgumentError):
        A.spend(tracker, by="colour")


def test_trends_count_errors_fallbacks_and_cache_hits(tracker) -> None:
    rows = A.trends(tracker, "day")
    got = [(r.period, r.calls, r.errors, r.fallbacks, r.cache_hits, r.prompt_cache_hits, r.cost)
           for r in rows]
    assert got == [("2025-03-01", 2, 0, 1, 0, 1, Decimal("0.030")),
                   ("2025-03-02", 2, 1, 0, 0, 0, Decimal("0.030")),
                   ("2025-03-03", 1, 0, 0, 0, 0, Decimal("0.040"))]
    assert rows[1].error_rate == 0.5
    week = A.trends(tracker, "week")  # Sat Mar 1 and Sun Mar 2 are in the week of Mon Feb 24
    assert [(r.period, r.calls) for r in week] == [("2025-02-24", 4), ("2025-03-03", 1)]


def test_estimates_compare_the_recorded_estimate_with_the_actual_cost(tracker) -> None:
    rows = _by(A.estimates(tracker, "model"))
    mini, haiku = rows[MINI], rows[HAIKU]
    assert (mini.calls, mini.estimated, mini.actual) == (1, Decimal("0.012"), Decimal("0.010"))
    assert mini.error == pytest.approx(0.2)
    assert (haiku.calls, haiku.estimated, haiku.actual) == (2, Decimal("0.065"), Decimal("0.060"))
    assert haiku.error == pytest.approx(0.005 / 0.06)
    assert haiku.median_ratio == pytest.approx((0.75 + 1.25) / 2)
    (total,) = A.estimates(tracker, "total")
    assert total.estimated == Decimal("0.077") and total.actual == Decimal("0.070")


def test_performance_percentiles_success_quality_and_cost_per_call(tracker) -> None:
    A.record_feedback(tracker, MINI, 0.5, task_type="coding")
    A.record_feedback(tracker, MINI, 1.0, task_type="coding")
    rows = _by(A.performance(tracker), "model")
    mini = rows[MINI]
    assert (mini.calls, mini.successes) == (3, 2)
    assert mini.success_rate == pytest.approx(2 / 3)
    # nearest rank over [1.0, 3.0]: p50 = the 1st value, p95 and p99 = the 2nd
    assert (mini.latency_p50, mini.latency_p95, mini.latency_p99) == (1.0, 3.0, 3.0)
    assert (mini.ttft_p50, mini.ttft_p99) == (0.2, 0.3)
    assert mini.cost_per_call == (Decimal("0.040") / 3).quantize(Decimal("1e-18"))
    assert mini.cost_per_success == Decimal("0.020")
    assert (mini.quality, mini.feedback_count) == (0.75, 2)
    assert mini.errors == {"RateLimitError": 1}
    # tokens/s = completion / (latency - ttft): 200/0.8 = 250 and 300/2.7 = 111.1; median
    assert mini.tokens_per_second == pytest.approx((250 + 300 / 2.7) / 2)
    haiku = rows[HAIKU]
    assert (haiku.latency_p50, haiku.latency_p95, haiku.quality) == (2.0, 4.0, None)
    assert A.percentile([5, 1, 4, 2, 3], 0.5) == 3 and A.percentile([], 0.5) is None


def test_a_reclaims_booking_is_no_call_of_its_model(ledger_location: str) -> None:
    """A reclaim books the money of a reservation no settle came for as one row of outcome
    abandoned, under the reservation's model, with no latency. It is no call: performance counted
    it as a failed call of that model (a success rate of 50% for a model whose every call
    succeeded), the report and trends as a call and an error. Its cost stays in every total."""
    now = [NOW - timedelta(hours=1)]
    t = orroute.CostTracker(ledger_location, clock=lambda: now[0], leases=False)
    t.reserve("0.50", model=MINI, ttl=60)
    if t.backend == "sqlite":  # its process lives here: only another host's is booked
        with sqlite3.connect(ledger_location) as db:
            db.execute("UPDATE reservations SET host = 'elsewhere', expires_at = 1")
    now[0] = NOW
    assert t.reclaim() == 1
    t.record_call(cost="0.10", model=MINI, latency=1.0, time=NOW)
    booked, made = sorted(t.usage_history(), key=lambda r: r.is_call)
    assert (booked.outcome, booked.model, booked.is_call, made.is_call) == ("abandoned", MINI, False, True)
    (perf,) = A.performance(t)
    assert (perf.model, perf.calls, perf.success_rate, perf.errors) == (MINI, 1, 1.0, {})
    assert perf.cost == Decimal("0.60")
    (row,) = t.report("all", by="model")
    assert (row.calls, row.errors, row.cost) == (1, 0, Decimal("0.60"))
    trend = A.trends(t, "day")
    assert (sum(r.calls for r in trend), sum(r.errors for r in trend)) == (1, 0)
    assert sum(r.cost for r in trend) == Decimal("0.60")
    assert t.to_dataframe()["is_call"].tolist().count(False) == 1


def test_savings_reprice_the_same_tokens_on_the_baseline(tracker) -> None:
    catalog = orroute.Catalog.bundled()
    base = catalog[BASE].pricing.base
    prompt, completion = base.prompt, base.completion
    cache_read = base.input_cache_read if base.input_cache_read else prompt
    expected = Decimal(0)
    for c in CALLS:
        if c[14] != "ok":
            continue
        pt, ct, cached = c[9], c[10], c[11]
        expected += (pt - cached) * prompt + cached * cache_read + ct * completion
    s = A.savings(tracker, BASE)
    assert (s.calls, s.unpriced) == (4, 0)
    assert s.actual == Decimal("0.100")
    assert s.baseline_cost == expected
    assert s.saved == expected - Decimal("0.100")
    assert {m: n for m, n, _, _ in s.by_model} == {MINI: 2, HAIKU: 2}
    with pytest.raises(orroute.NotFoundInCatalogError):
        A.savings(tracker, "no/such-model")


def test_forecast_projects_the_period_end_with_an_interval(tracker) -> None:
    tracker.set_budget("1", period="monthly")
    (f,) = A.forecast(tracker, now=NOW)
    # whole days since the first call's day: Mar 1, 2, 3 -> 0.03, 0.03, 0.04 USD
    samples = [0.03, 0.03, 0.04]
    remaining = 27.5  # days from Mar 4 12:00 to Apr 1 00:00
    rate = (Decimal("0.1") / 3).quantize(Decimal("1e-18"))
    projected = (Decimal("0.1") + rate * Decimal("27.5")).quantize(Decimal("1e-18"))
    spread = statistics.stdev(samples) * math.sqrt(remaining + remaining**2 / 3)
    half = statistics.NormalDist().inv_cdf(0.95) * spread
    assert (f.budget, f.unit, f.samples) == ("global/monthly", "day", 3)
    assert f.spent == Decimal("0.100") and f.rate == rate
    assert f.projected == projected
    assert float(f.low) == pytest.approx(float(projected) - half, abs=1e-9)
    assert float(f.high) == pytest.approx(float(projected) + half, abs=1e-9)
    p_over = 1 - statistics.NormalDist(float(projected), spread).cdf(1.0)
    assert f.probability_over == pytest.approx(p_over)
    assert f.window_end == datetime(2025, 4, 1, tzinfo=UTC)


def test_forecast_of_a_total_budget_says_when_it_runs_out(tracker) -> None:
    tracker.set_budget("0.2", project="p1")
    (f,) = A.forecast(tracker, now=NOW)
    # p1 spent 0.01 + 0.02 (Mar 1) and 0.04 (Mar 3): 0.07 over 3 whole days
    assert f.spent == Decimal("0.070") and f.samples == 3
    assert f.projected is None and f.window_end is None
    days = float((Decimal("0.2") - Decimal("0.07")) / (Decimal("0.07") / 3).quantize(Decimal("1e-18")))
    assert f.exhausted_at == NOW + timedelta(days=days)
    with pytest.raises(orroute.NotFoundInCatalogError):
        A.forecast(tracker, budget="project:nope/total")


def test_forecast_needs_one_whole_unit_of_history(tmp_path) -> None:
    now = NOW + timedelta(minutes=30)
    t = orroute.CostTracker(tmp_path / "l.sqlite3", clock=lambda: now)
    t.set_budget("1", period="daily")
    t.record_call(time=now - timedelta(minutes=10), cost="0.5", model=MINI)  # within this hour
    (f,) = A.forecast(t, now=now)
    assert (f.spent, f.samples, f.unit) == (Decimal("0.5"), 0, "hour")
    assert f.rate is None and f.projected is None and f.probability_over is None


def test_feedback_survives_a_new_tracker_and_feeds_the_alternatives(ledger_location) -> None:
    t = orroute.CostTracker(ledger_location)
    # two general calls on haiku; the user rates mini well and haiku badly for general tasks
    for _ in range(2):
        t.record_call(cost="0.05", model=HAIKU, task_type="general", prompt_tokens=1000,
                      completion_tokens=500)
    for score in (1.0, 0.9):
        A.record_feedback(t, MINI, score, task_type="general")
    A.record_feedback(t, HAIKU, 0.1, task_type="general")

    again = orroute.CostTracker(ledger_location)  # a new process, as far as the ledger can tell
    assert {(r.model, r.task_type): (r.count, r.mean) for r in A.feedback(again)} == {
        (MINI, "general"): (2, pytest.approx(0.95)), (HAIKU, "general"): (1, 0.1)}
    (alt,) = A.cheaper_alternatives(again, candidates=[MINI])
    mini_cost = orroute.Catalog.bundled().cost(MINI, prompt_tokens=1000, completion_tokens=500)
    assert (alt.model, alt.alternative, alt.calls) == (HAIKU, MINI, 2)
    assert alt.alternative_cost == 2 * Decimal(mini_cost)
    assert alt.saving == Decimal("0.10") - 2 * Decimal(mini_cost)
    assert alt.alternative_quality >= alt.quality
    # rated the other way round, mini is no longer good enough for haiku's calls
    for _ in range(5):
        A.record_feedback(again, MINI, 0.0, task_type="general")
        A.record_feedback(again, HAIKU, 1.0, task_type="general")
    assert A.cheaper_alternatives(again, candidates=[MINI]) == []


# --- the command line ------------------------------------------------------------------------


def run(ledger: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", ledger, *args])


def test_cli_cost_by_day_prints_the_dates(tracker, ledger_location) -> None:
    r = run(ledger_location, "analytics", "cost", "--period", "all", "--by", "day")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()  # piped: TSV
    assert lines[0].split("\t")[:2] == ["day", "calls"]
    assert [ln.split("\t")[0] for ln in lines[1:]] == ["2025-03-01", "2025-03-02", "2025-03-03"]
    data = json.loads(run(ledger_location, "analytics", "cost", "--period", "all", "--by", "user",
                          "--json").stdout)
    assert {row["user"]: Decimal(row["cost"]) for row in data["rows"]} == {
        "alice": Decimal("0.080"), "bob": Decimal("0.020")}
    assert Decimal(data["total_cost"]) == Decimal("0.100")
    r = run(ledger_location, "analytics", "cost", "--by", "colour")
    assert r.exit_code == 2 and "tag:KEY" in r.output


def test_cli_reports_match_the_library(tracker, ledger_location) -> None:
    tracker.set_budget("1", period="monthly")
    data = json.loads(run(ledger_location, "analytics", "savings", "--baseline", BASE,
                          "--period", "all", "--json").stdout)
    assert Decimal(data["saved"]) == A.savings(tracker, BASE).saved
    data = json.loads(run(ledger_location, "analytics", "trends", "--period", "all",
                          "--json").stdout)
    assert (data["rows"][0]["period"], data["rows"][0]["fallbacks"]) == ("2025-03-01", 1)
    data = json.loads(run(ledger_location, "analytics", "estimates", "--period", "all",
                          "--json").stdout)
    assert {r["key"]: r["estimated"] for r in data["rows"]}[HAIKU] == "0.065"
    data = json.loads(run(ledger_location, "analytics", "forecast", "--json").stdout)
    assert data["forecasts"][0]["budget"] == "global/monthly"
    perf = json.loads(run(ledger_location, "models", "performance", "--json").stdout)
    row = {m["model"]: m for m in perf["models"]}[MINI]
    assert (row["latency_p99"], row["calls"]) == (3.0, 3)
    r = run(ledger_location, "analytics", "savings", "--baseline", "openai/gpt-4o-typo")
    assert r.exit_code == 5 and "did you mean" in r.output


def test_cli_rate_then_performance_shows_quality(tracker, ledger_location) -> None:
    assert run(ledger_location, "models", "rate", MINI, "0.6", "--task", "code").exit_code == 0
    assert run(ledger_location, "models", "rate", MINI, "-1").exit_code == 2
    assert run(ledger_location, "models", "rate", "no/such", "0.5").exit_code == 5
    data = json.loads(run(ledger_location, "analytics", "feedback", "--json").stdout)
    assert data["feedback"] == [{"model": MINI, "task_type": "coding", "count": 1, "mean": 0.6}]
    perf = json.loads(run(ledger_location, "models", "performance", "--json").stdout)
    assert {m["model"]: m["quality"] for m in perf["models"]}[MINI] == 0.6
