"""A task's request text, written by the core's plain writer for the usual shapes (dict with str
keys, list, tuple, str, int, float, bool, None), is byte for byte the text the general writer
(``_core.json_dumps``, rapidjson's Writer) gives for the same body; anything else falls back to
the general writer, with its text and its errors."""

from __future__ import annotations

import enum
import json
import random
from collections import UserDict
from typing import Any

import pytest

import orroute
from orroute import Task, _core, _engine

# strings with every byte the writers treat apart: the escaped ones, DEL, non-ASCII, astral.
# Not 0x1A-0x1F: rapidjson 1.1.0's SSE2 scan (the general writer's, for strings of 16 bytes and
# more) lets those six through unescaped, which is not JSON (test_the_last_control_bytes...).
_TEXTS = ["", "hi", 'a"b', "a\\b", "/", "\x00", "\x01\x19", "\b\t\n\x0b\f\r", "\x7f", "é",
          "\u2028\u2029", "😀", "mixed \"quote\" \\ and \n newline\tand é and \x10",
          "x" * 300, "\x19" * 17, "\x01" * 40, 'x' * 15 + '"', "ab\x00cd"]
_NUMBERS = [0, 1, -1, 7, 2**31, -(2**31), 2**63 - 1, -(2**63), 0.0, -0.0, 0.1, 1.5, -2.25,
            1e21, 1e22, 1e-7, 123456789.125, 5e-324, 1.7976931348623157e308, 1 / 3, 100.0]


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(8 if depth < 6 else 5)
    if kind == 0:
        return rng.choice(_TEXTS) + rng.choice(_TEXTS)
    if kind == 1:
        return rng.choice(_NUMBERS)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind == 4:
        return rng.randrange(-(10**12), 10**12)
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 6:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {rng.choice(_TEXTS) + str(i): _value(rng, depth + 1) for i in range(rng.randrange(4))}


def _general(messages: Any, max_tokens: Any = None, model: Any = None) -> str:
    body: dict[str, Any] = {"messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if model:
        body["model"] = model
    return str(_core.json_dumps(body))


def _plain(messages: Any, max_tokens: Any = None, model: Any = None) -> str:
    task = Task(messages=[{"role": "user"}], max_tokens=max_tokens)
    task.messages = messages  # a value of any shape (the constructor checks the messages)
    return str(_engine.task_request(task, model=model).request_json)


def test_many_values_give_the_general_writers_bytes() -> None:
    rng = random.Random(22)
    for _ in range(3000):
        messages = [{"role": "user", "content": _value(rng, 0)} for _ in range(rng.randrange(1, 3))]
        max_tokens = rng.choice([None, 1, 16, 2**40])
        model = rng.choice([None, "m/a", 'odd"model\n'])
        text = _plain(messages, max_tokens, model)
        assert text == _general(messages, max_tokens, model)
        assert json.loads(text)["messages"] == json.loads(json.dumps(messages))


def test_each_escape_and_number_alone() -> None:
    for text in _TEXTS + [chr(c) for c in range(0x80)] + ["\x1f"]:
        messages = [{"role": "user", "content": text, text: [text]}]
        assert _plain(messages, 3) == _general(messages, 3)
    for number in _NUMBERS:
        messages = [{"role": "user", "content": number}]
        assert _plain(messages) == _general(messages)
    # rapidjson's escapes, not json.dumps's: \u001F in capitals, DEL and non-ASCII as they are
    assert _plain([{"role": "\x1f\x7fé"}]) == '{"messages":[{"role":"\\u001F\x7fé"}]}'


def test_the_last_control_bytes_are_escaped_in_long_strings() -> None:
    # 0x1A-0x1F escaped wherever they are; a request with one sent raw is refused upstream
    for c in range(0x1A, 0x20):
        for text in (chr(c) * 40, "x" * 16 + chr(c) * 16 + "y", chr(c)):
            messages = [{"role": "user", "content": text, text: 1}]
            sent = _plain(messages, 3)
            assert json.loads(sent)["messages"] == messages  # strict: no raw control byte
            escaped = text.replace(chr(c), f"\\u00{c:02X}")
            member = f'"content":"{escaped}","{escaped}":1'
            assert sent == '{"messages":[{"role":"user",' + member + '}],"max_tokens":3}'


class _Color(enum.IntEnum):
    RED = 3


class _Items(list):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize("content", [
    2**64, -(2**70),  # beyond 64 bits: the digits
    {1: "a", None: "b", 2.5: "c", False: "d"},  # keys that are not str: their JSON text
    _Items(["a", "b"]),  # a list subclass: through its iterator
    UserDict({"a": 1}),  # a Mapping
    _Color.RED,  # an int subclass: its number
    [{"k": [1, {"x": 2**65}]}],  # the unusual value deep inside
])
def test_other_shapes_fall_back_to_the_general_writer(content: Any) -> None:
    messages = [{"role": "user", "content": content}]
    assert _plain(messages, 5) == _general(messages, 5)


@pytest.mark.parametrize("content, error, match", [
    (float("nan"), orroute.InvalidArgumentError, "NaN"),
    ([1, float("inf")], orroute.InvalidArgumentError, "NaN"),
    ({float("nan"): 1}, orroute.InvalidArgumentError, "NaN"),
    ({(1, 2): 1}, orroute.InvalidArgumentError, "keys must be"),
    (object(), orroute.InvalidArgumentError, "cannot send"),
    ("\ud800", UnicodeEncodeError, None),
    ({"\udfff": 1}, UnicodeEncodeError, None),
])
def test_refusals_are_the_general_writers(content: Any, error: type[Exception],
                                          match: str | None) -> None:
    messages = [{"role": "user", "content": content}]
    with pytest.raises(error, match=match):
        _general(messages)
    with pytest.raises(error, match=match):
        _plain(messages)


def test_the_depth_limit_is_the_general_writers() -> None:
    outcomes = set()
    for levels in range(118, 132):
        deep: Any = "x"
        for _ in range(levels):
            deep = {"k": [deep]} if levels % 2 else [deep]
        messages = [{"role": "user", "content": deep}]
        try:
            expected = _general(messages)
        except orroute.InvalidArgumentError as e:
            assert "deeper" in str(e)
            with pytest.raises(orroute.InvalidArgumentError, match="deeper"):
                _plain(messages)
            outcomes.add(False)
        else:
            assert _plain(messages) == expected
            outcomes.add(True)
    assert outcomes == {True, False}
