"""``tiktoken.core``: the ``Encoding`` class (orroute's, which has tiktoken's whole interface)."""

from __future__ import annotations

from ..tokenizer import Encoding

__all__ = ["Encoding"]
