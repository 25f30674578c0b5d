"""The gateway's settings: where the upstream is, which ledger, which routes.

The upstream is reached the same way the client does (``orroute.config.load_settings``:
``OPENROUTER_API_KEY`` and ``OPENROUTER_BASE_URL`` from the environment, a ``.env`` file, or the
config file) and the ledger is the one every command shares. Gateway options live in the config
file's ``[gateway]`` table::

    [gateway]
    host = "0.0.0.0"
    port = 8080
    strategy = "balanced"            # what orroute/auto means
    max_retries = 2                  # the router's retries of one model before falling back
    [gateway.routes]                 # a route name -> models tried in order
    support = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]
    [gateway.limits]                 # rate limits per model id (or "key"), per minute
    "openai/gpt-4o" = {limit_requests = 60, limit_input = 100000}
    [gateway.breaker]                # circuit breaker: failures, failure_rate, cooldown, ...
    cooldown = 30
    [gateway.cascade]                # what orroute/cascade runs (gateway/cascade.py)
    stages = ["mistralai/mistral-7b-instruct", "openai/gpt-4o"]
    verifiers = ["arithmetic"]
    [gateway.http]                   # HttpLimits: sizes, timeouts, connection cap
    max_body_bytes = 8388608
    idle_timeout = 30
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._http_limits import HttpLimits

__all__ = ["ALIASES", "GatewaySettings", "load_gateway_settings"]

from ..config import DEFAULT_BASE_URL  # the core owns the default

#: Model names that mean "let orroute choose", and the selector strategy each one uses.
ALIASES: dict[str, str] = {
    "orroute/auto": "balanced",
    "orroute/cheapest": "cost_optimized",
    "orroute/best": "quality_first",
    "orroute/fast": "performance",
    "orroute/cascade": "cascade",  # verify the cheap answer, escalate (gateway/cascade.py)
}


@dataclass
class GatewaySettings:
    """Everything ``orroute serve`` needs. ``api_key`` is the upstream (OpenRouter) key: it is
    kept out of the repr and never sent to a client."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    ledger: str | None = None  # None: the CostTracker's default ledger
    router_state: str | None = None  # "redis://...": breakers and limits shared with other hosts
    strategy: str = "balanced"  # what orroute/auto means
    routes: dict[str, list[str]] = field(default_factory=dict)
    candidates: int = 3  # how many ranked models an alias may fall back over
    fallback_enabled: bool = True
    use_uvloop: bool | None = None
    workers: int = 1
    access_log: bool = False
    key_cache_ttl: float = 1.0  # seconds a verified gateway key is trusted before re-reading
    # the router (orroute.AIModelManager's arguments of the same names)
    max_retries: int = 2  # retries of one model on transient errors before falling back
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id / "key" -> limits
    breaker: dict[str, Any] = field(default_factory=dict)  # failures, failure_rate, cooldown, ...
    max_admission_wait: float = 5.0  # seconds to wait for a rate limit before the next model
    timeout: float = 600.0  # seconds for a completion (first byte and idle gap for a stream)
    config: Any = field(default=None, repr=False)  # the orroute.config.Settings read (if any)
    stream_queue: int = 64  # chunks buffered per stream before the upstream transfer is paused
    http: HttpLimits = field(default_factory=HttpLimits)  # header/body sizes, timeouts, conn cap
    # several providers (orroute.provider_config.ProvidersConfig: [providers.*] tables or
    # ORROUTE_PROVIDERS); None: the one upstream above
    providers: Any = None
    cascade: dict[str, Any] = field(default_factory=dict)  # orroute/cascade: stages, verifiers

    def api_keys(self) -> list[str]:
        """The upstream key(s): ``api_key`` may hold several, comma-separated (rotated)."""
        return [k.strip() for k in (self.api_key or "").split(",") if k.strip()]

    def ledger_path(self) -> Path | str:
        if self.ledger:
            if self.ledger.startswith(("redis://", "rediss://")):
                from ..config import LedgerURL

                return LedgerURL(self.ledger)  # a Redis ledger (password hidden when formatted)
            return Path(self.ledger).expanduser()
        from ..cost import default_ledger_path

        return default_ledger_path()


def load_gateway_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    env_file: str | os.PathLike[str] | bool | None = None,
    **overrides: Any,
) -> GatewaySettings:
    """The gateway's settings. The upstream key and URL, strategy, fallback switch and ledger come
    from :func:`orroute.config.load_settings` (environment, ``.env``, config file, defaults: the
    same answer every orroute command gets); the ``[gateway]`` table of the same config file adds
    host, port, routes, candidates and workers. ``overrides`` (None values ignored) win.

    Raises:
        orroute.config.ConfigError (a ValueError): unreadable file or invalid value.
    """
    from ..config import ConfigError, _read_toml, load_settings

    base = load_settings(config_file=config_file, env=env, env_file=env_file)
    s = GatewaySettings()
    s.config = base
    s.api_key = base.api_key
    s.base_url = base.base_url
    s.ledger = str(base.ledger_path)
    s.router_state = str(base.router_state) if base.router_state else None
    s.strategy = base.strategy
    s.fallback_enabled = base.fallback_enabled
    from ..provider_config import load_providers

    providers = load_providers(base, env=env)
    s.providers = providers if providers.providers else None
    cfg_path = base.config_file
    gw: dict[str, Any] = {}
    if cfg_path is not None:
        gw = dict(_read_toml(Path(cfg_path)).get("gateway") or {})
    where = f"{cfg_path}: gateway"
    unknown = set(gw) - {"host", "port", "strategy", "routes", "candidates", "workers",
                         "max_retries", "limits", "breaker", "max_admission_wait", "timeout",
                         "stream_queue", "http", "cascade"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {min(unknown)!r}")
    try:
        s.strategy = str(gw.get("strategy") or s.strategy)
        s.host = str(gw.get("host", s.host))
        s.port = int(gw.get("port", s.port))
        s.candidates = int(gw.get("candidates", s.candidates))
        s.workers = int(gw.get("workers", s.workers))
        s.max_retries = int(gw.get("max_retries", s.max_retries))
        s.max_admission_wait = float(gw.get("max_admission_wait", s.max_admission_wait))
        s.timeout = float(gw.get("timeout", s.timeout))
        s.stream_queue = int(gw.get("stream_queue", s.stream_queue))
        for name in ("limits", "breaker"):
            value = gw.get(name) or {}
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{name} must be a table")
            setattr(s, name, dict(value))
        http = gw.get("http") or {}
        if not isinstance(http, dict):
            raise ConfigError(f"{where}.http must be a table")
        s.http = HttpLimits.from_mapping(http)
        s.cascade = _cascade_table(gw.get("cascade") or {}, f"{where}.cascade")
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None
    routes = gw.get("routes") or {}
    if not isinstance(routes, dict):
        raise ConfigError(f"{where}.routes must map route names to model lists")
    for name, models in routes.items():
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not models:
            raise ConfigError(f"{where}.routes.{name} must be a non-empty list of model ids")
        s.routes[str(name)] = [str(m) for m in models]
    for k, v in overrides.items():
        if v is None:
            continue
        if not hasattr(s, k):
            raise TypeError(f"unknown gateway setting {k!r}")
        setattr(s, k, str(v) if k == "ledger" else v)
    return s


def _cascade_table(table: Any, where: str) -> dict[str, Any]:
    """``[gateway.cascade]``: ``stages`` (model ids, cheapest first) and ``verifiers`` (names
    registered in ``orroute.verify``), checked when the file is read."""
    from ..config import ConfigError

    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - {"stages", "verifiers"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {min(unknown)!r}")
    out: dict[str, Any] = {}
    for name in ("stages", "verifiers"):
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}.{name} must be a list of names")
        out[name] = list(value)
    if len(set(out["stages"])) != len(out["stages"]):
        raise ConfigError(f"{where}.stages names a model twice")
    if out["verifiers"]:
        from ..verify import verifier_names

        bad = sorted(set(out["verifiers"]) - set(verifier_names()))
    else:
        bad = []
    if bad:
        raise ConfigError(f"{where}.verifiers: unknown verifier {bad[0]!r}")
    return out
