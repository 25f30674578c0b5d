"""A sync client's plain call runs the network loop on the caller's thread while the loop's own
thread is idle (no hand-off between threads), and an async call is sent from the event loop's
thread then, and its reply read there (the loop lent to the event loop); everything a call does
still happens, also with calls from several threads, an async client beside it, other calls
started while one holds the loop, a cancelled or timed-out call, a retry, and a call interrupted
by a signal (or making a call from its handler)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import _engine
from orroute.testing import FakeOpenRouter, Fault

# A child Python imports the orroute these tests import (the installed one in CI, where the source
# tree has no built extension), whatever an earlier test put on sys.path.
CHILD_PATH = os.pathsep.join([str(Path(orroute.__file__).resolve().parents[1]), *sys.path])

MSGS = [{"role": "user", "content": "Say hello"}]
KEY = "sk-or-v1-" + "c" * 60 + "3333"


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a", "m/slow"], use_uvloop=False) as f:
        yield f


@pytest.fixture
def client(fake):
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=1)


def test_a_sync_call_on_an_idle_client_wakes_no_thread(client):
    client.chat.completions.create(model="m/a", messages=MSGS)
    before = client._core.wakeups()
    for _ in range(20):
        r = client.chat.completions.create(model="m/a", messages=MSGS)
        assert r.choices[0].message.content
    assert client._core.wakeups() == before


def test_an_async_call_on_an_idle_client_is_sent_from_the_event_loop_thread(fake):
    # The request goes out before create() first yields (one turn of the loop on the asyncio
    # thread); the loop thread only waits for the reply. A call finds the loop idle unless the
    # loop thread is still on its way to park after the previous reply (it may be descheduled
    # there on a loaded machine), hence "most", not "all".
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=1)

    async def calls() -> int:
        await aclient.chat.completions.create(model="m/a", messages=MSGS)  # a warm connection
        before = aclient._core.drives()
        for _ in range(20):
            r = await aclient.chat.completions.create(model="m/a", messages=MSGS)
            assert r.choices[0].message.content
        return aclient._core.drives() - before

    assert asyncio.run(calls()) >= 10


def test_awaited_calls_on_an_idle_client_wake_no_thread(fake):
    # Sent and read on the event loop's thread: the network loop is lent to it (or the reply came
    # within the send's own turn); the loop thread is never woken. Before, each call woke it once
    # to wait for the reply.
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=1)

    async def calls() -> tuple[int, int]:
        await aclient.chat.completions.create(model="m/a", messages=MSGS)  # a warm connection
        wakeups, lends = aclient._core.wakeups(), aclient._core.lends()
        for _ in range(20):
            r = await aclient.chat.completions.create(model="m/a", messages=MSGS)
            assert r.choices[0].message.content
            assert not _readable(_engine.bridge().notifier.fd)  # nothing left to spin on
        return aclient._core.wakeups() - wakeups, aclient._core.lends() - lends

    woken, _lent = asyncio.run(calls())  # lent or not: a quick reply comes within the send's turn
    assert woken <= 2  # the loop thread may still be on its way to park after the first call


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


async def _call_holding_the_loop(aclient: orroute.AsyncOpenRouter, model: str,
                                  **kw: object) -> asyncio.Future:
    """A task awaiting a call of `model`, once that call holds the lent loop (after a first
    call warmed the connection)."""
    await aclient.chat.completions.create(model="m/a", messages=MSGS)
    lends = aclient._core.lends()
    task = asyncio.ensure_future(aclient.chat.completions.create(model=model, messages=MSGS, **kw))
    for _ in range(100):
        await asyncio.sleep(0)
        if aclient._core.lends() > lends:
            return task
    raise AssertionError("the loop was not lent")


def test_calls_started_while_one_holds_the_lent_loop_all_complete(fake):
    fake.set_model_profile("m/slow", latency=0.3)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> list[str]:
        slow = await _call_holding_the_loop(aclient, "m/slow")
        # the lease ends: the loop thread takes over the slow call and serves all of these
        others = await asyncio.gather(*(aclient.chat.completions.create(model="m/a", messages=MSGS)
                                        for _ in range(40)))
        ids = [r.id for r in [*others, await slow]]
        await asyncio.sleep(0.05)  # the loop thread's last hand-over, if any, drained
        assert not _readable(_engine.bridge().notifier.fd)
        return ids

    ids = asyncio.run(run())
    assert len(set(ids)) == 41
    assert aclient._core.active_transfers() == 0


def test_a_sync_call_from_another_thread_while_an_async_call_holds_the_loop(client, fake):
    fake.set_model_profile("m/slow", latency=0.3)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)
    aclient._core = client._core  # one network loop (and the same keys) for both clients

    async def run() -> tuple[str, str]:
        slow = await _call_holding_the_loop(aclient, "m/slow")
        sync = await asyncio.to_thread(client.chat.completions.create, model="m/a", messages=MSGS)
        return sync.id, (await slow).id

    assert all(asyncio.run(run()))
    assert client._core.active_transfers() == 0


def test_cancelling_a_call_that_holds_the_lent_loop(fake):
    fake.set_model_profile("m/slow", latency=30.0)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> float:
        slow = await _call_holding_the_loop(aclient, "m/slow")
        t0 = time.monotonic()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        for _ in range(500):
            if aclient._core.active_transfers() == 0:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - t0
        r = await aclient.chat.completions.create(model="m/a", messages=MSGS)  # the client goes on
        assert r.choices[0].message.content
        return elapsed

    assert asyncio.run(run()) < 5
    assert aclient._core.active_transfers() == 0


def test_a_timeout_while_the_event_loop_holds_the_lent_loop(fake):
    # libcurl's total timeout is checked on the event loop's thread (the watch's timer), not by
    # the parked loop thread
    fake.set_model_profile("m/slow", latency=30.0)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> float:
        slow = await _call_holding_the_loop(aclient, "m/slow", timeout=0.4)
        t0 = time.monotonic()
        with pytest.raises(orroute.APITimeoutError):
            await slow
        return time.monotonic() - t0

    assert asyncio.run(run()) < 5


def test_a_retry_of_a_call_that_held_the_lent_loop(fake):
    # the 502 is read on the event loop's thread; the retry's timer is the loop thread's
    fake.script("m/a", [None, Fault.server_error(502), None])
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=2)

    async def run() -> None:
        await aclient.chat.completions.create(model="m/a", messages=MSGS)
        r = await aclient.chat.completions.create(model="m/a", messages=MSGS)
        assert r.choices[0].message.content

    asyncio.run(run())
    assert aclient._core.active_transfers() == 0


def test_an_awaited_call_on_an_idle_event_loop_is_served_on_its_thread(fake):
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> list[bool]:
        await aclient.chat.completions.create(model="m/a", messages=MSGS)
        served = []
        bridge = _engine.bridge()
        for _ in range(10):
            call = aclient._start_chat("m/a", MSGS, False, {}, None, ..., None, None,
                                       lend_to=bridge.notifier)
            served.append(call.done or bridge.serve_idle(call))
            assert call.done
        return served

    assert any(asyncio.run(run()))


def test_the_event_loop_keeps_its_timers_and_threads_while_a_call_is_served(fake):
    # A call served on the event loop's thread must not hold up the loop's other work: a timer
    # fires on time, a callback from another thread runs at once, and a task is cancelled from
    # another thread while the call waits.
    fake.set_model_profile("m/slow", latency=1.5)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        await aclient.chat.completions.create(model="m/a", messages=MSGS)
        t0 = time.monotonic()

        async def sleeper() -> float:
            await asyncio.sleep(0.1)
            return time.monotonic() - t0

        timer = asyncio.ensure_future(sleeper())
        await asyncio.sleep(0)  # the sleeper's timer is scheduled
        slow = asyncio.ensure_future(aclient.chat.completions.create(model="m/slow",
                                                                     messages=MSGS))
        from_thread = loop.create_future()
        threading.Timer(0.2, lambda: loop.call_soon_threadsafe(
            lambda: from_thread.set_result(time.monotonic() - t0))).start()
        threading.Timer(0.4, lambda: loop.call_soon_threadsafe(slow.cancel)).start()
        fired = await timer
        called = await from_thread
        with pytest.raises(asyncio.CancelledError):
            await slow
        return fired, called, time.monotonic() - t0

    fired, called, cancelled = asyncio.run(run())
    assert fired < 0.9  # not held until the slow reply (1.5 s)
    assert called < 0.9
    assert cancelled < 1.2
    assert _transfers_left(aclient._core) == 0


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_a_signal_during_a_call_served_on_the_event_loop_thread_cancels_it(fake):
    fake.set_model_profile("m/slow", latency=30.0)
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def run() -> None:
        await aclient.chat.completions.create(model="m/a", messages=MSGS)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        await aclient.chat.completions.create(model="m/slow", messages=MSGS)

    _interrupted_by_an_alarm(lambda: asyncio.run(run()))
    assert _transfers_left(aclient._core) == 0  # the slow transfer was cancelled


def test_sync_calls_from_many_threads_with_an_async_client_beside_them(client, fake):
    aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url)
    errors: list[BaseException] = []
    done = []

    def sync_worker() -> None:
        try:
            for _ in range(15):
                done.append(client.chat.completions.create(model="m/a", messages=MSGS).id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    async def async_calls() -> None:
        rs = await asyncio.gather(*(aclient.chat.completions.create(model="m/a", messages=MSGS)
                                    for _ in range(30)))
        done.extend(r.id for r in rs)

    threads = [threading.Thread(target=sync_worker) for _ in range(6)]
    for t in threads:
        t.start()
    asyncio.run(async_calls())
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(done) == 6 * 15 + 30 and len(set(done)) == len(done)
    assert client._core.active_transfers() == 0


class _Interrupted(Exception):
    pass


def _interrupted_by_an_alarm(run: Callable[[], object]) -> None:
    """Runs `run`, which arms SIGALRM, under a handler raising _Interrupted: raised within 5 s."""

    def interrupt(signum, frame):
        raise _Interrupted

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        t0 = time.monotonic()
        with pytest.raises(_Interrupted):
            run()
        assert time.monotonic() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _transfers_left(core: Any, wait: float = 5.0) -> int:
    """`core`'s transfers in flight once they are 0 or `wait` seconds passed."""
    deadline = time.monotonic() + wait
    while core.active_transfers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(core.active_transfers())


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_a_sync_call_interrupted_by_a_signal_is_cancelled_and_the_client_goes_on(client, fake):
    fake.set_model_profile("m/slow", latency=30.0)

    def call() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        client.chat.completions.create(model="m/slow", messages=MSGS)

    _interrupted_by_an_alarm(call)
    assert _transfers_left(client._core) == 0  # the slow transfer was cancelled
    assert client.chat.completions.create(model="m/a", messages=MSGS).choices


_CALL_FROM_A_SIGNAL_HANDLER = """
import signal, sys
import orroute
from orroute import _engine
from orroute.testing import FakeOpenRouter, Fault

msgs = [{"role": "user", "content": "Say hello"}]
with FakeOpenRouter(models=["m/a", "m/slow"], use_uvloop=False) as fake:
    fake.set_model_profile("m/slow", latency=1.0)
    client = orroute.OpenRouter(api_key=sys.argv[1], base_url=fake.base_url)
    inner = []
    signal.signal(signal.SIGALRM, lambda *_: inner.append(
        client.chat.completions.create(model="m/a", messages=msgs).id))
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    outer = client.chat.completions.create(model="m/slow", messages=msgs)
    print(len(inner), bool(outer.id))
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_a_sync_call_from_a_signal_handler_during_a_sync_call_completes(tmp_path):
    script = tmp_path / "nested.py"
    script.write_text(_CALL_FROM_A_SIGNAL_HANDLER)
    env = dict(os.environ, PYTHONPATH=CHILD_PATH)
    out = subprocess.run([sys.executable, str(script), KEY], check=False, capture_output=True,
                         text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "True"]


def test_a_managers_call_on_an_idle_engine_is_sent_from_the_event_loop_thread(fake):
    # The manager's first attempt goes out as the client's async calls do: one turn of the idle
    # loop on the asyncio thread, after the plan ("most" calls: see the test above).
    manager = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, fallbacks=["m/a"])
    net = orroute._engine.engine_of(manager).net

    async def calls() -> int:
        await manager.execute_task(orroute.Task(messages=MSGS))  # a warm connection
        before = net.drives()
        for _ in range(20):
            r = await manager.execute_task(orroute.Task(messages=MSGS))
            assert r.content
        return net.drives() - before

    assert asyncio.run(calls()) >= 10


# Daemon threads stuck in blocking calls (a sync client's and a manager's) when the program ends.
DAEMONS_IN_CALLS_AT_EXIT = """
import sys, threading, time
import orroute
from orroute import _engine
from orroute.testing import FakeOpenRouter, Fault
fake = FakeOpenRouter(models=["m/a"])
fake.__enter__()
KEY = "sk-or-v1-" + "d" * 64
MSGS = [{"role": "user", "content": "hi"}]
def client():
    c = orroute.OpenRouter(api_key=KEY, base_url=fake.base_url)
    while True:
        c.chat.completions.create(model="m/a", messages=MSGS)
def manager():
    m = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, fallbacks=["m/a"])
    while True:
        m.execute_task_sync(orroute.Task(messages=MSGS))
for target in (client, client, manager, manager):
    threading.Thread(target=target, daemon=True).start()
time.sleep(0.5)
"""


def test_daemon_threads_inside_calls_do_not_abort_the_exit():
    # At exit Python 3.11 ends a daemon thread that takes the GIL back with pthread_exit; a
    # binding that re-took it in a noexcept destructor (pybind11's gil_scoped_release) aborted
    # the whole process (status 134) instead of exiting 0.
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", DAEMONS_IN_CALLS_AT_EXIT], capture_output=True,
                             text=True, timeout=120, check=False,
                             env=dict(os.environ, PYTHONPATH=CHILD_PATH))
        assert run.returncode == 0, run.stderr[-2000:]


def test_a_call_on_a_socket_numbered_past_1024_is_still_lent(fake):
    # The lease watches the transport's own epoll set, which names any descriptor; before, its
    # sockets came from curl_multi_fdset, which leaves out those past FD_SETSIZE (1024), so an
    # agent holding many files or connections never had its calls lent (each woke two threads).
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("cannot open 1,200 descriptors here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    fake.set_model_profile("m/slow", latency=0.2)
    base = os.open(os.devnull, os.O_RDONLY)
    held = [os.dup(base) for _ in range(1100)]  # the client's connection opens past them
    try:
        aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

        async def run() -> str:
            slow = await _call_holding_the_loop(aclient, "m/slow")
            return (await slow).choices[0].message.content

        assert asyncio.run(run())
        assert aclient._core.active_transfers() == 0
    finally:
        for fd in [*held, base]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_chat_sender_gives_the_reply_of_a_finished_call_and_else_the_call(client, fake):
    # _core.chat_sender: the client's plain chat call in one core function. The reply itself
    # only for a call that finished inside it (blocking, or served) and was answered with a
    # JSON object without `error`; the Call in every other case, with what it had before.
    from orroute import _core

    send = _core.chat_sender(client._core)
    body = {"model": "m/a", "messages": MSGS, "max_tokens": 5}
    reply = send("/chat/completions", body, 0, None, [], True, None, None, None)
    assert type(reply) is _core.JsonRef and reply.get("choices", 2, None)
    call = send("/chat/completions", body, 0, None, [("X-Trace", "t1")], False, None, None, None)
    assert type(call) is _core.Call  # not blocking, not served: the call, even if it finished
    call.wait_done()
    assert type(call.chat_reply()) is _core.JsonRef
    assert fake.last_request.headers.get("x-trace") == "t1"
    # an error status: the Call, its error with the upstream's retry hint (headers kept)
    fake.fail("m/a", Fault.rate_limit(retry_after=7), times=1)
    failed = send("/chat/completions", body, 0, None, [], True, None, None, None)
    assert type(failed) is _core.Call and not failed.ok
    assert failed.error()["status"] == 429 and failed.error()["retry_after"] == 7


def test_the_chat_sender_refuses_malformed_arguments_before_sending(client, fake):
    from orroute import _core

    send = _core.chat_sender(client._core)
    body = {"model": "m/a", "messages": MSGS}
    sent = len(fake.requests)
    with pytest.raises(TypeError):
        send("/chat/completions", body)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        send(7, body, 0, None, [], True, None, None, None)
    with pytest.raises(TypeError):
        send("/chat/completions", body, "2", None, [], True, None, None, None)
    with pytest.raises(orroute.InvalidArgumentError):
        send("/chat/completions", {"model": "m/a"}, 0, None, [], True, None, None, None)
    with pytest.raises(orroute.InvalidArgumentError):
        send("/chat/completions", body, 0, None, [("X-A", "b\r\nInjected: 1")], True, None, None,
             None)
    with pytest.raises(TypeError):
        send("/chat/completions", body, 0, None, [], False, object(), 3, 1.0)  # not a Notifier
    assert len(fake.requests) == sent
