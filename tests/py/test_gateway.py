"""The gateway (``orroute serve``) against FakeOpenRouter, driven by clients other people wrote:
the official ``openai`` package and langchain-openai's ``ChatOpenAI``, plus plain HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from _gateway_util import call, gateway_fixtures, post_completion

import orroute
from orroute.gateway import Gateway, GatewaySettings
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-secret-0123456789abcdef0123456789"
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Say hi"}]
SLOW_A = "meta-llama/llama-3.1-8b-instruct"  # catalog models made slow by the streaming tests
SLOW_B = "mistralai/mistral-nemo"


fake, gateway, key, client = gateway_fixtures(
    UPSTREAM_KEY, routes={"support": ["openai/gpt-4o", "openai/gpt-4o-mini"]}
)


@pytest.fixture(autouse=True)
def _clean_fake(fake: FakeOpenRouter) -> Iterator[None]:
    yield
    fake.clear_faults()
    fake.set_model_profile("*", latency=0.0, ttft=0.0)


def no_secret(*blobs: Any) -> None:
    for b in blobs:
        text = b.decode() if isinstance(b, bytes) else str(b)
        assert UPSTREAM_KEY not in text
        assert "upstream-secret" not in text


# --- the openai package -------------------------------------------------------------------------


def test_openai_plain_completion_names_the_model_that_served_it(client: openai.OpenAI,
                                                                 fake: FakeOpenRouter) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI)
    completion = raw.parse()
    assert completion.model == MODEL
    assert raw.headers["x-orroute-model"] == MODEL
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    # the upstream saw the server's key, not the client's
    assert fake.last_request.api_key.reveal() == UPSTREAM_KEY
    no_secret(raw.http_response.text, raw.headers)


def test_openai_stream_relays_every_chunk(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=HI, seed=7)
    with client.chat.completions.create(model=MODEL, messages=HI, stream=True, seed=7,
                                        stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert {c.model for c in chunks} == {MODEL}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


# Google's OpenAI-compatible endpoint streams each tool call whole, without `index`. The gateway
# relays each delta with the index the answer files it under (a new id: a call of its own, else the
# call before it), so the openai SDK's stream helpers, which keep calls apart by index, see two.
_INDEXLESS_TOOL_CALLS = [
    {"id": "call_1", "type": "function", "function": {"name": "glob", "arguments": '{"pattern": "*"}'}},
    {"id": "call_2", "type": "function", "function": {"name": "glob", "arguments": ""}},
    {"function": {"arguments": '{"path": '}},
    {"function": {"arguments": '"wiki"}'}},
]


def _tool_stream(tool_calls: list[dict[str, Any]]) -> Fault:
    def event(choices: list[Any], **more: Any) -> bytes:
        body = {"id": "gen-t", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                "choices": choices, **more}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    calls = [event([{"index": 0, "delta": {"role": "assistant", "tool_calls": [c]},
                     "finish_reason": None}]) for c in tool_calls]
    end = event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
    usage = event([], usage={"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17})
    return Fault.raw(*calls, end, usage, b"data: [DONE]\n\n", content_type="text/event-stream",
                     content_length=-1)


def test_tool_calls_streamed_without_index_are_relayed_with_one(client: openai.OpenAI,
                                                               fake: FakeOpenRouter) -> None:
    want = [("call_1", "glob", {"pattern": "*"}), ("call_2", "glob", {"path": "wiki"})]
    fake.fail(MODEL, _tool_stream(_INDEXLESS_TOOL_CALLS), times=1)
    with client.chat.completions.stream(model=MODEL, messages=HI) as s:
        indexes = [t.index for e in s if e.type == "chunk" and e.chunk.choices
                   for t in e.chunk.choices[0].delta.tool_calls or ()]
        final = s.get_final_completion()
    assert indexes == [0, 1, 1, 1]
    calls = final.choices[0].message.tool_calls or []
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in calls] == want


# An index that is no place in a dense list (negative, past a gap, 2^31, not an integer) is one
# the openai SDK's stream helpers cannot take (they read a call's index as its place in their
# list: tool_calls[2**31] raised IndexError) and one the answer cannot keep (it keeps 1024 calls
# a choice): such a delta is filed as one without an index and relayed with its place.
_HOSTILE_INDEX_TOOL_CALLS = [
    {"index": 2**31, "id": "call_1", "type": "function",
     "function": {"name": "glob", "arguments": '{"pattern": '}},
    {"index": 2**31, "function": {"arguments": '"*"}'}},
    {"index": -1, "id": "call_2", "type": "function", "function": {"name": "glob", "arguments": ""}},
    {"index": "1", "function": {"arguments": '{"path": '}},
    {"index": 1e9, "function": {"arguments": '"wiki"}'}},
    {"index": 7, "id": "call_3", "type": "function", "function": {"name": "find", "arguments": "{}"}},
]


def test_tool_call_indexes_that_are_no_place_are_relayed_with_one(client: openai.OpenAI,
                                                                  fake: FakeOpenRouter) -> None:
    want = [("call_1", "glob", {"pattern": "*"}), ("call_2", "glob", {"path": "wiki"}),
            ("call_3", "find", {})]
    fake.fail(MODEL, _tool_stream(_HOSTILE_INDEX_TOOL_CALLS), times=1)
    with client.chat.completions.stream(model=MODEL, messages=HI) as s:
        indexes = [t.index for e in s if e.type == "chunk" and e.chunk.choices
                   for t in e.chunk.choices[0].delta.tool_calls or ()]
        final = s.get_final_completion()
    assert indexes == [0, 0, 1, 1, 1, 2]
    calls = final.choices[0].message.tool_calls or []
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in calls] == want


def test_usage_chunk_only_when_asked_as_openai_does(client: openai.OpenAI,
                                                    gateway: Gateway) -> None:
    """openai's service sends the usage chunk (no choices) only with
    ``stream_options.include_usage``; clients written for it read ``chunk.choices[0]`` on every
    chunk (openai's documented loop). The upstream sends it anyway (orroute asks, to settle the
    call): the gateway leaves it out, and still books the usage."""
    before = len(gateway.tracker.usage_history())
    for n in (1, 2):
        chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True, n=n))
        assert chunks and all(c.choices for c in chunks)
        assert "".join(c.choices[0].delta.content or "" for c in chunks)
    rows = gateway.tracker.usage_history()[before:]
    assert len(rows) == 3 and all(r.completion_tokens > 0 for r in rows)


async def test_openai_async_plain_and_stream(gateway: Gateway, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        plain = await c.chat.completions.create(model=MODEL, messages=HI)
        assert plain.choices[0].message.content
        stream = await c.chat.completions.create(model=MODEL, messages=HI, stream=True)
        parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
        assert "".join(parts) == plain.choices[0].message.content


def test_models_list_has_models_aliases_and_routes(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {MODEL, "orroute/auto", "orroute/cheapest", "orroute/best", "support"} <= ids


# --- model resolution -----------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["orroute/auto", "orroute/cheapest", "orroute/best"])
def test_alias_is_resolved_to_a_catalog_model(client: openai.OpenAI, fake: FakeOpenRouter,
                                              alias: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=alias, messages=HI)
    served = raw.parse().model
    assert served != alias and served in orroute.Catalog.bundled()
    assert raw.headers["x-orroute-model"] == served
    assert fake.last_request.json["model"] == served


def test_cheapest_alias_is_cheaper_than_best(client: openai.OpenAI) -> None:
    cheap = client.chat.completions.create(model="orroute/cheapest", messages=HI).model
    best = client.chat.completions.create(model="orroute/best", messages=HI).model
    cat = orroute.Catalog.bundled()

    def price(m: str) -> Decimal:
        return cat.cost(m, prompt_tokens=1000, completion_tokens=1000)

    assert price(cheap) < price(best)


def test_route_name_falls_back_in_order(client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.fail("openai/gpt-4o", Fault.server_error(503))
    before = len(fake.requests)
    raw = client.chat.completions.with_raw_response.create(model="support", messages=HI)
    assert raw.parse().model == "openai/gpt-4o-mini"
    # the router's policy: a 503 is retried on the same model (max_retries=2), then the next
    sent = [r.json["model"] for r in fake.requests[before:]]
    assert sent == ["openai/gpt-4o"] * 3 + ["openai/gpt-4o-mini"]
    assert raw.headers["x-orroute-attempts"] == "4"
    fake.clear_faults()
    assert client.chat.completions.create(model="support", messages=HI).model == "openai/gpt-4o"


def test_openrouter_extras_are_passed_through(client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    client.chat.completions.create(
        model=MODEL, messages=HI,
        extra_body={"provider": {"sort": "price"}, "transforms": ["middle-out"]},
    )
    sent = fake.last_request.json
    assert sent["provider"] == {"sort": "price"} and sent["transforms"] == ["middle-out"]


def test_upstream_error_status_is_relayed(client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.fail(MODEL, Fault.status_error(400, "context too long"))
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert "context too long" in str(e.value)


# --- langchain-openai -----------------------------------------------------------------------------


def test_langchain_chatopenai_invoke_and_stream(gateway: Gateway, key: str) -> None:
    import httpx
    from langchain_openai import ChatOpenAI

    with httpx.Client() as http_client:
        llm = ChatOpenAI(model=MODEL, base_url=gateway.base_url, api_key=key, max_retries=0,
                         http_client=http_client)
        answer = llm.invoke("Say hi")
        assert answer.content
        assert answer.response_metadata.get("model_name") == MODEL
        streamed = "".join(str(chunk.content) for chunk in llm.stream("Say hi"))
    assert streamed


async def test_langchain_chatopenai_async_stream(gateway: Gateway, key: str) -> None:
    import httpx
    from langchain_openai import ChatOpenAI

    async with httpx.AsyncClient() as http_client:
        llm = ChatOpenAI(model="orroute/cheapest", base_url=gateway.base_url, api_key=key,
                         http_async_client=http_client)
        parts = [str(c.content) async for c in llm.astream("Say hi")]
    assert "".join(parts)


# --- authentication, budget, validation ----------------------------------------------------------


def test_missing_wrong_and_revoked_keys_get_401(gateway: Gateway) -> None:
    status, _, body = call(gateway, "POST", "/v1/chat/completions", {"model": MODEL, "messages": HI})
    assert status == 401 and json.loads(body)["error"]["code"] == "missing_key"
    status, _, _ = call(gateway, "POST", "/v1/chat/completions", {"model": MODEL, "messages": HI},
                        key="orr-gw-not-a-real-key")
    assert status == 401
    key, rec = gateway.keys.create("revoked-project")
    with openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        assert c.chat.completions.create(model=MODEL, messages=HI).choices
        assert gateway.keys.revoke(rec.id)
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model=MODEL, messages=HI)
    for path in ("/v1/models", "/api/v1/ai/models", "/api/v1/ai/usage", "/api/v1/ai/credits"):
        assert call(gateway, "GET", path)[0] == 401, path


def test_over_budget_is_402_with_the_budget_in_the_message(gateway: Gateway,
                                                           fake: FakeOpenRouter) -> None:
    key, _ = gateway.keys.create("tight")
    gateway.tracker.set_budget("0.000001", project="tight")
    before = fake.request_count
    with openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c, \
            pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model=MODEL, messages=HI, max_tokens=100)
    assert e.value.status_code == 402
    assert "$0.000001" in e.value.message and "tight" in e.value.message
    assert fake.request_count == before  # refused before any upstream call
    assert gateway.tracker.live_reservations()[0] == 0


def test_spend_is_booked_to_the_keys_project(gateway: Gateway) -> None:
    key, _ = gateway.keys.create("booked")
    gateway.tracker.set_budget(1, project="booked")
    with openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        r = c.chat.completions.create(model=MODEL, messages=HI)
    gateway.flush()
    status = gateway.tracker.budget_status(project="booked")
    assert status.spent == Decimal(str(r.usage.model_extra["cost"]))  # type: ignore[union-attr]
    assert status.reserved == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": HI}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": HI, "temperature": 9}, "temperature"),
        ({"model": MODEL, "messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "messages": HI, "stream": "yes"}, "stream"),
        ([1, 2], "body"),
    ],
    ids=["no-model", "no-messages", "empty-messages", "bad-role", "temperature", "max_tokens",
         "stream", "not-object"],
)
def test_malformed_body_is_400_naming_the_field(gateway: Gateway, key: str, body: Any,
                                                field: str) -> None:
    status, _, raw = call(gateway, "POST", "/v1/chat/completions", body, key=key)
    assert status == 400
    err = json.loads(raw)["error"]
    assert err["param"] == field and field in err["message"]


def test_invalid_json_is_400(gateway: Gateway, key: str) -> None:
    status, _, raw = call(gateway, "POST", "/v1/chat/completions", raw=b"{nope", key=key)
    assert status == 400 and json.loads(raw)["error"]["param"] == "body"


def test_openai_client_sees_bad_request_with_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=HI, temperature=5)
    assert e.value.body["param"] == "temperature"  # type: ignore[index]


# --- streaming as it arrives, disconnects ---------------------------------------------------------


def _open_stream(gateway: Gateway, key: str, model: str) -> socket.socket:
    return post_completion(
        gateway, key, {"model": model, "messages": HI, "stream": True, "max_tokens": 500}
    )


def test_stream_is_relayed_before_the_upstream_finishes(gateway: Gateway, key: str,
                                                        fake: FakeOpenRouter) -> None:
    fake.set_model_profile(SLOW_A, tokens_per_second=20)
    s = _open_stream(gateway, key, SLOW_A)
    try:
        got = b""
        while b'"content"' not in got:
            got += s.recv(65536)
        assert b"200 OK" in got
        assert fake.open_streams == 1  # the upstream is still generating
    finally:
        s.close()


def test_client_disconnect_cancels_upstream_and_books_what_was_generated(
        gateway: Gateway, fake: FakeOpenRouter) -> None:
    key, _ = gateway.keys.create("disconnect")
    gateway.tracker.set_budget(100, project="disconnect")
    fake.set_model_profile(SLOW_B, tokens_per_second=10)
    s = _open_stream(gateway, key, SLOW_B)
    got = b""
    while b'"content"' not in got:
        got += s.recv(65536)
    assert gateway.tracker.budget_status(project="disconnect").reserved > 0
    s.close()
    assert fake.wait_until(lambda: fake.open_streams == 0, timeout=10)
    deadline = time.monotonic() + 10
    while (gateway.tracker.budget_status(project="disconnect").reserved
           or (gateway.app is not None and gateway.app.in_flight)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the relay task unwinds after the upstream cancel: wait for both
    assert gateway.tracker.budget_status(project="disconnect").reserved == 0
    assert gateway.app is not None and gateway.app.in_flight == 0
    # the upstream generated part of the answer before the cut: that is booked (docs/cost.md, rule 5)
    [row] = gateway.tracker.usage_history(project="disconnect")
    assert row.outcome == "cancelled" and row.cost > 0
    assert row.cost_source.startswith(("metered: cancelled after", "reservation: cancelled after"))


# --- the integration guide's service API ---------------------------------------------------------


def test_health_needs_no_key_and_reports_upstream(fake: FakeOpenRouter, tmp_path: Path) -> None:
    """A gateway of its own: the module's gateway carries the router state other tests leave on
    purpose (test_route_name_falls_back_in_order leaves openai/gpt-4o at 1 success in 4 calls),
    and one more call to that model, e.g. an alias choosing it, crosses the health window's
    minimum of calls and reports it degraded (which is right: test_breakers.py, test_gateway_router.py)."""
    settings = GatewaySettings(base_url=fake.base_url, api_key=UPSTREAM_KEY,
                               ledger=str(tmp_path / "l.sqlite3"), port=0)
    with Gateway(settings) as gw:
        status, _, body = call(gw, "GET", "/api/v1/ai/health")
    data = json.loads(body)
    assert status == 200 and data["status"] == "healthy", data
    assert data["upstream"]["reachable"] and data["upstream"]["authenticated"]
    assert data["ledger"]["ok"] and data["router"]["overall"] == "ok"


def test_health_is_degraded_when_upstream_rejects_the_key(fake: FakeOpenRouter,
                                                          tmp_path: Path) -> None:
    settings = GatewaySettings(base_url=fake.base_url, api_key="sk-or-v1-wrong-wrong-wrong",
                               ledger=str(tmp_path / "l.sqlite3"), port=0)
    with Gateway(settings) as gw:
        status, _, body = call(gw, "GET", "/api/v1/ai/health")
    assert status == 503 and json.loads(body)["upstream"]["authenticated"] is False


def test_ai_models_and_one_model(gateway: Gateway, key: str) -> None:
    status, _, body = call(gateway, "GET", "/api/v1/ai/models", key=key)
    data = json.loads(body)
    assert status == 200 and data["count"] == len(data["models"]) > 10
    assert "orroute/auto" in data["aliases"] and data["routes"]["support"]
    status, _, body = call(gateway, "GET", f"/api/v1/ai/models/{MODEL}", key=key)
    one = json.loads(body)
    assert status == 200 and one["id"] == MODEL and one["context_length"] > 0
    assert Decimal(one["pricing"]["prompt_per_mtok"]) > 0
    status, _, body = call(gateway, "GET", "/api/v1/ai/models/nobody/nothing", key=key)
    assert status == 404 and json.loads(body)["error"]["param"] == "model_id"


def test_ai_usage_counts_the_projects_calls(gateway: Gateway) -> None:
    key, _ = gateway.keys.create("usage-project")
    gateway.tracker.set_budget(5, project="usage-project")
    with openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        costs = [Decimal(str(c.chat.completions.create(model=MODEL, messages=HI)
                             .usage.model_extra["cost"])) for _ in range(3)]  # type: ignore[union-attr]
    status, _, body = call(gateway, "GET", "/api/v1/ai/usage", key=key)
    data = json.loads(body)
    assert status == 200 and data["project"] == "usage-project" and data["requests"] == 3
    assert Decimal(data["total_cost"]) == sum(costs)
    assert data["by_model"][0]["model"] == MODEL
    assert data["budgets"][0]["limit"] in ("5", "5.000000000000000000")
    assert call(gateway, "GET", "/api/v1/ai/usage?period=fortnight", key=key)[0] == 400


def test_ai_test_runs_a_completion(gateway: Gateway, key: str) -> None:
    status, _, body = call(gateway, "POST", "/api/v1/ai/test", {"message": "ping"}, key=key)
    data = json.loads(body)
    assert status == 200 and data["success"] is True and data["content"]
    assert data["model"] != "orroute/auto" and data["requested"] == "orroute/auto"
    status, _, body = call(gateway, "POST", "/api/v1/ai/test", {"max_tokens": -1}, key=key)
    assert status == 400 and json.loads(body)["error"]["param"] == "max_tokens"


def test_ai_credits(gateway: Gateway, key: str) -> None:
    status, _, body = call(gateway, "GET", "/api/v1/ai/credits", key=key)
    data = json.loads(body)
    assert status == 200
    assert Decimal(data["remaining"]) == Decimal(data["total_credits"]) - Decimal(
        data["total_usage"])



@pytest.mark.parametrize("answer", [
    {"data": {"total_credits": "abc", "total_usage": 0}},
    {"data": {"total_credits": "NaN", "total_usage": 0}},
    {"data": {"total_credits": True, "total_usage": 0}},
    {"data": {"total_credits": {}, "total_usage": 0}},
    {"data": {"total_credits": 5, "total_usage": [1]}},
    {"data": []},
    {"data": None},
], ids=lambda a: json.dumps(a)[:50])
def test_ai_credits_of_an_odd_upstream_answer_is_a_502(gateway: Gateway, fake: FakeOpenRouter,
                                                       key: str, answer: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # every request asks the upstream (the gateway shares one answer for 5 s, whichever key asks)
    assert gateway.app is not None
    monkeypatch.setattr(gateway.app._credits_check, "_seconds", 0.0)
    fake.script("/credits", [Fault.raw(json.dumps(answer).encode())])
    status, _, body = call(gateway, "GET", "/api/v1/ai/credits", key=key)
    assert status == 502, body
    assert json.loads(body)["error"]["type"] == "upstream_error"

def test_openapi_describes_every_endpoint(gateway: Gateway) -> None:
    status, _, body = call(gateway, "GET", "/openapi.json")
    spec = json.loads(body)
    assert status == 200 and spec["openapi"].startswith("3.")
    assert {"/v1/chat/completions", "/v1/models", "/api/v1/ai/health", "/api/v1/ai/models",
            "/api/v1/ai/models/{model_id}", "/api/v1/ai/usage", "/api/v1/ai/test",
            "/api/v1/ai/credits", "/v1/responses", "/v1/embeddings", "/v1/models/{model_id}",
            "/metrics"} <= set(spec["paths"])
    for ref in json.dumps(spec).split('"$ref": "#/components/schemas/')[1:]:
        assert ref.split('"')[0] in spec["components"]["schemas"]


def test_upstream_key_never_reaches_a_client(gateway: Gateway, key: str,
                                             fake: FakeOpenRouter) -> None:
    seen: list[Any] = [repr(gateway), repr(gateway.settings)]
    for path in ("/api/v1/ai/health", "/api/v1/ai/credits", "/api/v1/ai/usage", "/v1/models",
                 "/openapi.json", f"/api/v1/ai/models/{MODEL}", f"/v1/models/{MODEL}",
                 "/metrics"):
        seen.extend(call(gateway, "GET", path, key=key))
    fake.fail(MODEL, Fault.status_error(401, f"bad key {UPSTREAM_KEY}"))
    status, headers, body = call(gateway, "POST", "/v1/chat/completions",
                                 {"model": MODEL, "messages": HI}, key=key)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_auth"
    seen += [headers, body]
    no_secret(*seen)


def test_keys_are_stored_hashed_in_the_ledger_file(gateway: Gateway) -> None:
    import hashlib
    import sqlite3

    key, rec = gateway.keys.create("hashed", name="ci")
    with sqlite3.connect(gateway.tracker.path) as db:
        rows = db.execute("SELECT * FROM gateway_keys").fetchall()
        dump = "\n".join(db.iterdump())
    assert key not in dump
    assert any(hashlib.sha256(key.encode()).hexdigest() in map(str, r) for r in rows)
    assert key.startswith(rec.id) and gateway.keys.verify(key) == rec


def test_settings_come_from_the_shared_config_with_a_gateway_table(tmp_path: Path) -> None:
    from orroute.gateway import load_gateway_settings

    cfg = tmp_path / "orroute.toml"
    cfg.write_text(
        'base_url = "http://127.0.0.1:9/api/v1"\n'
        'strategy = "cost_optimized"\n'
        "[gateway]\nport = 9123\ncandidates = 2\n"
        '[gateway.routes]\nsupport = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]\n'
    )
    s = load_gateway_settings(cfg, env={"OPENROUTER_API_KEY": UPSTREAM_KEY}, env_file=False)
    assert (s.base_url, s.port, s.candidates, s.strategy) == (
        "http://127.0.0.1:9/api/v1", 9123, 2, "cost_optimized")
    assert s.routes == {"support": ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]}
    assert s.api_key == UPSTREAM_KEY and UPSTREAM_KEY not in repr(s)
    cfg.write_text("[gateway]\nportt = 1\n")
    with pytest.raises(ValueError, match="portt"):
        load_gateway_settings(cfg, env={}, env_file=False)
