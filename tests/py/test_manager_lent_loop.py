"""The manager's awaited task on an idle event loop: its first attempt is sent from the event
loop's thread and, the network loop lent to that thread, its reply is read, priced and settled
there (no wake-up of the loop thread, none back). Everything a task does still happens: fallbacks,
budgets and the ledger, cancellation that releases the reservation, other tasks started while one
holds the loop."""

from __future__ import annotations

import asyncio
import select

import pytest

import orroute
from orroute import Task, _engine
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b", "test/slow"]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=MODELS, use_uvloop=False) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw: object) -> orroute.AIModelManager:
    kw.setdefault("fallbacks", ["test/a", "test/b"])
    kw.setdefault("retry_base_delay", 0.001)
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, **kw)


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


async def _slow_task_holding_the_lent_loop(m: orroute.AIModelManager) -> asyncio.Future:
    """A task on test/slow, awaited once the network loop is lent to this event loop."""
    net = m._door.net
    lends = net.lends()
    slow = asyncio.ensure_future(m.execute_task(Task(messages="Say hi", max_tokens=16),
                                                model="test/slow"))
    for _ in range(100):
        await asyncio.sleep(0)
        if net.lends() > lends:
            return slow
    raise AssertionError("the loop was not lent")


def test_awaited_tasks_on_an_idle_event_loop_wake_no_thread(fake):
    # Before, each task woke the network thread once to wait for its reply and was woken back.
    m = manager(fake)
    net = m._door.net

    async def run() -> tuple[int, int]:
        await m.execute_task(Task(messages="Say hi", max_tokens=16))  # a warm connection
        wakeups, lends = net.wakeups(), net.lends()
        for _ in range(20):
            r = await m.execute_task(Task(messages="Say hi", max_tokens=16))
            assert r.content and r.cost > 0
            assert not _readable(_engine.bridge().notifier.fd)  # nothing left to spin on
        return net.wakeups() - wakeups, net.lends() - lends

    # lent or not (a quick reply may come within the send's own turn), the loop thread sleeps
    woken, _lent = asyncio.run(run())
    assert woken <= 2  # it may still be on its way to park after the first task


def test_a_fallback_and_a_file_ledger_settle_on_the_event_loops_thread(fake, tmp_path):
    fake.script("test/a", [Fault.server_error(500)])
    m = manager(fake, budget=5, ledger=str(tmp_path / "ledger.db"), max_retries=0)

    async def run() -> orroute.TaskResult:
        return await m.execute_task(Task(messages="Say hi", max_tokens=16))

    r = asyncio.run(run())
    assert r.model == "test/b" and [a.model for a in r.attempts] == ["test/a", "test/b"]
    assert m.spent() == r.cost and r.cost > 0
    assert m.reserved() == (0, 0)


def test_tasks_started_while_one_holds_the_lent_loop_all_complete(fake):
    fake.set_model_profile("test/slow", latency=0.3)
    m = manager(fake, budget=5)
    net = m._door.net

    async def run() -> list[str]:
        await m.execute_task(Task(messages="Say hi", max_tokens=16))
        slow = await _slow_task_holding_the_lent_loop(m)
        # the lease ends: the loop thread takes over the slow task and serves all of these
        others = await asyncio.gather(*(m.execute_task(Task(messages="Say hi", max_tokens=16))
                                        for _ in range(30)))
        return [r.id for r in [*others, await slow]]

    ids = asyncio.run(run())
    assert len(set(ids)) == 31
    assert m.reserved() == (0, 0)
    assert net.active_transfers() == 0


def test_cancelling_a_task_that_holds_the_lent_loop_releases_its_reservation(fake):
    fake.set_model_profile("test/slow", latency=30.0)
    m = manager(fake, budget=5)
    net = m._door.net

    async def run() -> None:
        await m.execute_task(Task(messages="Say hi", max_tokens=16))
        slow = await _slow_task_holding_the_lent_loop(m)
        assert m.reserved()[0] == 1
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        for _ in range(500):
            if net.active_transfers() == 0 and m.reserved() == (0, 0):
                break
            await asyncio.sleep(0.01)
        r = await m.execute_task(Task(messages="Say hi", max_tokens=16))  # the manager goes on
        assert r.content

    asyncio.run(run())
    assert m.reserved() == (0, 0)
    assert net.active_transfers() == 0


def test_a_task_started_while_others_are_awaited_keeps_the_network_thread(fake, monkeypatch):
    # Lending is for an idle event loop: with other tasks of this loop awaited, its thread has
    # their results to handle, and a loop lent to it flapped between the threads (each task that
    # found the network loop idle took it, the next task's command took it back). With a ledger at
    # concurrency 64 that cost 12-25% of the throughput.
    fake.set_model_profile("test/slow", latency=0.3)
    m = manager(fake, budget=1000)
    lent_to: list[object] = []
    submit = m._door.submit_task

    def recording_submit(task: object, model: object, pin: object, project: object,
                         notifier: object, lend: bool, *serve: object) -> object:
        lent_to.append(notifier if lend else None)
        return submit(task, model, pin, project, notifier, lend, *serve)

    monkeypatch.setattr(m._door, "submit_task", recording_submit)

    async def run() -> None:
        slow = asyncio.ensure_future(m.execute_task(Task(messages="Say hi", max_tokens=16),
                                                    model="test/slow"))
        while not _engine.bridge().waiters:  # the slow task is awaited
            await asyncio.sleep(0)
        quick = await m.execute_task(Task(messages="Say hi", max_tokens=16))
        assert quick.content
        assert (await slow).content
        await m.execute_task(Task(messages="Say hi", max_tokens=16))  # alone again

    asyncio.run(run())
    assert lent_to[0] is not None  # the slow task: an idle event loop
    assert lent_to[1] is None  # started while the slow one was awaited
    assert lent_to[2] is not None
