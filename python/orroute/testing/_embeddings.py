"""FakeOpenRouter's ``POST /embeddings``: deterministic vectors (a hash of each input), usage and
cost priced from the model table like every other reply, ``float`` or ``base64`` encoding."""

from __future__ import annotations

import base64
import hashlib
import struct
from decimal import Decimal
from typing import Any

from ._faults import Fault

__all__ = ["EmbeddingError", "embed"]

DEFAULT_DIMENSIONS = 16


class EmbeddingError(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [value]
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return list(value)
    raise EmbeddingError(Fault.bad_request("'input' must be a string, an array of strings or "
                                           "an array of token arrays."))


def _vector(item: str | list[int], dimensions: int, seed: int) -> list[float]:
    """A unit-free, deterministic vector: the same input gives the same embedding."""
    data = item.encode() if isinstance(item, str) else struct.pack(f"<{len(item)}q", *item)
    out: list[float] = []
    counter = 0
    while len(out) < dimensions:
        digest = hashlib.blake2b(data, digest_size=64, key=seed.to_bytes(8, "little"),
                                 salt=counter.to_bytes(16, "little")).digest()
        out.extend(b / 127.5 - 1.0 for b in digest)
        counter += 1
    return out[:dimensions]


def embed(body: Any, model: str, seed: int, count_text: Any, price: Any
          ) -> tuple[dict[str, Any], Decimal]:
    """The ``/embeddings`` answer for ``body`` and its cost. ``count_text(model, text)`` counts
    tokens; ``price(model, prompt_tokens)`` prices them."""
    if not isinstance(body, dict):
        raise EmbeddingError(Fault.bad_request("Request body must be a JSON object."))
    items = _inputs(body.get("input"))
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= 4096:
        raise EmbeddingError(Fault.bad_request("'dimensions' must be an integer in [1, 4096]."))
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise EmbeddingError(Fault.bad_request("'encoding_format' must be float or base64."))
    data = []
    tokens = 0
    for i, item in enumerate(items):
        tokens += count_text(model, item) if isinstance(item, str) else len(item)
        vec = _vector(item, dimensions, seed)
        emb: Any = vec
        if encoding == "base64":
            emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    cost = price(model, tokens)
    reply = {"object": "list", "data": data, "model": model,
             "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "cost": float(cost)}}
    return reply, cost
