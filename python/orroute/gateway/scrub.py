"""Removing upstream keys from bytes that came from an upstream, before a client sees them.

An upstream may echo the key it was sent (an error message, a choice's error in a 200). Matching
the raw bytes is not enough: in JSON, ``"\\u0073k-or-..."`` reads as ``"sk-or-..."`` once parsed,
so a key written with escapes would reach the client. Key characters never need escaping in JSON,
so un-escaping just those (``[0-9A-Za-z._-]``) gives the same document, in which the key can be
matched as bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = b"[redacted]"

# \u00XX for a key character, not itself escaped (preceded by an even number of backslashes).
_ESCAPED_KEY_CHAR = re.compile(
    rb"(?<!\\)((?:\\\\)*)\\u00(2[dDeE]|3[0-9]|4[1-9a-fA-F]|5[0-9aAfF]|6[1-9a-fA-F]|7[0-9aA])")


def _plain(m: re.Match[bytes]) -> bytes:
    return m.group(1) + bytes([int(m.group(2), 16)])


def scrub_secrets(data: bytes, secrets: Sequence[bytes]) -> bytes:
    """``data`` with every secret replaced by ``[redacted]``, also where JSON escapes spell it;
    ``data`` itself (the same bytes) when no secret is in it."""
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, REDACTED)
    if b"\\u00" in data and secrets:
        plain = _ESCAPED_KEY_CHAR.sub(_plain, data)
        if any(secret in plain for secret in secrets):
            for secret in secrets:
                plain = plain.replace(secret, REDACTED)
            return plain
    return data
