"""Circuit breakers key on the real provider (OpenRouter's ``provider`` in the reply) or the
endpoint, never on the model's author; every open breaker shows in health()."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from _gateway_util import call

import orroute
from orroute import Task
from orroute.gateway import Gateway, GatewaySettings
from orroute.testing import FakeOpenRouter, Fault

SAME_AUTHOR, OTHER_AUTHOR = ["test/a", "test/b"], "zeta/c"  # synthetic models
HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture
def fake():
    with FakeOpenRouter(models=[*SAME_AUTHOR, OTHER_AUTHOR]) as f:
        yield f


def manager(fake: FakeOpenRouter, fallbacks: list[str]) -> orroute.AIModelManager:
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                  fallbacks=fallbacks, max_retries=0, retry_base_delay=0.001,
                                  breaker={"failures": 3, "cooldown": 600})


def open_breakers(m: orroute.AIModelManager) -> dict[str, str]:
    return {b["key"]: b["state"] for b in m.health()["breakers"]}


def test_one_failing_model_leaves_its_authors_other_models_usable(fake):
    m = manager(fake, ["test/a", OTHER_AUTHOR])
    assert m.health()["overall"] == "ok" and m.health()["breakers"] == []
    fake.fail("test/a", Fault.server_error())  # a 500 naming no provider
    for _ in range(3):
        assert m.execute_task_sync(Task(messages="hi")).model == OTHER_AUTHOR
    assert open_breakers(m) == {"model:test/a": "open"}
    r = m.execute_task_sync(Task(messages="hi"), model="test/b")
    assert r.model == "test/b"  # the same author, not blocked
    h = m.health()
    assert h["overall"] == "degraded" and h["models"]["test/a"]["state"] == "circuit_open"


def test_a_failing_provider_opens_its_breaker_only(fake):
    fake.set_model_profile("test/a", provider="Flaky")
    fake.set_model_profile("test/b", provider="Steady")
    m = manager(fake, ["test/a", OTHER_AUTHOR])
    assert m.execute_task_sync(Task(messages="hi")).model == "test/a"  # learns: Flaky serves it
    fake.fail("test/a", Fault.server_error(502, provider_name="Flaky"))
    for _ in range(3):
        assert m.execute_task_sync(Task(messages="hi")).model == OTHER_AUTHOR
    opened = open_breakers(m)
    assert opened.get("provider:Flaky") == "open"
    assert not any(k.startswith(("provider:Steady", "endpoint:")) for k in opened)
    assert m.execute_task_sync(Task(messages="hi"), model="test/b").model == "test/b"
    flaky = next(b for b in m.health()["breakers"] if b["key"] == "provider:Flaky")
    assert flaky["kind"] == "provider" and flaky["name"] == "Flaky" and flaky["retry_in"] > 0
    assert m.health()["overall"] == "degraded"


def test_gateway_health_shows_an_open_provider_breaker_and_is_degraded(tmp_path):
    flaky, steady = "meta-llama/llama-3.1-8b-instruct", "mistralai/mistral-nemo"
    upstream_key = "sk-or-v1-upstream-breakers-0123456789abcdef0123456789"
    with FakeOpenRouter(api_key=upstream_key) as fake:
        fake.set_model_profile(flaky, provider="Flaky")
        settings = GatewaySettings(base_url=fake.base_url, api_key=upstream_key,
                                   ledger=str(tmp_path / "l.sqlite3"), port=0,
                                   routes={"r": [flaky, steady]}, max_retries=0,
                                   breaker={"failures": 2, "cooldown": 600})
        with Gateway(settings) as gw:
            key = gw.keys.create("p")[0]
            status, body = _health(gw)
            assert status == 200 and body["status"] == "healthy"
            assert body["router"]["breakers"] == []
            with openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0) as c:
                assert c.chat.completions.create(model="r", messages=HI).model == flaky
                fake.fail(flaky, Fault.server_error(502, provider_name="Flaky"))
                for _ in range(2):
                    assert c.chat.completions.create(model="r", messages=HI).model == steady
            status, body = _health(gw)
            assert status == 200 and body["status"] == "degraded"
            assert body["router"]["overall"] == "degraded"
            keys = {b["key"]: b for b in body["router"]["breakers"]}
            assert keys["provider:Flaky"]["state"] == "open"
            assert keys["provider:Flaky"]["kind"] == "provider"
            assert not any(k.startswith("endpoint:") for k in keys)


def _health(gw: Gateway) -> tuple[int, dict[str, Any]]:
    status, _, body = call(gw, "GET", "/health")
    return status, json.loads(body)
