"""The endpoints OpenAI clients call besides chat completions, driven by the real ``openai``
SDK against the gateway in front of FakeOpenRouter: ``models.retrieve``, ``n > 1``,
``embeddings.create`` and ``responses.create`` (plain and streamed)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from _gateway_util import call, gateway_fixtures, post_completion

from orroute import _engine
from orroute.gateway import Gateway, GatewaySettings
from orroute.testing import FakeOpenRouter, Fault

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


def test_n_streamed(client: openai.OpenAI, gateway: Gateway) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=HI, n=2)
    texts = {0: "", 1: ""}
    usage = []
    for chunk in client.chat.completions.create(model=MODEL, messages=HI, n=2, stream=True,
                                                stream_options={"include_usage": True}):
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
        if chunk.usage is not None:
            usage.append(chunk.usage)
    assert texts == {c.index: c.message.content for c in plain.choices}
    assert len(usage) == 1 and plain.usage is not None
    assert usage[0].prompt_tokens == plain.usage.prompt_tokens  # summed over both, once
    assert gateway.app is not None and gateway.app.in_flight == 0


async def test_n_streamed_async(gateway: Gateway, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        stream = await c.chat.completions.create(model=MODEL, messages=HI, n=3, stream=True)
        seen = {ch.index async for chunk in stream for ch in chunk.choices}
    assert seen == {0, 1, 2}


def test_n_streamed_failure_before_content_is_an_http_error(client: openai.OpenAI,
                                                            fake: FakeOpenRouter,
                                                            gateway: Gateway) -> None:
    from orroute.testing import Fault

    fake.fail(MODEL, Fault.status_error(400, "bad thing"), times=1)
    try:
        with pytest.raises(openai.BadRequestError):
            list(client.chat.completions.create(model=MODEL, messages=HI, n=2, stream=True))
    finally:
        fake.clear_faults()
    assert fake.wait_until(lambda: gateway.tracker.live_reservations()[0] == 0, timeout=10)


def test_n_refused_by_the_budget_costs_nothing_more(gateway: Gateway) -> None:
    k, _ = gateway.keys.create("n-budget")
    gateway.tracker.set_budget("0.0000001", project="n-budget")
    with (openai.OpenAI(base_url=gateway.base_url, api_key=k, max_retries=0) as c,
          pytest.raises(openai.APIStatusError) as e):
        c.chat.completions.create(model=MODEL, messages=HI, n=3, max_tokens=1000)
    assert e.value.status_code == 402
    assert gateway.tracker.budget_status(project="n-budget").reserved == 0
    assert json.loads(e.value.response.content)["error"]["code"] == "budget_exceeded"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_n_that_do_not_all_fit_the_budget_are_none_sent(gateway: Gateway, fake: FakeOpenRouter,
                                                        stream: bool) -> None:
    """Room for two of three completions: the request is refused before any is sent, not
    answered 402 after two were paid for and thrown away."""
    k, rec = gateway.keys.create(f"n-fit-{stream}")
    body = {"model": MODEL, "messages": HI, "max_tokens": 1000}
    one = gateway.app.engine.plan(_engine.engine_task(
        json.dumps(body), project=rec.project, tags=[("gateway_key", rec.id)]))["estimate"]
    gateway.tracker.set_budget(one * Decimal("2.5"), project=rec.project)
    fake.clear_requests()
    status, _, data = call(gateway, "POST", "/v1/chat/completions",
                           {**body, "n": 3, "stream": stream}, key=k)
    assert status == 402, data
    error = json.loads(data)["error"]
    assert error["code"] == "budget_exceeded"
    # one completion alone fits: the message says that the three were reserved together
    each, total = f"${one.normalize():f}", f"${(one * 3).normalize():f}"
    assert "3 completions" in error["message"], error["message"]
    assert each in error["message"] and total in error["message"], error["message"]
    assert not [r for r in fake.requests if r.endpoint == "/chat/completions"]
    budget = gateway.tracker.budget_status(project=rec.project)
    assert budget.spent == 0 and budget.reserved == 0
    status, _, data = call(gateway, "POST", "/v1/chat/completions", {**body, "n": 2}, key=k)
    assert status == 200, data  # two do fit


def test_n_completions_balanced_over_two_providers_are_each_booked_where_they_ran(
        tmp_path: Path) -> None:
    """n=2 of a model balanced round-robin over OpenRouter and Anthropic: one completion runs at
    each. The reservations made for both were tagged with the first run's provider, and a
    settle keeps its reservation's tags: the Anthropic call was booked (and counted in a
    provider budget) as OpenRouter's. Each run now draws only a share reserved where it runs."""
    from orroute.gateway import GatewaySettings
    from orroute.provider_config import parse_providers
    from orroute.testing import FakeAnthropic

    ant_key = "sk-ant-api03-gateway-n-0123456789abcdef"
    model = "anthropic/claude-sonnet-4.5"
    toml = {"providers": {"openrouter": {"priority": 0}, "anthropic": {"priority": 1}},
            "model_groups": {model: {"strategy": "round_robin", "deployments": [
                {"provider": "openrouter"}, {"provider": "anthropic"}]}}}
    with FakeOpenRouter(api_key=UPSTREAM_KEY) as orf, FakeAnthropic(api_key=ant_key) as ant:
        providers = parse_providers(toml, {
            "OPENROUTER_API_KEY": UPSTREAM_KEY, "OPENROUTER_BASE_URL": orf.base_url,
            "ANTHROPIC_API_KEY": ant_key, "ANTHROPIC_BASE_URL": ant.base_url})
        settings = GatewaySettings(base_url=orf.base_url, api_key=UPSTREAM_KEY, port=0,
                                   ledger=str(tmp_path / "ledger.sqlite3"), providers=providers)
        with Gateway(settings) as gw:
            k, rec = gw.keys.create("n-two-providers")
            gw.tracker.set_budget(1, project=rec.project)
            status, _, data = call(gw, "POST", "/v1/chat/completions",
                                   {"model": model, "messages": HI, "max_tokens": 32, "n": 2}, key=k)
            assert status == 200, data
            chats = [r for r in orf.requests if r.endpoint == "/chat/completions"]
            assert len(chats) == 1 and len(ant.requests) == 1  # one completion at each
            rows = gw.tracker.usage_history(project=rec.project)
            assert sorted(r.tags.get("provider") for r in rows) == ["anthropic", "openrouter"]
            for r in rows:  # the row's provider is where it ran (Anthropic names the model natively)
                assert (r.model == "claude-sonnet-4-5") == (r.tags["provider"] == "anthropic"), r
            assert gw.tracker.budget_status(project=rec.project).reserved == 0


def test_concurrent_n_requests_never_pay_for_completions_they_throw_away(
        gateway: Gateway, fake: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    """The n-fit check was one reservation released at once: concurrent n=2 requests with room
    for two completions in all passed it (here each run waits before it starts, as any await
    there lets another request in: every request's first run, then every second one), their
    runs then took the room one by one, and requests holding one of their two completions were
    answered 402 after paying for it. One reservation sized for n now covers a request's runs:
    the requests refused are refused before anything of theirs is sent."""
    from orroute.gateway.app import GatewayApp

    run_chat = GatewayApp._run_chat
    runs = itertools.count()

    async def late_run_chat(self: GatewayApp, *args: Any, **kw: Any) -> Any:
        k = next(runs)  # 0, 1 (the first request's), 2, 3 (the second's) ...
        await asyncio.sleep(0.2 + 0.02 * (k // 2 + (6 if k % 2 else 0)))
        return await run_chat(self, *args, **kw)

    monkeypatch.setattr(GatewayApp, "_run_chat", late_run_chat)
    k, rec = gateway.keys.create("n-race")
    body = {"model": MODEL, "messages": HI, "max_tokens": 1000, "n": 2}
    one = gateway.app.engine.plan(_engine.engine_task(
        json.dumps({k: v for k, v in body.items() if k != "n"}),
        project=rec.project, tags=[("gateway_key", rec.id)]))["estimate"]
    gateway.tracker.set_budget(one * Decimal("2.5"), project=rec.project)
    fake.clear_requests()
    fake.fail(MODEL, Fault.delay(0.5))  # a run holds its room while the others start
    try:
        with ThreadPoolExecutor(6) as pool:
            statuses = [s for s, _, _ in pool.map(
                lambda _: call(gateway, "POST", "/v1/chat/completions", body, key=k), range(6))]
    finally:
        fake.clear_faults()
    sent = [r for r in fake.requests if r.endpoint == "/chat/completions"]
    assert 200 in statuses and set(statuses) <= {200, 402}
    # the answered requests' two completions each: none paid for and thrown away behind a 402
    assert len(sent) == 2 * statuses.count(200), statuses
    assert fake.wait_until(lambda: gateway.tracker.live_reservations()[0] == 0, timeout=10)
    rows = gateway.tracker.usage_history(project=rec.project)
    assert len(rows) == len(sent) and all(r.cost > 0 for r in rows)  # each call recorded


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_n_completions_count_once_in_the_budget_while_they_run(gateway: Gateway, fake: FakeOpenRouter,
                                                               stream: bool) -> None:
    """An n=2 request whose first completion has ended and second still runs: the budget counts
    the first one's cost and the second one's worst case, once each (it counted the request's
    whole hold for two beside the first one's recorded cost); the calls settle as any does."""
    k, rec = gateway.keys.create(f"n-once-{stream}")
    body = {"model": MODEL, "messages": HI, "max_tokens": 1000}
    one = gateway.app.engine.plan(_engine.engine_task(
        json.dumps(body), project=rec.project, tags=[("gateway_key", rec.id)]))["estimate"]
    gateway.tracker.set_budget(one * 10, project=rec.project)
    fake.script(MODEL, [None, Fault.delay(2.0)])  # the second completion sent takes 2 s

    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, gateway, "POST", "/v1/chat/completions",
                             {**body, "n": 2, "stream": stream}, key=k)
        assert fake.wait_until(
            lambda: gateway.tracker.budget_status(project=rec.project).spent > 0, timeout=10)
        during = gateway.tracker.budget_status(project=rec.project)
        assert answer.result()[0] == 200
    assert during.reserved <= one, (during.reserved, one)  # the running one's worst case, once
    after = gateway.tracker.budget_status(project=rec.project)
    assert after.reserved == 0 and len(gateway.tracker.usage_history(project=rec.project)) == 2


# --- POST /v1/responses --------------------------------------------------------------------------


def test_responses_create(client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.clear_requests()
    r = client.responses.create(model=MODEL, input="Say hi", instructions="Be brief.",
                                max_output_tokens=500)
    assert r.status == "completed" and r.output_text
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    sent = fake.last_request
    assert sent is not None and sent.endpoint == "/chat/completions"
    assert sent.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.json["max_tokens"] == 500
    cut = client.responses.create(model=MODEL, input="Say hi", max_output_tokens=1)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"


def test_responses_stream(client: openai.OpenAI) -> None:
    plain = client.responses.create(model=MODEL, input="Say hi")
    events = list(client.responses.create(model=MODEL, input="Say hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == plain.output_text  # the fake answers the same request the same way
    done = events[-1].response  # type: ignore[union-attr]
    assert done.output_text == text and done.usage is not None and done.usage.output_tokens > 0


def test_responses_stream_helper_accumulates(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Say hi") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text


def test_responses_function_call_round_trip(client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    tool = {"type": "function", "name": "get_weather", "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}
    fake.set_reply(MODEL, {"tool_calls": [{"function": {"name": "get_weather",
                                                        "arguments": {"city": "Paris"}}}]})
    try:
        r = client.responses.create(model=MODEL, input="Weather in Paris?", tools=[tool])
        calls = [o for o in r.output if o.type == "function_call"]
        assert len(calls) == 1 and calls[0].name == "get_weather"
        assert json.loads(calls[0].arguments) == {"city": "Paris"}
        streamed = list(client.responses.create(model=MODEL, input="Weather in Paris?",
                                                tools=[tool], stream=True))
        args = "".join(e.delta for e in streamed
                       if e.type == "response.function_call_arguments.delta")
        assert json.loads(args) == {"city": "Paris"}
        fake.clear_requests()
        client.responses.create(model=MODEL, tools=[tool], input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather",
             "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    finally:
        fake.set_reply(MODEL, None)
    sent = fake.last_request
    assert sent is not None
    msgs = sent.json["messages"]
    assert msgs[1]["tool_calls"][0]["id"] == calls[0].call_id
    assert msgs[2] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "sunny"}
    assert sent.json["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize(("body", "param"), [
    ({"model": MODEL}, "input"),
    ({"model": MODEL, "input": 5}, "input"),
    ({"model": MODEL, "input": [{"type": "web_search_call"}]}, "input[0].type"),
    ({"model": MODEL, "input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"model": MODEL, "input": "hi", "tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"model": MODEL, "input": "hi", "max_output_tokens": "9"}, "max_output_tokens"),
], ids=["no_input", "input_type", "item_type", "stateful", "hosted_tool", "max_output_tokens"])
def test_responses_bad_requests_name_the_field(gateway: Gateway, key: str, body: dict,  # type: ignore[type-arg]
                                               param: str) -> None:
    status, _, raw = call(gateway, "POST", "/v1/responses", body, key)
    assert status == 400 and json.loads(raw)["error"]["param"] == param


async def test_responses_stream_async(gateway: Gateway, key: str) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
        stream = await c.responses.create(model=MODEL, input="Say hi", stream=True)
        kinds = [e.type async for e in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


def test_responses_stream_that_breaks_ends_with_response_failed(client: openai.OpenAI,
                                                                fake: FakeOpenRouter) -> None:
    fake.fail(MODEL, Fault.stream_error(after_tokens=2, message="Provider disconnected"))
    try:
        events = list(client.responses.create(model=MODEL, input="Say hi", stream=True))
    finally:
        fake.clear_faults()
    assert events[-1].type == "response.failed"
    assert "Provider disconnected" in events[-1].response.error.message  # type: ignore[union-attr]
    assert "response.completed" not in [e.type for e in events]


# --- POST /v1/embeddings ---------------------------------------------------------------------------

EMBED = "openai/text-embedding-3-small"
EMBED_DEAR = "test/embed-dear"  # $10/M: a cost of 17 digits at a usual size


@pytest.fixture
def embed_model(fake: FakeOpenRouter) -> str:
    """An embedding model the upstream has and the gateway learns of on first use."""
    fake.add_model(EMBED, prompt_price="0.00000002", completion_price="0")
    fake.add_model(EMBED_DEAR, prompt_price="0.00001", completion_price="0")
    return EMBED


def test_embeddings_create(client: openai.OpenAI, fake: FakeOpenRouter, gateway: Gateway,
                           key: str, embed_model: str) -> None:
    fake.clear_requests()
    r = client.embeddings.create(model=embed_model, input=["hello", "world"])  # base64 default
    assert [d.index for d in r.data] == [0, 1] and len(r.data[0].embedding) == 16
    assert r.data[0].embedding != r.data[1].embedding
    again = client.embeddings.create(model=embed_model, input="hello", encoding_format="float")
    assert again.data[0].embedding == pytest.approx(r.data[0].embedding, rel=1e-6)
    sent = [q for q in fake.requests if q.endpoint == "/embeddings"]
    assert len(sent) == 2 and sent[0].json["input"] == ["hello", "world"]
    project = gateway.keys.verify(key).project  # type: ignore[union-attr]
    spent = gateway.tracker.total_cost(project=project)
    assert spent == Decimal(str(r.usage.prompt_tokens + again.usage.prompt_tokens)) * Decimal(
        "0.00000002")
    assert gateway.tracker.live_reservations()[0] == 0


def test_embeddings_refused_by_the_budget_are_not_sent(gateway: Gateway, fake: FakeOpenRouter,
                                                       embed_model: str) -> None:
    k, _ = gateway.keys.create("embed-budget")
    gateway.tracker.set_budget("0.000000001", project="embed-budget")
    fake.clear_requests()
    with (openai.OpenAI(base_url=gateway.base_url, api_key=k, max_retries=0) as c,
          pytest.raises(openai.APIStatusError) as e):
        c.embeddings.create(model=embed_model, input="x" * 1000)
    assert e.value.status_code == 402
    assert not [q for q in fake.requests if q.endpoint == "/embeddings"]


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 1},  # 1 token for ~500: priced as 1
    {"prompt_tokens": 1, "cost": 0.00000002},  # priced consistently with the lie
    {"prompt_tokens": 500, "cost": 0},  # a paid call reported free
    {"prompt_tokens": 500, "cost": 1000},  # $1000 for $0.00001 of tokens
], ids=lambda u: json.dumps(u))
def test_embeddings_usage_lies_are_booked_within_the_catalogs_bounds(
        gateway: Gateway, fake: FakeOpenRouter, embed_model: str, usage: dict[str, Any]) -> None:
    k, rec = gateway.keys.create(f"embed-lie-{len(usage)}-{usage.get('cost')}")
    gateway.tracker.set_budget(1, project=rec.project)
    text = "word " * 500  # 500 tokens: $0.00001 at $0.02/M; reserved at a token per byte
    reply = {"object": "list", "model": embed_model, "usage": usage,
             "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]}
    fake.script(embed_model, [Fault.raw(json.dumps(reply).encode())])
    status, _, data = call(gateway, "POST", "/v1/embeddings",
                           {"model": embed_model, "input": text}, key=k)
    assert status == 200, data
    spent = gateway.tracker.budget_status(project=rec.project).spent
    assert Decimal("0.000005") <= spent <= Decimal("0.00000002") * (len(text) + 1)


def test_embeddings_cost_is_booked_as_the_upstream_wrote_it(
        gateway: Gateway, fake: FakeOpenRouter, embed_model: str) -> None:
    """A cost of 17 digits is booked digit for digit, as a chat reply's is: the reply's usage
    went through a Python float (0.20000000000000001 booked as 0.2)."""
    model = EMBED_DEAR
    k, rec = gateway.keys.create("embed-exact")
    gateway.tracker.set_budget(5, project=rec.project)
    text = "word " * 20_000  # 20,000 tokens: $0.2 at $10/M
    usage = '{"prompt_tokens": 20000, "total_tokens": 20000, "cost": 0.20000000000000001}'
    items = '[{"object": "embedding", "index": 0, "embedding": [0.5]}]'
    reply = f'{{"object": "list", "model": "{model}", "usage": {usage}, "data": {items}}}'
    fake.script(model, [Fault.raw(reply.encode())])
    status, _, data = call(gateway, "POST", "/v1/embeddings", {"model": model, "input": text}, key=k)
    assert status == 200, data
    assert gateway.tracker.budget_status(project=rec.project).spent == Decimal("0.20000000000000001")


# A 2xx the upstream answered is billed (docs/cost.md, rule 5); one that is no embedding list
# cannot be relayed as one: a 502, and the reservation booked, not a 200 of junk booked at our count.
@pytest.mark.parametrize("reply", [b"not json", b'{"object": "list", "data": [1, 2', b"[1, 2]",
                                   b'"text"'], ids=["text", "cut", "array", "string"])
def test_embeddings_reply_that_is_no_json_object_is_a_502_and_books_the_reservation(
        gateway: Gateway, fake: FakeOpenRouter, embed_model: str, reply: bytes) -> None:
    k, rec = gateway.keys.create(f"embed-junk-{reply.hex()}")
    gateway.tracker.set_budget(1, project=rec.project)
    text = "word " * 500  # reserved at a token per byte (and one for the string): 2,501 tokens
    fake.script(embed_model, [Fault.raw(reply)])
    status, _, data = call(gateway, "POST", "/v1/embeddings",
                           {"model": embed_model, "input": text}, key=k)
    assert status == 502, data
    assert json.loads(data)["error"]["type"] == "upstream_error"
    st = gateway.tracker.budget_status(project=rec.project)
    assert st.reserved == 0
    assert st.spent == Decimal("0.00000002") * (len(text) + 1)  # the reservation: the worst case


# OpenRouter's error in a 2xx body (a provider that failed after the head was sent) is an error,
# as the chat route and the client take it (_engine.check_body_error): its status (a 5xx when it
# names none), and the reservation released (an error bills nothing), not a 200 relayed and booked.
@pytest.mark.parametrize(("reply", "want"), [
    (b'{"error": {"code": 429, "message": "Rate limit exceeded upstream"}}', 429),
    (b'{"error": {"code": 502, "message": "Provider disconnected", "metadata": {"x": 1}}}', 502),
    (b'{"error": {"message": "no code"}, "id": "gen-1"}', 500)], ids=["429", "502", "no_code"])
def test_embeddings_error_in_a_2xx_reply_is_an_error_and_releases_the_reservation(
        gateway: Gateway, fake: FakeOpenRouter, embed_model: str, reply: bytes, want: int) -> None:
    k, rec = gateway.keys.create(f"embed-error-{want}-{len(reply)}")
    gateway.tracker.set_budget(1, project=rec.project)
    fake.script(embed_model, [Fault.raw(reply)])
    status, _, data = call(gateway, "POST", "/v1/embeddings", {"model": embed_model, "input": "hi"}, key=k)
    assert status == want, data
    assert "data" not in json.loads(data)
    st = gateway.tracker.budget_status(project=rec.project)
    assert st.reserved == 0 and st.spent == 0
    # a row at 0 with no estimate, as a failed chat call's (before: no row at all)
    [row] = gateway.tracker.usage_history(project=rec.project)
    assert (row.model, row.outcome, row.error_class) == (embed_model, "error", "server")
    assert row.cost == 0 and row.estimated_cost is None


@pytest.mark.parametrize(("body", "param"), [
    ({"model": EMBED}, "input"), ({"model": EMBED, "input": [1.5]}, "input[0]"),
    ({"model": EMBED, "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "nobody/unpriced", "input": "x"}, "model")],
    ids=["no_input", "bad_item", "dimensions", "unpriced"])
def test_embeddings_bad_requests_name_the_field(gateway: Gateway, key: str, embed_model: str,
                                                body: dict, param: str) -> None:  # type: ignore[type-arg]
    status, _, raw = call(gateway, "POST", "/v1/embeddings", body, key)
    assert status == 400 and json.loads(raw)["error"]["param"] == param


# --- an upstream reply in an odd shape --------------------------------------------------------------

_USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
# chat completions the engine relays (they parse, carry a usable usage) but whose choices or usage
# are not what OpenAI's shape says: the routes that read them answer, they do not crash (500)
ODD_REPLIES = [
    {"choices": [1]},
    {"choices": ["x"]},
    {"choices": [None]},
    {"choices": {"a": 1}},
    {"choices": [{"message": "text"}]},
    {"choices": [{"message": {"content": "hi", "tool_calls": ["x", {"function": "f"}]}}]},
    {"choices": [{"message": {"content": "hi"}}], "usage": {**_USAGE, "total_tokens": "many"}},
    {"choices": [{"message": {"content": "hi"}}],
     "usage": {**_USAGE, "prompt_tokens_details": "x", "completion_tokens_details": [1]}},
]
ODD_CHUNKS = [
    {"choices": [{"index": 0, "delta": "x"}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
    {"choices": [{"index": 0, "delta": {"content": "a"}}], "usage": {"prompt_tokens": "x"}},
]


def _odd_reply(fields: dict[str, Any]) -> Fault:
    reply = {"id": "gen-odd", "object": "chat.completion", "model": MODEL, "usage": _USAGE, **fields}
    return Fault.raw(json.dumps(reply).encode())


def _odd_stream(chunk: dict[str, Any]) -> Fault:
    head = {"id": "gen-odd", "object": "chat.completion.chunk", "model": MODEL}
    events = [{**head, **chunk}, {**head, "choices": [], "usage": _USAGE}]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return Fault.raw(body + b"data: [DONE]\n\n", content_type="text/event-stream")


@pytest.mark.parametrize("reply", ODD_REPLIES, ids=lambda r: json.dumps(r)[:60])
def test_responses_and_ai_test_of_an_odd_reply_answer(gateway: Gateway, fake: FakeOpenRouter,
                                                      key: str, reply: dict[str, Any]) -> None:
    for path, body in [("/v1/responses", {"model": MODEL, "input": "Say hi"}),
                       ("/api/v1/ai/test", {"model": MODEL})]:
        fake.script(MODEL, [_odd_reply(reply)])
        status, _, data = call(gateway, "POST", path, body, key=key)
        assert status == 200, (path, data)
        assert isinstance(json.loads(data), dict)


@pytest.mark.parametrize("chunk", ODD_CHUNKS, ids=lambda c: json.dumps(c)[:60])
def test_responses_stream_of_an_odd_chunk_completes(gateway: Gateway, fake: FakeOpenRouter,
                                                    key: str, chunk: dict[str, Any]) -> None:
    fake.script(MODEL, [_odd_stream(chunk)])
    status, _, data = call(gateway, "POST", "/v1/responses",
                           {"model": MODEL, "input": "Say hi", "stream": True}, key=key)
    assert status == 200, data
    assert b"event: response.completed" in data


# A call whose request went out and whose answer we stopped waiting for was received, and a
# non-streamed call runs to its end and is billed (docs/cost.md, rule 5): each attempt cut so is
# booked at the reservation, the worst case, as the engine books a chat attempt; one refused
# before a byte was sent (connection refused) bills nothing and is released.
@pytest.fixture
def impatient(fake: FakeOpenRouter, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway in front of ``fake`` that waits 0.5 s for an answer."""
    settings = GatewaySettings(base_url=fake.base_url, api_key=UPSTREAM_KEY, port=0, timeout=0.5,
                               ledger=str(tmp_path / "ledger.sqlite3"))
    with Gateway(settings) as gw:
        yield gw


def _spent_and_held(gateway: Gateway, project: str) -> tuple[Decimal, Decimal]:
    st = gateway.tracker.budget_status(project=project)
    return st.spent, st.reserved


@pytest.mark.parametrize("stalls", [1, 2], ids=["then_answered", "twice"])
def test_embeddings_cut_after_the_request_went_out_are_booked_at_the_reservation(
        impatient: Gateway, fake: FakeOpenRouter, embed_model: str, stalls: int) -> None:
    k, rec = impatient.keys.create(f"embed-stall-{stalls}")
    impatient.tracker.set_budget(1, project=rec.project)
    text = "word " * 50  # reserved at a token per byte and one for the string: 251 tokens
    worst = Decimal("0.00000002") * (len(text) + 1)
    fake.script(embed_model, [Fault.hang()] * stalls)  # reads the request, never answers
    status, _, data = call(impatient, "POST", "/v1/embeddings",
                           {"model": embed_model, "input": text}, key=k)
    spent, held = _spent_and_held(impatient, rec.project)
    assert held == 0
    if stalls == 2:  # both attempts (the call and its one retry) cut: both billed
        assert status == 504, data
        assert spent == 2 * worst
    else:
        assert status == 200, data
        answered = Decimal("0.00000002") * json.loads(data)["usage"]["prompt_tokens"]
        assert spent == worst + answered
    row = impatient.tracker.usage_history(project=rec.project)[-1]
    assert row.attempts == 2 and row.outcome == ("error" if stalls == 2 else "ok")


def test_embeddings_whose_client_hangs_up_after_the_request_went_out_are_booked(
        gateway: Gateway, fake: FakeOpenRouter, embed_model: str) -> None:
    """The client leaves (a reset) while the upstream works on its embeddings: the gateway cuts
    the call, but the upstream got the request and runs it to its end, billed, so the
    reservation is booked as the engine books a chat call cut after it was sent. It was
    released: spend the budget never saw."""
    k, rec = gateway.keys.create("embed-hang-up")
    gateway.tracker.set_budget(1, project=rec.project)
    text = "word " * 50  # reserved at a token per byte and one for the string: 251 tokens
    fake.clear_requests()
    fake.script(embed_model, [Fault.hang()])  # reads the request, never answers
    s = post_completion(gateway, k, {"model": embed_model, "input": text}, path="/v1/embeddings")
    try:
        assert fake.wait_until(lambda: any(q.endpoint == "/embeddings" for q in fake.requests),
                               timeout=10)
        assert _spent_and_held(gateway, rec.project)[1] > 0
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()  # with a zero linger: a reset, the gateway's connection is lost at once
    assert fake.wait_until(lambda: _spent_and_held(gateway, rec.project)[1] == 0, timeout=10)
    assert _spent_and_held(gateway, rec.project) == (Decimal("0.00000002") * (len(text) + 1), 0)
    [row] = gateway.tracker.usage_history(project=rec.project)
    assert row.outcome == "cancelled" and row.attempts == 1


def test_embeddings_refused_before_anything_was_sent_release_the_reservation(
        tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/api/v1"
    settings = GatewaySettings(base_url=dead, api_key=UPSTREAM_KEY, port=0, timeout=5,
                               ledger=str(tmp_path / "ledger.sqlite3"))
    with Gateway(settings) as gw:
        k, rec = gw.keys.create("embed-refused")
        gw.tracker.set_budget(1, project=rec.project)
        status, _, data = call(gw, "POST", "/v1/embeddings", {"model": MODEL, "input": "hi"}, key=k)
        assert status == 502, data
        assert _spent_and_held(gw, rec.project) == (0, 0)
        [row] = gw.tracker.usage_history(project=rec.project)
        assert (row.outcome, row.cost, row.estimated_cost) == ("error", 0, None)


def test_embeddings_whose_client_hangs_up_before_the_request_went_out_release_it(
        fake: FakeOpenRouter, tmp_path: Path) -> None:
    """The upstream's connect never completes (its listen queue is full: the SYN is dropped)
    and the client leaves: nothing reached the upstream, so nothing is billed; the
    reservation is released, and no row is written (edges16: not tested before)."""
    with socket.socket() as upstream, socket.socket() as queued:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen(0)  # never accepted: one queued connection fills it
        queued.connect(upstream.getsockname())
        settings = GatewaySettings(
            base_url=f"http://127.0.0.1:{upstream.getsockname()[1]}/api/v1",
            api_key=UPSTREAM_KEY, port=0, ledger=str(tmp_path / "ledger.sqlite3"))
        with Gateway(settings) as gw:
            k, rec = gw.keys.create("embed-hang-up-early")
            gw.tracker.set_budget(1, project=rec.project)
            s = post_completion(gw, k, {"model": MODEL, "input": "hi"}, path="/v1/embeddings")
            try:
                assert fake.wait_until(lambda: _spent_and_held(gw, rec.project)[1] > 0, 10)  # a poller
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                s.close()  # a reset: the gateway's connection is lost at once
            assert fake.wait_until(lambda: _spent_and_held(gw, rec.project)[1] == 0, 10)
            assert _spent_and_held(gw, rec.project) == (0, 0)
            assert gw.tracker.usage_history(project=rec.project) == []
