"""The demo workload (orroute.demo) and `orroute demo` end to end, offline."""

from __future__ import annotations

from collections import Counter

import orroute
from orroute import demo


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
