"""A client or manager made before os.fork() keeps working in the child (gunicorn --preload,
uwsgi, Celery's prefork pool, multiprocessing's fork context make it once, in the parent): the
child's first call makes its own network loop (libcurl multi handle, epoll set, eventfd, thread),
opens its own connections and its own ledger connection; nothing is ever sent on, or read from,
the parent's, whose calls in flight complete in the parent. A budget is shared across the
processes through the ledger and never exceeded."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

MSGS = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a"]) as f:
        yield f


def start_child(check: Callable[[], Any]) -> tuple[int, int]:
    """Forks a child that runs ``check`` and writes what it returned (JSON) to a pipe; it is
    killed after 20 s (a hang fails the test, not the run). (pid, read end of the pipe)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's outcome is its exit status and its answer)
        code = 1
        try:
            signal.alarm(20)
            os.close(read_end)
            answer = json.dumps(check()).encode()
            os.write(write_end, answer)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def join_child(child: tuple[int, int]) -> Any:
    """Waits for a child of :func:`start_child`; what its check returned (fails the test if it
    failed)."""
    pid, read_end = child
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    return json.loads(answer)


def in_child(check: Callable[[], Any]) -> Any:
    return join_child(start_child(check))


def test_a_client_made_before_fork_works_in_the_child_on_connections_of_its_own(
        fake: FakeOpenRouter) -> None:
    client = orroute.OpenRouter(api_key="sk-or-test", base_url=fake.base_url)
    assert client.chat.completions.create(model="m/a", messages=MSGS).choices[0].message.content
    before = fake.connections_accepted

    def child() -> list[str]:
        return [client.chat.completions.create(model="m/a", messages=MSGS, timeout=5).id
                for _ in range(3)]

    assert len(in_child(child)) == 3
    after_child = fake.connections_accepted
    assert after_child == before + 1  # the child's own connection, kept alive for its calls
    started = time.monotonic()
    for _ in range(10):
        assert client.chat.completions.create(model="m/a", messages=MSGS, timeout=5).id
    assert time.monotonic() - started < 4  # no call waited for a timeout
    assert fake.connections_accepted == after_child  # the parent's connection was left to it


def test_an_async_client_made_before_fork_works_in_the_childs_event_loop(
        fake: FakeOpenRouter) -> None:
    client = orroute.AsyncOpenRouter(api_key="sk-or-test", base_url=fake.base_url)

    async def calls(n: int) -> list[str]:
        done = await asyncio.gather(*(
            asyncio.wait_for(client.chat.completions.create(model="m/a", messages=MSGS), 5)
            for _ in range(n)))
        return [r.id for r in done]

    assert asyncio.run(calls(2))
    assert len(in_child(lambda: asyncio.run(calls(4)))) == 4
    assert len(asyncio.run(calls(3))) == 3


def test_a_manager_made_before_fork_books_the_childs_calls_in_the_shared_ledger(
        fake: FakeOpenRouter, tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=path,
                                     fallbacks=["m/a"], budget=10)
    assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    def child() -> str:
        assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content
        assert asyncio.run(manager.execute_task(Task(messages=MSGS, max_tokens=8))).content
        manager.close()  # gives the child's lease back
        return str(orroute.CostTracker(path).total_cost())

    booked_by_child = Decimal(in_child(child))
    assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content
    manager.close()
    tracker = orroute.CostTracker(path)
    assert len(tracker.usage_history()) == 4  # 2 in the parent, 2 in the child
    assert tracker.total_cost() > booked_by_child > 0
    assert tracker.live_reservations() == (0, 0)


def test_a_budget_is_never_exceeded_across_a_parent_and_two_forked_children(
        fake: FakeOpenRouter, tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    task = Task(messages=MSGS, max_tokens=8)
    probe = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                   fallbacks=["m/a"], budget=10)
    limit = Decimal(probe.plan(task)["estimate"]) * 5  # room for 5 calls' reservations
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=path,
                                     fallbacks=["m/a"], budget=limit)

    def spend() -> int:
        done = 0
        for _ in range(8):
            try:
                manager.execute_task_sync(task)
                done += 1
            except orroute.BudgetExceededError:
                pass
        return done

    def spend_and_give_back() -> int:
        done = spend()
        manager.close()  # the child's unused lease money goes back before it exits
        return done

    children = [start_child(spend_and_give_back) for _ in range(2)]
    done = spend() + sum(join_child(c) for c in children)
    manager.close()
    tracker = orroute.CostTracker(path)
    assert 0 < done <= 5
    assert len(tracker.usage_history()) == done  # every call that ran was booked
    assert tracker.total_cost() <= limit
    assert tracker.live_reservations() == (0, 0)


def test_a_fork_while_the_parent_has_calls_in_flight(tmp_path: Path) -> None:
    with FakeOpenRouter(models=["m/a"], latency=0.4) as fake:
        path = str(tmp_path / "ledger.sqlite3")
        manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                         ledger=path, fallbacks=["m/a"], budget=10)
        with ThreadPoolExecutor(4) as pool:
            in_flight = [pool.submit(manager.execute_task_sync, Task(messages=MSGS, max_tokens=8))
                         for _ in range(4)]
            time.sleep(0.1)  # the requests are out, the network thread waits for the answers
            child = start_child(
                lambda: manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content)
            assert all(f.result(timeout=5).content for f in in_flight)
        assert join_child(child)
        manager.close()
        tracker = orroute.CostTracker(path)
        assert len(tracker.usage_history()) == 5  # the parent's 4 once (not settled by the child)
        tracker.reclaim()  # the lease of the child, which exited without giving it back
        assert tracker.live_reservations() == (0, 0)


def test_a_fork_from_a_thread_while_the_network_thread_runs(fake: FakeOpenRouter) -> None:
    client = orroute.OpenRouter(api_key="sk-or-test", base_url=fake.base_url)
    stop = threading.Event()
    calls = 0

    def keep_calling() -> None:
        nonlocal calls
        while not stop.is_set():
            assert client.chat.completions.create(model="m/a", messages=MSGS, timeout=5).id
            calls += 1

    busy = threading.Thread(target=keep_calling)
    busy.start()
    answers: list[Any] = []
    for _ in range(3):
        forker = threading.Thread(target=lambda: answers.append(in_child(
            lambda: client.chat.completions.create(model="m/a", messages=MSGS, timeout=5).id)))
        forker.start()
        forker.join(30)
    stop.set()
    busy.join(10)
    assert len(answers) == 3 and all(answers)
    assert not busy.is_alive() and calls > 0


POOL_MANAGER: orroute.AIModelManager | None = None  # module level, as a prefork app has it


def pool_task(i: int) -> str:
    assert POOL_MANAGER is not None
    return POOL_MANAGER.execute_task_sync(Task(messages=f"task {i}", max_tokens=8)).model


def test_a_module_level_manager_in_a_multiprocessing_pool_with_fork(
        fake: FakeOpenRouter, tmp_path: Path) -> None:
    global POOL_MANAGER
    path = str(tmp_path / "ledger.sqlite3")
    POOL_MANAGER = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                          ledger=path, fallbacks=["m/a"], budget=10)
    try:
        assert pool_task(0) == "m/a"
        with multiprocessing.get_context("fork").Pool(2) as pool:
            assert pool.map_async(pool_task, range(8)).get(timeout=30) == ["m/a"] * 8
        assert pool_task(9) == "m/a"
    finally:
        POOL_MANAGER.close()
        POOL_MANAGER = None
    assert len(orroute.CostTracker(path).usage_history()) == 10


def test_the_sync_httpx_transport_made_before_fork_serves_the_child(
        fake: FakeOpenRouter) -> None:
    httpx = pytest.importorskip("httpx")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     fallbacks=["m/a"])
    http = httpx.Client(transport=orroute.Transport(manager), base_url="http://x/v1", timeout=5)
    body = {"model": "m/a", "messages": MSGS}
    assert http.post("/chat/completions", json=body).status_code == 200  # its loop thread runs

    def child() -> int:
        return int(http.post("/chat/completions", json=body).status_code)

    assert in_child(child) == 200
    assert http.post("/chat/completions", json=body).status_code == 200


def test_response_callbacks_run_in_the_child(fake: FakeOpenRouter) -> None:
    from orroute.observe import flush_callbacks

    seen: list[str] = []
    client = orroute.OpenRouter(api_key="sk-or-test", base_url=fake.base_url,
                                on_response=lambda event: seen.append("response"))
    client.chat.completions.create(model="m/a", messages=MSGS)
    assert flush_callbacks(5) and seen == ["response"]  # the callback thread runs

    def child() -> list[str]:
        client.chat.completions.create(model="m/a", messages=MSGS, timeout=5)
        assert flush_callbacks(5)
        return seen

    assert in_child(child) == ["response", "response"]
    assert seen == ["response"]
