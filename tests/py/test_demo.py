"""The demo workload (orroute.demo) and `orroute demo` end to end, offline."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import orroute
from orroute import demo
from orroute.cli import cli


def test_workload_is_thirty_mixed_tasks_with_one_stream_and_one_long_context() -> None:
    tasks = demo.workload()
    specs = demo.workload_specs()
    assert len(tasks) == 30
    assert all(isinstance(t, orroute.Task) for t in tasks)
    assert len({t.id for t in tasks}) == 30
    types = Counter(t.type for t in tasks)
    assert {"coding", "general", "bulk_processing", "reasoning", "large_context"} <= set(types)
    assert types["bulk_processing"] >= 6
    assert sum(s.stream for s in specs) == 1
    long_task = next(t for t in tasks if t.type == "large_context")
    assert len(long_task.messages[0]["content"]) > 100_000  # tens of thousands of tokens
    assert all(t.max_tokens for t in tasks)


def test_workload_is_deterministic() -> None:
    assert demo.workload_specs() == demo.workload_specs()


def test_demo_replies_fit_the_task() -> None:
    def reply(prompt: str) -> str:
        return demo.demo_reply({"messages": [{"role": "user", "content": prompt}]})

    specs = {s.type: s for s in demo.workload_specs()}
    assert "```" in reply(specs["coding"].prompt)
    assert reply(specs["bulk_processing"].prompt).startswith("The customer")
    assert "Step 1" in reply(specs["reasoning"].prompt)
    assert reply(specs["coding"].prompt) == reply(specs["coding"].prompt)


# --- end to end, offline -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """One offline demo run, time-compressed (the real one is `orroute demo`)."""
    home = tmp_path_factory.mktemp("home")
    r = CliRunner().invoke(cli, ["demo", "--speed", "40", "--json"],
                           env={"ORROUTE_HOME": str(home), "OPENROUTER_API_KEY": None})
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), home


def test_demo_runs_offline_and_books_everything_in_its_ledger(demo_run) -> None:
    summary, home = demo_run
    assert summary["mode"] == "offline"
    assert summary["ledger"] == str(home / "demo.sqlite3")
    assert summary["tasks"] == 30 and summary["succeeded"] >= 20
    # a task may be refused by the (deliberately small) budget, never fail otherwise
    errors = [o["error"] for o in summary["outcomes"] if o["error"]]
    assert all(e.startswith("refused by the budget") for e in errors), errors
    tracker = orroute.CostTracker(summary["ledger"])
    rows = tracker.usage_history(project=summary["project"])
    assert len(rows) >= summary["succeeded"]
    assert tracker.total_cost(project=summary["project"]) == Decimal(summary["total_cost"])
    assert sum(Decimal(r["cost"]) for r in summary["by_model"].values()) == \
        Decimal(summary["total_cost"])
    assert set(summary["by_task_type"]) >= {"coding", "general", "bulk_processing", "reasoning"}


def test_demo_shows_a_fallback_an_alert_and_savings(demo_run) -> None:
    summary, _ = demo_run
    brief = {k: summary[k] for k in ("fallbacks", "alerts", "total_cost", "budget", "failed")}
    assert summary["fallbacks"] >= 1, brief
    assert summary["alerts"], brief
    assert Decimal(summary["total_cost"]) <= Decimal(summary["budget"])
    assert Decimal(summary["savings"]) > 0
    assert Decimal(summary["premium_cost"]) > Decimal(summary["total_cost"])


def test_demo_text_output_walks_through_the_story(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["demo", "--speed", "40", "--tasks", "17"],
                           env={"ORROUTE_HOME": str(tmp_path)})
    assert r.exit_code == 0, r.output
    out = r.output
    assert "offline (no OPENROUTER_API_KEY set)" in out
    assert "streaming" in out
    assert "falling back" in out
    assert "cost by model" in out and "cost by task type" in out
    assert "saved $" in out
    assert str(tmp_path / "demo.sqlite3") in out


def test_demo_survives_a_provider_outage(demo_run) -> None:
    """The outage scene: OpenRouter goes down half way and the same model answers from the
    Anthropic fake; every task answers, each booked with its provider at that provider's price."""
    summary, _ = demo_run
    outage = summary["provider_outage"]
    assert outage["answered"] == outage["tasks"] == 6
    assert {p: v["calls"] for p, v in outage["by_provider"].items()} == \
        {"openrouter": 3, "anthropic": 3}
    tracker = orroute.CostTracker(summary["ledger"])
    rows = tracker.usage_history(project=summary["project"] + "-outage")
    by_tag: dict[str, Decimal] = {}
    for r in rows:
        by_tag[r.tags["provider"]] = by_tag.get(r.tags["provider"], Decimal(0)) + r.cost
    assert by_tag == {p: Decimal(v["cost"]) for p, v in outage["by_provider"].items()}
