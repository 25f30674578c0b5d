"""Gateway keys: what clients of ``orroute serve`` authenticate with.

Keys live in their own table (``gateway_keys``) of the ledger's SQLite file, so one file holds the
spend and who may spend. Only a SHA-256 of each key is stored (keys are 256 random bits, so a
fast hash is enough: there is nothing to brute-force); the key itself is shown once, at creation.
Each key belongs to a project; its budget is the ledger's ``total`` budget for that project, so
every key of a project shares it and the CostTracker enforces it atomically across processes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["KEY_PREFIX", "GatewayKey", "KeyStore"]

KEY_PREFIX = "orr-gw-"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  project TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  revoked_at REAL
)
"""


@dataclass(frozen=True)
class GatewayKey:
    """A gateway key's record (never the key itself). ``id`` is public: it is the start of the
    key (``orr-gw-XXXXXXXX``), enough to recognise and revoke it."""

    id: str
    project: str
    name: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["active"] = self.active
        return d


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """Gateway keys in ``path`` (the ledger's SQLite file). Thread-safe.

    >>> store = KeyStore(":memory:")
    >>> key, rec = store.create("demo")
    >>> store.verify(key).project
    'demo'
    """

    def __init__(self, path: str | Path, *, cache_ttl: float = 0.0) -> None:
        """``cache_ttl``: seconds a verified key is trusted without reading the table again (the
        gateway uses 1 s: a key revoked by another process stops working within that time; one
        revoked through this store stops at once)."""
        self.path = str(path)
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[GatewayKey, float]] = {}
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._parents: list[sqlite3.Connection] = []  # forked child: the parent's, never touched
        self._db = self._connect()
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=30.0)
        db.execute("PRAGMA busy_timeout = 30000")
        return db

    def _here(self) -> tuple[threading.Lock, sqlite3.Connection]:
        """This process's lock and connection. A SQLite connection is not carried across fork()
        (docs/cost.md, "Fork"): in a forked child the first use opens the file again, with a lock
        of its own (the parent's may be held by a thread that is not in the child), and keeps the
        parent's connection unused and unclosed (closing it would act on the parent's file
        state). A ``":memory:"`` store starts empty in the child."""
        if self._pid != os.getpid():
            with _renew:
                if self._pid != os.getpid():
                    self._parents.append(self._db)
                    self._lock = threading.Lock()
                    self._db = self._connect()
                    if self.path == ":memory:":
                        self._db.execute(_SCHEMA)
                    self._cache.clear()
                    self._pid = os.getpid()
        return self._lock, self._db

    def close(self) -> None:
        lock, db = self._here()
        with lock:
            db.close()

    def create(self, project: str, *, name: str = "") -> tuple[str, GatewayKey]:
        """A new key for ``project``: (the key, shown only now; its record)."""
        if not project:
            raise ValueError("a gateway key needs a project")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        rec = GatewayKey(key[: len(KEY_PREFIX) + 8], project, name, time.time(), None)
        lock, db = self._here()
        with lock:
            db.execute(
                "INSERT INTO gateway_keys (id, hash, project, name, created_at) VALUES (?,?,?,?,?)",
                (rec.id, _hash(key), rec.project, rec.name, rec.created_at),
            )
        return key, rec

    def verify(self, key: str) -> GatewayKey | None:
        """The active key's record, or None if ``key`` is unknown or revoked."""
        if not key.startswith(KEY_PREFIX):
            return None
        h = _hash(key)
        if self.cache_ttl > 0:
            hit = self._cache.get(h)
            if hit is not None and time.monotonic() - hit[1] < self.cache_ttl:
                return hit[0]
        lock, db = self._here()
        with lock:
            row = db.execute(
                "SELECT id, project, name, created_at, revoked_at FROM gateway_keys "
                "WHERE hash = ? AND revoked_at IS NULL",
                (h,),
            ).fetchone()
        if row is None:
            self._cache.pop(h, None)
            return None
        rec = GatewayKey(*row)
        if self.cache_ttl > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[h] = (rec, time.monotonic())
        return rec

    def list(self, *, project: str | None = None, include_revoked: bool = False) -> list[GatewayKey]:
        """Key records, oldest first."""
        sql = "SELECT id, project, name, created_at, revoked_at FROM gateway_keys WHERE 1=1"
        args: list[Any] = []
        if project is not None:
            sql += " AND project = ?"
            args.append(project)
        if not include_revoked:
            sql += " AND revoked_at IS NULL"
        lock, db = self._here()
        with lock:
            rows = db.execute(sql + " ORDER BY created_at, id", args).fetchall()
        return [GatewayKey(*r) for r in rows]

    def revoke(self, key_or_id: str) -> bool:
        """Revokes a key given by its id (or the whole key). False if no active key matched."""
        lock, db = self._here()
        with lock:
            cur = db.execute(
                "UPDATE gateway_keys SET revoked_at = ? WHERE (id = ? OR hash = ?) "
                "AND revoked_at IS NULL",
                (time.time(), key_or_id, _hash(key_or_id)),
            )
            self._cache.clear()
        return cur.rowcount > 0


_renew = threading.Lock()  # a forked child's first use of a store opens it again under this


def _new_renew_lock() -> None:  # a fork may come while another thread holds it
    global _renew
    _renew = threading.Lock()


os.register_at_fork(after_in_child=_new_renew_lock)


def budget_text(limit: Decimal | None) -> str:
    return "none" if limit is None else f"${limit.normalize():f}"
