"""The architecture document's API: ``APIConfig``, ``ProviderType``, ``APIManager`` and
``APIRouter`` (``register_provider``, ``await chat_completion(messages)``, ``await
route_request(messages)`` with ``data["routing_info"]["provider_used"]``).

A thin shape over :class:`orroute.AIModelManager`: registered configs become the engine's
providers (``orroute.provider_config.ProviderSettings``) and their models its fallback chain, so
routing, failover between providers, breakers, rate limits, exact per-provider pricing, budgets
and the ledger are the engine's. There is no second router here.

>>> cfg = APIConfig(provider=ProviderType.OPENROUTER, api_key="sk-or-v1-abc", model="openai/gpt-4o")
>>> cfg  # the key is never shown
APIConfig(provider=<ProviderType.OPENROUTER: 'openrouter'>, model='openai/gpt-4o', ...)
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._exceptions import InvalidArgumentError, OrRouteError
from .task import Task

__all__ = ["APIConfig", "APIManager", "APIResponse", "APIRouter", "ProviderType"]


class ProviderType(str, enum.Enum):
    """The provider kinds the engine speaks (docs/providers.md)."""

    OPENROUTER = "openrouter"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"  # Google's OpenAI-compatible endpoint
    AZURE = "azure"
    GROQ = "groq"
    TOGETHER = "together"
    OLLAMA = "ollama"
    VLLM = "vllm"
    OPENAI_COMPATIBLE = "openai_compatible"


@dataclass(repr=False)
class APIConfig:
    """One provider: its kind, key, default model (the provider's own name for it or the router's
    id) and request settings. ``priority``: failover order (lower first; default: registration
    order); ``weight``: its share when its model is balanced (``APIRouter(strategy=...)``)."""

    provider: ProviderType | str
    api_key: str | None = None
    model: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    base_url: str | None = None
    timeout: float | None = None
    priority: int | None = None
    weight: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None  # unique provider name (default: the kind)

    def __post_init__(self) -> None:
        try:
            self.provider = ProviderType(self.provider)
        except ValueError:
            raise InvalidArgumentError(f"unknown provider type {self.provider!r}") from None

    def __repr__(self) -> str:
        return f"APIConfig(provider={self.provider!r}, model={self.model!r}, ...)"

    @property
    def kind(self) -> str:
        return ProviderType(self.provider).value

    def router_model(self) -> str:
        """The router's id for the model: as given when it names its author ("openai/gpt-4o"),
        else the provider's model under its author ("gpt-4o" at OpenAI -> "openai/gpt-4o")."""
        if "/" in self.model or self.kind == "openrouter":
            return self.model
        author = {"anthropic": "anthropic", "gemini": "google"}.get(self.kind, "openai")
        return f"{author}/{self.model}"


@dataclass
class APIResponse:
    """What a call returns: ``success``, the completion as ``data`` (OpenAI shape, plus
    ``routing_info``), its exact ``cost`` (USD, Decimal) and ``tokens_used``; ``error`` when it
    failed (then ``data`` is empty and nothing was charged beyond what the ledger shows)."""

    success: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: Decimal = Decimal(0)
    tokens_used: int = 0
    provider: str = ""
    model: str = ""
    latency: float = 0.0


class APIManager:
    """Several providers behind one engine. ``manager_options`` go to
    :class:`orroute.AIModelManager` (``ledger``, default an in-memory one; ``budget``,
    ``strategy``, ...)."""

    def __init__(self, **manager_options: Any) -> None:
        self._options = manager_options
        self._configs: list[APIConfig] = []
        self._manager: Any = None

    def register_provider(self, config: APIConfig) -> None:
        """Adds a provider; the next call uses it (the engine is rebuilt with every provider)."""
        names = {self._name(c) for c in self._configs}
        if self._name(config) in names:
            raise InvalidArgumentError(f"provider {self._name(config)!r} is already registered "
                                       "(give the config a name)")
        self._configs.append(config)
        self._close()

    @property
    def providers(self) -> list[str]:
        return [self._name(c) for c in self._configs]

    @staticmethod
    def _name(config: APIConfig) -> str:
        return config.name or config.kind

    def _providers(self) -> Any:
        from .provider_config import ProvidersConfig, ProviderSettings

        settings = []
        model_map: dict[str, dict[str, str]] = {}
        for i, c in enumerate(self._configs):
            from . import _core

            settings.append(ProviderSettings(
                name=self._name(c), kind=c.kind,
                base_url=(c.base_url or "").rstrip("/") or _core.default_base_url(c.kind),
                api_keys=(c.api_key,) if c.api_key else (),
                headers=tuple(c.headers.items()),
                priority=c.priority if c.priority is not None else i,
                weight=c.weight, timeout=c.timeout))
            if c.model and c.kind != "openrouter":
                model_map.setdefault(c.router_model(), {})[self._name(c)] = c.model
        ordered = sorted(settings, key=lambda s: s.priority)
        return ProvidersConfig(tuple(ordered), model_map, self._groups())

    def _groups(self) -> tuple[Any, ...]:
        return ()

    def _underlying_manager(self) -> Any:
        if self._manager is None:
            if not self._configs:
                raise InvalidArgumentError("register a provider first (APIManager.register_provider)")
            from .manager import AIModelManager

            models = list(dict.fromkeys(c.router_model() for c in
                                        sorted(self._configs, key=lambda c: c.priority or 0) if c.model))
            # a ledger by default (in memory): every call's exact cost is tracked
            options = {"fallbacks": models, "refresh_catalog": False, "ledger": ":memory:",
                       **self._options}
            own = next((c for c in self._configs if c.kind == "openrouter"), None)
            if own is not None:
                options.setdefault("api_key", own.api_key)
                if own.base_url:
                    options.setdefault("base_url", own.base_url)
            self._manager = AIModelManager(providers=self._providers(), **options)
        return self._manager

    @property
    def manager(self) -> Any:
        """The :class:`orroute.AIModelManager` underneath (budgets, ledger, metrics)."""
        return self._underlying_manager()

    def _task(self, messages: Sequence[Mapping[str, Any]] | str, config: APIConfig | None,
              overrides: dict[str, Any]) -> Task:
        params: dict[str, Any] = {}
        max_tokens = overrides.pop("max_tokens", None)
        if config is not None:
            if config.temperature is not None:
                params["temperature"] = config.temperature
            if max_tokens is None:
                max_tokens = config.max_tokens
        params.update(overrides)
        return Task(messages=messages, max_tokens=max_tokens, params=params)

    async def _call(self, messages: Sequence[Mapping[str, Any]] | str, config: APIConfig | None,
                    model: str | None, overrides: dict[str, Any]) -> APIResponse:
        started = time.perf_counter()
        try:
            task = self._task(messages, config, overrides)
            result = await self._underlying_manager().execute_task(task, model=model)
        except OrRouteError as e:
            return APIResponse(success=False, error=str(e), latency=time.perf_counter() - started)
        data = dict(result.response)
        provider = result.provider or (self._configs[0].name or "openrouter")
        data["routing_info"] = {
            "provider_used": provider,
            "model_used": result.model,
            "provider_model": result.provider_model or result.model,
            "attempts": [{"model": a.model, "error": a.error} for a in result.attempts],
            "candidates": list(result.candidates),
        }
        return APIResponse(success=True, data=data, cost=result.cost,
                           tokens_used=int(result.usage["total_tokens"]), provider=provider,
                           model=result.model, latency=time.perf_counter() - started)

    async def chat_completion(self, messages: Sequence[Mapping[str, Any]] | str, *,
                              model: str | None = None, **params: Any) -> APIResponse:
        """One completion: the first registered provider's model (or ``model``, the router's id),
        failing over to the same model at the other providers, then to the other registered
        models. ``params`` (temperature, max_tokens, ...) override the config's."""
        config = self._configs[0] if self._configs else None
        return await self._call(messages, config, model, dict(params))

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._manager is not None:
            closer = getattr(self._manager, "close", None)
            if closer is not None:
                closer()
            self._manager = None


class APIRouter(APIManager):
    """Routes each request over the registered providers: by priority (failover), or with
    ``strategy`` (``round_robin``, ``weighted``, ``least_busy``, ``lowest_latency``) across the
    providers serving the same model; ``failover`` ``immediate`` or ``gradual``."""

    def __init__(self, *, strategy: str | None = None, failover: str = "immediate",
                 **manager_options: Any) -> None:
        super().__init__(**manager_options)
        self._strategy = strategy
        self._failover = failover

    def _groups(self) -> tuple[Any, ...]:
        if self._strategy is None:
            return ()
        from .provider_config import ModelGroupSettings

        by_model: dict[str, list[tuple[str, int]]] = {}
        for c in self._configs:
            if c.model:
                by_model.setdefault(c.router_model(), []).append((self._name(c), c.weight))
        return tuple(ModelGroupSettings(model=m, strategy=self._strategy, failover=self._failover,
                                        deployments=tuple(d)) for m, d in by_model.items()
                     if len(d) > 1)

    async def route_request(self, messages: Sequence[Mapping[str, Any]] | str, **params: Any
                            ) -> APIResponse:
        """One request over every registered provider and model; ``data["routing_info"]``
        says which provider answered."""
        return await self._call(messages, self._configs[0] if self._configs else None, None,
                                dict(params))
