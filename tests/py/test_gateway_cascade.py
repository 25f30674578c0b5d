"""``model: "orroute/cascade"``: the gateway verifies the cheap model's answer and escalates when a
check fails; every stage is reserved against the key's project, settled and in the ledger; the
reply says which stages ran, what each verifier said and what each cost."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest
from _gateway_util import call, gateway_fixtures

from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-cascade-0123456789abcdef0123456789"
CHEAP, STRONG = "openai/gpt-4o-mini", "openai/gpt-4o"
Q = [{"role": "user", "content": "16 eggs, 3 eaten. How many left?"}]
WRONG, RIGHT = "16 - 3 = 12\n#### 12", "16 - 3 = 13\n#### 13"

fake, gateway, key, client = gateway_fixtures(
    UPSTREAM_KEY, max_retries=0, cascade={"stages": [CHEAP, STRONG], "verifiers": ["arithmetic"]},
)


@pytest.fixture(autouse=True)
def _clean(fake: FakeOpenRouter) -> None:
    fake.clear_faults()
    fake.set_reply("*", None)
    for m in (CHEAP, STRONG):
        fake.set_reply(m, None)


def _sent(fake: FakeOpenRouter, since: int) -> list[dict]:
    return [r.json for r in fake.requests[since:] if r.path.endswith("/completions")]


def _ledger(gateway: Gateway, key: str) -> list:
    return gateway.tracker.usage_history(project=gateway.keys.verify(key).project)


def test_a_failed_check_escalates_and_the_reply_lists_the_stages(
        gateway: Gateway, client: openai.OpenAI, fake: FakeOpenRouter, key: str) -> None:
    fake.set_reply(CHEAP, WRONG)
    fake.set_reply(STRONG, RIGHT)
    before = len(fake.requests)
    raw = client.chat.completions.with_raw_response.create(
        model="orroute/cascade", messages=Q, temperature=0.2, max_tokens=50)
    reply = raw.parse()
    assert reply.model == STRONG and reply.choices[0].message.content == RIGHT
    assert raw.headers["x-orroute-model"] == STRONG and raw.headers["x-orroute-attempts"] == "2"
    sent = _sent(fake, before)
    assert [b["model"] for b in sent] == [CHEAP, STRONG]
    assert all(b["temperature"] == 0.2 and b["max_tokens"] == 50 and "orroute" not in b
               for b in sent)                             # the client's fields reach every stage
    ext = reply.model_extra["orroute"]["cascade"]
    assert ext["accepted"] == STRONG
    assert [s["model"] for s in ext["stages"]] == [CHEAP, STRONG]
    assert ext["stages"][0]["escalated"] and not ext["stages"][1]["escalated"]
    assert ext["stages"][0]["verdicts"][0]["name"] == "arithmetic"
    assert ext["stages"][0]["verdicts"][0]["outcome"] == "fail"
    assert ext["stages"][1]["verdicts"][0]["outcome"] == "pass"
    rows = _ledger(gateway, key)
    assert [r.model for r in rows] == [CHEAP, STRONG]
    assert all(r.tags.get("gateway_key") for r in rows)
    assert Decimal(ext["cost"]) == sum((r.cost for r in rows), Decimal(0)) > 0
    assert [Decimal(s["cost"]) for s in ext["stages"]] == [r.cost for r in rows]
    assert gateway.manager.reserved()[0] == 0


def test_a_passing_check_answers_with_the_cheap_model_alone(
        client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.set_reply(CHEAP, RIGHT)
    before = len(fake.requests)
    reply = client.chat.completions.create(model="orroute/cascade", messages=Q)
    assert reply.model == CHEAP and reply.choices[0].message.content == RIGHT
    assert [b["model"] for b in _sent(fake, before)] == [CHEAP]
    assert len(reply.model_extra["orroute"]["cascade"]["stages"]) == 1


def test_the_final_stage_streams_and_the_last_chunk_carries_the_stages(
        gateway: Gateway, client: openai.OpenAI, fake: FakeOpenRouter, key: str) -> None:
    long = "16 - 3 = 13, so 13 eggs are left. " * 6 + "#### 13"
    fake.set_reply(CHEAP, WRONG)
    fake.set_reply(STRONG, long)
    chunks = list(client.chat.completions.create(model="orroute/cascade", messages=Q,
                                                 stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == long and sum(1 for c in chunks if c.choices) > 1   # streamed, not one blob
    ext = chunks[-1].model_extra["orroute"]["cascade"]
    assert not chunks[-1].choices and ext["accepted"] == STRONG
    assert [s["model"] for s in ext["stages"]] == [CHEAP, STRONG]
    assert [r.model for r in _ledger(gateway, key)] == [CHEAP, STRONG]

    fake.set_reply(CHEAP, RIGHT)                  # accepted early: the answer is one chunk
    chunks = list(client.chat.completions.create(model="orroute/cascade", messages=Q,
                                                 stream=True))
    assert [c.choices[0].delta.content for c in chunks if c.choices] == [RIGHT]
    assert chunks[-1].model_extra["orroute"]["cascade"]["accepted"] == CHEAP


def test_the_request_names_its_own_stages_and_safe_verifiers(
        gateway: Gateway, key: str, fake: FakeOpenRouter) -> None:
    fake.set_reply(CHEAP, "not json at all")
    fake.set_reply(STRONG, '{"left": 13}')
    body = {"model": "orroute/cascade", "messages": Q,
            "response_format": {"type": "json_object"},        # implies a JSON check
            "orroute": {"stages": [CHEAP, STRONG], "verifiers": []}}
    status, _, data = call(gateway, "POST", "/v1/chat/completions", body, key)
    assert status == 200, data
    out = json.loads(data)
    assert out["model"] == STRONG
    assert out["orroute"]["cascade"]["stages"][0]["verdicts"][0]["name"] == "json_valid"
    for bad, param in ((["code"], "orroute.verifiers"), ("x", "orroute.verifiers")):
        body["orroute"] = {"verifiers": bad}
        status, _, data = call(gateway, "POST", "/v1/chat/completions", body, key)
        assert status == 400 and json.loads(data)["error"]["param"] == param
    # a stage id with a control character (it would reach the ledger's tags) names the field
    for stages in ([CHEAP, CHEAP], [CHEAP, "b\r\nX-Evil: 1"], ["a\x00"]):
        body["orroute"] = {"stages": stages}
        status, _, data = call(gateway, "POST", "/v1/chat/completions", body, key)
        assert status == 400 and json.loads(data)["error"]["param"] == "orroute.stages", data
    # hostile shapes are answered 400 or checked as far as they go: never a 500
    for rf in ({"type": "json_schema", "json_schema": "nope"},
               {"type": "json_schema", "json_schema": {"schema": {"type": 7}}}):
        status, _, data = call(gateway, "POST", "/v1/chat/completions",
                               {"model": "orroute/cascade", "messages": Q,
                                "response_format": rf}, key)
        assert status in (200, 400), data


def test_the_project_budget_holds_for_every_stage(
        gateway: Gateway, key: str, fake: FakeOpenRouter) -> None:
    project = gateway.keys.verify(key).project
    gateway.tracker.set_budget(Decimal("0.00000001"), project=project)
    fake.set_reply(CHEAP, WRONG)
    before = len(fake.requests)
    status, _, data = call(gateway, "POST", "/v1/chat/completions",
                           {"model": "orroute/cascade", "messages": Q}, key)
    assert status == 402 and json.loads(data)["error"]["code"] == "budget_exceeded"
    assert _sent(fake, before) == []                   # refused before anything was sent


def test_an_upstream_failure_of_a_stage_is_answered_like_any_completion(
        gateway: Gateway, key: str, fake: FakeOpenRouter) -> None:
    fake.set_reply(CHEAP, WRONG)
    fake.fail(STRONG, Fault.server_error(500))
    status, headers, data = call(gateway, "POST", "/v1/chat/completions",
                                 {"model": "orroute/cascade", "messages": Q}, key)
    assert status == 500 and json.loads(data)["error"]["type"] == "upstream_error"
    assert headers["x-orroute-model"] == STRONG
    rows = _ledger(gateway, key)
    assert [r.model for r in rows if r.outcome == "ok"][-1] == CHEAP   # the paid stage is booked
    # the failed stage is recorded, at no cost
    assert [(r.model, r.cost) for r in rows if r.outcome == "error"][-1] == (STRONG, 0)
    assert UPSTREAM_KEY not in data.decode()


def test_streaming_several_choices_is_refused(gateway: Gateway, key: str) -> None:
    status, _, data = call(gateway, "POST", "/v1/chat/completions",
                           {"model": "orroute/cascade", "messages": Q, "n": 2, "stream": True},
                           key)
    assert status == 400 and json.loads(data)["error"]["param"] == "model"


def test_the_config_file_sets_the_cascade_and_a_typo_is_an_error(tmp_path) -> None:
    from orroute.config import ConfigError
    from orroute.gateway.settings import load_gateway_settings

    cfg = tmp_path / "orroute.toml"
    cfg.write_text('[gateway.cascade]\nstages = ["a/cheap", "b/strong"]\n'
                   'verifiers = ["arithmetic", "json_valid"]\n')
    s = load_gateway_settings(cfg, env={}, env_file=False)
    assert s.cascade == {"stages": ["a/cheap", "b/strong"], "verifiers": ["arithmetic", "json_valid"]}
    cfg.write_text('[gateway.cascade]\nverifiers = ["arithmetik"]\n')
    with pytest.raises(ConfigError, match="arithmetik"):
        load_gateway_settings(cfg, env={}, env_file=False)


def test_task_params_reach_the_request_but_cannot_take_the_routers_fields() -> None:
    from orroute import InvalidArgumentError, Task

    assert Task(messages="hi", params={"temperature": 0}).params == {"temperature": 0}
    with pytest.raises(InvalidArgumentError, match="model"):
        Task(messages="hi", params={"model": "x/y"})
