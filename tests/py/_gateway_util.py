"""What the gateway test modules share: one factory for their fixtures (a FakeOpenRouter upstream,
a Gateway in front of it with the module's own settings, a key and an openai client per test) and
plain-HTTP helpers that talk to a running gateway."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from orroute.gateway import Gateway, GatewaySettings
from orroute.testing import FakeOpenRouter


def gateway_fixtures(upstream_key: str, **settings: Any) -> tuple[Callable[..., Any], ...]:
    """The fixtures ``fake``, ``gateway``, ``key`` and ``client`` of one test module.

    ``fake`` and ``gateway`` live for the module (the gateway has a ledger of its own in a temp
    directory and ``settings`` on top of the upstream's URL and key); ``key`` is a fresh key in a
    project named after the test (no budget) and ``client`` an ``openai.OpenAI`` using it. Assign
    the result at module level: ``fake, gateway, key, client = gateway_fixtures(KEY, ...)``.
    """

    @pytest.fixture(scope="module", name="fake")
    def fake_fixture() -> Iterator[FakeOpenRouter]:
        with FakeOpenRouter(api_key=upstream_key) as f:
            yield f

    @pytest.fixture(scope="module", name="gateway")
    def gateway_fixture(
        fake: FakeOpenRouter, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Gateway]:
        ledger = tmp_path_factory.mktemp("gw") / "ledger.sqlite3"
        full = GatewaySettings(
            base_url=fake.base_url, api_key=upstream_key, ledger=str(ledger), port=0, **settings
        )
        with Gateway(full) as gw:
            yield gw

    @pytest.fixture(name="key")
    def key_fixture(gateway: Gateway, request: pytest.FixtureRequest) -> str:
        return gateway.keys.create(f"p-{request.node.name}")[0]

    @pytest.fixture(name="client")
    def client_fixture(gateway: Gateway, key: str) -> Iterator[openai.OpenAI]:
        with openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as c:
            yield c

    return fake_fixture, gateway_fixture, key_fixture, client_fixture


def call(
    gateway: Gateway,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to the gateway: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post_completion(
    gateway: Gateway, key: str, body: dict[str, Any], *, rcvbuf: int | None = None,
    path: str = "/v1/chat/completions",
) -> socket.socket:
    """Sends ``POST /v1/chat/completions`` (or ``path``) on a raw socket and returns the socket
    unread, so that a test controls how (and whether) the answer is read. ``rcvbuf`` shrinks the
    receive window."""
    data = json.dumps(body).encode()
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", gateway.port))
    s.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(data)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + data
    )
    return s
