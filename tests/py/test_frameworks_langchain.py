"""langchain-openai ``ChatOpenAI`` on orroute in process: ``http_client=httpx.Client(transport=
orroute.Transport(...))`` and ``http_async_client`` (docs/integrations.md). invoke, stream, tools
and ``with_structured_output``, each booked in the ledger; a budget refuses the call that would
exceed it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("langchain_openai")
import httpx
import openai
from _dropin_util import (
    MODEL,
    Weather,
    assert_booked,
    dropin_fixtures,
    get_weather,
    make_manager,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import orroute
from orroute.testing import FakeOpenRouter
from orroute.transport import BASE_URL

fake, tracker, manager = dropin_fixtures()


def chat_for(manager: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=MODEL, api_key="unused", base_url=BASE_URL, max_retries=0,
        http_client=httpx.Client(transport=orroute.Transport(manager)),
        http_async_client=httpx.AsyncClient(transport=orroute.AsyncTransport(manager)),
    )


def test_invoke(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    msg = chat_for(manager).invoke("Say hi")
    assert msg.content and msg.usage_metadata["output_tokens"] > 0
    assert_booked(tracker, 1, fake)


def test_stream(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    chat = chat_for(manager)
    plain = chat.invoke("Say hi", seed=5)
    parts = [c.content for c in chat.stream("Say hi", seed=5)]
    assert len(parts) > 1 and "".join(parts) == plain.content
    assert fake.requests[-1].stream
    assert_booked(tracker, 2, fake)


def test_async_invoke(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    msg = asyncio.run(chat_for(manager).ainvoke("Say hi"))
    assert msg.content
    assert_booked(tracker, 1, fake)


def test_tools(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    msg = chat_for(manager).bind_tools([tool(get_weather)]).invoke("Weather in Paris?")
    assert [c["name"] for c in msg.tool_calls] == ["get_weather"]
    assert isinstance(msg.tool_calls[0]["args"]["city"], str)
    assert_booked(tracker, 1, fake)


def test_with_structured_output(manager: Any, tracker: orroute.CostTracker,
                                fake: FakeOpenRouter) -> None:
    w = chat_for(manager).with_structured_output(Weather).invoke("Weather in Paris?")
    assert isinstance(w, Weather)
    assert_booked(tracker, 1, fake)


def test_budget_refuses(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> None:
    fake.reset()
    with pytest.raises(openai.APIStatusError) as info:
        chat_for(make_manager(fake, tracker, budget="0.000001")).invoke("Say hi")
    assert info.value.status_code == 402 and info.value.code == "budget_exceeded"
    assert fake.request_count == 0
