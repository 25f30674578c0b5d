"""``orroute serve`` and ``orroute keys``: defined with the gateway (``orroute.gateway.cli``)."""

from __future__ import annotations

from ..gateway.cli import keys, serve

__all__ = ["keys", "serve"]
