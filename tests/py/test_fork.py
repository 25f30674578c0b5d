"""A client or manager made before os.fork() belongs to the parent: its connections and its
network loop's epoll set are shared with the parent across the fork, and its loop thread is not
in the child. Used in the child it refuses with a clear error (a request written on a shared
connection could be answered to the other process; the child's socket changes would edit the
parent's watch list, stalling its calls); a client made in the child works, and the parent goes
on untouched."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

MSGS = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a"]) as f:
        yield f


def in_child(check: Callable[[], None]) -> int:
    """Runs ``check`` in a forked child; its exit status (0: every assertion held)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's outcome is its exit status)
        code = 1
        try:
            check()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_client_made_before_fork_refuses_in_the_child(fake: FakeOpenRouter) -> None:
    client = orroute.OpenRouter(api_key="sk-or-test", base_url=fake.base_url)
    assert client.chat.completions.create(model="m/a", messages=MSGS).choices[0].message.content

    def child() -> None:
        with pytest.raises(orroute.OrRouteError, match="before fork"):
            client.chat.completions.create(model="m/a", messages=MSGS)
        own = orroute.OpenRouter(api_key="sk-or-test", base_url=fake.base_url)
        assert own.chat.completions.create(model="m/a", messages=MSGS).choices[0].message.content

    assert in_child(child) == 0
    started = time.monotonic()
    for _ in range(10):
        assert client.chat.completions.create(model="m/a", messages=MSGS, timeout=5).id
    assert time.monotonic() - started < 4  # no call waited for a timeout


def test_a_manager_made_before_fork_refuses_in_the_child(fake: FakeOpenRouter) -> None:
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     fallbacks=["m/a"])
    assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    def child() -> None:
        with pytest.raises(orroute.OrRouteError, match="before fork"):
            manager.execute_task_sync(Task(messages=MSGS, max_tokens=8))
        with pytest.raises(orroute.OrRouteError, match="before fork"):
            asyncio.run(manager.execute_task(Task(messages=MSGS, max_tokens=8)))

    assert in_child(child) == 0
    assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content
