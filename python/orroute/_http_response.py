"""Response heads for orroute's HTTP/1.1 server, with every header checked before it is written.

A header value that held a CR or LF would let whoever chose it split the response (and forge the
answer to the next pipelined request); one outside Latin-1 cannot be encoded at all. Values that
come from a client go through :func:`header_value` (percent-encodes anything unsafe);
:func:`head_bytes` refuses, with ValueError, any name or value that would still break framing.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from urllib.parse import quote

__all__ = ["error_bytes", "head_bytes", "header_value"]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
# RFC 9110 5.1 token; 5.5 field-value: visible characters, SP, HTAB and obs-text (0x80-0xFF)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")
_NAMES_SEEN: set[str] = set()
# what header_value leaves alone: printable ASCII except '%' (so the encoding is reversible)
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(text: str) -> str:
    """``text`` safe to put in a response header: characters outside printable ASCII (CR, LF,
    NUL, non-Latin-1, ...) and ``%`` are percent-encoded as UTF-8. Printable ASCII is unchanged."""
    if _BAD_VALUE.search(text) is None and "%" not in text and text.isascii():
        return text
    return quote(text, safe=_SAFE)


def head_bytes(
    status: int,
    headers: list[tuple[str, str]],
    *,
    length: int | None = None,
    chunked: bool = False,
    close: bool = False,
) -> bytes:
    """The status line and headers of a response, ending with the blank line.

    Raises:
        ValueError: a header name is not a token, or a value holds a control character or a
            character outside Latin-1 (a bug in the caller: client input must go through
            :func:`header_value`).
    """
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    for k, v in headers:
        if k not in _NAMES_SEEN:
            if _TOKEN.match(k) is None:
                raise ValueError(f"unsafe response header {k!r}")
            if len(_NAMES_SEEN) < 256:  # names come from code: a handful, checked once each
                _NAMES_SEEN.add(k)
        # printable ASCII (the usual value) is safe: str methods in C before the regex
        if not (v.isascii() and v.isprintable()) and _BAD_VALUE.search(v) is not None:
            raise ValueError(f"unsafe response header {k!r}")
        lines.append(f"{k}: {v}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    elif chunked:
        lines.append("Transfer-Encoding: chunked")
    if close:
        lines.append("Connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def error_bytes(status: int, message: str, *, close: bool = True,
                request_id: str | None = None) -> bytes:
    """A whole JSON error response in OpenAI's error shape (the server's own errors: framing,
    limits, timeouts, handler failures)."""
    err: dict[str, object] = {"message": message, "type": _REASONS.get(status, "error"),
                              "code": status}
    headers = [("Content-Type", "application/json")]
    if request_id is not None:
        err["request_id"] = request_id
        headers.append(("X-Request-Id", request_id))
    body = json.dumps({"error": err}).encode()
    return head_bytes(status, headers, length=len(body), close=close) + body
