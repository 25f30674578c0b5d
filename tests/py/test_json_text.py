"""Every control byte a caller's text holds reaches the upstream escaped, on every path.

rapidjson 1.1.0's SSE2 string scan (compiled in with RAPIDJSON_SSE2 for the reader's speed) wrote
bytes 0x1A-0x1F raw in strings of 16 bytes or more: the request was invalid JSON (FakeOpenRouter
answered 400, the manager refused its own request). ESC (0x1B) is in every terminal colour code,
so an agent that pipes a build's output back failed on every call. The core now writes every
string through orroute::JsonWriter (cpp/orroute/json_writer.h).
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from _provider_util import provider

import orroute
from orroute import _core
from orroute.testing import FakeAnthropic, FakeOpenRouter

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai/gpt-4o-mini"
# a colour code, and every byte the SSE2 scan let through, past the scan's first 16 bytes
TEXT = "build output: \x1b[31merror\x1b[0m in main.cpp, then " + "".join(map(chr, range(0x1A, 0x20))) + "."


def _sent_text(srv: FakeOpenRouter) -> str:
    req = srv.requests[-1]
    assert req.json is not None, req.body[:200]
    assert not any(0x1A <= b <= 0x1F for b in req.body), "a control byte went out raw"
    return req.json["messages"][-1]["content"]


def test_the_sync_and_async_clients_send_control_bytes_escaped():
    with FakeOpenRouter() as srv:
        c = orroute.OpenRouter(api_key="sk-or-x", base_url=srv.base_url)
        r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": TEXT}], max_tokens=5)
        assert r.choices[0].message.content
        assert _sent_text(srv) == TEXT

        async def once():
            a = orroute.AsyncOpenRouter(api_key="sk-or-x", base_url=srv.base_url)
            return await a.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": TEXT}], max_tokens=5,
                temperature=0.5,  # a field the writer copies from Python values too
            )

        asyncio.run(once())
        assert _sent_text(srv) == TEXT


@pytest.mark.parametrize("params", [None, {"temperature": 0.5, "stop": [TEXT]}])
def test_the_manager_sends_control_bytes_escaped(params):
    with FakeOpenRouter() as srv:
        m = orroute.AIModelManager(api_key="sk-or-x", base_url=srv.base_url, fallbacks=[MODEL])
        task = orroute.Task(messages=TEXT, max_tokens=5, params=params)
        result = asyncio.run(m.execute_task(task))
        assert result.content
        assert _sent_text(srv) == TEXT
        if params:
            assert srv.requests[-1].json["stop"] == [TEXT]


def test_json_dumps_escapes_every_control_byte():
    for c in range(0x20):
        for at in (0, 15, 16, 17, 40):
            s = "a" * at + chr(c) + "b" * 30
            text = _core.json_dumps({"k": s})
            assert json.loads(text) == {"k": s}
            assert not any(ord(ch) < 0x20 for ch in text)


def test_an_anthropic_provider_sends_control_bytes_escaped():
    key = "sk-ant-api03-test-key-abcdefghijklmnop"
    with FakeAnthropic(api_key=key) as fake:
        p = provider("anthropic", fake.base_url, keys=[key])
        body = json.dumps({"messages": [{"role": "system", "content": TEXT},
                                        {"role": "user", "content": TEXT}], "max_tokens": 5})
        r = p.complete(body, "claude-sonnet-4-5")
        assert r["ok"], r["error"]
        sent = fake.last_request
        assert not any(0x1A <= b <= 0x1F for b in sent.body)
        assert sent.json["system"] == [{"type": "text", "text": TEXT}]
        assert sent.json["messages"][-1]["content"] in (TEXT, [{"type": "text", "text": TEXT}])


def test_no_plain_rapidjson_writer_writes_text():
    """rapidjson's Writer<StringBuffer> is the one its SSE2 scan specialises: the core writes with
    orroute::JsonWriter (cpp/orroute/json_writer.h), which writes every string itself."""
    plain = re.compile(r"rapidjson::Writer<\s*rapidjson::StringBuffer|Writer<\s*StringBuffer\s*>")
    found = []
    for path in (ROOT / "cpp").rglob("*.[ch]*"):
        if path.name == "json_writer.h":
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if plain.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
