"""instructor on orroute in process: ``instructor.from_openai(orroute.openai_client())``
(docs/integrations.md). Plain, streamed, tool call and structured output, each booked in the
ledger; a budget refuses the call that would exceed it."""

from __future__ import annotations

from typing import Any

import pytest

instructor = pytest.importorskip("instructor")
import openai
from _dropin_util import (
    MODEL,
    Weather,
    assert_booked,
    dropin_fixtures,
    make_manager,
)

import orroute
from orroute.testing import FakeOpenRouter

fake, tracker, manager = dropin_fixtures()
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_plain(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    client = instructor.from_openai(orroute.openai_client(manager))
    r = client.chat.completions.create(model=MODEL, messages=ASK, response_model=None)
    assert isinstance(r, openai.types.chat.ChatCompletion) and r.choices[0].message.content
    assert_booked(tracker, 1, fake)


def test_streamed_partial_objects(manager: Any, tracker: orroute.CostTracker,
                                  fake: FakeOpenRouter) -> None:
    client = instructor.from_openai(orroute.openai_client(manager))
    partials = list(client.chat.completions.create_partial(
        model=MODEL, messages=ASK, response_model=Weather))
    assert partials and partials[-1].city and partials[-1].celsius is not None
    assert fake.requests[-1].stream
    assert_booked(tracker, 1, fake)


def test_tool_call(manager: Any, tracker: orroute.CostTracker, fake: FakeOpenRouter) -> None:
    client = instructor.from_openai(orroute.openai_client(manager), mode=instructor.Mode.TOOLS)
    w = client.chat.completions.create(model=MODEL, messages=ASK, response_model=Weather)
    assert isinstance(w, Weather)
    assert fake.requests[-1].json["tool_choice"]["function"]["name"] == "Weather"
    assert_booked(tracker, 1, fake)


def test_structured_output(manager: Any, tracker: orroute.CostTracker,
                           fake: FakeOpenRouter) -> None:
    client = instructor.from_openai(orroute.openai_client(manager),
                                    mode=instructor.Mode.JSON_SCHEMA)
    w = client.chat.completions.create(model=MODEL, messages=ASK, response_model=Weather)
    assert isinstance(w, Weather)
    assert fake.requests[-1].json["response_format"]["type"] == "json_schema"
    assert_booked(tracker, 1, fake)


def test_budget_refuses(fake: FakeOpenRouter, tracker: orroute.CostTracker) -> None:
    fake.reset()
    client = instructor.from_openai(
        orroute.openai_client(make_manager(fake, tracker, budget="0.000001")))
    with pytest.raises(Exception) as info:  # instructor may wrap openai's error
        client.chat.completions.create(model=MODEL, messages=ASK, response_model=Weather,
                                       max_retries=0)
    err = info.value
    while not isinstance(err, openai.APIStatusError) and err.__cause__ is not None:
        err = err.__cause__
    assert isinstance(err, openai.APIStatusError) and err.status_code == 402, repr(info.value)
    assert fake.request_count == 0
