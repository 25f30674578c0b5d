"""orroute.testing.FakeOpenRouter: OpenRouter's wire format, faults, recording, capacity.

Driven with plain HTTP (http.client, raw sockets) and with the ``openai`` package, which is the
reference client for OpenAI-compatible servers.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from orroute.testing import FakeOpenRouter, Fault

# Errors while iterating a stream: openai 1.x wraps them in its own classes, 2.x lets httpx's
# through. Either way the stream must fail, and with the right kind of error.
STREAM_TIMEOUT = (openai.APITimeoutError, httpx.TimeoutException)
STREAM_CONNECTION_ERROR = (openai.APIConnectionError, httpx.TransportError)

MODEL = "openai/gpt-4o"
MINI = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as f:
        yield f


def post(fake: FakeOpenRouter, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None):
    """One POST to /chat/completions (a dict as JSON, bytes as they are); returns (status,
    headers, raw body bytes)."""
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        data = body if isinstance(body, bytes) else json.dumps(body)
        conn.request("POST", "/api/v1/chat/completions", data, hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def get(fake: FakeOpenRouter, path: str, headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)
    try:
        conn.request("GET", "/api/v1" + path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def chat(model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HI, **extra}


def sse_events(raw: bytes) -> tuple[list[str], list[Any]]:
    """Splits an SSE body into (comment lines, data payloads: parsed JSON or the raw string)."""
    comments, data = [], []
    for block in raw.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: "):
                payload = line[6:]
                data.append(payload if payload == "[DONE]" else json.loads(payload))
    return comments, data


def catalog_prices(fake: FakeOpenRouter, model: str) -> tuple[Decimal, Decimal]:
    _, _, body = get(fake, "/models")
    entry = next(m for m in json.loads(body)["data"] if m["id"] == model)
    return Decimal(entry["pricing"]["prompt"]), Decimal(entry["pricing"]["completion"])


def client(fake: FakeOpenRouter, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="sk-or-v1-test", max_retries=0, **kw)


def aclient(fake: FakeOpenRouter, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-or-v1-test", max_retries=0, **kw)


# --- plain completions -----------------------------------------------------------------------------


def test_completion_has_openrouter_shape_and_catalog_cost(fake):
    status, headers, raw = post(fake, chat())
    assert status == 200
    body = json.loads(raw)
    assert body["id"].startswith("gen-") and headers["X-Generation-Id"] == body["id"]
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL and body["provider"] == "OpenAI"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    prompt_price, completion_price = catalog_prices(fake, MODEL)
    expected = prompt_price * usage["prompt_tokens"] + completion_price * usage["completion_tokens"]
    assert Decimal(str(usage["cost"])) == expected
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_replies_are_deterministic_and_depend_on_the_request(fake):
    a = json.loads(post(fake, chat())[2])["choices"][0]["message"]["content"]
    b = json.loads(post(fake, chat())[2])["choices"][0]["message"]["content"]
    other = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me a joke"}]}
    c = json.loads(post(fake, other)[2])["choices"][0]["message"]["content"]
    assert a == b and a != c
    assert "capital of France" in a  # echo-ish


def test_same_seed_gives_same_reply_across_servers():
    with FakeOpenRouter(seed=7) as f1, FakeOpenRouter(seed=7) as f2, FakeOpenRouter(seed=8) as f3:
        texts = [json.loads(post(f, chat())[2])["choices"][0]["message"] for f in (f1, f2, f3)]
    assert texts[0] == texts[1] != texts[2]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_output_limit_truncates_with_finish_reason_length(fake, field):
    body = json.loads(post(fake, chat(**{field: 5}))[2])
    assert body["usage"]["completion_tokens"] <= 5
    assert body["choices"][0]["finish_reason"] == "length"


def test_stop_sequence_cuts_the_reply(fake):
    full = json.loads(post(fake, chat())[2])["choices"][0]["message"]["content"]
    body = json.loads(post(fake, chat(stop=["capital"]))[2])
    assert body["choices"][0]["message"]["content"] == full[: full.index("capital")]


def test_set_reply_fixes_the_content(fake):
    fake.set_reply(MODEL, "Paris.")
    fake.set_reply("*", lambda body: f"{len(body['messages'])} messages")
    assert json.loads(post(fake, chat())[2])["choices"][0]["message"]["content"] == "Paris."
    other = json.loads(post(fake, chat(MINI))[2])
    assert other["choices"][0]["message"]["content"] == "1 messages"


def test_json_schema_response_format_returns_matching_json(fake):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    content = json.loads(post(fake, chat(response_format=fmt))[2])["choices"][0]["message"]
    value = json.loads(content["content"])
    assert set(value) == {"city", "population"} and isinstance(value["population"], int)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def test_tools_give_a_tool_call_then_text_after_the_tool_result(fake):
    body = json.loads(post(fake, chat(tools=[WEATHER_TOOL], tool_choice="required"))[2])
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"])["unit"] in ("c", "f")
    follow_up = HI + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C"},
    ]
    body = json.loads(
        post(fake, {"model": MODEL, "messages": follow_up, "tools": [WEATHER_TOOL]})[2]
    )
    assert body["choices"][0]["finish_reason"] == "stop"
    none = json.loads(post(fake, chat(tools=[WEATHER_TOOL], tool_choice="none"))[2])
    assert "tool_calls" not in none["choices"][0]["message"]


REASONER = "qwen/qwen3.8-27b"  # reasoning on by default in the bundled catalog


def test_reasoning_model_reports_reasoning_tokens_and_text(fake):
    body = json.loads(post(fake, chat(REASONER, reasoning={"effort": "high"}))[2])
    message, usage = body["choices"][0]["message"], body["usage"]
    assert message["reasoning"].startswith("The user asks")
    assert message["reasoning_details"][0]["type"] == "reasoning.text"
    reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning_tokens < usage["completion_tokens"]
    excluded = json.loads(post(fake, chat(REASONER, reasoning={"exclude": True}))[2])
    assert excluded["choices"][0]["message"]["reasoning"] is None
    assert excluded["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    off = json.loads(post(fake, chat(REASONER, reasoning={"effort": "none"}))[2])
    assert off["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    plain = json.loads(post(fake, chat(MODEL, reasoning={"effort": "high"}))[2])
    assert plain["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0  # gpt-4o


def test_reasoning_streams_before_content(fake):
    _, data = sse_events(post(fake, chat(REASONER, stream=True))[2])
    deltas = [d["choices"][0]["delta"] for d in data[:-2]]
    kinds = ["r" if dl.get("reasoning") else "c" if dl.get("content") else "-" for dl in deltas]
    first_content = kinds.index("c")
    assert set(kinds[:first_content]) == {"r"} and "r" not in kinds[first_content:]
    assert deltas[0]["role"] == "assistant"


def test_continued_conversation_reads_the_prompt_cache():
    long_question = "Please review this text. " + "lorem ipsum dolor sit amet " * 300
    first = [{"role": "user", "content": long_question}]
    with FakeOpenRouter() as fake:
        one = json.loads(post(fake, {"model": MODEL, "messages": first})[2])
        assert one["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
        follow = first + [
            {"role": "assistant", "content": one["choices"][0]["message"]["content"]},
            {"role": "user", "content": "And shorter?"},
        ]
        two = json.loads(post(fake, {"model": MODEL, "messages": follow})[2])
    cached = two["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached == one["usage"]["prompt_tokens"]
    uncached = FakeOpenRouter(cache_min_tokens=None)
    with uncached:
        three = json.loads(post(uncached, {"model": MODEL, "messages": follow})[2])
    assert three["usage"]["prompt_tokens"] == two["usage"]["prompt_tokens"]
    assert two["usage"]["cost"] < three["usage"]["cost"]  # cache reads are cheaper


def test_invalid_requests_get_400(fake):
    assert post(fake, {"model": MODEL})[0] == 400
    status, _, raw = post(fake, chat("nobody/no-model"))
    assert status == 400 and "not a valid model ID" in json.loads(raw)["error"]["message"]
    status, _, raw = post(fake, chat(models=["a/b", "c/d", "e/f", "g/h"]))
    assert status == 400 and "3 items or fewer" in json.loads(raw)["error"]["message"]


def test_variant_suffix_resolves_to_the_base_model(fake):
    body = json.loads(post(fake, chat(MODEL + ":nitro"))[2])
    assert body["model"] == MODEL


# --- streaming ----------------------------------------------------------------------------------


def test_raw_stream_has_keepalive_comment_chunks_usage_last_and_done(fake):
    status, headers, raw = post(fake, chat(stream=True))
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert raw.startswith(b": OPENROUTER PROCESSING\n\n")
    _, data = sse_events(raw)
    assert data[-1] == "[DONE]"
    usage_chunk = data[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["cost"] > 0
    assert all("usage" not in d for d in data[:-2])
    chunks = data[:-2]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["id"] for c in chunks} == {headers["X-Generation-Id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["provider"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    plain = json.loads(post(fake, chat())[2])
    assert text == plain["choices"][0]["message"]["content"]
    assert usage_chunk["usage"] == plain["usage"]


def test_keepalive_comments_repeat_while_waiting_for_the_first_token():
    with FakeOpenRouter(ttft=0.35, keepalive_interval=0.1) as fake:
        raw = post(fake, chat(stream=True))[2]
    before_first_data = raw[: raw.index(b"data:")]
    assert before_first_data.count(b": OPENROUTER PROCESSING") >= 3


def test_http10_stream_is_close_delimited(fake):
    with socket.create_connection((fake.host, fake.port), timeout=10) as s:
        body = json.dumps(chat(stream=True)).encode()
        s.sendall(
            b"POST /api/v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        raw = _read_all(s)
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head
    assert sse_events(payload)[1][-1] == "[DONE]"


def test_stream_tool_call_deltas_assemble_in_openai(fake):
    with client(fake) as c:
        stream = c.chat.completions.create(
            model=MODEL, messages=HI, tools=[WEATHER_TOOL], tool_choice="required", stream=True
        )
        name, args, finish = "", "", None
        for chunk in stream:
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or ():
                    name += tc.function.name or ""
                    args += tc.function.arguments or ""
                finish = choice.finish_reason or finish
    assert name == "get_weather" and "city" in json.loads(args)
    assert finish == "tool_calls"


def test_openai_sync_plain_and_stream(fake):
    with client(fake) as c:
        done = c.chat.completions.create(model=MINI, messages=HI)
        stream = c.chat.completions.create(model=MINI, messages=HI, stream=True)
        chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == done.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == done.usage.total_tokens
    assert done.model == MINI


async def test_openai_async_plain_and_stream(fake):
    async with aclient(fake) as c:
        done = await c.chat.completions.create(model=MINI, messages=HI)
        stream = await c.chat.completions.create(model=MINI, messages=HI, stream=True)
        chunks = [ch async for ch in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == done.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == done.usage.total_tokens


def test_tokens_per_second_paces_the_stream():
    with FakeOpenRouter(tokens_per_second=2000) as fake:
        fake.set_model_profile(MODEL, tokens_per_second=None, provider="Azure")
        status, _, raw = post(fake, chat(MINI, stream=True))
        assert status == 200 and sse_events(raw)[1][-1] == "[DONE]"
        assert json.loads(post(fake, chat())[2])["provider"] == "Azure"


def test_paced_stream_events_are_the_same_with_or_without_coalescing():
    bodies = []
    for window in (0.0, 0.05):
        with FakeOpenRouter(tokens_per_second=3000, coalesce=window, seed=3) as fake:
            _, data = sse_events(post(fake, chat(stream=True))[2])
        bodies.append([d if d == "[DONE]" else (d["choices"], d.get("usage")) for d in data])
    assert bodies[0] == bodies[1]


# --- error statuses -----------------------------------------------------------------------------

STATUS_FAULTS = [
    (Fault.rate_limit(retry_after=3), 429, openai.RateLimitError),
    (Fault.payment_required(), 402, openai.APIStatusError),
    (Fault.moderation(["violence"]), 403, openai.PermissionDeniedError),
    (Fault.server_error(500), 500, openai.InternalServerError),
    (Fault.server_error(502, provider_name="Azure", raw="boom"), 502, openai.InternalServerError),
    (Fault.server_error(503, retry_after=2), 503, openai.InternalServerError),
    (Fault.status_error(404, "No endpoints found."), 404, openai.NotFoundError),
    (
        Fault.bad_request("too long", error_type="context_length_exceeded"),
        400,
        openai.BadRequestError,
    ),
]
STATUS_IDS = ["429", "402", "403", "500", "502", "503", "404", "400"]


@pytest.mark.parametrize(("fault", "status", "exc"), STATUS_FAULTS, ids=STATUS_IDS)
def test_status_faults_map_to_openai_exceptions(fake, fault, status, exc):
    fake.fail(MODEL, fault)
    with client(fake) as c, pytest.raises(exc) as info:
        c.chat.completions.create(model=MODEL, messages=HI)
    err = info.value
    assert err.status_code == status
    assert err.body["code"] == status and err.body["message"] == fault.message


@pytest.mark.parametrize(("fault", "status", "exc"), STATUS_FAULTS, ids=STATUS_IDS)
async def test_status_faults_map_to_openai_exceptions_async(fake, fault, status, exc):
    fake.fail(MODEL, fault)
    async with aclient(fake) as c:
        with pytest.raises(exc) as info:
            await c.chat.completions.create(model=MODEL, messages=HI, stream=True)
    assert info.value.status_code == status


def test_rate_limit_has_retry_after_and_ratelimit_headers(fake):
    fake.fail(MODEL, Fault.rate_limit(retry_after=2, limit=20, reset_ms=1_790_000_000_000))
    status, headers, raw = post(fake, chat())
    assert status == 429 and headers["Retry-After"] == "2"
    assert headers["X-RateLimit-Limit"] == "20" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == "1790000000000"
    body = json.loads(raw)
    assert body["error"]["metadata"]["headers"]["Retry-After"] == "2"
    assert "user_id" in body


def test_moderation_metadata(fake):
    fake.fail(MODEL, Fault.moderation(["harassment", "hate"], flagged_input="you ...idiot"))
    body = json.loads(post(fake, chat())[2])["error"]
    assert body["code"] == 403
    assert body["metadata"] == {
        "reasons": ["harassment", "hate"],
        "flagged_input": "you ...idiot",
        "provider_name": "OpenAI",
        "model_slug": MODEL,
    }


def test_provider_error_metadata_and_503_retry_after(fake):
    fake.script(MODEL, [Fault.server_error(502, provider_name="Azure", raw={"x": 1})])
    body = json.loads(post(fake, chat())[2])["error"]
    assert body["metadata"]["provider_name"] == "Azure" and body["metadata"]["raw"] == {"x": 1}
    fake.fail(MODEL, Fault.server_error(503, retry_after=1.5))
    assert post(fake, chat())[1]["Retry-After"] == "1.5"


# --- mid-stream and connection faults ----------------------------------------------------------


def test_mid_stream_error_event_shape(fake):
    fake.fail(MODEL, Fault.stream_error(after_tokens=2, code=502, message="Provider disconnected"))
    raw = post(fake, chat(stream=True))[2]
    _, data = sse_events(raw)
    assert "[DONE]" not in data
    content = [d for d in data if "error" not in d]
    assert len(content) == 2
    event = data[-1]
    assert event["error"] == {
        "code": 502,
        "message": "Provider disconnected",
        "metadata": {"error_type": "provider_unavailable"},
    }
    assert event["choices"][0]["finish_reason"] == "error" and event["id"].startswith("gen-")


def test_mid_stream_error_raises_after_partial_output(fake):
    fake.fail(MODEL, Fault.stream_error(after_tokens=3))
    received = []
    with client(fake) as c, pytest.raises(openai.APIError, match="Provider disconnected"):
        for chunk in c.chat.completions.create(model=MODEL, messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert len(received) == 3 and received[0] == "You"


async def test_mid_stream_error_raises_after_partial_output_async(fake):
    fake.fail(MODEL, Fault.stream_error(after_tokens=3))
    received = []
    async with aclient(fake) as c:
        stream = await c.chat.completions.create(model=MODEL, messages=HI, stream=True)
        with pytest.raises(openai.APIError, match="Provider disconnected"):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content)
    assert len(received) == 3


def test_stream_error_on_plain_request_is_a_200_with_choice_error(fake):
    fake.fail(MODEL, Fault.stream_error(after_tokens=2))
    status, _, raw = post(fake, chat())
    choice = json.loads(raw)["choices"][0]
    assert status == 200 and choice["finish_reason"] == "error"
    assert choice["error"]["code"] == 502 and choice["message"]["content"] == "You said:"


def test_hang_never_answers(fake):
    fake.fail(MODEL, Fault.hang())
    with client(fake, timeout=0.3) as c, pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model=MODEL, messages=HI)
    assert fake.requests_for(MODEL)[-1].status is None


def test_hang_after_tokens_stalls_the_stream(fake):
    fake.fail(MODEL, Fault.hang(after_tokens=2))
    got = []
    with client(fake, timeout=0.5) as c, pytest.raises(STREAM_TIMEOUT):
        got.extend(c.chat.completions.create(model=MODEL, messages=HI, stream=True))
    assert len(got) == 2


async def test_hang_after_tokens_stalls_the_stream_async(fake):
    fake.fail(MODEL, Fault.hang(after_tokens=2))
    got = []
    async with aclient(fake, timeout=0.5) as c:
        stream = await c.chat.completions.create(model=MODEL, messages=HI, stream=True)
        with pytest.raises(STREAM_TIMEOUT):
            async for chunk in stream:
                got.append(chunk)
    assert len(got) == 2


def test_reset_before_answer_and_mid_stream(fake):
    fake.script(MODEL, [Fault.reset(), Fault.reset(after_tokens=2)])
    with pytest.raises(ConnectionResetError):
        post(fake, chat())
    with client(fake) as c, pytest.raises(STREAM_CONNECTION_ERROR):
        list(c.chat.completions.create(model=MODEL, messages=HI, stream=True))


def test_malformed_json_plain_and_stream(fake):
    fake.script(MODEL, [Fault.malformed_json(), Fault.malformed_json(after_tokens=1)])
    status, _, raw = post(fake, chat())
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    raw = post(fake, chat(stream=True))[2]
    bad = [line for line in raw.decode().split("\n") if line.startswith("data: {")]
    broken = []
    for line in bad:
        try:
            json.loads(line[6:])
        except json.JSONDecodeError:
            broken.append(line)
    assert len(broken) == 1


def test_slow_drip_delivers_the_same_bytes_in_pieces(fake):
    normal = json.loads(post(fake, chat())[2])
    fake.fail(MODEL, Fault.slow_drip(interval=0.0005, chunk_size=64))
    dripped = json.loads(post(fake, chat())[2])
    assert dripped["choices"] == normal["choices"] and dripped["usage"] == normal["usage"]
    raw = post(fake, chat(stream=True))[2]
    assert sse_events(raw)[1][-1] == "[DONE]"


def test_each_stream_gets_its_own_generation_id(fake):
    ids = set()
    for _ in range(3):
        _, headers, raw = post(fake, chat(stream=True))
        chunk_ids = {d["id"] for d in sse_events(raw)[1] if isinstance(d, dict)}
        assert chunk_ids == {headers["X-Generation-Id"]}
        ids |= chunk_ids
    assert len(ids) == 3


def test_delay_fault_still_answers(fake):
    fake.script(MODEL, [Fault.delay(0.05)])
    assert post(fake, chat())[0] == 200


# --- scripts, fallbacks, recording ----------------------------------------------------------------


def test_script_plays_in_order_then_normal(fake):
    fake.script(MODEL, [Fault.server_error(502), None, Fault.rate_limit(retry_after=1)])
    statuses = [post(fake, chat())[0] for _ in range(5)]
    assert statuses == [502, 200, 429, 200, 200]


def test_fail_always_times_and_clear(fake):
    fake.fail(MODEL, Fault.server_error(500), times=2)
    assert [post(fake, chat())[0] for _ in range(3)] == [500, 500, 200]
    fake.fail("*", Fault.server_error(503))
    assert post(fake, chat(MINI))[0] == 503
    fake.fail("*", None)
    assert post(fake, chat(MINI))[0] == 200
    fake.fail(MODEL, Fault.server_error(500))
    fake.clear_faults()
    assert post(fake, chat())[0] == 200


def test_models_fallback_list_skips_failing_primary(fake):
    fake.fail(MODEL, Fault.rate_limit())
    body = json.loads(post(fake, chat(models=[MINI]))[2])
    assert body["model"] == MINI
    req = fake.last_request
    assert req is not None and req.model == MODEL and req.served_model == MINI
    fake.fail(MINI, Fault.server_error(502))
    assert post(fake, chat(models=[MINI]))[0] == 502  # every candidate failed: the last error


def test_requests_are_recorded_with_masked_authorization(fake):
    post(fake, chat(temperature=0.2), {"Authorization": "Bearer sk-or-v1-supersecretvalue"})
    get(fake, "/models")
    reqs = fake.requests
    assert [r.endpoint for r in reqs] == ["/chat/completions", "/models"]
    r = reqs[0]
    assert r.method == "POST" and r.json["temperature"] == 0.2 and r.model == MODEL
    assert r.headers["Authorization"] == "Bearer sk-or-v1-supersecretvalue"
    assert r.api_key == "sk-or-v1-supersecretvalue"
    assert "supersecretvalue" not in repr(r) and "supersecretvalue" not in str(r.headers)
    assert "supersecretvalue" not in f"{r.api_key}"
    assert r.generation_id and r.status == 200 and r.messages == HI
    assert fake.requests_for(MODEL) == [r]
    fake.reset()
    assert fake.requests == [] and fake.request_count == 0


# --- connections -----------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(fake):
    conn = http.client.HTTPConnection(fake.host, fake.port, timeout=10)
    for stream in (False, True, False):
        conn.request("POST", "/api/v1/chat/completions", json.dumps(chat(stream=stream)))
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    assert fake.open_connections == 1
    conn.close()
    assert fake.wait_until(lambda: fake.open_connections == 0)


def test_pipelined_requests_and_100_continue(fake):
    body = json.dumps(chat()).encode()
    one = b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    with socket.create_connection((fake.host, fake.port), timeout=10) as s:
        s.sendall(one + one + b"GET /api/v1/credits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = _read_all(s)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    with socket.create_connection((fake.host, fake.port), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        assert b"HTTP/1.1 200 OK" in _read_all(s)


def test_chunked_request_body(fake):
    body = json.dumps(chat()).encode()
    with socket.create_connection((fake.host, fake.port), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
            % (10, body[:10], len(body) - 10, body[10:])
        )
        raw = _read_all(s)
    assert raw.startswith(b"HTTP/1.1 200 OK")


def test_client_closing_a_stream_frees_it():
    with FakeOpenRouter(tokens_per_second=20) as fake, client(fake) as c:
        stream = c.chat.completions.create(model=MODEL, messages=HI, stream=True)
        next(iter(stream))
        assert fake.open_streams == 1
        stream.close()
        assert fake.wait_until(lambda: fake.open_streams == 0)


def _ensure_fds(needed: int) -> None:
    """Raises the soft open-file limit if needed (client and server share this process)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"open-file limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_thousand_concurrent_streams_held_open():
    n = 1000
    _ensure_fds(2 * n + 200)
    with FakeOpenRouter(ttft=30, keepalive_interval=5) as fake:
        body = json.dumps(chat(stream=True)).encode()
        request = (
            b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
            % (
                len(body),
                body,
            )
        )

        async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection(fake.host, fake.port)
            writer.write(request)
            await reader.readuntil(b"OPENROUTER PROCESSING")
            return reader, writer

        streams = await asyncio.gather(*(open_stream() for _ in range(n)))
        assert fake.open_streams == n and fake.open_connections == n
        for _, writer in streams:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in streams), return_exceptions=True)
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, fake.wait_until, lambda: fake.open_streams == 0)
        assert fake.wait_until(lambda: fake.open_connections == 0)


# --- other endpoints ------------------------------------------------------------------------------


def test_models_endpoint_serves_the_bundled_snapshot(fake):
    status, _, raw = get(fake, "/models")
    body = json.loads(raw)
    assert status == 200 and body["total_count"] == len(body["data"]) > 100
    ids = {m["id"] for m in body["data"]}
    assert {MODEL, MINI} <= ids
    assert all(isinstance(m["pricing"]["prompt"], str) for m in body["data"])
    tools = json.loads(get(fake, "/models?supported_parameters=tools")[2])["data"]
    assert 0 < len(tools) < len(body["data"])
    assert json.loads(get(fake, "/models/count")[2])["data"]["count"] == len(body["data"])
    assert json.loads(get(fake, "/model/" + MODEL)[2])["data"]["id"] == MODEL
    eps = json.loads(get(fake, f"/models/{MODEL}/endpoints")[2])["data"]["endpoints"]
    assert eps[0]["provider_name"] == "OpenAI"
    assert get(fake, "/model/nobody/nothing")[0] == 404


def test_given_model_list_and_added_models():
    with FakeOpenRouter(
        models=[
            MODEL,
            "acme/tiny",
            {"id": "acme/pro", "pricing": {"prompt": "0.00001", "completion": "0.00003"}},
        ]
    ) as fake:
        ids = [m["id"] for m in json.loads(get(fake, "/models")[2])["data"]]
        assert ids == [MODEL, "acme/tiny", "acme/pro"]
        fake.add_model("acme/free", prompt_price="0", completion_price="0")
        body = json.loads(post(fake, chat("acme/free"))[2])
        assert body["usage"]["cost"] == 0
        body = json.loads(post(fake, chat("acme/pro"))[2])
        u = body["usage"]
        assert (
            Decimal(str(u["cost"]))
            == Decimal("0.00001") * u["prompt_tokens"] + Decimal("0.00003") * u["completion_tokens"]
        )
        assert post(fake, chat(MINI))[0] == 400  # not in the given list


def test_generation_is_404_then_available():
    with FakeOpenRouter(generation_delay=0.2) as fake:
        body = json.loads(post(fake, chat())[2])
        assert get(fake, "/generation?id=" + body["id"])[0] == 404
        assert fake.wait_until(lambda: get(fake, "/generation?id=" + body["id"])[0] == 200)
        stats = json.loads(get(fake, "/generation?id=" + body["id"])[2])["data"]
    assert stats["id"] == body["id"] and stats["model"] == MODEL
    assert stats["total_cost"] == body["usage"]["cost"]
    assert stats["tokens_prompt"] == body["usage"]["prompt_tokens"]
    assert stats["streamed"] is False and stats["provider_name"] == "OpenAI"


def test_generation_stats_are_kept_for_the_latest_calls_only(monkeypatch) -> None:
    """A long run (a benchmark, a soak test) must not grow the server without bound."""
    from orroute.testing import _server

    monkeypatch.setattr(_server, "_GENERATIONS_KEPT", 3)
    with FakeOpenRouter() as fake:
        ids = [json.loads(post(fake, chat())[2])["id"] for _ in range(5)]
        found = [get(fake, "/generation?id=" + i)[0] for i in ids]
    assert found == [404, 404, 200, 200, 200]


def test_generation_stats_keep_no_objects_of_the_call():
    """The stats kept for /generation are plain bytes, not the call's reply, headers and JSON:
    objects kept per call and freed 10,000 calls later balance the garbage collector's count
    (one freed for each made), so its young generation grew unexamined to ~70,000 objects and a
    collection then stalled every connection 20-45 ms (a benchmark's p99 at concurrency 64)."""
    import gc

    from orroute.testing import _server

    with FakeOpenRouter(record=False) as fake:
        bodies = [json.loads(post(fake, chat(), {"User-Agent": "ua/1"})[2]) for _ in range(20)]
        ids = {b["id"] for b in bodies}
        gc.collect()
        kept = [o for o in gc.get_objects() if isinstance(o, _server._Reply) and o.gen_id in ids]
        stats = json.loads(get(fake, "/generation?id=" + bodies[-1]["id"])[2])["data"]
    assert kept == []
    assert stats["id"] == bodies[-1]["id"] and stats["user_agent"] == "ua/1"
    assert stats["total_cost"] == bodies[-1]["usage"]["cost"]
    assert stats["tokens_completion"] == bodies[-1]["usage"]["completion_tokens"]


def test_a_call_whose_user_value_marshal_cannot_keep_is_served_and_booked(monkeypatch):
    """A request's ``user`` and ``session_id`` are any JSON values, kept for /generation: one
    nested deeper than marshal goes (2,000 levels; json.loads parses that deep under a raised
    recursion limit) is served and charged as any other, not a 500 from the stats' keeping."""
    import sys

    from orroute.testing import _server

    # the stats read back through the standard library's writer (orjson's stops at 254 levels)
    monkeypatch.setattr(_server, "_dumps", lambda obj: _server._ENCODER.encode(obj).encode())
    deep: Any = "u"
    for _ in range(2_100):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        with FakeOpenRouter(record=False) as fake:
            status, _, raw = post(fake, chat(user=deep, session_id=deep))
            assert status == 200, raw[:200]
            assert json.loads(raw)["usage"]["cost"] > 0
            spent = json.loads(get(fake, "/credits")[2])["data"]["total_usage"]
            assert spent == json.loads(raw)["usage"]["cost"]
            status, _, stats = get(fake, "/generation?id=" + json.loads(raw)["id"])
            assert status == 200, stats[:200]
            data = json.loads(stats)["data"]
            assert data["external_user"] == deep and data["session_id"] == deep
    finally:
        sys.setrecursionlimit(limit)


def test_a_body_nested_past_the_parsers_reach_is_a_400_and_a_deep_user_reads_back():
    """Under the interpreter's own recursion limit: a body nested ~5,000 levels is refused as
    invalid JSON (400, as OpenRouter answers a body it cannot parse), not a 500 from the
    parser's RecursionError; a ``user`` of 300 levels (past orjson's 254) is served and its
    /generation stats read back whole."""
    deep = json.dumps(chat())[:-1].encode() + b', "user": ' + b"[" * 5_000 + b'"u"' + b"]" * 5_000 + b"}"
    with FakeOpenRouter(record=False) as fake:
        status, _, raw = post(fake, deep)
        assert status == 400, raw[:200]
        assert json.loads(raw)["error"]["code"] == 400
        user: Any = "u"
        for _ in range(300):
            user = [user]
        status, _, raw = post(fake, chat(user=user))
        assert status == 200, raw[:200]
        status, _, stats = get(fake, "/generation?id=" + json.loads(raw)["id"])
        assert status == 200, stats[:200]
        assert json.loads(stats)["data"]["external_user"] == user


def test_credits_and_key_track_spending():
    with FakeOpenRouter(credits="0.01") as fake:
        before = json.loads(get(fake, "/credits")[2])["data"]
        assert before == {"total_credits": 0.01, "total_usage": 0.0}
        cost = json.loads(post(fake, chat())[2])["usage"]["cost"]
        after = json.loads(get(fake, "/credits")[2])["data"]
        assert after["total_usage"] == pytest.approx(cost) and fake.total_usage > 0
        key = json.loads(get(fake, "/key", {"Authorization": "Bearer sk-or-v1-abcdefghijk"})[2])
        assert key["data"]["usage"] == pytest.approx(cost)
        assert "abcdefghijk" not in key["data"]["label"]
        fake.fail("/credits", Fault.server_error(500))
        assert get(fake, "/credits")[0] == 500
        while post(fake, chat())[0] == 200:
            pass
        assert post(fake, chat())[0] == 402


def test_api_key_is_enforced_except_on_models():
    with FakeOpenRouter(api_key="sk-or-v1-good") as fake:
        status, _, raw = post(fake, chat())
        assert (
            status == 401 and json.loads(raw)["error"]["message"] == "Missing Authentication header"
        )
        assert post(fake, chat(), {"Authorization": "Bearer sk-or-v1-bad"})[0] == 401
        assert post(fake, chat(), {"Authorization": "Bearer sk-or-v1-good"})[0] == 200
        assert get(fake, "/models")[0] == 200 and get(fake, "/credits")[0] == 401
        with (
            openai.OpenAI(base_url=fake.base_url, api_key="wrong", max_retries=0) as c,
            pytest.raises(openai.AuthenticationError),
        ):
            c.chat.completions.create(model=MODEL, messages=HI)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_both_event_loops_serve_streams_and_faults(use_uvloop):
    if use_uvloop:
        pytest.importorskip("uvloop")
    with FakeOpenRouter(use_uvloop=use_uvloop) as fake:
        assert sse_events(post(fake, chat(stream=True))[2])[1][-1] == "[DONE]"
        fake.script(MODEL, [Fault.reset(), Fault.rate_limit()])
        with pytest.raises(ConnectionResetError):
            post(fake, chat())
        assert post(fake, chat())[0] == 429
        fake.fail(MODEL, Fault.hang())
        with socket.create_connection((fake.host, fake.port), timeout=10) as s:
            body = json.dumps(chat()).encode()
            s.sendall(
                b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            assert fake.wait_until(lambda: fake.request_count == 4)
    # stopping with a hanging request open must not leak or hang


def test_unknown_path_is_404(fake):
    assert get(fake, "/nothing")[0] == 404


def test_pytest_fixture(fake_openrouter):
    assert post(fake_openrouter, chat())[0] == 200
    assert len(fake_openrouter.requests) == 1


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out
