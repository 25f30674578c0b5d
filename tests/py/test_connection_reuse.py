"""Connections to a plain-HTTP/1.1 upstream (a local server, the gateway, vLLM) are kept and
reused across bursts of concurrent calls: a call that ends while few others are in flight must
not close the idle connections the next burst needs (libcurl's default cache holds only four per
transfer in flight at that moment)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter, Fault

MSGS = [{"role": "user", "content": "Say hi"}]
BURST = 32


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a"]) as f:
        yield f


ROUNDS = 3


async def bursts(call: Any) -> None:
    """A burst of concurrent calls, then rounds of one call alone (it ends with one transfer in
    flight) and the burst again."""
    await asyncio.gather(*(call() for _ in range(BURST)))
    for _ in range(ROUNDS):
        await call()
        await asyncio.gather(*(call() for _ in range(BURST)))


def assert_reused(fake: FakeOpenRouter) -> None:
    """Every call sent once (a closed connection is not retried on another) over at most one
    connection per concurrent call (the manager's catalog fetch reuses one of them)."""
    chats = [r for r in fake.requests if r.endpoint == "/chat/completions"]
    assert len(chats) == (ROUNDS + 1) * BURST + ROUNDS
    assert fake.connections_accepted <= BURST


def test_client_keeps_its_connections_between_bursts(fake: FakeOpenRouter) -> None:
    client = orroute.AsyncOpenRouter(api_key="sk-or-test", base_url=fake.base_url)

    async def call() -> Any:
        return await client.chat.completions.create(model="m/a", messages=MSGS, max_tokens=4)

    asyncio.run(bursts(call))
    assert_reused(fake)


def test_manager_keeps_its_connections_between_bursts(fake: FakeOpenRouter) -> None:
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     fallbacks=["m/a"])

    async def call() -> Any:
        return await manager.execute_task(Task(messages=MSGS, max_tokens=4))

    asyncio.run(bursts(call))
    assert_reused(fake)


async def test_calls_started_together_on_a_new_connection_do_not_wait_for_each_other(
        fake: FakeOpenRouter) -> None:
    """Two calls started at once to a plain-HTTP upstream with no idle connection: each gets a
    connection of its own at once. With CURLOPT_PIPEWAIT (a wait to share an HTTP/2 connection,
    which plain http never has) libcurl 7.88 held the second until the first one's answer had
    ended, however long (a stream of minutes; a gateway's ``n > 1`` stream after any cut); here
    the first one the upstream receives hangs, and the second must be answered meanwhile."""
    fake.fail("*", Fault.hang(after_tokens=2), times=1)
    client = orroute.AsyncOpenRouter(base_url=fake.base_url, api_key="k", timeout=15)
    order: list[str] = []

    async def call() -> None:
        try:
            stream = await client.chat.completions.create(model="m/a", messages=MSGS,
                                                          stream=True)
            async for _ in stream:
                pass
            order.append("answered")
        except orroute.APITimeoutError:
            order.append("timed out")

    calls = [asyncio.ensure_future(call()) for _ in range(2)]
    await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
    assert order == ["answered"]
    for c in calls:
        c.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    await client.close()
