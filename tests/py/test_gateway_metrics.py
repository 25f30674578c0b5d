"""``GET /metrics``: the Prometheus text format, read back with prometheus_client's own parser."""

from __future__ import annotations

import socket

import openai
from _gateway_util import call, gateway_fixtures
from _http_util import read_responses
from prometheus_client.parser import text_string_to_metric_families

from orroute.gateway import Gateway

UPSTREAM_KEY = "sk-or-v1-upstream-secret-metrics-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Say hi"}]

fake, gateway, key, client = gateway_fixtures(UPSTREAM_KEY)


def scrape(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, headers, body = call(gateway, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_requests_tokens_spend_and_errors(gateway: Gateway,
                                                         client: openai.OpenAI) -> None:
    before = scrape(gateway)
    ok_key = ("orroute_gateway_requests_total", (("route", "chat"), ("status", "200")))
    r = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=16)
    assert r.usage is not None
    status, _, _ = call(gateway, "POST", "/v1/chat/completions", {"model": MODEL}, None)
    assert status == 401
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n")
        assert read_responses(s)[0][0] == 400
    after = scrape(gateway)
    assert after[ok_key] == before.get(ok_key, 0) + 1
    assert after[("orroute_gateway_errors_total", (("kind", "unauthorized"),))] >= 1
    assert after[("orroute_http_rejected_total", (("status", "400"),))] >= 1
    hist = ("orroute_gateway_request_duration_seconds_count", (("route", "chat"),))
    assert after[hist] >= 2
    tokens = after[("orroute_tokens_total", (("direction", "output"), ("model", MODEL)))]
    assert tokens >= r.usage.completion_tokens
    assert after[("orroute_spend_usd_total", (("model", MODEL),))] > 0
    assert after[("orroute_upstream_calls_total", (("model", MODEL), ("outcome", "success")))] >= 1
    assert after[("orroute_breaker_state", (("model", MODEL), ("state", "closed")))] == 1
    assert after[("orroute_reservations_held", ())] == 0
    assert after[("orroute_ledger_spend_usd_total", ())] > 0


def test_anthropic_messages_have_their_own_route(gateway: Gateway, key: str) -> None:
    before = scrape(gateway)
    ok_key = ("orroute_gateway_requests_total", (("route", "messages"), ("status", "200")))
    status, _, _ = call(gateway, "POST", "/v1/messages",
                        {"model": MODEL, "max_tokens": 16, "messages": HI}, key)
    assert status == 200
    assert scrape(gateway)[ok_key] == before.get(ok_key, 0) + 1


def test_metrics_hold_no_secret(gateway: Gateway, client: openai.OpenAI, key: str) -> None:
    client.chat.completions.create(model=MODEL, messages=HI, max_tokens=8)
    _, _, body = call(gateway, "GET", "/metrics")
    assert UPSTREAM_KEY.encode() not in body and key.encode() not in body
