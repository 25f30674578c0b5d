"""A hostile review of the gateway's streaming routes (rev20): a client that hangs up at any
point of a stream, an upstream whose stream or reply has any shape, an echoed key, two clients
racing one project's budget. Each held when written; they guard the routes that take chunks
apart (the Responses API's events, Anthropic's, ``n`` streams) as well as the plain relay."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from _gateway_util import call, gateway_fixtures

from orroute.gateway import Gateway
from orroute.testing import FakeOpenRouter, Fault

UPSTREAM_KEY = "sk-or-v1-upstream-secret-hostile-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Say hi"}]
SSE = "text/event-stream"

# no breaker opens on the failures these tests provoke: each case must reach the upstream
fake, gateway, key, client = gateway_fixtures(
    UPSTREAM_KEY, max_retries=0, breaker={"failures": 100_000, "min_calls": 100_000})

# the body of each streaming route (the path and what the request holds besides its model)
ROUTES = {
    "chat": ("/v1/chat/completions", {"messages": HI}),
    "chat-n3": ("/v1/chat/completions", {"messages": HI, "n": 3}),
    "responses": ("/v1/responses", {"input": "Say hi"}),
    "messages": ("/v1/messages", {"messages": HI, "max_tokens": 64}),
}


def request_bytes(key: str, route: str, *, stream: bool = True) -> bytes:
    path, fields = ROUTES[route]
    body = json.dumps({"model": MODEL, "stream": stream, **fields}).encode()
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (path.encode(), key.encode(), len(body), body))


def exchange(gateway: Gateway, data: bytes) -> bytes:
    """Sends ``data`` and reads until the gateway closes."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


def on_loop(gateway: Gateway, fn: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return fn()

    assert gateway._loop is not None
    return asyncio.run_coroutine_threadsafe(run(), gateway._loop).result(10)


def held(gateway: Gateway, fake: FakeOpenRouter) -> tuple[int, int, int, int, int]:
    """What a finished request must leave nothing of: handlers in flight, engine streams being
    relayed, open client connections, reservations, the upstream's open streams."""
    app = gateway.app
    assert app is not None
    return on_loop(gateway, lambda: (app.in_flight, len(app._streams), len(app.conns),
                                     app.engine.reserved()[0], fake.open_streams))


def wait_released(gateway: Gateway, fake: FakeOpenRouter) -> tuple[int, ...]:
    deadline = time.monotonic() + 10
    while (state := held(gateway, fake)) != (0, 0, 0, 0, 0) and time.monotonic() < deadline:
        time.sleep(0.02)
    return state


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("how", ["fin", "rst"])
def test_a_client_hanging_up_at_any_point_of_a_stream_leaves_nothing_held(
        gateway: Gateway, key: str, fake: FakeOpenRouter, route: str, how: str) -> None:
    """Cut after 0, 1, 100, 600 and 3000 bytes of the answer (before the head, inside it, inside
    a chunk), by a FIN or a reset, while the upstream still streams: the handler, its engine
    runs (all n of them), the reservations and the upstream transfers all end."""
    fake.fail("*", Fault.slow_drip(interval=0.005, chunk_size=30))
    try:
        for cut in (0, 1, 100, 600, 3000):
            s = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
            s.sendall(request_bytes(key, route))
            got = b""
            while len(got) < cut and (chunk := s.recv(cut - len(got))):
                got += chunk
            if how == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            assert wait_released(gateway, fake) == (0, 0, 0, 0, 0), (route, how, cut)
    finally:
        fake.clear_faults()


def _chunk(content: str | None = None, **extra: Any) -> bytes:
    delta = {} if content is None else {"content": content}
    return json.dumps({"id": "gen-1", "object": "chat.completion.chunk", "model": MODEL,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                       **extra}).encode()


_USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cost": 0.00001}
_END = (b"data: " + json.dumps({"id": "gen-1", "model": MODEL, "choices": [
    {"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
        + b"\n\ndata: " + json.dumps({"id": "gen-1", "model": MODEL, "choices": [],
                                       "usage": _USAGE}).encode() + b"\n\ndata: [DONE]\n\n")

# upstream streams of any shape; each route must answer (no 500, no abort) and end its stream
STREAMS = {
    "data-without-space": b"data:" + _chunk("hi") + b"\n\n" + _END,
    "done-twice": b"data: " + _chunk("hi") + b"\n\n" + _END + b"data: [DONE]\n\n",
    "done-never": b"data: " + _chunk("hi") + b"\n\n" + _END.replace(b"data: [DONE]\n\n", b""),
    "crlf-events": (b"data: " + _chunk("hi") + b"\n\n" + _END).replace(b"\n", b"\r\n"),
    "cr-events": (b"data: " + _chunk("hi") + b"\n\n" + _END).replace(b"\n", b"\r"),
    "choices-null": b"data: " + _chunk(choices=None) + b"\n\n" + _END,
    "choices-a-string": b"data: " + _chunk(choices="x") + b"\n\n" + _END,
    "content-a-number": b'data: {"choices":[{"index":0,"delta":{"content":5}}]}\n\n' + _END,
    "choice-index-huge": b'data: {"choices":[{"index":99999999999,"delta":{"content":"x"}}]}\n\n'
                         + _END,
    "choice-index-negative": b'data: {"choices":[{"index":-1,"delta":{"content":"x"}}]}\n\n'
                             + _END,
    "tool-index-over-32-bits": b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":'
                               b'4294967296,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}'
                               b"\n\n" + _END,
    "an-error-event-after-content": b"data: " + _chunk("hi") + b'\n\ndata: {"error":{"code":502,'
                                    b'"message":"boom"}}\n\n',
    "nested-5000-deep": b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"x":'
                        + b"[" * 5000 + b"]" * 5000 + b"}\n\n" + _END,
    "html": b"<html><body>Bad gateway</body></html>",
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_any_shape_of_upstream_stream_is_answered_on_every_route(
        gateway: Gateway, key: str, fake: FakeOpenRouter, route: str) -> None:
    for name, stream in STREAMS.items():
        fake.fail("*", Fault.raw(stream, content_type=SSE if name != "html" else "text/html"))
        try:
            got = exchange(gateway, request_bytes(key, route))
        finally:
            fake.clear_faults()
        status = int(got.split(b" ", 2)[1])
        assert status == 200 or status == 502, (name, got[:300])
        if status == 200:  # a stream, ended as the route ends one
            assert got.endswith(b"\r\n0\r\n\r\n"), (name, got[-300:])
        assert wait_released(gateway, fake) == (0, 0, 0, 0, 0), name


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_a_key_the_upstream_echoes_escaped_or_split_reaches_no_client_of_any_route(
        gateway: Gateway, key: str, fake: FakeOpenRouter, route: str, stream: bool) -> None:
    head, tail = UPSTREAM_KEY[:9], UPSTREAM_KEY[9:]
    escaped = "\\u00" + format(ord(UPSTREAM_KEY[0]), "x") + UPSTREAM_KEY[1:]
    if stream:
        replies = [
            b"data: " + _chunk(f"key {UPSTREAM_KEY} ok") + b"\n\n" + _END,
            b"data: " + _chunk(f"key {head}") + b"\n\ndata: " + _chunk(f"{tail} ok") + b"\n\n"
            + _END,
            b'data: {"choices":[{"index":0,"delta":{"content":"' + escaped.encode()
            + b'"}}]}\n\n' + _END,
            b'data: {"error":{"code":401,"message":"bad key ' + UPSTREAM_KEY.encode() + b'"}}\n\n',
        ]
    else:
        replies = [
            json.dumps({"id": "g", "model": MODEL, "usage": _USAGE, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"key {UPSTREAM_KEY}"},
                 "finish_reason": "stop"}]}).encode(),
            b'{"id":"g","model":"' + MODEL.encode() + b'","choices":[{"index":0,"message":{"role":'
            b'"assistant","content":"' + escaped.encode() + b'"},"finish_reason":"stop"}],'
            b'"usage":' + json.dumps(_USAGE).encode() + b"}",
        ]
    for reply in replies:
        fake.fail("*", Fault.raw(reply, content_type=SSE if stream else "application/json"))
        try:
            got = exchange(gateway, request_bytes(key, route, stream=stream))
        finally:
            fake.clear_faults()
        assert UPSTREAM_KEY[4:].encode() not in got, got[:500]
        assert escaped[:12].encode() not in got


def test_two_keys_racing_their_projects_budget_never_overspend_it(
        gateway: Gateway, fake: FakeOpenRouter) -> None:
    """40 concurrent requests from two keys of one project whose budget holds 5.5 worst cases:
    5 are served, the others refused 402 before anything is sent; nothing stays reserved."""
    k1 = gateway.keys.create("p-racing")[0]
    k2 = gateway.keys.create("p-racing")[0]
    body = {"model": MODEL, "messages": HI, "max_tokens": 100_000}
    gateway.tracker.set_budget(Decimal("0.0000001"), project="p-racing")
    _, _, refused = call(gateway, "POST", "/v1/chat/completions", body, key=k1)
    message = json.loads(refused)["error"]["message"]
    worst = Decimal(message.split("may cost up to $", 1)[1].split(";", 1)[0])
    gateway.tracker.set_budget(worst * Decimal("5.5"), project="p-racing")
    fake.fail("*", Fault.delay(0.3))  # every request in flight together
    statuses: list[int] = []
    try:
        threads = [threading.Thread(target=lambda i=i: statuses.append(call(
            gateway, "POST", "/v1/chat/completions", body, key=k1 if i % 2 else k2)[0]))
            for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fake.clear_faults()
    assert sorted(set(statuses)) == [200, 402] and statuses.count(200) == 5
    b = gateway.tracker.budget_status(project="p-racing")
    assert b.spent <= b.limit and b.reserved == 0


def test_a_key_revoked_mid_stream_lets_the_stream_end_and_refuses_the_next_request(
        gateway: Gateway, fake: FakeOpenRouter) -> None:
    """The stream was admitted (and its cost reserved) before the revocation: it ends whole; the
    next request on the same keep-alive connection is a 401."""
    key, record = gateway.keys.create("p-revoked")
    fake.fail("*", Fault.slow_drip(interval=0.005, chunk_size=30))
    request = request_bytes(key, "chat").replace(b"Connection: close\r\n", b"")
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
            s.sendall(request)
            got = s.recv(100)
            assert got.startswith(b"HTTP/1.1 200 ")
            assert gateway.keys.revoke(record.id)
            while not got.endswith(b"\r\n0\r\n\r\n"):
                got += s.recv(65536)
            assert b"data: [DONE]" in got
            s.sendall(request)
            assert s.recv(100).startswith(b"HTTP/1.1 401 ")
    finally:
        fake.clear_faults()


def test_health_asked_without_a_key_does_not_call_the_upstream_once_a_request(
        gateway: Gateway, fake: FakeOpenRouter) -> None:
    """/health needs no key and checks the upstream with the gateway's own key: one check
    answers the /health requests of a second (and those that come while it runs). Before, 300
    pipelined /health requests from anyone made 300 upstream requests with the server's
    credentials."""
    before = len(fake.requests)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 300)
        got = b""
        while got.count(b"HTTP/1.1 ") < 300 and (chunk := s.recv(65536)):
            got += chunk
    assert got.count(b'"authenticated":true') == 300
    checks = [r for r in fake.requests[before:] if r.path.endswith("/key")]
    assert 1 <= len(checks) <= 3  # the check of each second the 300 took


def test_credits_asked_again_and_again_call_the_upstream_once_a_few_seconds_for_every_key(
        gateway: Gateway, fake: FakeOpenRouter, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """/api/v1/ai/credits asks the upstream with the gateway's credentials, whichever key asks:
    the requests of a few seconds share one answer (before, 100 pipelined requests made 100
    upstream calls), another key's too (each key fetched its own: up to 1,024 upstream calls
    every 5 s for the same answer). The project's budget is still each key's own."""
    def pipelined(token: str, n: int) -> bytes:
        request = (f"GET /api/v1/ai/credits HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
            s.sendall(request * n)
            got = b""
            while got.count(b"HTTP/1.1 ") < n and (chunk := s.recv(65536)):
                got += chunk
        return got

    assert gateway.app is not None
    # an answer held for an hour: the other key's request below comes within it however loaded
    # the machine is (the gateway holds one for 5 s)
    monkeypatch.setattr(gateway.app._credits_check, "_seconds", 3600.0)
    before = len(fake.requests)
    assert pipelined(key, 100).count(b"HTTP/1.1 200 ") == 100
    assert sum(r.path.endswith("/credits") for r in fake.requests[before:]) == 1
    gateway.tracker.set_budget(3, period="daily", project="p-credits-other")
    other = gateway.keys.create("p-credits-other")[0]
    before = len(fake.requests)
    answer = pipelined(other, 1)
    assert answer.count(b"HTTP/1.1 200 ") == 1
    assert sum(r.path.endswith("/credits") for r in fake.requests[before:]) == 0
    assert b'"project":"p-credits-other"' in answer and b'"limit":"3' in answer


def test_a_slow_usage_report_does_not_hold_up_other_requests(
        gateway: Gateway, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """/api/v1/ai/usage reads the ledger (a project's 300,000 calls: ~2 s): on the event loop it
    held up every other client for as long (a /v1/models request waited 1.7 s), and any key, a
    $0 budget's too, could repeat it. Here the report takes a second: a request made meanwhile
    is answered before it."""
    tracker = gateway.tracker
    report = tracker.report
    reported = threading.Event()

    def slow_report(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        reported.set()
        return report(*args, **kwargs)

    monkeypatch.setattr(tracker, "report", slow_report)
    statuses: list[int] = []
    usage = threading.Thread(target=lambda: statuses.append(
        call(gateway, "GET", "/api/v1/ai/usage", key=key)[0]))
    usage.start()
    time.sleep(0.2)  # the report is under way
    assert call(gateway, "GET", "/v1/models", key=key)[0] == 200
    answered_during_the_report = not reported.is_set()
    usage.join()
    assert statuses == [200]
    assert answered_during_the_report
