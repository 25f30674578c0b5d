"""A fork while other threads are inside the ledger: the child neither hangs nor reads a
half-written file. fork() waits for the ledger calls in flight (docs/cost.md, "Fork"); a file
ledger is opened again in the child, an in-memory one starts as a copy of the parent's, a Redis
ledger connects again."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

MSGS = [{"role": "user", "content": "Say hi"}]
FORKS = 24


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=["m/a"]) as f:
        yield f


def hammered(trackers: list[orroute.CostTracker]) -> Callable[[], int]:
    """Starts a thread per tracker that reserves and settles in a loop; returns a function that
    stops them and says how many calls they made."""
    stop = threading.Event()
    done = [0] * len(trackers)

    def hammer(i: int, tracker: orroute.CostTracker) -> None:
        while not stop.is_set():
            with tracker.reserve("0.001", model="m/a") as r:
                r.settle("0.0005", model="m/a", prompt_tokens=3)
            done[i] += 1

    threads = [threading.Thread(target=hammer, args=(i, t)) for i, t in enumerate(trackers)]
    for t in threads:
        t.start()

    def stop_them() -> int:
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        return sum(done)

    return stop_them


def fork_and_wait(child: Callable[[], None]) -> int:
    """Runs ``child`` in a forked child, killed after 15 s (a hang fails the test, not the run);
    the child's exit status (0: it returned)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's outcome is its exit status)
        code = 1
        try:
            signal.alarm(15)
            child()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_forks_while_threads_reserve_and_settle_in_a_file_ledger(
        fake: FakeOpenRouter, tmp_path: Path, leases: bool) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    tracker = orroute.CostTracker(path, leases=leases)
    tracker.set_budget(1_000_000, period="daily")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=path,
                                     fallbacks=["m/a"])
    other = orroute.CostTracker(path, leases=leases)
    stop = hammered([tracker, other])

    def ledger_call() -> None:
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > 0

    def manager_call() -> None:
        assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    children = [ledger_call, manager_call, lambda: None]
    statuses = [fork_and_wait(children[i % 3]) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    assert calls > 0
    manager.close()
    tracker.close()
    other.close()
    check = orroute.CostTracker(path)
    assert len(check.usage_history(limit=None)) == calls + FORKS // 3 * 2
    check.reclaim()  # the leases of the children, which exited without giving them back
    assert check.live_reservations() == (0, 0)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_forks_while_threads_reserve_and_settle_in_an_in_memory_ledger() -> None:
    tracker = orroute.CostTracker(":memory:")
    tracker.set_budget(1_000_000, period="daily")
    stop = hammered([tracker, tracker])

    def ledger_call() -> None:
        spent = tracker.total_cost()
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > spent > 0  # the parent's calls, copied at the fork

    statuses = [fork_and_wait(ledger_call if i % 2 else lambda: None) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    assert len(tracker.usage_history(limit=None)) == calls  # the children's are their own


def test_an_in_memory_budget_holds_in_a_forked_child(fake: FakeOpenRouter) -> None:
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     fallbacks=["m/a"], budget=1e-9)
    tracker = orroute.CostTracker(":memory:")
    tracker.set_budget(1e-9)
    with pytest.raises(orroute.BudgetExceededError):
        manager.execute_task_sync(Task(messages=MSGS, max_tokens=8))

    def child() -> None:
        with pytest.raises(orroute.BudgetExceededError):
            manager.execute_task_sync(Task(messages=MSGS, max_tokens=8))
        with pytest.raises(orroute.BudgetExceededError):
            tracker.reserve("0.01")

    assert fork_and_wait(child) == 0


def test_forks_while_threads_reserve_and_settle_in_a_redis_ledger(
        fake: FakeOpenRouter, redis_url: str) -> None:
    # The child connects again (PerProcess): the parent's sockets, and the lock of a connection
    # a parent's thread was using, are never touched there.
    tracker = orroute.CostTracker(redis_url)
    tracker.set_budget(1_000_000, period="daily")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     ledger=redis_url, fallbacks=["m/a"])
    stop = hammered([tracker, orroute.CostTracker(redis_url)])

    def ledger_call() -> None:
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > 0

    def manager_call() -> None:
        assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    children = [ledger_call, manager_call, lambda: None]
    statuses = [fork_and_wait(children[i % 3]) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    manager.close()
    assert len(tracker.usage_history(limit=None)) == calls + FORKS // 3 * 2
    assert tracker.live_reservations() == (0, 0)
