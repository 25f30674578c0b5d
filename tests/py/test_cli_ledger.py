"""`orroute budget`, `analytics cost` and `models performance` over a ledger written through the
public CostTracker API."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import orroute
from orroute.cli import cli


@pytest.fixture
def ledger(ledger_location: str) -> str:
    """A SQLite file or a Redis URL: the CLI takes either as --ledger."""
    return ledger_location


def run(ledger: str, *args: str):
    return CliRunner().invoke(cli, ["--ledger", str(ledger), *args])


def _record(tracker, model: str, cost: str, *, project: str = "p1", task_type: str = "coding",
            latency: float = 1.0, ttft: float = 0.2, outcome: str = "ok", completion: int = 80,
            estimated: str | None = None) -> None:
    tracker.record_call(cost=cost, model=model, project=project, task_type=task_type,
                        prompt_tokens=100, completion_tokens=completion, latency=latency,
                        ttft=ttft, outcome=outcome,
                        error_class="" if outcome == "ok" else "InternalServerError",
                        estimated_cost=estimated)


def test_budget_set_status_remove(ledger: str) -> None:
    r = run(ledger, "budget", "set", "5", "--period", "daily", "--project", "p1", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["name"] == "project:p1/daily" and Decimal(data["limit"]) == 5
    assert run(ledger, "budget", "set", "2.5").exit_code == 0  # a global total budget
    _record(orroute.CostTracker(ledger), "openai/gpt-4o", "1.25")
    data = json.loads(run(ledger, "budget", "status", "--json").stdout)
    by_name = {b["name"]: b for b in data["budgets"]}
    assert Decimal(by_name["global/total"]["spent"]) == Decimal("1.25")
    assert Decimal(by_name["global/total"]["remaining"]) == Decimal("1.25")
    assert Decimal(by_name["project:p1/daily"]["remaining"]) == Decimal("3.75")
    table = run(ledger, "budget", "status").stdout
    assert "project:p1/daily" in table and "$3.75" in table and "50%" in table
    assert run(ledger, "budget", "remove", "--period", "daily", "--project", "p1").exit_code == 0
    assert run(ledger, "budget", "remove", "--period", "daily", "--project", "p1").exit_code == 5


def test_cutoff_is_visible_and_lifted(ledger: str) -> None:
    assert run(ledger, "budget", "cutoff", "--reason", "incident 42").exit_code == 0
    assert orroute.CostTracker(ledger).cutoff_reason == "incident 42"
    assert json.loads(run(ledger, "budget", "status", "--json").stdout)["cutoff"] == "incident 42"
    assert run(ledger, "budget", "resume").exit_code == 0
    assert orroute.CostTracker(ledger).cutoff_reason is None


def test_bad_budget_input_is_a_usage_error(ledger: str) -> None:
    assert run(ledger, "budget", "set", "-1").exit_code == 2
    assert run(ledger, "budget", "set", "1", "--tag", "alice").exit_code == 2
    assert run(ledger, "budget", "set", "1", "--period", "hourly").exit_code == 2


def test_analytics_cost_groups_exactly(ledger: str) -> None:
    t = orroute.CostTracker(ledger)
    _record(t, "openai/gpt-4o", "0.0000001", estimated="0.0000002")
    _record(t, "openai/gpt-4o", "0.0000002", task_type="reasoning", project="p2")
    _record(t, "openai/gpt-4o-mini", "0.0000004", task_type="general")
    data = json.loads(run(ledger, "analytics", "cost", "--period", "all", "--json").stdout)
    assert Decimal(data["total_cost"]) == Decimal("0.0000007")  # exact, no float drift
    rows = {r["model"]: r for r in data["rows"]}
    assert rows["openai/gpt-4o"]["calls"] == 2
    assert Decimal(rows["openai/gpt-4o"]["cost"]) == Decimal("0.0000003")
    assert data["rows"][0]["model"] == "openai/gpt-4o-mini"  # most expensive first
    by_type = json.loads(run(ledger, "analytics", "cost", "--period", "today", "--by",
                             "task-type", "--json").stdout)
    assert {r["task-type"] for r in by_type["rows"]} == {"coding", "reasoning", "general"}
    by_project = json.loads(run(ledger, "analytics", "cost", "--by", "project", "--project", "p2",
                                "--json").stdout)
    assert [r["project"] for r in by_project["rows"]] == ["p2"]
    by_day = json.loads(run(ledger, "analytics", "cost", "--by", "day", "--json").stdout)
    assert len(by_day["rows"]) == 1 and by_day["rows"][0]["calls"] == 3
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert by_day["rows"][0]["day"] == today  # the date, not "total"
    piped = run(ledger, "analytics", "cost", "--period", "week").stdout
    assert piped.splitlines()[1].split("\t")[:2] == ["openai/gpt-4o-mini", "1"]
    table = CliRunner().invoke(cli, ["--ledger", ledger, "analytics", "cost", "--period", "week"],
                               env={"ORROUTE_OUTPUT": "table"}).stdout
    assert "openai/gpt-4o-mini" in table and "total $0.0000007 over 3 calls" in table


def test_analytics_on_an_empty_ledger(ledger: str) -> None:
    r = run(ledger, "analytics", "cost")
    assert r.exit_code == 0 and "no calls recorded" in r.stdout


def test_models_performance_from_recorded_calls(ledger: str) -> None:
    t = orroute.CostTracker(ledger)
    for lat in (1.0, 2.0, 3.0):
        _record(t, "openai/gpt-4o", "0.001", latency=lat, ttft=0.5)
    _record(t, "openai/gpt-4o", "0", outcome="error")
    data = json.loads(run(ledger, "models", "performance", "--json").stdout)
    row = data["models"][0]
    assert row["model"] == "openai/gpt-4o" and row["calls"] == 4
    assert row["success_rate"] == 0.75
    assert row["latency_p50"] == 2.0
    assert row["ttft_p50"] == 0.5
    assert Decimal(row["cost_per_success"]) == Decimal("0.001")
    assert row["errors"] == {"InternalServerError": 1}
    assert "75%" in run(ledger, "models", "performance").stdout


def test_simulate_compares_strategies(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("orroute._simulate") is None:
        pytest.skip("orroute.simulate's implementation is not merged yet")
    work = tmp_path / "work.jsonl"
    work.write_text("\n".join(json.dumps(t) for t in [
        {"type": "coding", "prompt": "Write a quicksort in Rust.", "max_tokens": 400},
        {"type": "general", "prompt": "What is 2+2?", "max_tokens": 20},
        {"type": "reasoning", "prompt": "Prove sqrt(2) is irrational.", "max_tokens": 600},
    ]) + "\n")
    r = CliRunner().invoke(cli, ["simulate", str(work), "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["strategy"]: row for row in json.loads(r.stdout)["rows"]}
    assert set(rows) == {"cost_optimized", "balanced", "performance", "quality_first"}
    assert all(row["tasks"] == 3 for row in rows.values())
    assert Decimal(rows["cost_optimized"]["total_cost"]) <= \
        Decimal(rows["quality_first"]["total_cost"])
    table = CliRunner().invoke(cli, ["simulate", str(work), "-s", "cost_optimized,balanced"])
    assert "cost_optimized" in table.stdout and "quality_first" not in table.stdout


def test_simulate_input_errors(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["simulate", str(tmp_path / "none.jsonl")]).exit_code == 2
    work = tmp_path / "w.jsonl"
    work.write_text('{"type": "coding", "prompt": "x"}\n')
    r = CliRunner().invoke(cli, ["simulate", str(work), "-s", "fastest"])
    assert r.exit_code == 2 and "unknown strategy" in r.stderr


def test_simulate_malformed_workload_names_the_line(tmp_path: Path) -> None:
    work = tmp_path / "w.jsonl"
    work.write_text('{"type": "coding", "prompt": "x"}\n\nnot json\n')
    r = CliRunner().invoke(cli, ["simulate", str(work)])
    assert r.exit_code == 1
    assert f"{work}:3: not JSON" in r.stderr and r.stderr.count("\n") == 1
    work.write_text('["a list"]\n')
    r = CliRunner().invoke(cli, ["simulate", str(work)])
    assert r.exit_code == 1 and ":1: expected a JSON object" in r.stderr
