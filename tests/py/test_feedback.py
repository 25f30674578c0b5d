"""Feedback kept in the ledger outlives the manager that heard it; call rows carry the router's
expected cost (not the worst-case reservation); `models test` / `benchmark` runs are booked."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import orroute
from orroute import Task
from orroute import analytics as A
from orroute.cli import cli
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b", "test/c"]  # synthetic: $1/M prompt, $2/M completion tokens


def _manager(fake: FakeOpenRouter, ledger: str, **kw) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=ledger,
                                  strategy="quality_first", retry_base_delay=0.001, **kw)


def test_feedback_is_used_by_a_manager_created_after_a_restart(ledger_location: str,
                                                                tmp_path: Path) -> None:
    task = Task(messages="hi", type="general")
    with FakeOpenRouter(models=MODELS) as fake:
        order = _manager(fake, str(tmp_path / "other.sqlite3")).plan(task)["candidates"]
        first, last = order[0], order[-1]
        m = _manager(fake, ledger_location, fallbacks=MODELS)
        bad, good = m.execute_task_sync(task, model=first), m.execute_task_sync(task, model=last)
        m.record_feedback(bad.id, 0.0)
        m.record_feedback(good.id, 1.0)
        del m

        restarted = _manager(fake, ledger_location)
        again = restarted.plan(task)["candidates"]
        assert again[0] == last and again[-1] == first
        # a manager on another ledger has not heard any of it
        assert _manager(fake, str(tmp_path / "other.sqlite3")).plan(task)["candidates"] == order
    kept = {(r.model, r.task_type): (r.count, r.mean)
            for r in A.feedback(orroute.CostTracker(ledger_location))}
    # kept under the task type the router planned with (the analyzer's guess for "hi")
    assert kept == {(first, bad.task_type): (1, 0.0), (last, good.task_type): (1, 1.0)}


def test_call_rows_carry_the_expected_cost_not_the_reservation(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite3")
    task = Task(messages="hi", type="general", max_tokens=2000)
    with FakeOpenRouter(models=MODELS) as fake:
        m = _manager(fake, ledger, fallbacks=["test/a"], budget=10)
        plan = m.plan(task)
        m.execute_task_sync(task)
    (row,) = orroute.CostTracker(ledger).usage_history()
    # general tasks expect 500 output tokens (< max_tokens 2000): prompt x $1/M + 500 x $2/M
    # (the prompt counted with test/a's tokenizer, within a token of the plan's reference count)
    prompt_tokens = (row.estimated_cost - Decimal(500 * 2) / 10**6) * 10**6
    assert prompt_tokens == int(prompt_tokens) and abs(prompt_tokens - plan["prompt_tokens"]) <= 2
    # the plan's estimate is the reservation: max_tokens 2000 x $2/M plus the prompt as the
    # reservation counts it (the request as sent, with the model's own tokenizer)
    reserved_prompt = (plan["estimate"] - Decimal(2000 * 2) / 10**6) * 10**6
    assert reserved_prompt == int(reserved_prompt)
    assert abs(reserved_prompt - plan["prompt_tokens"]) <= 2
    assert row.estimated_cost < plan["estimate"]


def _run(fake: FakeOpenRouter, ledger: str, *args: str):
    env = {"OPENROUTER_API_KEY": "sk-or-test", "OPENROUTER_BASE_URL": fake.base_url}
    return CliRunner().invoke(cli, ["--ledger", ledger, *args], env=env)


def test_models_test_and_benchmark_runs_are_booked(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite3")
    with FakeOpenRouter(models=MODELS) as fake:
        fake.fail("test/c", Fault.server_error(500))
        assert _run(fake, ledger, "models", "test", "test/a").exit_code == 0
        r = _run(fake, ledger, "models", "benchmark", "test/b", "test/c", "--runs", "2")
        assert r.exit_code == 0, r.output
        assert _run(fake, ledger, "models", "test", "test/b", "--no-record").exit_code == 0
    rows = orroute.CostTracker(ledger).usage_history()
    assert [(r.model_requested, r.tags["source"], r.outcome) for r in rows] == [
        ("test/a", "models test", "ok"),
        ("test/b", "models benchmark", "ok"), ("test/b", "models benchmark", "ok"),
        ("test/c", "models benchmark", "error"), ("test/c", "models benchmark", "error")]
    assert all(r.latency_s is not None for r in rows if r.outcome == "ok")
    assert all(r.cost > 0 for r in rows if r.outcome == "ok")
    perf = json.loads(CliRunner().invoke(cli, ["--ledger", ledger, "models", "performance",
                                               "--json"]).stdout)
    by_model = {m["model"]: m for m in perf["models"]}
    assert by_model["test/c"]["success_rate"] == 0.0
    assert by_model["test/b"]["calls"] == 2


@pytest.mark.parametrize("score", [-0.1, 1.5, float("nan")])
def test_bad_scores_are_refused_and_not_kept(tmp_path: Path, score: float) -> None:
    t = orroute.CostTracker(tmp_path / "l.sqlite3")
    with pytest.raises(orroute.InvalidArgumentError):
        A.record_feedback(t, "test/a", score)
    assert A.feedback(t) == []
