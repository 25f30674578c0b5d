"""Provider settings: which upstreams the router may use, their keys, and how one model is shared.

Read from the same places as :func:`orroute.config.load_settings` (it resolves the TOML file and the
``.env`` file; this module reads their provider sections):

- TOML ``[providers.<name>]`` tables: ``kind`` (``openrouter``, ``openai``, ``anthropic``,
  ``gemini``, ``azure``, ``groq``, ``together``, ``ollama``, ``vllm``, ``openai_compatible``;
  default: the table name), ``base_url``, ``api_key_env`` (the variable holding the key or a
  comma-separated list of keys; default per kind, e.g. ``ANTHROPIC_API_KEY``), ``headers``,
  ``api_version``, ``priority``, ``weight``, ``timeout``, ``max_retries``, ``default_max_tokens``.
  Keys are never read from the TOML file itself.
- TOML ``[model_map."<openrouter id>"]``: the provider's own name for a model, per provider
  (overrides the names derived from the catalog and price lists).
- TOML ``[model_groups."<openrouter id>"]``: ``strategy`` (``round_robin``, ``weighted``,
  ``least_busy``, ``lowest_latency``), ``failover`` (``immediate``, ``gradual``), ``ramp_seconds``,
  ``deployments = [{provider = "...", weight = N}, ...]``.
- Environment (or ``.env``) without a TOML section: ``ORROUTE_PROVIDERS=openrouter,anthropic``
  enables those kinds with their defaults; ``<NAME>_BASE_URL`` (e.g. ``ANTHROPIC_BASE_URL``)
  overrides a provider's base URL.

Kind names, URLs, headers and numbers are checked by the C++ core (``validate_provider``), the one
place the engine's rules live; this module only shapes the values.

>>> cfg = parse_providers({}, {"ORROUTE_PROVIDERS": "anthropic",
...                            "ANTHROPIC_API_KEY": "sk-ant-api03-0123456789abcdef"})
>>> cfg.providers[0].kind, cfg.providers[0].masked_keys
('anthropic', ['sk-ant-ap...cdef'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _core
from ._exceptions import OrRouteError
from .config import ConfigError, Settings, _read_toml, mask_key, provider_environment

__all__ = [
    "DEFAULT_KEY_ENV",
    "ModelGroupSettings",
    "ProviderSettings",
    "ProvidersConfig",
    "load_providers",
    "parse_providers",
]

# kind -> the variable its key is read from unless `api_key_env` says otherwise
DEFAULT_KEY_ENV: dict[str, str | None] = {
    "openrouter": "OPENROUTER_API_KEY",
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "groq": "GROQ_API_KEY",
    "together": "TOGETHER_API_KEY",
    "ollama": None,
    "vllm": None,
    "openai_compatible": None,
}
_PROVIDER_KEYS = frozenset(
    {
        "kind",
        "base_url",
        "api_key_env",
        "headers",
        "api_version",
        "priority",
        "weight",
        "timeout",
        "max_retries",
        "default_max_tokens",
    }
)
_GROUP_KEYS = frozenset({"strategy", "failover", "ramp_seconds", "deployments"})


@dataclass(frozen=True)
class ProviderSettings:
    """One provider as configured. ``api_keys`` are never shown by ``repr``."""

    name: str
    kind: str
    base_url: str
    api_keys: tuple[str, ...] = field(repr=False)
    key_source: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    api_version: str = ""
    priority: int = 0
    weight: int = 1
    timeout: float | None = None
    max_retries: int = 2
    default_max_tokens: int = 4096

    @property
    def masked_keys(self) -> list[str]:
        return [mask_key(k) or "***" for k in self.api_keys]

    def to_core(self) -> Any:
        """The C++ ``ProviderConfig`` (validated there)."""
        cfg = _core.ProviderConfig()
        cfg.name = self.name
        cfg.kind = self.kind
        cfg.base_url = self.base_url
        cfg.api_keys = list(self.api_keys)
        cfg.headers = list(self.headers)
        cfg.api_version = self.api_version
        cfg.priority = self.priority
        cfg.weight = self.weight
        cfg.max_retries = self.max_retries
        if self.timeout is not None:
            cfg.timeout = self.timeout
        cfg.default_max_tokens = self.default_max_tokens
        return cfg


@dataclass(frozen=True)
class ModelGroupSettings:
    """How one model's calls are spread over its deployments (providers)."""

    model: str
    strategy: str = "round_robin"
    failover: str = "immediate"
    ramp_seconds: float = 60.0
    deployments: tuple[tuple[str, int], ...] = ()  # (provider name, weight)


@dataclass(frozen=True)
class ProvidersConfig:
    """Every provider (failover order: priority, then as listed), name overrides and groups."""

    providers: tuple[ProviderSettings, ...] = ()
    model_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    groups: tuple[ModelGroupSettings, ...] = ()

    def provider(self, name: str) -> ProviderSettings:
        for p in self.providers:
            if p.name == name:
                return p
        raise KeyError(name)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer")
    return value


def _provider(
    name: str, table: Mapping[str, Any], env: Mapping[str, str], where: str
) -> ProviderSettings:
    unknown = set(table) - _PROVIDER_KEYS
    if unknown:
        hint = (
            " (keys are read from the variable named by api_key_env)"
            if (unknown & {"api_key", "api_keys"})
            else ""
        )
        raise ConfigError(f"{where}: unknown setting {min(unknown)!r}{hint}")
    kind = str(table.get("kind", name))
    if kind not in DEFAULT_KEY_ENV and kind != "openai-compatible":
        raise ConfigError(f"{where}.kind: unknown provider kind {kind!r}")
    kind = kind.replace("-", "_")
    key_env = table.get("api_key_env", DEFAULT_KEY_ENV.get(kind))
    keys: tuple[str, ...] = ()
    if key_env:
        raw = env.get(str(key_env), "")
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    base_url = str(
        table.get("base_url") or env.get(f"{name.upper().replace('-', '_')}_BASE_URL", "")
    )
    headers = table.get("headers", {})
    timeout = table.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise ConfigError(f"{where}.timeout must be a positive number of seconds")
    settings = ProviderSettings(
        name=name,
        kind=kind,
        base_url=base_url,
        api_keys=keys,
        key_source=str(key_env) if keys else None,
        headers=tuple((str(k), str(v)) for k, v in _table(headers, f"{where}.headers").items()),
        api_version=str(table.get("api_version", "")),
        priority=_int(table.get("priority", 0), f"{where}.priority"),
        weight=_int(table.get("weight", 1), f"{where}.weight"),
        timeout=float(timeout) if timeout is not None else None,
        max_retries=_int(table.get("max_retries", 2), f"{where}.max_retries"),
        default_max_tokens=_int(
            table.get("default_max_tokens", 4096), f"{where}.default_max_tokens"
        ),
    )
    try:
        _core.validate_provider(settings.to_core())
    except OrRouteError as e:
        raise ConfigError(f"{where}: {e}") from None
    return settings


def _group(model: str, table: Mapping[str, Any], names: set[str], where: str) -> ModelGroupSettings:
    unknown = set(table) - _GROUP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown setting {min(unknown)!r}")
    deployments = []
    for i, d in enumerate(table.get("deployments") or ()):
        d = _table(d, f"{where}.deployments[{i}]")
        provider = str(d.get("provider", ""))
        if provider not in names:
            raise ConfigError(f"{where}.deployments[{i}]: unknown provider {provider!r}")
        deployments.append((provider, _int(d.get("weight", 1), f"{where}.deployments[{i}].weight")))
    group = ModelGroupSettings(
        model=model,
        strategy=str(table.get("strategy", "round_robin")),
        failover=str(table.get("failover", "immediate")),
        ramp_seconds=float(table.get("ramp_seconds", 60.0)),
        deployments=tuple(deployments),
    )
    try:  # the names and ranges are the balancer's rules
        _core.Balancer(
            list(group.deployments) or [("x", 1)],
            strategy=group.strategy,
            failover=group.failover,
            ramp_seconds=group.ramp_seconds,
        )
    except OrRouteError as e:
        raise ConfigError(f"{where}: {e}") from None
    return group


def parse_providers(
    toml: Mapping[str, Any], env: Mapping[str, str], *, where: str = "config"
) -> ProvidersConfig:
    """Provider settings from a parsed TOML document and an environment (variables already merged
    with the ``.env`` file). Raises ConfigError naming the table and key."""
    providers: list[ProviderSettings] = []
    tables = _table(toml.get("providers", {}), f"{where}: providers")
    for name, table in tables.items():
        providers.append(
            _provider(
                name, _table(table, f"{where}: providers.{name}"), env, f"{where}: providers.{name}"
            )
        )
    if not tables and env.get("ORROUTE_PROVIDERS"):
        for name in (n.strip() for n in env["ORROUTE_PROVIDERS"].split(",")):
            if name:
                providers.append(_provider(name, {}, env, f"ORROUTE_PROVIDERS: {name}"))
    names = {p.name for p in providers}
    if len(names) != len(providers):
        raise ConfigError(f"{where}: a provider name is used twice")
    model_map: dict[str, dict[str, str]] = {}
    for model, per in _table(toml.get("model_map", {}), f"{where}: model_map").items():
        per = _table(per, f"{where}: model_map.{model}")
        for provider, native in per.items():
            if provider not in names:
                raise ConfigError(f"{where}: model_map.{model}: unknown provider {provider!r}")
            model_map.setdefault(model, {})[provider] = str(native)
    groups = tuple(
        _group(
            model,
            _table(t, f"{where}: model_groups.{model}"),
            names,
            f"{where}: model_groups.{model}",
        )
        for model, t in _table(toml.get("model_groups", {}), f"{where}: model_groups").items()
    )
    ordered = sorted(enumerate(providers), key=lambda ip: (ip[1].priority, ip[0]))
    return ProvidersConfig(tuple(p for _, p in ordered), model_map, groups)


def load_providers(settings: Settings, *, env: Mapping[str, str] | None = None) -> ProvidersConfig:
    """The provider settings next to ``settings``: its TOML file's provider tables and its
    ``.env`` file's variables (the process environment wins over ``.env``, as everywhere)."""
    merged = provider_environment(settings, env)
    toml: Mapping[str, Any] = {}
    if settings.config_file is not None:
        toml = _read_toml(Path(settings.config_file))
    return parse_providers(toml, merged, where=str(settings.config_file or "config"))
