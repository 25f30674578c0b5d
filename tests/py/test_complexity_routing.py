"""Complexity routes: the analyzer's tier sets a quality floor under every strategy (docs/router.md).

A graded prompt set (easy / medium / hard / frontier) is planned by the engine on the bundled catalog;
harder prompts must get models at least as strong, easier ones models at least as cheap, and the
reasons must state the floor.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import orroute
from orroute import Task

STRATEGIES = ["cost_optimized", "balanced", "performance", "quality_first"]
FLOORS = {"economy": 0.0, "standard": 0.65, "premium": 0.80, "frontier": 0.90}

# Declared as one task type, so qualities (per task type) compare across grades.
TASK_TYPE = "reasoning"
GRADED = {
    "easy": [
        "What is the capital of France?",
        "hi",
        "Translate 'cat' to Spanish",
    ],
    "medium": [
        "Explain why the derivative of x^2 is 2x.",
        "Write a Python function that checks whether a number is prime, and explain how it works.",
        ("Compare quicksort and mergesort: analyze their time and space complexity, then explain "
        "which to use for linked lists and why."),
    ],
    "hard": [
        ("Design a distributed rate limiter for a multi-region API gateway. First analyze the "
        "consistency trade-offs, then compare token bucket and sliding window algorithms, then "
        "write the Go code for the core data structure, and finally prove that your design never "
        "admits more than the limit under clock skew of at most 50 ms.\n```go\n"
        "type Bucket struct { tokens float64; last time.Time }\n```"),
        ("Refactor this function to be thread-safe, explain the race condition, and prove the fix "
        "is correct:\n```python\ndef incr(d, k):\n    d[k] = d.get(k, 0) + 1\n```\nThen analyze "
        "the performance impact and compare with a lock-free approach."),
    ],
    "frontier": [
        ("Prove that for every integer n > 1 the sum of 1/k for k = 1..n is never an integer. "
        "Then design and implement in Rust a lock-free concurrent skip list with epoch-based "
        "memory reclamation, derive its expected time complexity step by step, analyze the "
        "linearizability of insert and delete, and write property-based tests that would find an "
        "ABA bug. Explain each step of your reasoning and compare with a B-tree design.\n"
        "```rust\nstruct Node<K, V> { key: K, value: V, next: Vec<AtomicPtr<Node<K, V>>> }\n```"),
    ],
}
ORDER = list(GRADED)


@pytest.fixture(scope="module")
def selector() -> orroute.ModelSelector:
    return orroute.ModelSelector()


def _manager(strategy: str) -> orroute.AIModelManager:
    # No network: plan() only counts, analyzes and selects on the bundled catalog.
    return orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9",
                                  strategy=strategy, refresh_catalog=False)


def _pick(manager: orroute.AIModelManager, selector: orroute.ModelSelector,
          prompt: str) -> dict[str, Any]:
    plan = manager.plan(Task(type=TASK_TYPE, messages=prompt, max_tokens=256))
    model = plan["candidates"][0]
    spec = selector.models[model]
    return {"tier": plan["complexity"]["tier"], "model": model, "reasons": plan["reasons"],
            "cost": spec.cost_per_1k, "candidates": plan["candidates"]}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_graded_prompts_get_their_tier(strategy):
    manager = _manager(strategy)
    for grade, tier in zip(ORDER, FLOORS, strict=True):
        for prompt in GRADED[grade]:
            assert manager.plan(Task(type=TASK_TYPE, messages=prompt))["complexity"]["tier"] == tier, (grade, prompt)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_harder_prompts_get_stronger_models_and_easier_ones_cheaper(strategy, selector):
    manager = _manager(strategy)
    picks = {g: [_pick(manager, selector, p) for p in GRADED[g]] for g in ORDER}
    quality = {g: [_quality(p) for p in picks[g]] for g in ORDER}
    cost = {g: [p["cost"] for p in picks[g]] for g in ORDER}
    for easier, harder in itertools.pairwise(ORDER):
        # every prompt of a harder grade gets a model at least as strong as any easier one's
        assert min(quality[harder]) >= max(quality[easier]), (strategy, easier, harder, quality)
    for grade in ORDER:
        for p in picks[grade]:
            assert _quality(p) >= FLOORS[p["tier"]], (strategy, grade, p["model"])
            floor = [r for r in p["reasons"] if r.startswith("quality floor")]
            if p["tier"] == "economy":
                assert not floor  # easy prompts: the strategy's own (cheap) pick
            else:
                assert floor and floor[0].startswith(
                    f"quality floor {FLOORS[p['tier']]:.2f} from complexity "), p["reasons"]
    # easy prompts never cost more than frontier ones; under cost_optimized, strictly less, and
    # every step up in grade costs at least as much (the cheapest of a shrinking set)
    assert max(cost["easy"]) <= min(cost["frontier"]), (strategy, cost)
    if strategy == "cost_optimized":
        assert max(cost["easy"]) < min(cost["frontier"])
        assert max(quality["easy"]) < min(quality["frontier"])
        for easier, harder in itertools.pairwise(ORDER):
            assert min(cost[harder]) >= max(cost[easier]), (easier, harder, cost)


def _quality(pick: dict[str, Any]) -> float:
    """The effective quality the selector stated for the first candidate (its reasons)."""
    for r in pick["reasons"]:
        if r.startswith("quality ") and " for " in r and "floor" not in r:
            return float(r.split()[1])
    raise AssertionError(f"no quality reason in {pick['reasons']}")


def test_no_floor_when_a_model_is_named(selector):
    prompt = GRADED["frontier"][0]
    floored = _manager("cost_optimized").plan(Task(type=TASK_TYPE, messages=prompt, max_tokens=256))
    assert any(r.startswith("quality floor") for r in floored["reasons"])
    named = orroute.AIModelManager(
        api_key="sk-or-test", base_url="http://127.0.0.1:9", strategy="cost_optimized",
        refresh_catalog=False, preferred_model="mistralai/mistral-nemo",
    ).plan(Task(type=TASK_TYPE, messages=prompt, max_tokens=256))
    assert named["complexity"]["tier"] == "frontier"
    assert named["candidates"][0] == "mistralai/mistral-nemo"
    assert "no complexity floor: the caller named the model" in named["reasons"]
    assert not any(r.startswith("quality floor") for r in named["reasons"])
    # the fallbacks after it are the strategy's own ranking, without the floor: cheaper
    assert (selector.models[named["candidates"][1]].cost_per_1k
            < selector.models[floored["candidates"][0]].cost_per_1k)
