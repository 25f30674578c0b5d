"""A chat reply stays parsed in the core and its fields become Python objects as they are read
(``BaseObject._over``): what a caller reads, compares, dumps, copies or sets is what the whole
reply as a dict gives."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import sys

import pytest

import orroute
from orroute.testing import FakeOpenRouter, Fault
from orroute.types import ChatCompletion

MSGS = [{"role": "user", "content": "Say hello"}]
REPLY = {
    "id": "gen-1",
    "object": "chat.completion",
    "model": "m/a",
    "provider": "P",
    "extra": {"nested": [1, {"a": None}], "t": True},
    "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": "h\u00e9\\llo \"x\"", "refusal": None,
                     "tool_calls": [{"id": "c1", "type": "function",
                                     "function": {"name": "f", "arguments": "{}"}}]}},
        "not an object",
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost": 1.5e-05,
              "prompt_tokens_details": {"cached_tokens": 1}},
}


@pytest.fixture
def fake():
    with FakeOpenRouter(models=["m/a"], use_uvloop=False) as f:
        yield f


def reply_of(fake: FakeOpenRouter, body: bytes) -> ChatCompletion:
    fake.fail("m/a", Fault.raw(body), times=1)
    client = orroute.OpenRouter(api_key="sk-or-v1-test", base_url=fake.base_url, max_retries=0)
    return client.chat.completions.create(model="m/a", messages=MSGS)


def test_the_fields_read_are_made_and_the_rest_stays_parsed(fake, caplog, monkeypatch):
    # nothing watches the call (no INFO log, no OpenTelemetry), which would read all of it
    caplog.set_level(logging.WARNING, logger="orroute")
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    r = reply_of(fake, json.dumps(REPLY).encode())
    assert r.choices[0].message.content == 'h\u00e9\\llo "x"'
    assert r.usage.total_tokens == 5 and r.usage.cached_tokens == 1
    assert r.choices[0].message.tool_calls[0].function.name == "f"
    assert "_data" not in r.__dict__  # the whole reply was never made into Python objects
    assert r.choices[1] == "not an object"  # a list item that is no object is a value
    assert r.extra == REPLY["extra"]  # a field of no declared type: plain values all through
    assert r.system_fingerprint is None  # known, absent
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        r.nope  # noqa: B018


def test_a_reply_read_lazily_is_the_reply_as_a_dict(fake):
    lazy = reply_of(fake, json.dumps(REPLY).encode())
    lazy.choices[0].message  # noqa: B018  (some fields read, the rest not)
    eager = ChatCompletion(json.loads(json.dumps(REPLY)))
    assert lazy == eager and eager == lazy
    assert repr(lazy) == repr(eager)
    assert lazy.model_dump() == REPLY and lazy.model_dump_json() == eager.model_dump_json()
    assert dict(lazy).keys() == dict(eager).keys() and "usage" in lazy
    assert pickle.loads(pickle.dumps(lazy)) == eager
    assert copy.deepcopy(lazy) == eager and copy.copy(lazy) == eager


def test_setting_a_field_of_a_lazy_reply_keeps_the_others(fake):
    r = reply_of(fake, json.dumps(REPLY).encode())
    r.provider = "Q"
    assert r.provider == "Q"
    assert r.model_dump() == {**REPLY, "provider": "Q"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"{not json", b"1" * 3 + b"[" * 600])
def test_a_reply_that_is_no_json_object_is_refused_at_once(fake, body):
    with pytest.raises(orroute.APIResponseValidationError, match="not a JSON object"):
        reply_of(fake, body)


def test_a_2xx_error_body_without_choices_is_an_error(fake):
    body = {"error": {"code": 429, "message": "slow down"}}
    with pytest.raises(orroute.RateLimitError, match="slow down"):
        reply_of(fake, json.dumps(body).encode())
    with_choices = {**REPLY, "error": {"code": 429, "message": "ignored"}}
    assert reply_of(fake, json.dumps(with_choices).encode()).choices[0].index == 0


def test_a_key_the_upstream_gives_twice_reads_as_the_dumped_reply_has_it(fake, caplog, monkeypatch):
    """Read alone or dumped whole, a field given twice is its last value (as Python's json and the
    whole dict have it): the two views of one reply never disagree."""
    caplog.set_level(logging.WARNING, logger="orroute")  # unwatched: read field by field
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    body = (b'{"id": "gen-1", "model": "m/a", "choices": [{"index": 0, "message": {"role": '
            b'"assistant", "content": "first", "content": "last"}}], "model": "m/b"}')
    r = reply_of(fake, body)
    assert r.choices[0].message.content == "last" and r.model == "m/b"
    assert "_data" not in r.__dict__
    assert r.model_dump()["choices"][0]["message"]["content"] == "last"


def test_nested_objects_outlive_their_reply_and_the_objects_freed_around_them(fake, caplog, monkeypatch):
    """A nested object keeps its reply's parse alive after the completion is gone, while many
    other objects are made and freed around it (the core reuses freed ones)."""
    caplog.set_level(logging.WARNING, logger="orroute")  # unwatched: read field by field
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    kept = []
    for i in range(3):
        body = {**REPLY, "id": f"gen-{i}", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"c{i}"}}]}
        kept.append(reply_of(fake, json.dumps(body).encode()).choices[0].message)
    lazy = reply_of(fake, json.dumps(REPLY).encode())
    for _ in range(200):  # made and freed: more than the core keeps for reuse
        ChatCompletion._over(lazy.__dict__["_ref"]).choices[0].message.tool_calls[0].function  # noqa: B018
    assert [m.content for m in kept] == ["c0", "c1", "c2"]
    assert kept[2].model_dump() == {"role": "assistant", "content": "c2"}


def test_the_parsed_reply_refuses_what_is_not_its_arguments(fake, caplog, monkeypatch):
    from orroute import _core

    caplog.set_level(logging.WARNING, logger="orroute")  # unwatched: the reply stays parsed
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    ref = reply_of(fake, json.dumps(REPLY).encode()).__dict__["_ref"]
    assert type(ref) is _core.JsonRef
    assert ref.get("model", 0, None) == "m/a" and ref.get("nope", 0, 7) == 7
    assert "usage" in ref and "nope" not in ref and 1 not in ref and None not in ref
    for args in [(1, 0, None), ("model", "0", None), ("model", 0), (), ("model", 2**70, None),
                 ("\ud800", 0, None)]:
        with pytest.raises((TypeError, OverflowError, UnicodeEncodeError)):
            ref.get(*args)
    with pytest.raises(TypeError):
        type(ref)()
    with pytest.raises(TypeError):
        pickle.dumps(ref)
    with pytest.raises(TypeError):
        copy.copy(ref)


def test_reply_objects_made_and_freed_give_back_their_type(fake, caplog, monkeypatch):
    """JsonRef is a heap type whose freed objects are kept for reuse: each one made takes a
    reference to the type and each one freed gives it back, kept or not (a missing release
    would keep the type, and a double one free it under its live objects)."""
    from orroute import _core

    caplog.set_level(logging.WARNING, logger="orroute")
    monkeypatch.delitem(sys.modules, "opentelemetry.trace", raising=False)
    lazy = reply_of(fake, json.dumps(REPLY).encode())
    ref = lazy.__dict__["_ref"]
    ChatCompletion._over(ref).choices[0].message.tool_calls[0].function  # noqa: B018
    before = sys.getrefcount(_core.JsonRef)
    alive = [ChatCompletion._over(ref).choices[0].message for _ in range(100)]
    holding = sys.getrefcount(_core.JsonRef)  # (counted outside the asserts: pytest's rewriting
    del alive  # holds what an assert reads)
    for _ in range(500):  # more than the core keeps for reuse
        ChatCompletion._over(ref).choices[0].message.tool_calls[0].function  # noqa: B018
    after = sys.getrefcount(_core.JsonRef)
    assert holding >= before + 100  # the live objects hold the type
    assert after == before


@pytest.mark.parametrize("body", [
    # a control byte RapidJSON 1.1's SSE2 string scan let through (it tests up to 0x19), in a
    # string long enough to be scanned sixteen bytes at a time
    b'{"id":"gen","choices":[{"message":{"content":"' + b"a" * 40 + b"\x1b[2J" + b"a" * 40 + b'"}}]}',
    # a NUL after the reply, which the parser took as the end of the text
    b'{"id":"gen","choices":[]}\x00{"id":"evil"}',
], ids=["escape-byte-in-a-string", "nul-after-the-root"])
def test_a_reply_json_never_holds_raw_is_refused_and_quoted_escaped(fake, body):
    with pytest.raises(orroute.APIResponseValidationError) as info:
        reply_of(fake, body)
    with pytest.raises(ValueError):  # the peer: Python's json refuses both as well
        json.loads(body)
    message = str(info.value)
    assert "is not a JSON object" in message
    assert not any(ord(c) < 0x20 for c in message)  # quoted with its control bytes escaped
    assert "\\x1b" in message or "\\x00" in message
