"""The plan's pseudo-code (seed 000: ModelSelector, CostTracker, AIModelManager) runs as written.

The method bodies below are copied from the plan. Only the model names the plan used and that no
longer exist are adapted ('claude-3-sonnet' -> 'anthropic/claude-sonnet-4.5', 'gpt-4' ->
'openai/gpt-4', 'gemini-pro-1.5' -> 'google/gemini-2.5-pro'); the helpers the plan calls but never
writes (``_estimate_cost``, ``_optimize_selection``, ``_check_budget``, ``_get_available_budget``,
``OpenRouterClient``) are given the smallest bodies on orroute's public API.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

import orroute

PLAN_MODELS = {  # the plan's three models, by their ids of today
    "claude-3-sonnet": "anthropic/claude-sonnet-4.5",
    "gpt-4": "openai/gpt-4",
    "gemini-pro-1.5": "google/gemini-2.5-pro",
}


class BudgetError(Exception):
    """The plan's BudgetError."""


# ---- 3. Model Selection Framework ----------------------------------------------------------------
class PlanSelector(orroute.ModelSelector):
    def select_model(self, task_type, input_size, budget):  # type: ignore[override]
        """Select best model based on task requirements and budget"""
        suitable_models = []
        for model, specs in self.models.items():
            if (task_type in specs['capabilities'] and
                input_size <= specs['context_window'] and
                self._estimate_cost(input_size, specs['cost_per_1k']) <= budget):
                suitable_models.append((model, specs))

        return self._optimize_selection(suitable_models)

    def _estimate_cost(self, input_size, cost_per_1k):  # the plan's formula (CostTracker)
        return input_size * cost_per_1k / 1000

    def _optimize_selection(self, suitable_models):  # cheapest; None when nothing fits
        if not suitable_models:
            return None
        return min(suitable_models, key=lambda ms: (ms[1]["cost_per_1k"], ms[0]))[0]


# ---- 5. Model Integration -------------------------------------------------------------------------
class OpenRouterClient:
    """The plan's client: ``complete(model=, messages=)`` on an orroute manager."""

    def __init__(self, manager: orroute.AIModelManager) -> None:
        self._manager = manager

    async def complete(self, model, messages):
        return await self._manager.execute_task(orroute.Task(messages=messages), model=model)


class PlanManager:
    def __init__(self, base_url: str, budget: Decimal):
        self._inner = orroute.AIModelManager(api_key="sk-or-test", base_url=base_url,
                                             budget=budget, retry_base_delay=0.001)
        self._budget = budget
        self.selector = self._inner.selector
        self.cost_tracker = self._inner.cost_tracker
        self.openrouter = OpenRouterClient(self._inner)

    def _check_budget(self, estimated_cost):
        return estimated_cost <= self._get_available_budget()

    def _get_available_budget(self):
        return self._budget - self._inner.spent()

    async def execute_task(self, task):
        """Execute task with appropriate model"""
        # Estimate cost
        estimated_cost = self.cost_tracker.estimate_cost(task)
        if not self._check_budget(estimated_cost):
            raise BudgetError("Task would exceed budget")

        # Select model
        model = self.selector.select_model(
            task.type,
            task.input_size,
            self._get_available_budget()
        )

        # Execute task
        result = await self.openrouter.complete(
            model=model,
            messages=task.messages
        )

        # Track usage
        self.cost_tracker.track_usage(
            task.id,
            model,
            result.usage.total_tokens,
            result.cost
        )

        return result


@dataclass
class PlanTask:
    """A task as the plan's code uses it: any object with these fields."""

    id: str
    type: str
    input_size: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int | None = None


def _task(text: str = "Write a function that reverses a list.", **kw: Any) -> PlanTask:
    return PlanTask(id="t-1", type="coding", input_size=20,
                    messages=[{"role": "user", "content": text}], **kw)


# ---- the selector's models as the plan reads them -------------------------------------------------
def test_plan_models_read_as_dicts():
    selector = orroute.ModelSelector()
    for model_id in PLAN_MODELS.values():
        assert model_id in selector.models
        specs = selector.models[model_id]
        assert "capabilities" in specs and "context_window" in specs and "cost_per_1k" in specs
        assert "nonsense" not in specs and specs.get("nonsense", 7) == 7
        assert specs.get("context_window") == specs["context_window"] > 0
        assert dict(specs.items())["cost_per_1k"] == specs.cost_per_1k
        assert list(specs) == specs.keys() and len(specs) == len(specs.values())
        with pytest.raises(KeyError):
            specs["nonsense"]
    models = selector.models
    assert len(models) == len(list(models)) == len(models.keys()) > 100
    assert models.get("nobody/nothing") is None
    assert [m for m, _ in models.items()] == list(models)


@pytest.mark.parametrize(("old", "successor"), [
    ("claude-3-sonnet", "anthropic/claude-sonnet"),
    ("gpt-4", "openai/gpt-4"),
    ("anthropic/claude-sonet-4.5", "anthropic/claude-sonnet-4.5"),
], ids=["retired-name", "bare-name", "typo"])
def test_unknown_model_raises_key_error_naming_the_nearest(old, successor):
    selector = orroute.ModelSelector()
    with pytest.raises(KeyError, match="did you mean") as err:
        selector.models[old]
    assert successor in str(err.value)


def test_plan_select_model_runs_as_written():
    selector = PlanSelector()
    model = selector.select_model("coding", 2000, Decimal("0.01"))
    assert model is not None
    specs = selector.models[model]
    assert "coding" in specs["capabilities"] and 2000 <= specs["context_window"]
    assert 2000 * specs["cost_per_1k"] / 1000 <= Decimal("0.01")
    # a context larger than any model's: nothing fits
    assert selector.select_model("coding", 10**9, Decimal(1000)) is None
    # a task type no model declares: nothing fits
    assert selector.select_model("no_such_task_type", 10, Decimal(1)) is None


# ---- the cost tracker and the manager as the plan uses them ---------------------------------------
def test_plan_cost_tracker_estimates_and_tracks(tmp_path):
    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"))
    task = _task(max_tokens=100)
    estimate = tracker.estimate_cost(task)
    as_dict = tracker.estimate_cost({"type": "coding", "input_size": 20, "max_tokens": 100,
                                     "input": task.messages[0]["content"]})
    assert Decimal(0) < estimate == as_dict
    tracker.track_usage(task.id, PLAN_MODELS["gpt-4"], 120, Decimal("0.0036"))
    [row] = tracker.usage_history()
    assert (row.task_id, row.model, row.cost) == ("t-1", "openai/gpt-4", Decimal("0.0036"))


def test_plan_manager_executes_a_task_as_written(fake_openrouter):
    manager = PlanManager(fake_openrouter.base_url, Decimal(5))
    result = asyncio.run(manager.execute_task(_task(max_tokens=64)))
    assert result.usage.total_tokens == result.usage["total_tokens"] > 0
    assert result.usage.total_tokens == (result.usage.prompt_tokens
                                         + result.usage.completion_tokens)
    with pytest.raises(AttributeError):
        result.usage.nonsense  # noqa: B018
    [row] = manager.cost_tracker.usage_history()
    assert (row.task_id, row.model, row.cost) == ("t-1", result.model, result.cost)
    assert row.completion_tokens == result.usage.total_tokens  # the plan books a total


def test_plan_manager_refuses_a_task_over_budget(fake_openrouter):
    manager = PlanManager(fake_openrouter.base_url, Decimal("0.000000001"))
    with pytest.raises(BudgetError):
        asyncio.run(manager.execute_task(_task(max_tokens=4000)))
    assert not [r for r in fake_openrouter.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("shape", ["object", "dict"])
def test_manager_runs_a_task_given_as_any_object_or_dict(fake_openrouter, shape):
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake_openrouter.base_url,
                                     fallbacks=["openai/gpt-4o-mini"])
    fields = {"id": "t-9", "type": "coding", "input": "Reverse a list in Python.",
              "max_tokens": 32, "budget": "0.5"}
    task: Any = dict(fields) if shape == "dict" else type("T", (), fields)()
    result = manager.execute_task_sync(task)
    assert result.task_id == "t-9" and result.task_type == "coding"
    assert result.usage.total_tokens > 0
    [req] = [r for r in fake_openrouter.requests if r.path.endswith("/chat/completions")]
    assert req.json["max_tokens"] == 32
    assert req.json["messages"] == [{"role": "user", "content": "Reverse a list in Python."}]
    with pytest.raises(orroute.InvalidArgumentError, match="max_tokens"):
        manager.execute_task_sync({**fields, "max_tokens": 0})
    with pytest.raises(orroute.InvalidArgumentError, match="expected a task"):
        manager.execute_task_sync("just a string")  # type: ignore[arg-type]


def test_manager_selector_and_cost_tracker_are_the_plans(fake_openrouter, tmp_path):
    ledger = str(tmp_path / "shared.sqlite3")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake_openrouter.base_url,
                                     ledger=ledger, strategy="cost_optimized")
    assert isinstance(manager.selector, orroute.ModelSelector)
    assert manager.selector is manager.selector
    assert manager.selector.strategy == "cost_optimized"
    assert isinstance(manager.cost_tracker, orroute.CostTracker)
    assert manager.cost_tracker.path == ledger  # the manager's own ledger
    result = manager.execute_task_sync({"type": "general", "messages": "hi", "max_tokens": 8})
    assert manager.cost_tracker.total_cost() == result.cost
    tracker = orroute.CostTracker(str(tmp_path / "tracker.sqlite3"))
    from orroute.testing import FakeOpenRouter

    with FakeOpenRouter(models=["test/a", "test/b"]) as own:  # the endpoint's own /models
        local = orroute.AIModelManager(api_key="sk-or-test", base_url=own.base_url)
        assert sorted(local.selector.models) == ["test/a", "test/b"]
        task = {"type": "general", "input_size": 10, "max_tokens": 10}
        assert local.cost_tracker.estimate_cost(task) == local.cost_tracker.estimate_cost(
            task, model=local.selector.select_model("general", 10))
    given = orroute.AIModelManager(api_key="sk-or-test", base_url=fake_openrouter.base_url,
                                   ledger=tracker)
    assert given.cost_tracker is tracker
