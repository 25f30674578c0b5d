"""pydantic-ai on orroute in process: ``OpenAIProvider(openai_client=orroute.async_openai_client())``
(docs/integrations.md). Plain, streamed, tool call and structured output, each booked in the
ledger; a budget refuses the call that would exceed it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")
from _dropin_util import (
    MODEL,
    Weather,
    assert_booked,
    dropin_fixtures,
    event_loop_closed_after_the_test,
    get_weather,
    make_manager,
    tool_result_sent,
)
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

import orroute
from orroute.testing import FakeOpenRouter

fake, tracker, manager = dropin_fixtures()
# each test gets a thread event loop closed after it (see the fixture)
closed_loop = event_loop_closed_after_the_test
pytestmark = pytest.mark.usefixtures("closed_loop")


def model_for(manager: Any) -> OpenAIChatModel:
    client = orroute.async_openai_client(manager)
    return OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))


def test_plain(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    result = Agent(model_for(manager)).run_sync("Say hi")
    assert isinstance(result.output, str) and result.output
    assert_booked(tracker, 1, fake)


def test_streamed(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    agent = Agent(model_for(manager))

    async def run() -> tuple[list[str], str]:
        async with agent.run_stream("Say hi") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
            return deltas, await result.get_output()

    deltas, output = asyncio.run(run())
    assert len(deltas) > 1 and "".join(deltas) == output
    assert fake.requests[-1].stream
    assert_booked(tracker, 1, fake)


def test_tool_call(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    agent = Agent(model_for(manager), tools=[get_weather])
    result = agent.run_sync("What is the weather in Paris?")
    assert result.output
    assert tool_result_sent(fake)
    assert_booked(tracker, 2, fake)


def test_structured_output(manager: Any, tracker: orroute.CostTracker,
                           fake: FakeOpenRouter) -> None:
    result = Agent(model_for(manager), output_type=Weather).run_sync("Weather in Paris?")
    assert isinstance(result.output, Weather)
    assert_booked(tracker, 1, fake)


def test_budget_refuses(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> None:
    fake.reset()
    agent = Agent(model_for(make_manager(fake, tracker, budget="0.000001")))
    with pytest.raises(ModelHTTPError) as info:
        agent.run_sync("Say hi")
    assert info.value.status_code == 402
    assert "budget" in str(info.value.body)
    assert fake.request_count == 0
