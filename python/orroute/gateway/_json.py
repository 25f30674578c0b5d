"""JSON to and from bytes: orjson when installed (several times faster), else the standard library."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "loads"]

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, default=str)

    def loads(data: bytes | str) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ValueError(str(e)) from None

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), default=str).encode()

    def loads(data: bytes | str) -> Any:
        try:
            return json.loads(data)
        except RecursionError:  # deeply nested input: a bad request, like orjson's depth limit
            raise ValueError("JSON nested too deeply") from None
