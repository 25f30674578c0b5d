"""The response cache: the same question is not paid for twice.

Two chat requests are the same when, normalised, they ask the same model (or the same routing)
the same messages with the same tools and sampling parameters; requests with ``temperature > 0``
are not cached unless ``allow_sampling=True``. Entries are never shared across projects (a
manager's task ``project``, a gateway key's) nor across a client's API keys. The rule and the stores are in the C++ core
(``cpp/orroute/cache/``); the manager's engine consults the cache before it reserves anything, so
a hit costs $0, holds no budget (only the emergency cutoff refuses it) and is recorded in the ledger with outcome ``"cache_hit"`` and
what it saved (the original call's cost, as the row's ``estimated_cost``). A stream asked for is
replayed from the cached reply.

Switch it on with ``cache=True`` on :class:`orroute.OpenRouter` / :class:`orroute.AIModelManager`
(or a :class:`ResponseCache` for its own limits), or for everything with ``ORROUTE_CACHE=1`` or
``cache = true`` in the config file; ``cache=False`` on a call skips it for that call.

Where entries live: with a manager, next to its ledger (the same SQLite file, or the same Redis
server and prefix for a ``redis://`` ledger); otherwise ``responses.sqlite3`` in orroute's cache
directory (``$ORROUTE_HOME/cache`` or ``~/.cache/orroute``).

>>> manager = orroute.AIModelManager(cache=True)                            # doctest: +SKIP
>>> orroute.cache.ResponseCache().stats().hit_rate                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _core
from ._exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["CacheStats", "ResponseCache", "default_cache_location"]

DEFAULT_TTL = 24 * 3600.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 256 << 20


def default_cache_location() -> str:
    """``responses.sqlite3`` in orroute's cache directory (``orroute.config.cache_dir()``;
    created when missing)."""
    from .config import cache_dir

    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    return str(base / "responses.sqlite3")


@dataclass(frozen=True)
class CacheStats:
    """What the cache holds and has done since it was created or last cleared.

    ``saved`` is the sum of the hits' original costs in USD, to the nano-dollar (the ledger's
    ``cache_hit`` rows hold each exactly)."""

    entries: int
    bytes: int
    hits: int
    misses: int
    stores: int
    evictions: int
    saved: Decimal

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"entries": self.entries, "bytes": self.bytes, "hits": self.hits,
                "misses": self.misses, "hit_rate": round(self.hit_rate, 4),
                "stores": self.stores, "evictions": self.evictions, "saved": str(self.saved)}


class ResponseCache:
    """A response cache at ``location``: a SQLite file or a ``redis://`` URL (default:
    :func:`default_cache_location`).

    Args:
        ttl: seconds an entry is served.
        max_entries, max_bytes: beyond these the least recently used entries are evicted.
        allow_sampling: also cache requests with ``temperature > 0``.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None, *,
                 ttl: float = DEFAULT_TTL, max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_bytes: int = DEFAULT_MAX_BYTES, allow_sampling: bool = False) -> None:
        loc = str(location) if location is not None else default_cache_location()
        limits = _core.CacheLimits()
        if not ttl >= 1:
            raise InvalidArgumentError(f"cache ttl must be >= 1 second, got {ttl!r}")
        limits.ttl_s = int(min(ttl, 2**62))  # +inf: the core's longest ttl (cache_expiry)
        limits.max_entries = int(max_entries)
        limits.max_bytes = int(max_bytes)
        self._location = loc
        self.allow_sampling = bool(allow_sampling)
        self._core = _core.ResponseCache(loc, limits)

    def __repr__(self) -> str:  # a redis:// URL may hold a password
        from .config import redact_ledger_url

        return f"ResponseCache({redact_ledger_url(self._location)!r})"

    @property
    def location(self) -> str:
        return self._location

    def key(self, request: Mapping[str, Any] | str, scope: str) -> str | None:
        """The key of a chat request body under ``scope`` (the endpoint, and the routing), or
        None when it is not cacheable (e.g. ``temperature > 0``)."""
        text = request if isinstance(request, str) else json.dumps(request, ensure_ascii=False)
        k = _core.cache_key(text, scope, self.allow_sampling)
        return k.key if k.cacheable else None

    def get(self, key: str) -> Any:
        """The cached reply (``completion_json``, ``model``, tokens, ``cost``) or None."""
        return self._core.get(key)

    def put(self, key: str, completion: Mapping[str, Any] | str, *, model: str,
            prompt_tokens: int = 0, completion_tokens: int = 0,
            cost: Decimal | None = None) -> bool:
        """Stores a completion (what the call cost is what a hit will save). False when the
        reply is above the size limit."""
        r = _core.CachedReply()
        r.completion_json = (completion if isinstance(completion, str)
                             else json.dumps(completion, ensure_ascii=False))
        r.model = model
        r.prompt_tokens = int(prompt_tokens)
        r.completion_tokens = int(completion_tokens)
        r.cost = cost if cost is not None and cost >= 0 else Decimal(0)
        return bool(self._core.put(key, r))

    def stats(self) -> CacheStats:
        s = self._core.stats()
        return CacheStats(entries=s.entries, bytes=s.bytes, hits=s.hits, misses=s.misses,
                          stores=s.stores, evictions=s.evictions,
                          saved=Decimal(s.saved_nanos).scaleb(-9))

    def clear(self) -> int:
        """Removes every entry and resets the counters; returns how many entries there were."""
        return int(self._core.clear())

    # -- shared by the client and the manager ----------------------------------------------------
    @staticmethod
    def replay(completion_json: str) -> list[dict[str, Any]]:
        """The ``chat.completion.chunk`` dicts a stream of this completion would have sent."""
        return [json.loads(c) for c in _core.replay_chunks(completion_json)]


def resolve_cache(cache: bool | str | os.PathLike[str] | ResponseCache | None, *,
                  settings: Settings | None = None,
                  next_to: str | None = None) -> ResponseCache | None:
    """The cache a client or manager uses: ``None`` follows the settings' ``cache``
    (``ORROUTE_CACHE`` / the config file's ``cache`` key); ``True`` opens one next to the ledger
    ``next_to`` (a file or redis:// URL; else the default location); a string or path is a
    location; a :class:`ResponseCache` is used as it is."""
    if isinstance(cache, ResponseCache):
        return cache
    if cache is None:
        cache = bool(settings is not None and settings.cache)
    if cache is False:
        return None
    if cache is True:
        usable = next_to not in (None, ":memory:")
        return ResponseCache(next_to if usable else None)
    return ResponseCache(cache)
