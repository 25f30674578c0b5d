"""One upstream provider's core client for the tests that talk to a provider directly (a
FakeAnthropic, an OpenAI-compatible fake): the set-up the wire, hostile-upstream and JSON-text
tests share."""

from __future__ import annotations

from typing import Any

from orroute import _core


def provider(kind: str, base_url: str, *, keys: list[str] | None = None, **fields: Any) -> Any:
    """A ``_core.ProviderClient`` of ``kind`` (also its name) at ``base_url`` with ``keys``, no
    retries, and ``fields`` set on its ``ProviderConfig``."""
    cfg = _core.ProviderConfig()
    cfg.name = kind
    cfg.kind = kind
    cfg.base_url = base_url
    cfg.api_keys = keys or []
    cfg.max_retries = 0
    for k, v in fields.items():
        setattr(cfg, k, v)
    return _core.ProviderClient(cfg)
