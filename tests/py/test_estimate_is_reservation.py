"""``CostTracker.estimate_cost`` and ``simulate`` price what the engine reserves: the engine's own
plan (same model, same prompt count with that model's tokenizer, same output bound), so for
the same task the estimate IS the reservation: a budget of exactly the estimate admits the call,
one attounit (1e-18 USD) less refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

ATTO = Decimal("1e-18")

TASKS = [
    Task(messages="Say hi.", max_tokens=5),
    Task(type="coding", messages="Write a Python function that parses ISO 8601 dates, with tests.",
         max_tokens=400),
    Task(messages=[{"role": "system", "content": "You are terse."},
                   {"role": "user", "content": "Summarise the plot of Hamlet. " * 20}]),  # no bound
    Task(type="reasoning", messages="Prove that there are infinitely many primes, step by step.",
         max_tokens=900),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as f:
        yield f


def _manager(fake: FakeOpenRouter, **kw) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                  refresh_catalog=False, **kw)


def _admits(fake: FakeOpenRouter, task: Task, budget: Decimal, model: str | None) -> bool:
    m = _manager(fake, budget=budget)
    try:
        m.execute_task_sync(task, model=model)
    except orroute.BudgetExceededError:
        return False
    return True


@pytest.mark.parametrize("task", TASKS, ids=["tiny", "coding", "unbounded", "reasoning"])
@pytest.mark.parametrize("model", [None, "openai/gpt-4o-mini", "anthropic/claude-sonnet-4.5"])
def test_the_trackers_estimate_is_exactly_the_reservation(fake, task: Task, model) -> None:
    standalone = orroute.CostTracker(":memory:").estimate_cost(task, model)
    manager = _manager(fake)
    from_manager = manager.cost_tracker.estimate_cost(task, model)
    assert standalone == from_manager > 0
    assert _admits(fake, task, standalone, model)
    assert not _admits(fake, task, standalone - ATTO, model)


def test_without_a_model_the_estimate_prices_the_routers_first_choice(fake) -> None:
    task = TASKS[1]
    manager = _manager(fake, strategy="cost_optimized")
    plan = manager.plan(task)
    assert manager.cost_tracker.estimate_cost(task) == plan["estimate"]
    assert manager.cost_tracker.estimate_cost(task, plan["candidates"][0]) == plan["estimate"]


def test_simulate_prices_what_a_manager_with_that_strategy_reserves(fake) -> None:
    pytest.importorskip("pandas")
    strategies = ["cost_optimized", "quality_first"]
    detail = orroute.simulate(TASKS, strategies=strategies, detail=True)
    for strategy in strategies:
        rows = list(detail[detail.strategy == strategy].itertuples())
        manager = _manager(fake, strategy=strategy)
        for row, task in zip(rows, TASKS, strict=True):
            plan = manager.plan(task)
            assert (row.model, row.cost) == (plan["candidates"][0], plan["estimate"])
    cheap = detail[detail.strategy == "cost_optimized"].cost.sum()
    best = detail[detail.strategy == "quality_first"].cost.sum()
    assert cheap < best
