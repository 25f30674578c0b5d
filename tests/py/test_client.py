"""The OpenRouter client against FakeOpenRouter: requests, responses, errors, retries, keys, endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest

import orroute
from orroute.testing import FakeOpenRouter, Fault

MSGS = [{"role": "user", "content": "Say hello"}]
KEY_A = "sk-or-v1-" + "a" * 56 + "1111"
KEY_B = "sk-or-v1-" + "b" * 56 + "2222"


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a", "m/b", "m/c", "m/d"], use_uvloop=False) as f:
        yield f


@pytest.fixture
def client(fake):
    return orroute.OpenRouter(
        api_key=KEY_A,
        base_url=fake.base_url,
        max_retries=2,
        app_name="orroute tests",
        app_url="https://example.org/app",
    )


def test_a_request_is_sent_as_it_was_when_written_whatever_model_dump_does(client, fake):
    # The request's text is written from the Python values; its str objects' UTF-8 is pointed
    # at, not copied, only while no Python code can run. A message whose model_dump() replaces
    # and drops the request's other texts (the only references to them) must not change what
    # is sent: what was written before stays as it was, what comes after is read as it is then.
    first = "".join(["before ", "dump ", "x" * 40])  # made at run time: no other reference
    later = "".join(["after ", "dump ", "y" * 40])
    body = {"messages": [{"role": "user", "content": first}]}

    reused: list[str] = []

    class Dumped:
        def model_dump(self) -> dict[str, str]:
            body["messages"][0]["content"] = "replaced " + "z" * 40
            tail["content"] = "changed " + "w" * 40
            # texts of the same size, made where the dropped ones were: a pointer kept to a
            # dropped text would read these
            reused.extend("".join(["J" * 52, str(i)])[:52] for i in range(200))
            return {"role": "assistant", "content": "from model_dump"}

    tail = {"role": "user", "content": later}
    del first, later
    body["messages"] += [Dumped(), tail]
    client.chat.completions.create(model="m/a", messages=body["messages"])
    sent = [r for r in fake.requests if r.endpoint == "/chat/completions"][-1].json["messages"]
    assert [m["content"] for m in sent] == [
        "before dump " + "x" * 40, "from model_dump", "changed " + "w" * 40]


def test_non_string_keys_are_sent_as_json_writes_them(client, fake):
    # as the openai SDK (json.dumps) sends them: logit_bias is keyed by token ids, often ints
    client.chat.completions.create(model="m/a", messages=MSGS,
                                   logit_bias={50256: -100, True: 1, None: 2, 1.5: 3})
    assert fake.last_request.json["logit_bias"] == {"50256": -100, "true": 1, "null": 2, "1.5": 3}
    with pytest.raises(orroute.InvalidArgumentError, match="keys must be str, int, float"):
        client.chat.completions.create(model="m/a", messages=MSGS, logit_bias={(1, 2): 1})


class _Shown(list):  # type: ignore[type-arg]
    """A list subclass whose iterator gives other items than it holds."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter([{"type": "text", "text": "shown"}])


def test_a_list_subclass_is_sent_as_json_dumps_writes_it(client, fake):
    # json.dumps (the openai SDK) reads a list or tuple subclass through its iterator; only an
    # exact list or tuple is walked by index
    held = [{"type": "text", "text": "held"}]
    shown = [{"type": "text", "text": "shown"}]
    assert json.loads(json.dumps(_Shown(held))) == shown
    client.chat.completions.create(model="m/a", messages=[
        {"role": "user", "content": _Shown(held)}, {"role": "user", "content": "b"}])
    assert [m["content"] for m in fake.last_request.json["messages"]] == [shown, "b"]
    task = orroute.Task(messages=[{"role": "user", "content": _Shown(held)}])
    assert json.loads(orroute._engine.task_request(task).request_json)["messages"][0][
        "content"] == shown


def test_a_chat_body_goes_out_as_given_an_int_beyond_64_bits_as_its_digits(client, fake):
    # the body is checked on a document built from the values and written from it; an int
    # beyond 64 bits, which only text carries, is sent as json.dumps writes it (and still checked)
    msgs = [{"role": "user", "content": 'é \u0000 "quoted" \\'}]
    sent = {"model": "m/a", "messages": msgs, "seed": 2**70, "temperature": 0.5,
            "stop": ("a", "b"), "metadata": {"k": True, "n": None}}
    client.chat.completions.create(**sent)
    assert fake.last_request.body == json.dumps(sent, separators=(",", ":"),
                                                ensure_ascii=False).encode()
    with pytest.raises(orroute.InvalidArgumentError, match="messages"):
        client.chat.completions.create(model="m/a", messages=[], seed=2**70)
    assert fake.request_count == 1


def test_completion_has_openai_shape_and_openrouter_extras(client, fake):
    r = client.chat.completions.create(model="m/a", messages=MSGS)
    assert r.object == "chat.completion"
    assert r.id.startswith("gen-") and r.generation_id == r.id
    assert r.model == "m/a"
    assert r.provider
    assert isinstance(r.choices[0].message.content, str) and r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.cost > 0 and u.cost_decimal > 0
    d = r.model_dump()
    assert d["choices"][0]["message"]["content"] == r.choices[0].message.content
    assert r.system_fingerprint is None or isinstance(
        r.system_fingerprint, str
    )  # known field, may be absent


def test_request_carries_fields_headers_and_extra_body(client, fake):
    client.chat.completions.create(
        model="m/a",
        messages=MSGS,
        models=["m/b", "m/c"],
        provider={"sort": "price", "allow_fallbacks": True},
        reasoning={"effort": "low"},
        plugins=[{"id": "web"}],
        session_id="s1",
        user="u1",
        metadata={"k": "v"},
        temperature=0.2,
        max_tokens=50,
        seed=7,
        stop=["\n\n"],
        response_format={"type": "json_object"},
        extra_body={"brand_new_field": [1, 2]},
        extra_headers={"X-Extra": "yes"},
    )
    req = fake.last_request
    body = req.json
    assert body["models"] == ["m/b", "m/c"]
    assert body["provider"] == {"sort": "price", "allow_fallbacks": True}
    assert body["reasoning"] == {"effort": "low"} and body["plugins"] == [{"id": "web"}]
    assert body["session_id"] == "s1" and body["user"] == "u1" and body["metadata"] == {"k": "v"}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50 and body["seed"] == 7
    assert body["brand_new_field"] == [1, 2]
    assert "stream" not in body
    h = req.headers
    assert h["authorization"].reveal() == f"Bearer {KEY_A}"
    assert h["http-referer"] == "https://example.org/app"
    assert h["x-openrouter-title"] == "orroute tests" and h["x-title"] == "orroute tests"
    assert h["user-agent"].startswith("orroute/")
    assert h["x-extra"] == "yes"


def test_plain_call_sends_no_accept_line_a_stream_asks_for_sse(client, fake):
    # libcurl prints each header byte (~125 instructions): a plain call sends no Accept line
    # (any type), neither "application/json" nor libcurl's "*/*"; a caller's own still goes out
    client.chat.completions.create(model="m/a", messages=MSGS)
    assert "accept" not in fake.last_request.headers
    with client.chat.completions.create(model="m/a", messages=MSGS, stream=True) as s:
        list(s)
    assert fake.last_request.headers["accept"] == "text/event-stream"
    client.chat.completions.create(model="m/a", messages=MSGS,
                                   extra_headers={"Accept": "application/json"})
    assert fake.last_request.headers["accept"] == "application/json"
    assert client.models.list(refresh=True, fallback=False).data
    assert "accept" not in fake.last_request.headers


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "m/a", "messages": MSGS, "models": ["m/a", "m/b", "m/c", "m/d"]}, "at most 3"),
        ({"model": "m/a", "messages": []}, "messages"),
        ({"model": "m/a", "messages": [{"content": "no role"}]}, "role"),
        ({"messages": MSGS}, "model"),
    ],
    ids=["models-over-3", "empty-messages", "no-role", "no-model"],
)
def test_bad_requests_fail_before_sending(client, fake, kwargs, match):
    with pytest.raises(orroute.InvalidArgumentError, match=match):
        client.chat.completions.create(**kwargs)
    assert fake.request_count == 0


@pytest.mark.parametrize(
    "fault, cls",
    [
        (Fault.bad_request("bad"), orroute.BadRequestError),
        (Fault.unauthorized(), orroute.AuthenticationError),
        (Fault.payment_required(), orroute.PaymentRequiredError),
        (Fault.moderation(), orroute.PermissionDeniedError),
        (Fault.status_error(404, "no endpoints"), orroute.NotFoundError),
        (Fault.rate_limit(retry_after=1), orroute.RateLimitError),
        (Fault.server_error(500), orroute.InternalServerError),
        (Fault.server_error(502), orroute.InternalServerError),
        (Fault.server_error(503), orroute.InternalServerError),
    ],
    ids=["400", "401", "402", "403", "404", "429", "500", "502", "503"],
)
def test_error_statuses_map_to_openai_named_exceptions(fake, fault, cls):
    client = orroute.OpenRouter(api_key=KEY_A, base_url=fake.base_url, max_retries=0)
    fake.fail("m/a", fault)
    with pytest.raises(cls) as info:
        client.chat.completions.create(model="m/a", messages=MSGS)
    e = info.value
    assert isinstance(e, orroute.APIStatusError) and isinstance(e, orroute.APIError)
    assert e.status_code == fault.status
    assert e.message
    assert KEY_A not in str(e)
    if cls is orroute.RateLimitError:
        assert e.retry_after == pytest.approx(1.0, abs=0.01)
    if cls is orroute.PermissionDeniedError:
        assert e.reasons
    if fault.status == 502:
        assert e.metadata.get("provider_name")


def test_transient_errors_are_retried_until_success(client, fake):
    fake.script("m/a", [Fault.server_error(500), Fault.server_error(502)])
    r = client.chat.completions.create(model="m/a", messages=MSGS)
    assert r.choices[0].message.content
    assert fake.request_count == 3


def test_retry_after_is_honoured(client, fake):
    fake.script("m/a", [Fault.rate_limit(retry_after=1)])
    t0 = time.monotonic()
    client.chat.completions.create(model="m/a", messages=MSGS)
    assert time.monotonic() - t0 >= 0.95
    assert fake.request_count == 2


@pytest.mark.parametrize(
    "fault",
    [Fault.bad_request(), Fault.unauthorized(), Fault.payment_required(), Fault.moderation()],
    ids=["400", "401", "402", "403"],
)
def test_client_errors_are_not_retried(fake, fault):
    client = orroute.OpenRouter(base_url=fake.base_url, max_retries=5)
    fake.script("m/a", [fault])
    with pytest.raises(orroute.APIStatusError):
        client.chat.completions.create(model="m/a", messages=MSGS)
    assert len(fake.requests) == 1


def test_max_retries_per_client_and_per_call(fake):
    fake.fail("m/a", Fault.server_error(500))
    client = orroute.OpenRouter(base_url=fake.base_url, max_retries=1)
    with pytest.raises(orroute.InternalServerError):
        client.chat.completions.create(model="m/a", messages=MSGS)
    assert fake.request_count == 2
    fake.clear_requests()
    with pytest.raises(orroute.InternalServerError):
        client.chat.completions.create(model="m/a", messages=MSGS, max_retries=0)
    assert len(fake.requests) == 1
    fake.clear_requests()
    with pytest.raises(orroute.InternalServerError):
        client.with_options(max_retries=3).chat.completions.create(model="m/a", messages=MSGS)
    assert len(fake.requests) == 4


def test_connection_refused_is_a_connection_error():
    client = orroute.OpenRouter(base_url="http://127.0.0.1:1/api/v1", max_retries=1)
    with pytest.raises(orroute.APIConnectionError):
        client.chat.completions.create(model="m/a", messages=MSGS)


def test_hanging_server_times_out(fake):
    fake.fail("m/a", Fault.hang())
    client = orroute.OpenRouter(base_url=fake.base_url, max_retries=0, timeout=0.5)
    with pytest.raises(orroute.APITimeoutError):
        client.chat.completions.create(model="m/a", messages=MSGS)


def test_reset_connection_is_retried(client, fake):
    fake.script("m/a", [Fault.reset()])
    assert client.chat.completions.create(model="m/a", messages=MSGS).choices[0].message.content


def test_tool_calls_are_returned(client, fake):
    fake.set_reply(
        "m/a",
        {
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ]
        },
    )
    r = client.chat.completions.create(
        model="m/a",
        messages=MSGS,
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}},
            }
        ],
    )
    tc = r.choices[0].message.tool_calls[0]
    assert tc.function.name == "get_weather"
    assert '"Oslo"' in tc.function.arguments
    assert r.choices[0].finish_reason == "tool_calls"


# --- keys ---------------------------------------------------------------------------------------


def test_key_from_environment_and_dotenv(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY_A)
    orroute.OpenRouter(base_url=fake.base_url).chat.completions.create(model="m/a", messages=MSGS)
    assert fake.last_request.api_key.reveal() == KEY_A
    monkeypatch.delenv("OPENROUTER_API_KEY")
    (tmp_path / ".env").write_text(f"# comment\nexport OPENROUTER_API_KEY='{KEY_B}'\n")
    orroute.OpenRouter(base_url=fake.base_url).chat.completions.create(model="m/a", messages=MSGS)
    assert fake.last_request.api_key.reveal() == KEY_B


def test_base_url_from_environment(fake, monkeypatch):
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake.base_url)
    assert orroute.OpenRouter().base_url == fake.base_url
    assert orroute.OpenRouter(base_url=None).base_url == fake.base_url


def test_keys_rotate_round_robin(fake):
    client = orroute.OpenRouter(api_key=[KEY_A, KEY_B], base_url=fake.base_url)
    for _ in range(4):
        client.chat.completions.create(model="m/a", messages=MSGS)
    used = [r.api_key.reveal() for r in fake.requests]
    assert used == [KEY_A, KEY_B, KEY_A, KEY_B]


def test_rejected_key_is_set_aside_and_never_shown():
    with FakeOpenRouter(models=["m/a"], api_key=KEY_B, use_uvloop=False) as fake:
        client = orroute.OpenRouter(
            api_key=f"{KEY_A},{KEY_B}", base_url=fake.base_url, max_retries=0
        )
        for _ in range(3):
            assert client.chat.completions.create(model="m/a", messages=MSGS).choices
        assert [r.api_key.reveal() for r in fake.requests] == [KEY_A, KEY_B, KEY_B, KEY_B]
        text = repr(client)
        assert KEY_A not in text and KEY_B not in text and "...1111" in text

        bad = orroute.OpenRouter(api_key=KEY_A, base_url=fake.base_url)
        with pytest.raises(orroute.AuthenticationError) as info:
            bad.chat.completions.create(model="m/a", messages=MSGS)
        with pytest.raises(orroute.AuthenticationError, match="no usable API key") as info2:
            bad.chat.completions.create(model="m/a", messages=MSGS)
        for e in (info.value, info2.value):
            assert KEY_A not in str(e) and KEY_A not in repr(e.args)


# --- other endpoints ----------------------------------------------------------------------------


def test_models_list_is_cached_on_disk_and_works_offline(fake):
    client = orroute.OpenRouter(base_url=fake.base_url)
    models = client.models.list()
    assert "m/a" in models.ids and len(models) == 4
    assert models.data[0].pricing["prompt"]
    assert [m.id for m in models] == models.ids
    n = fake.request_count
    assert client.models.list().ids == models.ids
    assert fake.request_count == n  # served from the disk cache
    fake.stop()
    assert client.models.list(refresh=True).ids == models.ids  # offline: the cached copy


async def test_async_models_list_is_cached_and_falls_back_offline(fake):
    client = orroute.AsyncOpenRouter(base_url=fake.base_url, max_retries=0)
    models = await client.models.list()
    n = fake.request_count
    assert (await client.models.list()).ids == models.ids
    assert fake.request_count == n  # served from the disk cache
    fake.stop()
    assert (await client.models.list(refresh=True)).ids == models.ids  # offline: the cached copy
    with pytest.raises(orroute.APIConnectionError):
        await client.models.list(refresh=True, fallback=False)


def test_models_list_becomes_a_catalog_that_prices_exactly(fake):
    fake.add_model("acme/priced", prompt_price="0.0000025", completion_price="0.00001")
    catalog = orroute.OpenRouter(base_url=fake.base_url).models.list(refresh=True).to_catalog()
    assert isinstance(catalog, orroute.Catalog) and "acme/priced" in catalog
    assert catalog.cost("acme/priced", prompt_tokens=1000, completion_tokens=100) == Decimal(
        "0.0035"
    )


def test_models_list_falls_back_to_bundled_snapshot_offline():
    client = orroute.OpenRouter(base_url="http://127.0.0.1:1/api/v1", max_retries=0)
    models = client.models.list()
    assert len(models) > 100
    with pytest.raises(orroute.APIConnectionError):
        client.models.list(refresh=True, fallback=False)


def test_credits_key_info_and_generation(client, fake):
    fake.generation_delay = 0.6
    r = client.chat.completions.create(model="m/a", messages=MSGS)
    g = client.generation(r.id)
    assert g.id == r.id
    assert g.total_cost == pytest.approx(r.usage.cost)
    c = client.credits()
    assert c.total_credits > 0 and c.balance is not None
    k = client.key_info()
    assert k.label is not None
    assert KEY_A not in str(k.label)


def test_async_client_completes_concurrently(fake):
    async def main():
        client = orroute.AsyncOpenRouter(api_key=KEY_A, base_url=fake.base_url)
        rs = await asyncio.gather(
            *(client.chat.completions.create(model="m/a", messages=MSGS) for _ in range(20))
        )
        c = await client.credits()
        return rs, c

    rs, c = asyncio.run(main())
    assert len(rs) == 20 and all(r.choices[0].message.content for r in rs)
    assert c.total_credits > 0


async def test_async_errors_and_other_endpoints(fake):
    client = orroute.AsyncOpenRouter(base_url=fake.base_url, max_retries=0)
    fake.script("m/a", [Fault.rate_limit(retry_after=3)])
    with pytest.raises(orroute.RateLimitError):
        await client.chat.completions.create(model="m/a", messages=MSGS)
    models = await client.models.list()
    assert "m/b" in models.ids
    r = await client.chat.completions.create(model="m/a", messages=MSGS)
    assert (await client.generation(r.id)).id == r.id
    assert (await client.key_info()).label is not None


async def test_cancelling_an_async_call_aborts_it(fake):
    fake.fail("m/a", Fault.hang())
    client = orroute.AsyncOpenRouter(base_url=fake.base_url)
    task = asyncio.create_task(client.chat.completions.create(model="m/a", messages=MSGS))
    assert await asyncio.to_thread(fake.wait_until, lambda: fake.request_count == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.wait_until, lambda: fake.open_connections == 0)


def test_a_call_with_its_own_authorization_sends_that_key_alone(client, fake):
    # openai's per-call override: the call's own key replaces the client's, never beside it
    client.chat.completions.create(
        model="m/a", messages=MSGS, extra_headers={"Authorization": f"Bearer {KEY_B}"},
    )
    assert fake.last_request.headers["authorization"].reveal() == f"Bearer {KEY_B}"
