"""Settles are written off the network thread (the engine's settle worker, batched across calls),
yet a caller still hears of its call only once the call is in the ledger: when ``execute_task``
returns (or a stream ends) the row is there and the alerts it crossed have fired."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=["test/a"]) as f:
        yield f


def test_concurrent_calls_are_in_the_ledger_when_execute_task_returns(fake, tmp_path: Path) -> None:
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget("100")
    m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=tracker,
                               fallbacks=["test/a"])
    missing: list[str] = []

    async def one(i: int) -> None:
        await m.execute_task(Task(messages=f"Say hello {i}", max_tokens=16, id=f"task-{i}"))
        if f"task-{i}" not in {r.task_id for r in tracker.usage_history()}:
            missing.append(f"task-{i}")

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(48)))

    asyncio.run(main())
    assert missing == []
    assert len(tracker.usage_history()) == 48
    assert m.reserved()[0] == 0  # every reservation settled, none left held


def test_a_streamed_call_is_in_the_ledger_when_the_stream_ends(fake, tmp_path: Path) -> None:
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget("100")
    m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=tracker,
                               fallbacks=["test/a"])

    async def main() -> None:
        async for _ in m.stream_task(Task(messages="Say hello", max_tokens=16, id="streamed")):
            pass
        assert [r.task_id for r in tracker.usage_history()] == ["streamed"]

    asyncio.run(main())


def test_alerts_have_fired_when_execute_task_returns(fake, tmp_path: Path) -> None:
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget("0.001", thresholds=[1])  # the first call crosses 1%
    m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=tracker,
                               fallbacks=["test/a"])
    seen: list[object] = []
    m.on_alert(seen.append)

    async def main() -> None:
        await m.execute_task(Task(messages="Say hello", max_tokens=16))
        assert [e.threshold_pct for e in seen] == [1]  # type: ignore[attr-defined]

    asyncio.run(main())
