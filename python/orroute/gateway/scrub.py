"""Removing upstream keys from bytes that came from an upstream, before a client sees them.

An upstream may echo the key it was sent (an error message, a choice's error in a 200). Matching
the raw bytes is not enough: in JSON, ``"\\u0073k-or-..."`` reads as ``"sk-or-..."`` once parsed,
so a key written with escapes would reach the client. Key characters never need escaping in JSON,
so un-escaping just those (``[0-9A-Za-z._-]``, ``_core.unescape_key_chars``, the rule the client's
own scrub uses) gives the same document, in which the key can be matched as bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._core import unescape_key_chars

REDACTED = b"[redacted]"


def scrub_secrets(data: bytes, secrets: Sequence[bytes]) -> bytes:
    """``data`` with every secret replaced by ``[redacted]``, also where JSON escapes spell it;
    ``data`` itself (the same bytes) when no secret is in it."""
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, REDACTED)
    if b"\\u00" in data and secrets:
        plain = unescape_key_chars(data)  # the rule lives in the core (net/keys.h)
        if any(secret in plain for secret in secrets):
            for secret in secrets:
                plain = plain.replace(secret, REDACTED)
            return plain
    return data
