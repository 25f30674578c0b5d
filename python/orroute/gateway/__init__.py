"""``orroute serve``: an OpenAI-compatible HTTP endpoint that routes through orroute.

Any OpenAI client pointed at the gateway (``base_url="http://host:port/v1"``, ``api_key=<gateway
key>``) gets orroute's model selection, budgets and fallbacks, while the OpenRouter key stays on
the server. It also serves the integration guide's AI service API under ``/api/v1/ai/`` and an
OpenAPI description at ``/openapi.json``. See docs/gateway.md.

Names are imported lazily so that the command line starts fast.
"""

from __future__ import annotations

import importlib

__all__ = [
    "ALIASES",
    "KEY_PREFIX",
    "Gateway",
    "GatewayKey",
    "GatewaySettings",
    "HttpLimits",
    "KeyStore",
    "load_gateway_settings",
]

_LAZY = {
    "ALIASES": ".settings",
    "GatewaySettings": ".settings",
    "load_gateway_settings": ".settings",
    "KEY_PREFIX": ".keys",
    "GatewayKey": ".keys",
    "KeyStore": ".keys",
    "Gateway": ".server",
    "HttpLimits": "orroute._http_limits",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._http_limits import HttpLimits
    from .keys import KEY_PREFIX, GatewayKey, KeyStore
    from .server import Gateway
    from .settings import ALIASES, GatewaySettings, load_gateway_settings


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orroute.gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)  # absolute or relative
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
