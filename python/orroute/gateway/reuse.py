"""Upstream answers shared by the requests of a few seconds: the gateway's calls to the upstream
that a client asks for but that do not depend on the request (/health's key check, /credits)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Reused"]


class Reused:
    """Per key, one fetch answers the requests of ``seconds`` after it started and those that
    come while it runs: a request each let a client make the gateway call the upstream with its
    credentials as fast as it could ask. At most ``size`` keys are held (the least recently
    fetched dropped). Awaited shielded: a client that leaves does not cancel the others' fetch.
    Runs on one event loop at a time; a fetch of another loop (the in-process transport's app
    serves any) is not reused."""

    def __init__(self, seconds: float, size: int) -> None:
        self._seconds = seconds
        self._size = size
        self._fetches: OrderedDict[str, tuple[asyncio.Future[Any], float]] = OrderedDict()

    async def get(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        held = self._fetches.get(key)
        if held is None or self._stale(*held, now):
            held = (asyncio.ensure_future(fetch()), now)
            self._fetches[key] = held
            self._fetches.move_to_end(key)
            if len(self._fetches) > self._size:
                self._fetches.popitem(last=False)
        return await asyncio.shield(held[0])

    def _stale(self, fetch: asyncio.Future[Any], started: float, now: float) -> bool:
        if fetch.get_loop() is not asyncio.get_running_loop():
            return True
        return fetch.done() and now - started > self._seconds
