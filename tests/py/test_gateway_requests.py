"""What the gateway answers to hostile or malformed requests: client input never reaches a
response header unencoded, every bad field is a 400 naming it, a handler error is a 500 with a
request id. Never a dropped connection."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from _gateway_util import call, gateway_fixtures
from _http_util import read_responses

from orroute.gateway import Gateway

UPSTREAM_KEY = "sk-or-v1-upstream-secret-requests-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
HI = [{"role": "user", "content": "Say hi"}]

fake, gateway, key, client = gateway_fixtures(UPSTREAM_KEY)


def raw_chat(gateway: Gateway, key: str, bodies: list[bytes]) -> list[tuple[int, dict[str, str],
                                                                         bytes]]:
    """Pipelines the bodies as chat completions on one connection; reads every answer."""
    data = b"".join(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode()
        + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
        s.sendall(data)
        return read_responses(s, len(bodies))


@pytest.mark.parametrize("model", ["evil\r\nX-Injected: 1", "evil\nHTTP/1.1 200 OK\r\n\r\n{}",
                                   "модель/模型", "a\x00b"],
                         ids=["crlf", "lf_forged_response", "non_latin1", "nul"])
def test_a_model_name_cannot_split_or_break_the_response(gateway: Gateway, key: str,
                                                         model: str) -> None:
    bad = json.dumps({"model": model, "messages": HI}).encode()
    good = json.dumps({"model": MODEL, "messages": HI, "max_tokens": 8}).encode()
    answers = raw_chat(gateway, key, [bad, good])
    assert len(answers) == 2  # the first was answered; the second got its own, real answer
    (s1, h1, _), (s2, h2, b2) = answers
    assert s1 >= 400 and "x-injected" not in h1
    if "x-orroute-model" in h1:
        assert "\r" not in h1["x-orroute-model"] and "\n" not in h1["x-orroute-model"]
        assert h1["x-orroute-model"].isascii()
    assert s2 == 200 and json.loads(b2)["choices"]
    assert h2["x-orroute-model"] == MODEL


@pytest.mark.parametrize(
    ("field", "value"),
    [("tools", {"type": "function"}), ("tools", ["not-a-tool"]),
     ("tools", [{"type": "function", "function": {"parameters": {}}}]),
     ("messages", "hi"), ("messages", []), ("messages", [{"role": "user", "content": 5}]),
     ("messages", [{"role": {"an": "object"}, "content": "hi"}]),  # found by the fuzzer
     ("tools", None), ("stop", [1]),  # found by the fuzzer: null reached the engine
     ("n", "2"), ("n", 0), ("n", 1000), ("n", True),
     ("max_tokens", "10"), ("max_tokens", -1), ("max_tokens", 1.5),
     ("max_tokens", "x" + "\u6a21" * 14),  # found by the fuzzer: quoted value cut mid-character
     ("temperature", "hot"), ("stream", "yes"), ("tool_choice", 3), ("response_format", "json"),
     ("stop", 7)],
    ids=lambda v: json.dumps(v)[:30])
def test_a_field_of_the_wrong_type_is_a_400_naming_it(gateway: Gateway, key: str, field: str,
                                                      value: Any) -> None:
    body = {"model": MODEL, "messages": HI, field: value}
    status, _, raw = call(gateway, "POST", "/v1/chat/completions", body, key)
    assert status == 400
    assert json.loads(raw)["error"]["param"].startswith(field)


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"x"', b"\xff\xfe", b""],
                         ids=["truncated", "array", "string", "not_utf8", "empty"])
def test_a_body_that_is_not_a_json_object_is_a_400(gateway: Gateway, key: str, raw: bytes
                                                  ) -> None:
    status, _, body = call(gateway, "POST", "/v1/chat/completions", key=key, raw=raw)
    assert status == 400 and json.loads(body)["error"]["param"] == "body"


def test_a_handler_error_is_a_500_with_a_request_id(gateway: Gateway, key: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    assert gateway.app is not None

    def broken(body: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gateway.app, "resolve", broken)
    status, headers, raw = call(gateway, "POST", "/v1/chat/completions",
                                {"model": MODEL, "messages": HI}, key)
    assert status == 500
    err = json.loads(raw)["error"]
    assert err["request_id"] == headers["x-request-id"] and "a bug" not in raw.decode()
    monkeypatch.undo()
    assert call(gateway, "POST", "/v1/chat/completions", {"model": MODEL, "messages": HI},
                key)[0] == 200


@pytest.mark.parametrize(("task_type", "status"), [
    ("coding", 200), ("my_pipeline_step", 200),
    ("codng", 400),  # a typo of a known type, refused as Task(type=...) refuses it
    ("x" * 5000, 400),  # stored on every ledger row of the call: not a place for 5 kB
    ("evil\"} 1", 400),
], ids=["known", "own", "typo", "long", "quote"])
def test_the_task_type_header_is_checked_as_a_tasks_type(gateway: Gateway, key: str,
                                                         task_type: str, status: int) -> None:
    data = json.dumps({"model": MODEL, "messages": HI}).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + key.encode() + b"\r\nX-Orroute-Task-Type: " + task_type.encode()
                  + b"\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        [(got, _, body)] = read_responses(s, 1)
    assert got == status, body
    if status == 400:
        assert json.loads(body)["error"]["param"] == "X-Orroute-Task-Type"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": HI}),
    ("/v1/messages", {"max_tokens": 5, "messages": HI}),
    ("/v1/responses", {"input": "hi"}),
    ("/v1/embeddings", {"input": "hi"}),
], ids=["chat", "messages", "responses", "embeddings"])
def test_a_huge_model_name_is_quoted_cut_in_the_error_and_the_log(
        gateway: Gateway, key: str, path: str, body: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """A 2 MB model name came back whole in the 400 (and in the log): client text is quoted
    cut to 200 bytes, with an ellipsis and its length."""
    model = "x/" + "A" * 2_000_000
    with caplog.at_level("INFO"):
        status, _, data = call(gateway, "POST", path, {"model": model, **body}, key=key)
    assert status == 400, data[:300]
    assert len(data) < 2_000, len(data)
    assert "x/" + "A" * 198 + "… (2000002 bytes)" in json.loads(data)["error"]["message"]
    assert all(len(r.getMessage()) < 2_000 for r in caplog.records)
