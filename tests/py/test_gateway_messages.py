"""``POST /v1/messages``: the official ``anthropic`` SDK pointed at ``orroute serve`` (plain and
streamed replies, tool use, errors), routed through the same engine as chat completions (the
upstream here is FakeOpenRouter speaking chat completions), with the call in the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from _gateway_util import call, gateway_fixtures

from orroute import _core
from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-secret-messages-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
WEATHER: Any = {"name": "get_weather", "description": "Weather of a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}

fake, gateway, key, _client = gateway_fixtures(UPSTREAM_KEY)


@pytest.fixture(name="claude")
def claude_fixture(gateway: Gateway, key: str) -> Iterator[anthropic.Anthropic]:
    root = gateway.base_url.removesuffix("/v1")
    with anthropic.Anthropic(base_url=root, api_key=key, max_retries=0) as c:
        yield c


def test_create_is_routed_priced_and_in_the_ledger(claude: anthropic.Anthropic,
                                                   gateway: Gateway, fake: FakeOpenRouter) -> None:
    before = gateway.tracker.total_cost()
    msg = claude.messages.create(model=MODEL, max_tokens=64, system="Be brief.",
                                 messages=[{"role": "user", "content": "Say hi"}])
    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason == "end_turn"
    sent = fake.last_request
    assert sent is not None
    assert sent.json["messages"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Say hi"}]
    assert sent.json["max_tokens"] == 64
    row = gateway.tracker.usage_history(limit=1)[0]
    assert row.model == MODEL
    # the usage the SDK sees is the upstream's, Anthropic-shaped; the ledger has its exact cost
    assert msg.usage.input_tokens == row.prompt_tokens
    assert msg.usage.output_tokens == row.completion_tokens
    assert gateway.tracker.total_cost() - before == Decimal(str(row.cost)) > 0


def test_stream_matches_the_plain_reply(claude: anthropic.Anthropic) -> None:
    plain = claude.messages.create(model=MODEL, max_tokens=64,
                                   messages=[{"role": "user", "content": "Say hi"}])
    with claude.messages.stream(model=MODEL, max_tokens=64,
                                messages=[{"role": "user", "content": "Say hi"}]) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds
    assert final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"


def test_tool_use_round_trip(claude: anthropic.Anthropic, fake: FakeOpenRouter) -> None:
    fake.set_reply(MODEL, {"tool_calls": [{"function": {"name": "get_weather",
                                                        "arguments": {"city": "Paris"}}}]})
    try:
        msg = claude.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER],
                                     tool_choice={"type": "any"},
                                     messages=[{"role": "user", "content": "Weather in Paris?"}])
        uses = [b for b in msg.content if b.type == "tool_use"]
        assert msg.stop_reason == "tool_use"
        assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"city": "Paris"}
        sent = fake.last_request
        assert sent is not None
        assert sent.json["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
        assert sent.json["tool_choice"] == "required"
        with claude.messages.stream(model=MODEL, max_tokens=64, tools=[WEATHER],
                                    messages=[{"role": "user", "content": "Weather?"}]) as stream:
            final = stream.get_final_message()
        streamed = [b for b in final.content if b.type == "tool_use"]
        assert streamed[0].input == {"city": "Paris"} and final.stop_reason == "tool_use"
        # the tool's result goes back as a chat tool message right after the assistant's call
        fake.clear_requests()
        claude.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER],
                               messages=[
                                   {"role": "user", "content": "Weather in Paris?"},
                                   {"role": "assistant", "content": [
                                       {"type": "tool_use", "id": uses[0].id,
                                        "name": "get_weather", "input": {"city": "Paris"}}]},
                                   {"role": "user", "content": [
                                       {"type": "tool_result", "tool_use_id": uses[0].id,
                                        "content": "sunny"},
                                       {"type": "text", "text": "Thanks"}]}])
    finally:
        fake.set_reply(MODEL, None)
    msgs = fake.last_request.json["messages"]  # type: ignore[union-attr]
    assert msgs[1]["tool_calls"][0] == {"id": uses[0].id, "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris"}'}}
    assert msgs[2] == {"role": "tool", "tool_call_id": uses[0].id, "content": "sunny"}
    assert msgs[3] == {"role": "user", "content": "Thanks"}


def test_errors_come_in_anthropics_shape(claude: anthropic.Anthropic, gateway: Gateway,
                                         fake: FakeOpenRouter) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model=MODEL, max_tokens=64, messages=[])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages" in bad.value.body["error"]["message"]  # type: ignore[index]
    root = gateway.base_url.removesuffix("/v1")
    with anthropic.Anthropic(base_url=root, api_key="not-a-key", max_retries=0) as stranger, \
            pytest.raises(anthropic.AuthenticationError):
        stranger.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    fake.fail(MODEL, Fault.status_error(400, "context too long"))
    try:
        with pytest.raises(anthropic.BadRequestError) as up:
            claude.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    finally:
        fake.clear_faults()
    assert up.value.body["type"] == "error"  # type: ignore[index]
    assert UPSTREAM_KEY not in json.dumps(up.value.body)


def test_budget_refusal_is_a_billing_error(claude: anthropic.Anthropic, gateway: Gateway,
                                           request: pytest.FixtureRequest) -> None:
    gateway.tracker.set_budget("0.0000001", project=f"p-{request.node.name}")
    with pytest.raises(anthropic.APIStatusError) as e:
        claude.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 402
    assert e.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


def test_a_stream_that_breaks_ends_with_an_error_event(claude: anthropic.Anthropic,
                                                       fake: FakeOpenRouter) -> None:
    fake.fail(MODEL, Fault.stream_error(after_tokens=2, message="Provider disconnected"))
    try:
        with pytest.raises(anthropic.APIStatusError) as e, \
                claude.messages.stream(model=MODEL, max_tokens=64,
                                       messages=[{"role": "user", "content": "Say hi"}]) as stream:
            for _ in stream:
                pass
    finally:
        fake.clear_faults()
    assert "Provider disconnected" in str(e.value)


@pytest.mark.parametrize(("body", "field"), [
    ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]},
     "messages[0].role"),
    ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {}}]}]}, "messages[0].content[0]"),
    ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
], ids=["no_max_tokens", "role", "document", "server_tool"])
def test_requests_it_cannot_relay_are_400_naming_the_field(gateway: Gateway, key: str,
                                                           body: dict, field: str) -> None:  # type: ignore[type-arg]
    status, _, raw = call(gateway, "POST", "/v1/messages", body, key)
    err = json.loads(raw)
    assert status == 400 and err["type"] == "error"
    assert err["error"]["type"] == "invalid_request_error"
    assert err["error"]["message"].startswith(field)


def test_translation_keeps_images_cache_control_and_sampling() -> None:
    chat = json.loads(_core.chat_request_from_anthropic(json.dumps({
        "model": "m", "max_tokens": 5, "temperature": 0.2, "top_k": 3, "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
            {"type": "text", "text": "what?"}]}]})))
    assert chat["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}]}
    assert chat["messages"][1]["content"][0] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,AAA"}}
    assert chat["stop"] == ["END"] and chat["user"] == "u1" and chat["top_k"] == 3
    assert chat["reasoning"] == {"max_tokens": 1024}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["parallel_tool_calls"] is False


def test_usage_maps_back_without_cache_tokens_in_input() -> None:
    msg = json.loads(_core.anthropic_message_from_chat(json.dumps({
        "id": "gen-1", "model": "m", "choices": [{"message": {"content": "x"},
                                                   "finish_reason": "length"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                  "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30}}})))
    assert msg["usage"] == {"input_tokens": 10, "output_tokens": 7,
                            "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60}
    assert msg["stop_reason"] == "max_tokens" and msg["id"] == "msg_gen-1"
    with pytest.raises(Exception, match="arguments are not a JSON object"):
        _core.anthropic_message_from_chat(json.dumps({
            "choices": [{"message": {"tool_calls": [{"id": "c", "function": {
                "name": "f", "arguments": "[1"}}]}}], "usage": {"prompt_tokens": 1,
                                                                  "completion_tokens": 1}}))


def test_routed_to_the_anthropic_provider_when_openrouter_is_down(tmp_path: Path) -> None:
    """The gateway with two providers: an Anthropic-SDK client's calls (plain and streamed) go
    to OpenRouter, then, once it is down, to Anthropic's Messages API, each priced at the prices
    of the provider that served it and in the ledger with that provider."""
    from orroute.gateway import GatewaySettings
    from orroute.provider_config import parse_providers
    from orroute.testing import FakeAnthropic

    ant_key = "sk-ant-api03-gateway-0123456789abcdef"
    model = "anthropic/claude-sonnet-4.5"
    with FakeOpenRouter(api_key=UPSTREAM_KEY) as orf, FakeAnthropic(api_key=ant_key) as ant:
        providers = parse_providers(
            {"providers": {"openrouter": {"priority": 0}, "anthropic": {"priority": 1}}},
            {"OPENROUTER_API_KEY": UPSTREAM_KEY, "OPENROUTER_BASE_URL": orf.base_url,
             "ANTHROPIC_API_KEY": ant_key, "ANTHROPIC_BASE_URL": ant.base_url})
        settings = GatewaySettings(base_url=orf.base_url, api_key=UPSTREAM_KEY, port=0,
                                   ledger=str(tmp_path / "ledger.sqlite3"), providers=providers)
        with Gateway(settings) as gw:
            key = gw.keys.create("agents")[0]
            gw.tracker.set_budget(1, project="agents")
            root = gw.base_url.removesuffix("/v1")
            with anthropic.Anthropic(base_url=root, api_key=key, max_retries=0) as c:
                before = c.messages.create(model=model, max_tokens=32,
                                           messages=[{"role": "user", "content": "hi"}])
                orf.fail("*", Fault.server_error(503))
                after = c.messages.create(model=model, max_tokens=32,
                                          messages=[{"role": "user", "content": "hi"}])
                with c.messages.stream(model=model, max_tokens=32,
                                       messages=[{"role": "user", "content": "hi"}]) as s:
                    streamed = s.get_final_message()
            assert before.model == model and after.model == "claude-sonnet-4-5"
            assert streamed.content[0].text == after.content[0].text  # type: ignore[union-attr]
            assert len(ant.requests) == 2 and ant.requests[0].headers["x-api-key"] == ant_key
            rows = sorted(gw.tracker.usage_history(limit=10), key=lambda r: r.id)
            answered = [r.tags.get("provider") for r in rows if r.outcome == "ok"]
            assert answered == ["openrouter", "anthropic", "anthropic"]
            # OpenRouter's failures are recorded too, at no cost
            assert {(r.tags.get("provider"), r.cost) for r in rows if r.outcome == "error"} == {
                ("openrouter", 0)}
            assert all(r.project == "agents" and (r.cost > 0) == (r.outcome == "ok") for r in rows)
            assert gw.tracker.budget_status(project="agents").spent == sum(r.cost for r in rows)


def test_an_answer_cut_by_an_upstream_error_is_not_a_complete_message(
        gateway: Gateway, key: str, fake: FakeOpenRouter) -> None:
    """OpenRouter reports a failure mid-generation as a 200 whose choice has ``finish_reason:
    "error"``; the Messages route must not hand the client the truncated text as a finished turn
    (``end_turn``), and the upstream's words reach the client without the upstream key."""
    fake.fail(MODEL, Fault.stream_error(after_tokens=2, message=f"boom {UPSTREAM_KEY}"))
    try:
        status, _, raw = call(gateway, "POST", "/v1/messages", {
            "model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}, key)
    finally:
        fake.clear_faults(MODEL)
    err = json.loads(raw)
    assert status == 502 and err["type"] == "error", raw
    assert err["error"]["type"] == "api_error"
    assert "boom" in err["error"]["message"]
    assert UPSTREAM_KEY.encode() not in raw and key.encode() not in raw


def test_a_body_that_is_not_utf8_is_a_400(gateway: Gateway, key: str,
                                          fake: FakeOpenRouter) -> None:
    """Invalid UTF-8 is refused as the chat route refuses it, not relayed upstream with the bad
    bytes silently replaced by U+FFFD."""
    sent = fake.request_count
    raw = b'{"model":"%s","max_tokens":8,"messages":[{"role":"user","content":"\xff\xc3"}]}' % (
        MODEL.encode())
    status, _, body = call(gateway, "POST", "/v1/messages", key=key, raw=raw)
    err = json.loads(body)
    assert status == 400 and err["error"]["type"] == "invalid_request_error", body
    assert "UTF-8" in err["error"]["message"]
    assert fake.request_count == sent


# An upstream's reply made valid UTF-8 (its bytes repaired) may still name a lone low surrogate by
# its escape: rapidjson 1.1.0 parses "\udc00" to ED B0 80. Written again as Anthropic's message,
# those bytes went out raw: pybind11 raised UnicodeDecodeError on the core's text, past the
# gateway's error handling (the client got no answer).
LONE_LOW = (b'{"id":"gen-1","model":"' + MODEL.encode() + b'","object":"chat.completion","created":1,'
            b'"choices":[{"index":0,"message":{"role":"assistant","content":"lone \\udc00 low"},'
            b'"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}')


def test_a_lone_surrogate_escape_in_the_reply_is_written_as_utf8() -> None:
    text = _core.anthropic_message_from_chat(LONE_LOW.decode())
    assert json.loads(text)["content"][0]["text"] == "lone \ufffd\ufffd\ufffd low"


def test_a_lone_surrogate_escape_reaches_the_client_as_text(claude: anthropic.Anthropic,
                                                           fake: FakeOpenRouter) -> None:
    fake.fail(MODEL, Fault.raw(LONE_LOW))
    try:
        msg = claude.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    finally:
        fake.clear_faults()
    # From an upstream the escape itself is repaired before the parse (repair_json_surrogates):
    # one U+FFFD for the one code unit, as on /v1/chat/completions (three before Session 23: the
    # writer's repair of the three bytes rapidjson made of it, test above).
    assert msg.content[0].text == "lone \ufffd low"  # type: ignore[union-attr]
