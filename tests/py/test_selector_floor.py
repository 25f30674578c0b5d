"""``ModelSelector.rank(prompt=)`` applies the engine's complexity floor (the same C++ rule:
the analyzer's tier for the prompt -> the least quality a candidate needs), so the Python
selector and ``AIModelManager`` agree on who may answer a hard prompt, under every strategy."""

from __future__ import annotations

import pytest

import orroute
from orroute import Task

HARD = ("Prove that for every integer n > 1 the sum of 1/k for k = 1..n is never an integer. "
        "Then design and implement in Rust a lock-free concurrent skip list with epoch-based "
        "memory reclamation, derive its expected time complexity step by step, analyze the "
        "linearizability of insert and delete, and write property-based tests that would find an "
        "ABA bug. Explain each step of your reasoning and compare with a B-tree design.\n"
        "```rust\nstruct Node<K, V> { key: K, value: V, next: Vec<AtomicPtr<Node<K, V>>> }\n```")
EASY = "What is the capital of France?"


def _manager(strategy: str) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9",
                                  strategy=strategy, refresh_catalog=False)


@pytest.mark.parametrize("strategy", ["cost_optimized", "balanced", "performance"])
def test_a_hard_prompt_gets_the_engines_floor_from_the_selector(strategy) -> None:
    selector = orroute.ModelSelector(strategy=strategy)
    plan = _manager(strategy).plan(Task(type="reasoning", messages=HARD, max_tokens=256))
    tier = plan["complexity"]["tier"]
    assert tier in ("premium", "frontier")
    floored = selector.rank("reasoning", plan["prompt_tokens"], prompt=HARD,
                            expected_output_tokens=256)
    bare = selector.rank("reasoning", plan["prompt_tokens"], prompt=HARD,
                         expected_output_tokens=256, complexity_floor=False)
    floor = {"premium": 0.80, "frontier": 0.90}[tier]
    assert floored[0].quality >= floor > min(r.quality for r in bare)
    assert any("complexity" in reason for reason in floored[0].reasons)
    assert floored[0].model == plan["candidates"][0]  # the engine's first choice


def test_an_easy_prompt_has_no_floor() -> None:
    selector = orroute.ModelSelector(strategy="cost_optimized")
    assert [r.model for r in selector.rank("general", 10, prompt=EASY)] == [
        r.model for r in selector.rank("general", 10)]
