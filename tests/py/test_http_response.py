"""Response heads: client text made safe for a header, and a head that would break framing
refused."""

from __future__ import annotations

import pytest

from orroute._http_server import head_bytes, header_value


@pytest.mark.parametrize(("text", "expected"), [
    ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),
    ("a\r\nX-Injected: 1", "a%0D%0AX-Injected: 1"),
    ("模型", "%E6%A8%A1%E5%9E%8B"),
    ("50%", "50%25"),
    ("a\x00b\x7f", "a%00b%7F"),
], ids=["plain", "crlf", "non_latin1", "percent", "controls"])
def test_header_value_encodes_what_could_break_a_header(text: str, expected: str) -> None:
    out = header_value(text)
    assert out == expected
    head = head_bytes(200, [("X-Orroute-Model", out)], length=0)
    assert head.count(b"\r\n") == 4  # status, the header, Content-Length, blank line


@pytest.mark.parametrize("header", [("X-A", "a\r\nb"), ("X-A", "a\nb"), ("X-A", "a\x00"),
                                    ("X-A", "模型"), ("Bad Name", "v"), ("X:A", "v")],
                         ids=["crlf", "lf", "nul", "non_latin1", "space_in_name", "colon"])
def test_head_bytes_refuses_a_header_that_would_break_framing(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="unsafe response header"):
        head_bytes(200, [header], length=0)


def test_head_bytes_allows_tab_and_latin1_in_values() -> None:
    assert b"X-A: a\tb\xe9" in head_bytes(200, [("X-A", "a\tb\xe9")], length=0)
