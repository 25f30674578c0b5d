"""The response cache in front of the client's chat calls (private; the rule and the store are the
core's, see :mod:`orroute.cache`).

The client has no ledger: a hit returns the cached completion marked as the core marks it
(``usage.cost`` 0, ``orroute_cache: {"hit": true, "saved": ...}``), as a ``ChatCompletion`` or,
for ``stream=True``, replayed as chunks by :class:`ReplayStream` / :class:`AsyncReplayStream`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _core
from .cache import ResponseCache
from .types import ChatCompletion, ChatCompletionChunk, CompletionUsage

if TYPE_CHECKING:
    from typing_extensions import Self

_log = logging.getLogger("orroute")


class Lookup:
    """One call's cache key and, on a hit, the cached reply."""

    def __init__(self, cache: ResponseCache | None, body: Mapping[str, Any], scope: str) -> None:
        self.cache = cache
        self.key = cache.key(dict(body, stream=False), scope) if cache is not None else None
        self.hit: Any = None
        if self.key is not None and cache is not None:
            try:
                self.hit = cache.get(self.key)
            except Exception:  # noqa: BLE001 (a failing cache is a miss, never a failed call)
                _log.warning("response cache: lookup failed; treated as a miss", exc_info=True)
                self.hit = None

    def completion(self) -> dict[str, Any]:
        """The hit's completion as the caller gets it (cost 0, marked)."""
        return json.loads(_core.cache_hit_completion(self.hit))

    def store(self, completion: Mapping[str, Any]) -> None:
        """Keeps a complete answer (its reported cost is what a hit will save)."""
        if self.key is None or self.cache is None or self.hit is not None:
            return
        raw = completion.get("usage")
        usage: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        try:
            cost = CompletionUsage(dict(usage)).cost_decimal if usage else None
        except ArithmeticError:
            cost = None
        try:
            self.cache.put(self.key, dict(completion), model=str(completion.get("model") or ""),
                           prompt_tokens=int(usage.get("prompt_tokens") or 0),
                           completion_tokens=int(usage.get("completion_tokens") or 0),
                           cost=cost if isinstance(cost, Decimal) and cost.is_finite() else None)
        except Exception:  # noqa: BLE001 (not cached this time; the call succeeded)
            _log.warning("response cache: the reply was not stored", exc_info=True)


class _ReplayBase:
    def __init__(self, completion: dict[str, Any]) -> None:
        self._completion = completion
        self._chunks = [json.loads(c) for c in _core.replay_chunks(json.dumps(completion))]
        self._at = 0

    @property
    def text(self) -> str:
        return "".join(c["delta"].get("content") or "" for ch in self._chunks[: self._at]
                       for c in ch.get("choices", ()) if isinstance(c.get("delta"), dict))

    @property
    def usage(self) -> CompletionUsage | None:
        u = self._completion.get("usage")
        return CompletionUsage(u) if isinstance(u, dict) and self._at >= len(self._chunks) else None

    def get_final_completion(self) -> ChatCompletion:
        return ChatCompletion(self._completion)

    @property
    def generation_id(self) -> str | None:
        return self._completion.get("id") or None

    def _next(self) -> ChatCompletionChunk | None:
        if self._at >= len(self._chunks):
            return None
        self._at += 1
        return ChatCompletionChunk(self._chunks[self._at - 1])


class ReplayStream(_ReplayBase):
    """A cached completion as a ``Stream``: the same iteration and context manager."""

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        item = self._next()
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        self._at = len(self._chunks)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncReplayStream(_ReplayBase):
    """A cached completion as an ``AsyncStream``."""

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        item = self._next()
        if item is None:
            raise StopAsyncIteration
        return item

    async def close(self) -> None:
        self._at = len(self._chunks)

    aclose = close

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
