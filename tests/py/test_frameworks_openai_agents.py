"""openai-agents on orroute in process: ``OpenAIChatCompletionsModel(model=...,
openai_client=orroute.async_openai_client())`` (docs/integrations.md). Plain, streamed, tool
call and structured output, each booked in the ledger; a budget refuses the call that would
exceed it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("agents")
import openai
from _dropin_util import (
    MODEL,
    Weather,
    assert_booked,
    dropin_fixtures,
    get_weather,
    make_manager,
    tool_result_sent,
)
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

import orroute
from orroute.testing import FakeOpenRouter

fake, tracker, manager = dropin_fixtures()


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)  # traces would be exported to api.openai.com


def agent_for(manager: Any, **kwargs: Any) -> Agent[Any]:
    model = OpenAIChatCompletionsModel(model=MODEL,
                                       openai_client=orroute.async_openai_client(manager))
    return Agent(name="assistant", instructions="Be brief.", model=model, **kwargs)


def run(agent: Agent[Any], prompt: str) -> Any:
    """``Runner.run`` on a loop of its own: ``Runner.run_sync`` keeps a loop per thread that
    pytest-asyncio closes between tests, which strands openai's httpx generators of the
    previous test (with or without orroute)."""
    return asyncio.run(Runner.run(agent, prompt))


def test_plain(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    result = run(agent_for(manager), "Say hi")
    assert isinstance(result.final_output, str) and result.final_output
    assert_booked(tracker, 1, fake)


def test_streamed(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    from openai.types.responses import ResponseTextDeltaEvent

    async def run() -> tuple[list[str], Any]:
        result = Runner.run_streamed(agent_for(manager), "Say hi")
        deltas = [e.data.delta async for e in result.stream_events()
                  if e.type == "raw_response_event" and isinstance(e.data, ResponseTextDeltaEvent)]
        return deltas, result.final_output

    deltas, output = asyncio.run(run())
    assert len(deltas) > 1 and "".join(deltas) == output
    assert fake.requests[-1].stream
    assert_booked(tracker, 1, fake)


def test_tool_call(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    agent = agent_for(manager, tools=[function_tool(get_weather)])
    result = run(agent, "What is the weather in Paris?")
    assert result.final_output
    assert tool_result_sent(fake)
    assert_booked(tracker, 2, fake)


def test_structured_output(manager: Any, tracker: orroute.CostTracker,
                           fake: FakeOpenRouter) -> None:
    result = run(agent_for(manager, output_type=Weather), "Weather in Paris?")
    assert isinstance(result.final_output, Weather)
    assert fake.requests[-1].json["response_format"]["type"] == "json_schema"
    assert_booked(tracker, 1, fake)


def test_budget_refuses(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> None:
    fake.reset()
    agent = agent_for(make_manager(fake, tracker, budget="0.000001"))
    with pytest.raises(openai.APIStatusError) as info:
        run(agent, "Say hi")
    assert info.value.status_code == 402 and info.value.code == "budget_exceeded"
    assert fake.request_count == 0


# --- the Responses model, over orroute's /responses (a Responses request run as a completion) --


def responses_agent_for(manager: Any, **kwargs: Any) -> Agent[Any]:
    model = OpenAIResponsesModel(model=MODEL, openai_client=orroute.async_openai_client(manager))
    return Agent(name="assistant", instructions="Be brief.", model=model, **kwargs)


def test_responses_model_plain_and_tool_call(manager: Any, tracker: orroute.CostTracker,
                                             fake: FakeOpenRouter) -> None:
    assert run(responses_agent_for(manager), "Say hi")
    agent = responses_agent_for(manager, tools=[function_tool(get_weather)])
    assert run(agent, "What is the weather in Paris?")
    assert tool_result_sent(fake)
    assert_booked(tracker, 3, fake)


def test_responses_model_streamed_and_structured(manager: Any, tracker: orroute.CostTracker,
                                                 fake: FakeOpenRouter) -> None:
    from openai.types.responses import ResponseTextDeltaEvent

    async def streamed() -> tuple[list[str], Any]:
        result = Runner.run_streamed(responses_agent_for(manager), "Say hi")
        deltas = [e.data.delta async for e in result.stream_events()
                  if e.type == "raw_response_event" and isinstance(e.data, ResponseTextDeltaEvent)]
        return deltas, result.final_output

    deltas, output = asyncio.run(streamed())
    assert len(deltas) > 1 and "".join(deltas) == output
    structured = run(responses_agent_for(manager, output_type=Weather), "Paris?")
    assert isinstance(structured.final_output, Weather)
    assert_booked(tracker, 2, fake)
