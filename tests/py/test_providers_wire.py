"""Provider adapters through the real C++ network client, against FakeAnthropic and FakeOpenRouter.

The official ``anthropic`` SDK checks that FakeAnthropic speaks Anthropic's wire format; then
``orroute._core.ProviderClient`` (the component the engine plugs in per provider) is driven against
it: plain, streamed, tools, errors, and usage -> exact cost at Anthropic's own prices.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _provider_util import provider

from orroute import _core
from orroute.testing import FakeAnthropic, Fault
from orroute.testing.pytest_plugin import fake_anthropic  # noqa: F401 - the plugin's fixture

anthropic = pytest.importorskip("anthropic")

KEY = "sk-ant-api03-test-key-abcdefghijklmnop"
# the anthropic/openai/gemini entries of the shared litellm_model_prices.json, kept in the repo
LITELLM = Path(__file__).resolve().parents[1] / "data" / "litellm_model_prices_subset.json"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def chat(text: str = "hello there", **extra: Any) -> str:
    return json.dumps({"messages": [{"role": "user", "content": text}], **extra})


def read_stream(stream: Any) -> tuple[list[dict[str, Any]], int]:
    chunks = []
    while True:
        kind, chunk = stream.next(10.0)
        if kind == 0:
            chunks.append(chunk)
        else:
            return chunks, kind


@pytest.fixture
def fake():
    with FakeAnthropic(api_key=KEY) as f:
        yield f


@pytest.fixture(scope="module")
def anthropic_prices() -> Any:
    return _core.ProviderPrices.from_litellm_json(LITELLM.read_text(), "anthropic")


# --- the fake against the official SDK --------------------------------------------------------


def test_official_sdk_reads_fake_anthropic_plain_stream_and_tools(fake):
    with anthropic.Anthropic(base_url=fake.url, api_key=KEY, max_retries=0) as client:
        msg = client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert msg.content[0].type == "text" and msg.content[0].text
        assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
        with client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=64,
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
            tool_choice={"type": "any"},
        ) as s:
            final = s.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[0].type == "tool_use" and "city" in final.content[0].input
        fake.fail("claude-sonnet-4-5", Fault.status_error(529, "Overloaded"), times=1)
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(
                model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 529
        assert info.value.body["error"]["type"] == "overloaded_error"


# --- ProviderClient -> FakeAnthropic ----------------------------------------------------------


def test_anthropic_plain_call_translates_request_reply_and_prices_exactly(fake, anthropic_prices):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    r = p.complete(
        json.dumps(
            {
                "model": "anthropic/claude-sonnet-4.5",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hello there"},
                ],
                "max_tokens": 40,
                "stop": ["zzz"],
                "frequency_penalty": 0.5,
            }
        ),
        "claude-sonnet-4-5",
    )
    assert r["ok"], r["error"]
    sent = fake.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY and "authorization" not in sent.headers
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.json["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent.json["max_tokens"] == 40 and sent.json["stop_sequences"] == ["zzz"]
    assert "frequency_penalty" not in sent.json
    completion = r["completion"]
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"]
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cost = anthropic_prices.cost(
        "claude-sonnet-4-5", usage["prompt_tokens"], usage["completion_tokens"]
    )
    expected = Decimal(usage["prompt_tokens"]) * Decimal("0.000003") + Decimal(
        usage["completion_tokens"]
    ) * Decimal("0.000015")
    assert cost == expected


def test_anthropic_prompt_cache_usage_is_priced_at_cache_rates(fake, anthropic_prices):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    long_system = "You are a careful assistant. " * 200
    body = {
        "max_tokens": 20,
        "messages": [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "second question"},
        ],
    }
    first = p.complete(json.dumps(body), "claude-sonnet-4-5")["completion"]["usage"]
    second = p.complete(json.dumps(body), "claude-sonnet-4-5")["completion"]["usage"]
    writes = first["prompt_tokens_details"]["cache_write_tokens"]
    reads = second["prompt_tokens_details"]["cached_tokens"]
    assert writes > 1000 and first["prompt_tokens_details"]["cached_tokens"] == 0
    assert reads == writes and second["prompt_tokens_details"]["cache_write_tokens"] == 0
    assert first["prompt_tokens"] == second["prompt_tokens"]  # input + writes + reads
    fresh = second["prompt_tokens"] - reads
    cost = anthropic_prices.cost(
        "claude-sonnet-4-5",
        second["prompt_tokens"],
        second["completion_tokens"],
        cached_tokens=reads,
    )
    assert cost == (
        fresh * Decimal("0.000003")
        + reads * Decimal("0.0000003")
        + second["completion_tokens"] * Decimal("0.000015")
    )
    write_cost = anthropic_prices.cost(
        "claude-sonnet-4-5",
        first["prompt_tokens"],
        first["completion_tokens"],
        cache_write_tokens=writes,
    )
    assert write_cost == (
        (first["prompt_tokens"] - writes) * Decimal("0.000003")
        + writes * Decimal("0.00000375")
        + first["completion_tokens"] * Decimal("0.000015")
    )


def test_anthropic_stream_with_tool_call_becomes_chat_chunks(fake):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    stream = p.stream(
        chat("weather in Paris?", tools=[WEATHER], tool_choice="required", max_tokens=64),
        "claude-sonnet-4-5",
    )
    chunks, end = read_stream(stream)
    assert end == 2  # a complete reply
    assert fake.last_request.json["stream"] is True
    assert fake.last_request.json["tool_choice"] == {"type": "any"}
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    calls = [tc for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"].startswith("toolu_")
    args = json.loads("".join(tc["function"].get("arguments", "") for tc in calls))
    assert isinstance(args["city"], str)
    finish = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert finish == ["tool_calls"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_anthropic_status_errors_keep_type_and_retry_after(fake):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    fake.fail("claude-sonnet-4-5", Fault.rate_limit(retry_after=7), times=1)
    err = p.complete(chat(max_tokens=5), "claude-sonnet-4-5")["error"]
    assert err["status"] == 429 and err["code"] == "rate_limit_error"
    assert err["retry_after"] == 7.0
    fake.fail("claude-sonnet-4-5", Fault.status_error(529, "Overloaded"), times=1)
    err = p.complete(chat(max_tokens=5), "claude-sonnet-4-5")["error"]
    assert (err["status"], err["code"], err["message"]) == (529, "overloaded_error", "Overloaded")
    err = p.complete(chat(max_tokens=5), "claude-nonexistent")["error"]
    assert err["status"] == 404 and err["code"] == "not_found_error"


def test_anthropic_retries_a_529_then_succeeds(fake):
    p = provider("anthropic", fake.base_url, keys=[KEY], max_retries=2)
    fake.script("claude-sonnet-4-5", [Fault.status_error(529, "Overloaded"), None])
    r = p.complete(chat(max_tokens=5), "claude-sonnet-4-5")
    assert r["ok"] and r["attempts"] == 2


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.stream_error(after_tokens=2, code=529, message="Overloaded"), 529),
        (Fault.reset(after_tokens=2), None),
    ],
    ids=["error-event", "connection-reset"],
)
def test_anthropic_stream_failures_surface_as_errors_after_partial_text(fake, fault, status):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    fake.fail("claude-sonnet-4-5", fault, times=1)
    stream = p.stream(chat(max_tokens=64), "claude-sonnet-4-5")
    chunks, end = read_stream(stream)
    assert end == 3
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c.get("choices", []))
    assert text  # the partial text arrived before the failure
    err = stream.error()
    if status is not None:
        assert err["kind"] == "stream" and err["status"] == status
        assert chunks[-1]["error"]["code"] == status
    else:
        assert err["kind"] in ("connection", "stream")


def test_anthropic_keys_never_appear_in_errors_even_when_echoed(fake):
    wrong = "sk-ant-api03-wrong-key-zyxwvutsrqponm"
    p = provider("anthropic", fake.base_url, keys=[wrong])
    err = p.complete(chat(max_tokens=5), "claude-sonnet-4-5")["error"]
    assert err["status"] == 401
    fake.clear_faults()
    good = provider("anthropic", fake.base_url, keys=[KEY])
    fake.fail("claude-sonnet-4-5", Fault.status_error(400, f"bad key {KEY} rejected"), times=1)
    err = good.complete(chat(max_tokens=5), "claude-sonnet-4-5")["error"]
    assert KEY not in json.dumps(err) and "rejected" in err["message"]
    fake.fail(
        "claude-sonnet-4-5", Fault.stream_error(after_tokens=1, message=f"echo {KEY}"), times=1
    )
    stream = good.stream(chat(max_tokens=20), "claude-sonnet-4-5")
    chunks, _ = read_stream(stream)
    assert KEY not in json.dumps(chunks) and KEY not in json.dumps(stream.error())


def test_anthropic_refuses_untranslatable_requests_before_sending(fake):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    before = fake.request_count
    bad = json.dumps(
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    )
    with pytest.raises(_core_error()):
        p.complete(bad, "claude-sonnet-4-5")
    assert fake.request_count == before


def _core_error() -> type[Exception]:
    import orroute

    return orroute.InvalidArgumentError


def test_plugin_fixture_serves_keyless_local_calls(fake_anthropic):  # noqa: F811
    p = provider("anthropic", fake_anthropic.base_url)
    r = p.complete(chat(max_tokens=5), "claude-haiku-4-5")
    assert r["ok"] and "x-api-key" not in fake_anthropic.last_request.headers
    assert r["completion"]["choices"][0]["finish_reason"] in ("stop", "length")


# --- ProviderClient -> FakeOpenRouter (OpenAI-compatible kinds) -------------------------------


def test_openrouter_kind_passes_the_chat_body_through(fake_openrouter):
    p = provider("openrouter", fake_openrouter.base_url, keys=["sk-or-v1-test"])
    r = p.complete(chat(max_tokens=10, models=["openai/gpt-4o-mini"]), "openai/gpt-4o")
    assert r["ok"], r["error"]
    sent = fake_openrouter.last_request
    assert sent.json["model"] == "openai/gpt-4o" and sent.json["models"] == ["openai/gpt-4o-mini"]
    assert r["completion"]["usage"]["cost"] > 0
    chunks, end = read_stream(p.stream(chat(max_tokens=10), "openai/gpt-4o"))
    assert end == 2 and chunks[-1]["usage"]["total_tokens"] > 0


def test_openai_compatible_kinds_rewrite_model_ask_for_stream_usage_and_drop_openrouter_fields(
    fake_openrouter,
):
    p = provider("openai", fake_openrouter.base_url, keys=["sk-proj-test"])
    chunks, end = read_stream(
        p.stream(chat(max_tokens=10, models=["x/y"], provider={"order": ["a"]}), "openai/gpt-4o")
    )
    assert end == 2 and chunks[-1]["usage"]["total_tokens"] > 0
    sent = fake_openrouter.last_request.json
    assert sent["stream_options"] == {"include_usage": True}
    assert "models" not in sent and "provider" not in sent
    assert fake_openrouter.last_request.headers["authorization"] == "Bearer sk-proj-test"


def test_azure_kind_uses_deployment_path_api_version_and_api_key_header(fake_openrouter):
    p = provider(
        "azure", fake_openrouter.url, keys=["azure-key-0123456789"], api_version="2024-10-21"
    )
    p.complete(chat(max_tokens=5), "gpt-4o-prod")
    sent = fake_openrouter.last_request
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "azure-key-0123456789"
    assert "authorization" not in sent.headers


# --- failover across providers, composed from the components ----------------------------------


def test_outage_at_openrouter_fails_over_to_anthropic_with_per_provider_cost(
    fake_openrouter, fake, anthropic_prices
):
    """The components the engine will wire: a balancer over two deployments of one model, each a
    ProviderClient with its own model name; OpenRouter goes down mid-run, no task fails."""
    clients = [
        provider("openrouter", fake_openrouter.base_url, keys=["sk-or-v1-test"]),
        provider("anthropic", fake.base_url, keys=[KEY]),
    ]
    names = ["anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"]
    balancer = _core.Balancer(
        [("openrouter", 1), ("anthropic", 0)], strategy="weighted", failures_to_down=1
    )
    served: list[str] = []
    spent: dict[str, Decimal] = {"openrouter": Decimal(0), "anthropic": Decimal(0)}
    for task in range(12):
        if task == 4:
            fake_openrouter.fail("*", Fault.server_error())
        tried: list[int] = []
        while True:
            i = balancer.pick_excluding(tried)
            assert i is not None, f"task {task} failed everywhere"
            t0 = time.monotonic()
            r = clients[i].complete(chat(f"task {task}", max_tokens=16), names[i])
            balancer.finish(i, r["ok"], time.monotonic() - t0)
            if r["ok"]:
                break
            tried.append(i)
        served.append(balancer.name(i))
        usage = r["completion"]["usage"]
        if i == 0:
            spent["openrouter"] += Decimal(str(usage["cost"]))
        else:
            spent["anthropic"] += anthropic_prices.cost(
                names[1], usage["prompt_tokens"], usage["completion_tokens"]
            )
    assert served == ["openrouter"] * 4 + ["anthropic"] * 8
    assert not balancer.is_up(0)
    assert spent["openrouter"] > 0 and spent["anthropic"] > 0


@pytest.mark.parametrize(
    ("strategy", "check"),
    [
        ("weighted", lambda slow, fast: (slow, fast) == (30, 10)),  # weights 3:1, exact
        ("round_robin", lambda slow, fast: (slow, fast) == (20, 20)),
        ("lowest_latency", lambda slow, fast: fast >= 34),  # the 40 ms deployment is avoided
    ],
    ids=["weighted", "round-robin", "lowest-latency"],
)
def test_balancer_split_over_real_calls(strategy, check):
    """Two deployments of one model (two fake Anthropic endpoints, one 40 ms slower); 40 calls
    through the C++ client; the split is counted by the servers themselves."""
    with FakeAnthropic(latency=0.04) as slow, FakeAnthropic() as fast:
        clients = [provider("anthropic", slow.base_url), provider("anthropic", fast.base_url)]
        balancer = _core.Balancer([("slow", 3), ("fast", 1)], strategy=strategy)
        for task in range(40):
            i = balancer.pick()
            t0 = time.monotonic()
            r = clients[i].complete(chat(f"task {task}", max_tokens=8), "claude-sonnet-4-5")
            balancer.finish(i, r["ok"], time.monotonic() - t0)
            assert r["ok"]
        counts = (slow.request_count, fast.request_count)
        assert check(*counts), counts


def test_anthropic_malformed_stream_event_is_a_502_stream_error(fake):
    p = provider("anthropic", fake.base_url, keys=[KEY])
    fake.fail("claude-sonnet-4-5", Fault.malformed_json(after_tokens=2), times=1)
    stream = p.stream(chat(max_tokens=64), "claude-sonnet-4-5")
    _chunks, end = read_stream(stream)
    err = stream.error()
    assert end == 3 and err["kind"] == "stream" and err["status"] == 502
    assert "malformed Anthropic stream" in err["message"]
    assert fake.wait_until(lambda: fake.open_streams == 0)  # the transfer was cancelled
