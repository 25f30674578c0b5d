"""litellm on orroute in process: ``litellm.completion(model="openai/<id>", client=
orroute.openai_client(...))`` (docs/integrations.md). Plain, streamed, tool call and structured
output, each booked in the ledger; a budget refuses the call that would exceed it."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map download at import
litellm = pytest.importorskip("litellm")

from _dropin_util import (
    MODEL,
    Weather,
    assert_booked,
    dropin_fixtures,
    event_loop_closed_after_the_test,
    make_manager,
)

import orroute
from orroute.testing import FakeOpenRouter

fake, tracker, manager = dropin_fixtures()
# each test gets a thread event loop closed after it (see the fixture)
closed_loop = event_loop_closed_after_the_test
# litellm's own models warn when pydantic builds them (nothing to do with orroute)
pytestmark = [pytest.mark.usefixtures("closed_loop"),
              pytest.mark.filterwarnings("ignore:.*ReadOnly. qualifier:UserWarning"),
              pytest.mark.filterwarnings("ignore:Accessing the 'model_(computed_)?fields' attribute on the instance")]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def complete(manager: Any, **kwargs: Any) -> Any:
    # "openai/" selects litellm's OpenAI provider, which then uses the client it is given
    return litellm.completion(model=f"openai/{MODEL}", messages=ASK,
                              client=orroute.openai_client(manager), **kwargs)


def test_plain(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    r = complete(manager)
    assert r.choices[0].message.content and r.usage.completion_tokens > 0
    assert fake.requests[-1].model == MODEL
    assert_booked(tracker, 1, fake)


def test_streamed(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    plain = complete(manager, seed=9).choices[0].message.content
    parts = [c.choices[0].delta.content or "" for c in complete(manager, seed=9, stream=True)]
    assert len(parts) > 1 and "".join(parts) == plain
    assert fake.requests[-1].stream
    assert_booked(tracker, 2, fake)


def test_tool_call(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    calls = complete(manager, tools=[WEATHER_TOOL]).choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"]
    assert isinstance(json.loads(calls[0].function.arguments)["city"], str)
    assert_booked(tracker, 1, fake)


def test_structured_output(manager: Any, tracker: orroute.CostTracker,
                           fake: FakeOpenRouter) -> None:
    r = complete(manager, response_format=Weather)
    assert Weather.model_validate_json(r.choices[0].message.content)
    assert fake.requests[-1].json["response_format"]["type"] == "json_schema"
    assert_booked(tracker, 1, fake)


def test_budget_refuses(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> None:
    fake.reset()
    with pytest.raises(litellm.exceptions.APIError) as info:
        complete(make_manager(fake, tracker, budget="0.000001"))
    assert info.value.status_code == 402 and "budget" in str(info.value)
    assert fake.request_count == 0
