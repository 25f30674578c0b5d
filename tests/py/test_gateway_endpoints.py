"""The endpoints OpenAI clients call besides chat completions, driven by the real ``openai``
SDK against the gateway in front of FakeOpenRouter: ``models.retrieve``, ``n > 1``,
``embeddings.create`` and ``responses.create`` (plain and streamed)."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest
from _gateway_util import call, gateway_fixtures

from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter

UPSTREAM_KEY = "sk-or-v1-upstream-secret-endpoints-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Say hi"}]

fake, gateway, key, client = gateway_fixtures(UPSTREAM_KEY, routes={"support": [MODEL]})


# --- GET /v1/models/{id} -----------------------------------------------------------------------


@pytest.mark.parametrize("model_id", [MODEL, "orroute/auto", "support"])
def test_models_retrieve(client: openai.OpenAI, model_id: str) -> None:
    m = client.models.retrieve(model_id)
    assert m.id == model_id and m.object == "model"


def test_models_retrieve_unknown_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("nobody/nothing")
    assert e.value.code == "model_not_found"


def test_models_retrieve_needs_a_key(gateway: Gateway) -> None:
    assert call(gateway, "GET", f"/v1/models/{MODEL}")[0] == 401


# --- n > 1 ---------------------------------------------------------------------------------------


def test_n_choices(client: openai.OpenAI, fake: FakeOpenRouter, gateway: Gateway,
                   key: str) -> None:
    fake.clear_requests()
    one = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=16)
    r = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=16, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content for c in r.choices)
    assert one.usage is not None and r.usage is not None
    assert r.usage.prompt_tokens == 2 * one.usage.prompt_tokens  # each choice paid the prompt
    sent = [q for q in fake.requests if q.endpoint == "/chat/completions"]
    assert len(sent) == 3 and all("n" not in (q.json or {}) for q in sent)
    project = gateway.keys.verify(key).project  # type: ignore[union-attr]
    spent = gateway.tracker.total_cost(project=project)
    assert spent > Decimal(0)


def test_n_with_stream_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=HI, n=2, stream=True)
    assert e.value.param == "n"


def test_n_refused_by_the_budget_costs_nothing_more(gateway: Gateway) -> None:
    k, _ = gateway.keys.create("n-budget")
    gateway.tracker.set_budget("0.0000001", project="n-budget")
    with openai.OpenAI(base_url=gateway.base_url, api_key=k, max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model=MODEL, messages=HI, n=3, max_tokens=1000)
    assert e.value.status_code == 402
    assert gateway.tracker.budget_status(project="n-budget").reserved == 0
    assert json.loads(e.value.response.content)["error"]["code"] == "budget_exceeded"
