"""An upstream's echo of its key never reaches a gateway client, however the JSON spells it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from orroute.gateway.scrub import scrub_secrets

KEY = "sk-or-v1-0123abcdEF_x.y"
SECRETS = [KEY.encode()]


def escaped(text: str, which: set[int]) -> str:
    """``text`` with the characters at ``which`` written as JSON \\u escapes."""
    return "".join(f"\\u{ord(c):04x}" if i in which else c for i, c in enumerate(text))


def test_a_plain_echo_is_redacted() -> None:
    body = json.dumps({"error": {"message": f"bad key {KEY}"}}).encode()
    assert json.loads(scrub_secrets(body, SECRETS)) == {"error": {"message": "bad key [redacted]"}}


def test_a_key_spelled_with_json_escapes_is_redacted_and_the_json_keeps_its_meaning() -> None:
    body = ('{"choices":[{"error":{"message":"echo ' + escaped(KEY, {0, 3, 9, 22})
            + ' \\u00e9 done"}}]}').encode()
    assert KEY in json.loads(body)["choices"][0]["error"]["message"]  # what a client would read
    out = scrub_secrets(body, SECRETS)
    assert json.loads(out) == {"choices": [{"error": {"message": "echo [redacted] \u00e9 done"}}]}


def test_an_escaped_backslash_is_not_read_as_an_escape() -> None:
    # "\\u0073k-..." is a backslash then the text "u0073k-...": not the key, and must stay as is
    body = ('{"m":"\\\\u0073' + KEY[1:] + '"}').encode()
    assert scrub_secrets(body, SECRETS) == body
    assert KEY not in json.loads(body)["m"]


def test_bodies_without_the_key_are_returned_unchanged() -> None:
    body = b'{"m":"caf\\u00e9 \\u0041BC \\\\u0073"}'
    assert scrub_secrets(body, SECRETS) is body


@given(st.sets(st.integers(0, len(KEY) - 1)), st.text(max_size=20), st.text(max_size=20))
def test_no_escape_pattern_lets_the_key_through(which: set[int], before: str, after: str) -> None:
    message = json.dumps(before)[1:-1] + escaped(KEY, which) + json.dumps(after)[1:-1]
    body = ('{"error":{"message":"' + message + '"}}').encode()
    decoded = json.loads(body)["error"]["message"]
    assert KEY in decoded  # the body does carry the key once parsed
    out = json.loads(scrub_secrets(body, SECRETS))["error"]["message"]
    assert KEY not in out
    assert out == decoded.replace(KEY, "[redacted]")
