"""orroute.simulate: offline replay of a workload under several selection strategies."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import orroute

pd = pytest.importorskip("pandas")

TASKS = [
    {"type": "coding", "prompt": "write a parser", "input_size": 2000, "max_tokens": 800},
    {"type": "general", "prompt": "hello", "input_size": 50, "max_tokens": 100},
    {"type": "reasoning", "prompt": "prove it", "input_size": 1200, "max_tokens": 2000},
]


def test_simulate_compares_strategies_exactly(tmp_path: Path) -> None:
    path = tmp_path / "work.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in TASKS) + "\n")
    strategies = ["cost_optimized", "quality_first"]
    summary = orroute.simulate(path, strategies=strategies)
    assert list(summary.index) == strategies
    assert (summary["tasks"] == 3).all()
    assert summary.loc["cost_optimized", "total_cost"] <= summary.loc["quality_first", "total_cost"]

    detail = orroute.simulate(TASKS, strategies=strategies, detail=True)
    assert len(detail) == 6
    catalog = orroute.Catalog.bundled()
    for row in detail.itertuples():
        assert row.cost == catalog.cost(
            row.model, prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens
        )
    cheap = detail[detail.strategy == "cost_optimized"]
    assert sum(cheap.cost, Decimal(0)) == summary.loc["cost_optimized", "total_cost"]


def test_simulate_uses_learned_output_lengths() -> None:
    tracker = orroute.CostTracker(":memory:")
    task = orroute.Task(type="general", messages="hi", input_size=10)
    (row,) = orroute.simulate(
        [task], strategies=["cost_optimized"], tracker=tracker, detail=True
    ).itertuples()
    assert row.completion_tokens == 1024  # nothing learned yet
    for _ in range(5):
        tracker.record_call(cost=0, model=row.model, task_type="general", completion_tokens=77)
    (row,) = orroute.simulate(
        [task], strategies=["cost_optimized"], tracker=tracker, detail=True
    ).itertuples()
    assert row.completion_tokens == 77
