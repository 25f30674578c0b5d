"""Gives the engine its providers (``orroute.provider_config``'s settings): the engine's own
endpoint is the OpenRouter provider (or the manager's ``base_url``), every other provider is added
with its own prices, read from LiteLLM's price table (a copy of its Anthropic, OpenAI and Gemini
entries ships in ``orroute/data/provider_prices.json``; pass another table to price more).

Only shapes values: which candidate goes where, failover and balancing, pricing and the ledger's
provider tag are the engine's (``cpp/orroute/engine/provider_routes.*``, ``routed_prices.*``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from . import _core
from .provider_config import ProvidersConfig

__all__ = ["configure_providers"]


@cache
def _bundled_prices() -> str:
    return (Path(__file__).parent / "data" / "provider_prices.json").read_text(encoding="utf-8")


def _prices_text(prices: str | Path | None) -> str:
    if prices is None:
        return _bundled_prices()
    text = str(prices)
    if text.lstrip().startswith("{"):
        return text
    return Path(prices).read_text(encoding="utf-8")


def configure_providers(cfg: Any, providers: ProvidersConfig, prices: str | Path | None = None) -> None:
    """Adds ``providers`` to the engine config ``cfg`` (an ``_core.EngineConfig``).

    The first OpenRouter-kind provider is the engine's own endpoint: its name and priority are
    given to it, and its base URL and keys replace the config's when it has them. ``prices``: a
    LiteLLM price table (path or JSON text) for the other providers; default: the bundled copy.
    """
    table = _prices_text(prices)
    own = next((p for p in providers.providers if p.kind == "openrouter"), None)
    if own is not None:
        cfg.provider_name = own.name
        cfg.provider_priority = own.priority
        if own.base_url:
            cfg.base_url = own.base_url.rstrip("/")
        if own.api_keys:
            cfg.api_keys = list(own.api_keys)
    books: dict[str, Any] = {}
    for p in providers.providers:
        if p is own:
            continue
        core = p.to_core()
        source = core.litellm_provider
        if source not in books:
            books[source] = (_core.ProviderPrices.from_litellm_json(table, source) if source
                             else _core.ProviderPrices.from_litellm_json("{}", "none"))
        cfg.add_provider(core, books[source])
    for model, per in providers.model_map.items():
        for provider, native in per.items():
            cfg.set_model_name(model, provider, native)
    for g in providers.groups:
        cfg.add_model_group(g.model, list(g.deployments), strategy=g.strategy, failover=g.failover,
                            ramp_seconds=g.ramp_seconds)
