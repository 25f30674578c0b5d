"""Aliases (``orroute/cheapest``, ``orroute/auto``, ...) are ranked by the router's engine, with
what it has measured: a model whose circuit is open is not a candidate at all, so even a gateway
that tries one model per request (``candidates=1``) keeps answering through an alias."""

from __future__ import annotations

import openai
import pytest
from _gateway_util import gateway_fixtures

from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-alias-0123456789abcdef0123456789ab"
HI = [{"role": "user", "content": "Say hi"}]

fake, gateway, key, client = gateway_fixtures(
    UPSTREAM_KEY, candidates=1, max_retries=0, breaker={"failures": 1, "cooldown": 600},
)


def models_sent(fake: FakeOpenRouter, since: int) -> list[str]:
    return [r.json["model"] for r in fake.requests[since:] if r.path.endswith("/completions")]


def test_an_alias_moves_past_a_model_whose_circuit_is_open(
        gateway: Gateway, client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    first = client.chat.completions.create(model="orroute/cheapest", messages=HI).model
    fake.fail(first, Fault.server_error(503))
    try:
        before = len(fake.requests)
        # one candidate per request: this one fails and opens the circuit (failures=1)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="orroute/cheapest", messages=HI)
        assert models_sent(fake, before) == [first]
        assert gateway.health()["models"][first]["state"] == "circuit_open"
        # the engine's selector no longer offers it: the next cheapest model answers
        before = len(fake.requests)
        raw = client.chat.completions.with_raw_response.create(model="orroute/cheapest",
                                                               messages=HI)
        second = raw.parse().model
        assert second != first and models_sent(fake, before) == [second]
        assert raw.headers["x-orroute-attempts"] == "1"
        # asked for by name, the open circuit still answers 503 at once
        with pytest.raises(openai.InternalServerError) as e:
            client.chat.completions.create(model=first, messages=HI)
        assert e.value.status_code == 503 and models_sent(fake, before) == [second]
    finally:
        fake.clear_faults()

