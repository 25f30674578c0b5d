"""Limits and timeouts of orroute's HTTP/1.1 server (the gateway and FakeOpenRouter).

Every byte a client sends is hostile: these bound what one connection may hold (header bytes and
count, body bytes, requests queued behind a busy one) and how long it may take (to send its
headers, its whole request, to read a response), and how many connections a server keeps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["HttpLimits"]

_RESERVED_FILES = 64  # beyond those open at start: ledger, logs, the engine's eventfds, resolver


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP server accepts. Sizes in bytes, times in seconds.

    Attributes:
        max_header_bytes: request line plus header fields; more is answered 431.
        max_headers: header fields per request; more is answered 431.
        max_body_bytes: a request body (Content-Length or chunked, counted as it arrives);
            more is answered 413 without reading the rest.
        header_timeout: from a request's first byte until its headers are complete; 408 after.
        request_timeout: from a request's first byte until its body is complete; 408 after.
        idle_timeout: a keep-alive connection with no request in progress is closed after this.
        write_timeout: a response the client does not read for this long is aborted.
        max_connections: open connections; at the cap a new one evicts the connection that has
            waited longest without a request in progress, or is answered 503 if every one is busy.
        max_pipeline: complete requests queued behind the one being answered before reading
            from the connection pauses.
    """

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout: float = 10.0
    request_timeout: float = 60.0
    idle_timeout: float = 75.0
    write_timeout: float = 60.0
    max_connections: int = 4096
    max_pipeline: int = 16

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"HttpLimits.{f.name} must be a positive number, got {value!r}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> HttpLimits:
        """Limits from a config table (unknown names raise ValueError)."""
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown HTTP limit {min(unknown)!r}")
        out: dict[str, Any] = {}
        for name, value in values.items():
            out[name] = float(value) if name.endswith("timeout") else int(value)
        return cls(**out)

    def tick(self) -> float:
        """How often the server checks deadlines: a quarter of the shortest timeout, within
        [0.05, 1] seconds (timeouts fire at most a quarter late)."""
        shortest = min(self.header_timeout, self.request_timeout, self.idle_timeout,
                       self.write_timeout)
        return min(1.0, max(0.05, shortest / 4))

    def fitted_to_open_files(self, per_connection: int) -> HttpLimits:
        """These limits with ``max_connections`` no more than the process's open-file limit
        leaves room for, at ``per_connection`` descriptors each (the gateway's: the client's
        socket and an upstream one), beyond those open now and a reserve; the soft limit is
        raised toward the hard one first, as far as needed. Past the open-file limit a
        connection cannot even be accepted, so the cap's eviction never runs: a few hundred idle
        connections (the usual soft limit is 1,024) would lock every new client out."""
        try:
            import resource
        except ImportError:  # pragma: no cover - Windows: no such limit
            return self
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        opened = len(os.listdir("/dev/fd")) if os.path.isdir("/dev/fd") else 0
        need = opened + _RESERVED_FILES + per_connection * self.max_connections
        if soft == resource.RLIM_INFINITY or soft >= need:
            return self
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):  # macOS refuses more than OPEN_MAX
            pass
        room = (soft - opened - _RESERVED_FILES) // per_connection
        return self if room >= self.max_connections else replace(self, max_connections=max(1, room))
