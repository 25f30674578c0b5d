"""What the router's engine brings to the gateway (``orroute serve``): retries that honour
Retry-After, a 429 that holds its model for every later request, circuit breakers that skip a
failing model, health that shows it, and streams that pause the upstream instead of buffering for
a slow client. Driven with the openai package and plain sockets against FakeOpenRouter."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest
from _gateway_util import call, gateway_fixtures, post_completion

from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-router-0123456789abcdef0123456789"
HI = [{"role": "user", "content": "Say hi"}]
# different authors: a provider breaker for one never skips another
LIMITED, SPARE = "anthropic/claude-3-haiku", "mistralai/mistral-nemo"
FLAKY, STEADY = "meta-llama/llama-3.1-8b-instruct", "openai/gpt-4o-mini"
RETRIED = "google/gemini-2.5-flash"
STREAMED = "qwen/qwen-2.5-72b-instruct"


fake, gateway, key, client = gateway_fixtures(
    UPSTREAM_KEY,
    routes={"limited": [LIMITED, SPARE], "flaky": [FLAKY, STEADY]},
    max_retries=1,
    breaker={"failures": 2, "cooldown": 600},
    stream_queue=4,
)


def models_sent(fake: FakeOpenRouter, since: int) -> list[str]:
    return [r.json["model"] for r in fake.requests[since:] if r.path.endswith("/completions")]


def health(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    status, _, body = call(gateway, "GET", "/health")
    return status, json.loads(body)


def test_a_429_is_retried_on_the_same_model_after_its_retry_after(
        client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.fail(RETRIED, Fault.rate_limit(retry_after=0.3), times=1)
    before = len(fake.requests)
    t0 = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model=RETRIED, messages=HI)
    waited = time.monotonic() - t0
    assert raw.parse().model == RETRIED
    assert models_sent(fake, before) == [RETRIED, RETRIED]
    assert raw.headers["x-orroute-attempts"] == "2"
    assert waited >= 0.3  # the router waited what the upstream asked before retrying


def test_a_long_retry_after_falls_back_and_holds_the_model_for_later_requests(
        gateway: Gateway, client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.fail(LIMITED, Fault.rate_limit(retry_after=120))  # longer than the router will wait
    try:
        before = len(fake.requests)
        raw = client.chat.completions.with_raw_response.create(model="limited", messages=HI)
        assert raw.parse().model == SPARE
        assert models_sent(fake, before) == [LIMITED, SPARE]
        # the 429 holds LIMITED for everyone: the next request does not even try it
        before = len(fake.requests)
        raw = client.chat.completions.with_raw_response.create(model="limited", messages=HI)
        assert raw.parse().model == SPARE and models_sent(fake, before) == [SPARE]
        assert raw.headers["x-orroute-attempts"] == "1"
        _, body = health(gateway)
        assert body["router"]["models"][LIMITED]["state"] == "rate_limited"
    finally:
        fake.clear_faults()


# each held for the hour by its 429: a model of its own per case, used by no other test here
@pytest.mark.parametrize(("model", "hint"), [
    ("x-ai/grok-4.6", {"Retry-After": "1e9"}),
    ("upstage/solar-pro4", {"X-RateLimit-Reset": "1e300"}),
    ("sakana/sakana-namazu", {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}),
], ids=["31-years", "300-digits", "a-date-in-2099"])
def test_an_upstreams_retry_after_is_relayed_no_longer_than_the_model_is_held(
        gateway: Gateway, key: str, fake: FakeOpenRouter, model: str,
        hint: dict[str, str]) -> None:
    """A 429's wait is relayed as at most the hour the router holds the model for: an upstream
    asking for 1e300 seconds had the gateway send ``Retry-After: 1000000000000000017652...``
    (301 digits), and 1e9 told every client to come back in 31 years."""
    fake.fail(model, Fault.status_error(429, "slow down", headers=hint))
    try:
        status, headers, _ = call(gateway, "POST", "/v1/chat/completions",
                                  {"model": model, "messages": HI}, key=key)
    finally:
        fake.clear_faults()
    assert status == 429
    assert 0 <= int(headers["retry-after"]) <= 3600


def test_an_open_circuit_skips_the_model_and_health_reports_it(
        gateway: Gateway, client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    fake.fail(FLAKY, Fault.server_error(503))
    try:
        before = len(fake.requests)
        assert client.chat.completions.create(model="flaky", messages=HI).model == STEADY
        # one try and one retry (max_retries=1), then the next candidate
        assert models_sent(fake, before) == [FLAKY, FLAKY, STEADY]
        _, body = health(gateway)
        assert body["router"]["models"][FLAKY]["state"] == "circuit_open"
        assert body["router"]["models"][FLAKY]["breaker"] == "open"
        assert body["status"] == "degraded" and body["router"]["overall"] == "degraded"
        assert {"kind": "model", "name": FLAKY, "state": "open"}.items() <= next(
            b for b in body["router"]["breakers"] if b["key"] == f"model:{FLAKY}").items()
        assert gateway.health()["models"][FLAKY]["state"] == "circuit_open"
        # breaker open (2 failures in a row): the model is skipped without a request
        fake.clear_faults()
        before = len(fake.requests)
        raw = client.chat.completions.with_raw_response.create(model="flaky", messages=HI)
        assert raw.parse().model == STEADY and models_sent(fake, before) == [STEADY]
        # asked for by name, the open circuit answers at once: 503, nothing sent upstream
        with pytest.raises(openai.InternalServerError) as e:
            client.chat.completions.create(model=FLAKY, messages=HI)
        assert e.value.status_code == 503 and models_sent(fake, before) == [STEADY]
    finally:
        fake.clear_faults()


def test_health_endpoint_has_the_routers_report(gateway: Gateway) -> None:
    status, body = health(gateway)
    assert status == 200 and body["router"]["overall"] in ("ok", "degraded")
    # an open breaker left by an earlier test makes the gateway degraded, never down
    assert body["status"] == ("healthy" if body["router"]["overall"] == "ok" else "degraded")
    assert isinstance(body["router"]["models"], dict)
    assert isinstance(body["router"]["breakers"], list)


def test_a_slow_stream_reader_pauses_the_upstream_and_loses_nothing(
        gateway: Gateway, key: str, client: openai.OpenAI, fake: FakeOpenRouter) -> None:
    """The gateway's queue holds 4 chunks; a client that does not read makes the gateway stop
    reading the upstream (instead of buffering the answer), and everything arrives in order once
    it reads."""
    plain = client.chat.completions.create(model=STREAMED, messages=HI, max_tokens=6000, seed=3)
    body = {"model": STREAMED, "messages": HI, "stream": True, "max_tokens": 6000, "seed": 3}
    # a small receive window: the gateway stalls
    s = post_completion(gateway, key, body, rcvbuf=4096)
    try:
        got = s.recv(256)
        assert b"200 OK" in got
        assert fake.wait_until(lambda: gateway.stream_pauses() > 0, timeout=20)
        while chunk := s.recv(65536):
            got += chunk
    finally:
        s.close()
    text = ""
    for line in got.split(b"\n"):
        if line.startswith(b"data: {"):
            event = json.loads(line[6:])
            for choice in event.get("choices") or []:
                text += choice["delta"].get("content") or ""
    assert text == plain.choices[0].message.content
    assert got.rstrip().endswith(b"data: [DONE]\n\n0") or b"data: [DONE]" in got


def test_an_error_after_content_is_relayed_in_band(client: openai.OpenAI,
                                                   fake: FakeOpenRouter) -> None:
    fake.fail(STREAMED, Fault.stream_error(after_tokens=3, message="Provider disconnected"))
    try:
        before = len(fake.requests)
        parts: list[str] = []
        with pytest.raises(openai.APIError, match="Provider disconnected"):
            stream = client.chat.completions.create(model=STREAMED, messages=HI, stream=True)
            for chunk in stream:
                parts.extend(c.delta.content or "" for c in chunk.choices)
        assert "".join(parts)  # the content before the error reached the client
        assert models_sent(fake, before) == [STREAMED]  # no retry once content was relayed
    finally:
        fake.clear_faults()
