"""The gateway's settings: where the upstream is, which ledger, which routes.

The upstream is reached the same way the client does: ``OPENROUTER_API_KEY`` and
``OPENROUTER_BASE_URL`` from the environment, a ``.env`` file, or the config file (top-level
``api_key`` / ``base_url`` / ``ledger``). Gateway options live in the config file's ``[gateway]``
table::

    [gateway]
    host = "0.0.0.0"
    port = 8080
    strategy = "balanced"            # what orroute/auto means
    [gateway.routes]                 # a route name -> models tried in order
    support = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GatewaySettings", "load_gateway_settings", "ALIASES"]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

#: Model names that mean "let orroute choose", and the selector strategy each one uses.
ALIASES: dict[str, str] = {
    "orroute/auto": "balanced",
    "orroute/cheapest": "cost_optimized",
    "orroute/best": "quality_first",
    "orroute/fast": "performance",
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
    strategy: str = "balanced"  # what orroute/auto means
    routes: dict[str, list[str]] = field(default_factory=dict)
    candidates: int = 3  # how many ranked models an alias may fall back over
    fallback_enabled: bool = True
    use_uvloop: bool | None = None
    workers: int = 1
    access_log: bool = False

    def ledger_path(self) -> Path:
        if self.ledger:
            return Path(self.ledger).expanduser()
        from ..cost import default_ledger_path

        return default_ledger_path()


def _read_dotenv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:]
        k, sep, v = line.partition("=")
        if not sep:
            continue
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        out[k.strip()] = v
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_gateway_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> GatewaySettings:
    """Settings from (highest first) ``overrides``, the environment, ``./.env``, the config file
    (``config_file``, else ``$ORROUTE_CONFIG``, else ``./orroute.toml`` if present), defaults."""
    environ = dict(os.environ if env is None else env)
    for k, v in _read_dotenv(Path(environ.get("ORROUTE_ENV_FILE", ".env"))).items():
        environ.setdefault(k, v)
    cfg_path = config_file or environ.get("ORROUTE_CONFIG")
    if cfg_path is None and Path("orroute.toml").is_file():
        cfg_path = "orroute.toml"
    cfg: dict[str, Any] = _read_toml(Path(cfg_path)) if cfg_path else {}
    gw = dict(cfg.get("gateway") or {})
    s = GatewaySettings()
    s.api_key = environ.get("OPENROUTER_API_KEY") or cfg.get("api_key") or None
    s.base_url = environ.get("OPENROUTER_BASE_URL") or cfg.get("base_url") or DEFAULT_BASE_URL
    s.ledger = environ.get("ORROUTE_LEDGER") or cfg.get("ledger") or None
    fb = environ.get("OPENROUTER_FALLBACK_ENABLED", cfg.get("fallback_enabled", True))
    s.fallback_enabled = str(fb).strip().lower() not in ("0", "false", "no", "off")
    s.strategy = str(gw.get("strategy") or environ.get("ORROUTE_STRATEGY") or s.strategy)
    s.host = str(gw.get("host", s.host))
    s.port = int(gw.get("port", s.port))
    s.candidates = int(gw.get("candidates", s.candidates))
    s.workers = int(gw.get("workers", s.workers))
    routes = gw.get("routes") or {}
    if not isinstance(routes, dict):
        raise ValueError(f"{cfg_path}: [gateway.routes] must map route names to model lists")
    for name, models in routes.items():
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if not isinstance(models, list) or not models:
            raise ValueError(f"{cfg_path}: gateway.routes.{name} must be a non-empty model list")
        s.routes[str(name)] = [str(m) for m in models]
    for k, v in overrides.items():
        if v is None:
            continue
        if not hasattr(s, k):
            raise TypeError(f"unknown gateway setting {k!r}")
        setattr(s, k, v)
    return s
