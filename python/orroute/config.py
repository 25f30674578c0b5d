"""Settings: where orroute finds its key, endpoint, preferences, budgets, limits and ledger.

Every component (the client, the manager, the gateway, the command line) calls
:func:`load_settings` and gets the same answer. Sources, highest precedence first:

1. ``overrides`` passed by the caller (the command line's flags);
2. the process environment (``OPENROUTER_API_KEY``, ``OPENROUTER_BASE_URL``,
   ``OPENROUTER_PREFERRED_MODEL``, ``OPENROUTER_FALLBACK_ENABLED``,
   ``OPENROUTER_COST_OPTIMIZATION``, ``LOG_LEVEL``, ``ORROUTE_STRATEGY``, ``ORROUTE_PROJECT``,
   ``ORROUTE_LEDGER``, ``ORROUTE_CACHE``);
3. a ``.env`` file (``./.env`` unless ``env_file`` / ``ORROUTE_ENV_FILE`` names another); it never
   overrides a variable that is already set in the environment;
4. the TOML config file (``config_file``, else ``ORROUTE_CONFIG``, else ``./orroute.toml`` when it
   exists, else ``$ORROUTE_HOME/config.toml`` when it exists) — the only place for budgets, rate
   limits and fallback lists beyond a comma-separated variable;
5. built-in defaults.

``ORROUTE_HOME`` (default: the user data directory, ``~/.local/share/orroute`` on Linux) holds the
default config file (``config.toml``) and ledger (``ledger.sqlite3``, as ``orroute.CostTracker()``
uses). It is itself read from the environment or the ``.env`` file.

>>> s = load_settings(env={"OPENROUTER_API_KEY": "sk-or-v1-0123456789abcdef"}, env_file=False)
>>> s.masked_api_key
'sk-or-v1-...cdef'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import _core
from ._exceptions import InvalidArgumentError, ParseError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_VARS",
    "GUIDE_MODEL_ORDER",
    "STRATEGIES",
    "BudgetConfig",
    "ConfigError",
    "RateLimitConfig",
    "Settings",
    "apply_log_level",
    "cache_dir",
    "default_home",
    "default_ledger_path",
    "load_settings",
    "mask_key",
    "output_form",
    "parse_env_file",
    "runtime_settings",
]

DEFAULT_BASE_URL: str = _core.DEFAULT_BASE_URL  # the core owns the default

# The integration guide's preference order (bundled catalog ids; the core owns the list: it is
# also the engine's last resort). A suggestion written by `config init`; the default fallback list
# is empty, which lets the selector rank the candidates for each task.
GUIDE_MODEL_ORDER: tuple[str, ...] = tuple(_core.default_fallback_order())

STRATEGIES = ("cost_optimized", "balanced", "performance", "quality_first")
_PERIODS = ("total", "daily", "weekly", "monthly")
_POLICIES = ("refuse", "downgrade")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# setting name -> environment variable
ENV_VARS: dict[str, str] = {
    "api_key": "OPENROUTER_API_KEY",
    "base_url": "OPENROUTER_BASE_URL",
    "preferred_model": "OPENROUTER_PREFERRED_MODEL",
    "fallback_enabled": "OPENROUTER_FALLBACK_ENABLED",
    "cost_optimization": "OPENROUTER_COST_OPTIMIZATION",
    "log_level": "LOG_LEVEL",
    "strategy": "ORROUTE_STRATEGY",
    "project": "ORROUTE_PROJECT",
    "ledger": "ORROUTE_LEDGER",
    "router_state": "ORROUTE_ROUTER_STATE",
    "fallbacks": "ORROUTE_FALLBACKS",
    "app_name": "OPENROUTER_APP_NAME",
    "app_url": "OPENROUTER_APP_URL",
    "cache": "ORROUTE_CACHE",
}
_SCALAR_KEYS = (
    "api_key", "base_url", "preferred_model", "fallback_enabled", "cost_optimization",
    "log_level", "strategy", "project", "ledger", "fallbacks", "router_state", "app_name",
    "app_url", "cache",
)
# tables read by orroute.provider_config (load_providers), not by load_settings
_PROVIDER_TABLES = ("providers", "model_map", "model_groups")
_TOML_KEYS = frozenset(_SCALAR_KEYS) | {"budgets", "limits", "timeout", "max_retries", "gateway",
                                         *_PROVIDER_TABLES}


class ConfigError(ParseError):
    """A setting has an invalid value, or the config / ``.env`` file cannot be read.
    The message names the source (file and key, or variable)."""


class LedgerURL(str):
    """A ``redis://`` ledger location (the Redis backend, shared across machines).

    ``str()`` is the full URL (what the ledger connects with); formatting (f-strings) and
    ``repr()`` hide the password, so messages and JSON built with them never show it.
    """

    def redacted(self) -> str:
        """The URL with its password replaced by ``***``."""
        return redact_ledger_url(str(self))

    def __format__(self, spec: str) -> str:
        return format(self.redacted(), spec)

    def __repr__(self) -> str:
        return repr(self.redacted())


def redact_ledger_url(location: str) -> str:
    """``location`` with a Redis URL's password replaced by ``***`` (other text unchanged)."""
    head, sep, rest = location.partition("://")
    if not sep or not head.startswith("redis"):
        return location
    auth, at, tail = rest.rpartition("@")
    if not at or "/" in auth:
        return location
    user, colon, password = auth.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return f"{head}://{hidden}@{tail}" if (password or not colon) else location


def _read_dotenv(name: str) -> str | None:
    """Value of `name` in ./.env (simple KEY=VALUE lines, optional `export` and quotes)."""
    path = Path.cwd() / ".env"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value
    return None


def api_keys(api_key: str | Sequence[str] | None = None) -> list[str]:
    """The API keys to use, in rotation order: ``api_key`` (a string, comma-separated for
    rotation, or a list), else ``OPENROUTER_API_KEY``, else ``OPENROUTER_API_KEY`` in ``./.env``.
    The one reading of keys: the client, the manager and the gateway all call it."""
    if api_key is None:
        api_key = os.environ.get("OPENROUTER_API_KEY") or _read_dotenv("OPENROUTER_API_KEY")
    if api_key is None:
        return []
    keys = api_key.split(",") if isinstance(api_key, str) else list(api_key)
    return [k.strip() for k in keys if k and k.strip()]


def mask_key(key: str | None) -> str | None:
    """A form of an API key that is safe to print: ``sk-or-v1-...cdef`` (``***`` if short). The
    rule is the core's (``_core.mask_key``), so the client, the engine's messages and the settings
    show a key the same way."""
    if not key:
        return None
    return _core.mask_key(key)


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$ORROUTE_HOME``, else the platform's user data directory (``$XDG_DATA_HOME/orroute`` or
    ``~/.local/share/orroute`` on Linux, ``~/Library/Application Support/orroute`` on macOS,
    ``%LOCALAPPDATA%\\orroute`` on Windows): the same place as ``CostTracker``'s default ledger."""
    env = os.environ if env is None else env
    home = env.get("ORROUTE_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "orroute"


def default_ledger_path(env: Mapping[str, str] | None = None) -> Path:
    """``ledger.sqlite3`` in :func:`default_home`: where ``CostTracker()`` keeps its ledger."""
    return default_home(env) / "ledger.sqlite3"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the client caches ``/models`` lists: ``$ORROUTE_HOME/cache``, else
    ``$XDG_CACHE_HOME/orroute``, else ``~/.cache/orroute``."""
    env = os.environ if env is None else env
    home = env.get("ORROUTE_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "orroute"


def apply_log_level(level: str, *, handler: bool | None = None) -> None:
    """Sets the ``orroute`` logger to ``level`` and makes its records visible on stderr:
    ``handler=True`` always (the command line), ``None`` only when the application configured
    no handler (neither on ``orroute`` nor on the root logger), so that ``LOG_LEVEL=DEBUG``
    shows records without any logging setup; ``False`` never."""
    from ._log_stderr import show_on_stderr  # imports logging

    show_on_stderr(level, handler=handler)


def output_form(env: Mapping[str, str] | None = None) -> str | None:
    """``ORROUTE_OUTPUT``: ``"table"`` or ``"tsv"`` forces how the command line prints tables
    (else None: TSV when stdout is not a terminal). Other values are ignored."""
    forced = (os.environ if env is None else env).get("ORROUTE_OUTPUT", "").strip().lower()
    return forced if forced in ("table", "tsv") else None


def runtime_settings(settings: Settings | None = None) -> Settings:
    """The settings a client or manager starts from: ``settings`` when the caller already loaded
    them (the command line's flags, the gateway's config file), else :func:`load_settings`
    (environment, ``.env``, config file). ``LOG_LEVEL`` is applied to the ``orroute`` logger when
    it is set anywhere."""
    s = load_settings() if settings is None else settings
    if s.sources.get("log_level", "default") != "default":
        apply_log_level(s.log_level)
    return s


@dataclass(frozen=True)
class BudgetConfig:
    """A budget from the config file: ``limit`` USD per ``period`` for a scope."""

    limit: Decimal
    period: str = "total"
    project: str | None = None
    conversation: str | None = None
    tag: str | None = None
    policy: str = "refuse"

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"limit": str(self.limit), "period": self.period,
                             "policy": self.policy}
        for k in ("project", "conversation", "tag"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


@dataclass(frozen=True)
class RateLimitConfig:
    """Per-model limits per minute (None = unlimited): the plan's ``limit_requests``,
    ``limit_input`` and ``limit_output``."""

    requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in (("requests", self.requests), ("input_tokens", self.input_tokens),
                                  ("output_tokens", self.output_tokens)) if v is not None}


@dataclass(frozen=True, repr=False)
class Settings:
    """The effective settings. ``sources`` maps each setting name to where its value came from
    (``"default"``, ``"env"``, ``".env (PATH)"``, ``"config (PATH)"``, ``"override"``).

    ``repr`` and :meth:`as_dict` show the API key masked; ``api_key`` itself is the real value,
    for the client.
    """

    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    preferred_model: str | None = None
    fallback_enabled: bool = True
    cost_optimization: bool = False
    log_level: str = "WARNING"
    strategy: str = "balanced"
    project: str = "default"
    home: Path = field(default_factory=default_home)
    ledger: Path | LedgerURL | None = None
    # Breakers and rate limits shared through Redis ("redis://..."); None = per process.
    router_state: LedgerURL | None = None
    fallbacks: tuple[str, ...] = ()
    cache: bool = False  # the response cache for every client and manager (orroute.cache)
    budgets: tuple[BudgetConfig, ...] = ()
    limits: Mapping[str, RateLimitConfig] = field(default_factory=dict)
    app_name: str | None = None
    app_url: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    config_file: Path | None = None
    env_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def ledger_path(self) -> Path | LedgerURL:
        """The ledger every command shares: ``ledger`` if set (a file, or a ``redis://`` URL as a
        :class:`LedgerURL`), else ``ledger.sqlite3`` in ``home`` (what ``orroute.CostTracker()``
        uses by default)."""
        return self.ledger if self.ledger is not None else self.home / "ledger.sqlite3"

    @property
    def masked_api_key(self) -> str | None:
        return mask_key(self.api_key)

    @property
    def is_openrouter(self) -> bool:
        """True when ``base_url`` points at openrouter.ai (not a local or other endpoint)."""
        return "openrouter.ai" in self.base_url

    def model_order(self) -> list[str]:
        """The explicit models to try, in order: the preferred model, then the fallbacks when
        ``fallback_enabled`` (without duplicates). Empty = let the selector rank candidates."""
        order: list[str] = []
        if self.preferred_model:
            order.append(self.preferred_model)
        if self.fallback_enabled:
            order.extend(m for m in self.fallbacks if m not in order)
        return order

    def as_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """Plain-data view (JSON-ready); the key is masked unless ``reveal``."""
        return {
            "api_key": self.api_key if reveal else self.masked_api_key,
            "base_url": self.base_url,
            "preferred_model": self.preferred_model,
            "fallback_enabled": self.fallback_enabled,
            "cost_optimization": self.cost_optimization,
            "log_level": self.log_level,
            "strategy": self.strategy,
            "project": self.project,
            "home": str(self.home),
            "ledger": f"{self.ledger_path}",  # a Redis password stays hidden
            "router_state": None if self.router_state is None else f"{self.router_state}",
            "fallbacks": list(self.fallbacks),
            "budgets": [b.as_dict() for b in self.budgets],
            "limits": {m: lim.as_dict() for m, lim in self.limits.items()},
            "app_name": self.app_name,
            "app_url": self.app_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "config_file": str(self.config_file) if self.config_file else None,
            "env_file": str(self.env_file) if self.env_file else None,
        }

    def __repr__(self) -> str:
        return (
            f"Settings(api_key={self.masked_api_key!r}, base_url={self.base_url!r}, "
            f"preferred_model={self.preferred_model!r}, strategy={self.strategy!r}, "
            f"project={self.project!r}, ledger={f'{self.ledger_path}'!r})"
        )


# --- .env -------------------------------------------------------------------------------------


def parse_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Reads ``KEY=VALUE`` lines: ``#`` comments, blank lines, an optional ``export`` prefix,
    single or double quotes (double quotes understand ``\\n``, ``\\"`` and ``\\\\``), and
    ``# comment`` after an unquoted value. Raises :class:`ConfigError` naming the line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror or e}") from None
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not (key.replace("_", "a").isalnum() and not key[0].isdigit()):
            raise ConfigError(f"{p}:{lineno}: expected KEY=VALUE")
        value = value.strip()
        if value[:1] in ("'", '"'):
            q = value[0]
            end = _closing_quote(value, q)
            if end < 0:
                raise ConfigError(f"{p}:{lineno}: unterminated quoted value for {key}")
            inner = value[1:end]
            if q == '"':
                inner = (inner.replace("\\\\", "\0").replace('\\"', '"').replace("\\n", "\n")
                         .replace("\0", "\\"))
            value = inner
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        out[key] = value
    return out


def _closing_quote(value: str, q: str) -> int:
    i = 1
    while i < len(value):
        if value[i] == "\\" and q == '"':
            i += 2
            continue
        if value[i] == q:
            return i
        i += 1
    return -1


# --- TOML --------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, no-redef]
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


# --- value parsing -------------------------------------------------------------------------------


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _as_choice(value: Any, choices: tuple[str, ...], where: str, *, upper: bool = False) -> str:
    s = str(value).strip()
    s = s.upper() if upper else s.lower().replace("-", "_")
    if s not in choices:
        raise ConfigError(f"{where}: expected one of {', '.join(choices)}, got {value!r}")
    return s


def _as_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        raise ConfigError(f"{where}: expected a list of model ids, got {value!r}")
    return tuple(v for v in items if v)


def _as_money(value: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise ConfigError(f"{where}: expected an amount in USD, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{where}: expected an amount in USD >= 0, got {value!r}")
    return d


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if n < 0:
        raise ConfigError(f"{where}: expected a number >= 0, got {value!r}")
    return n


def _convert(name: str, value: Any, where: str) -> Any:
    if name in ("fallback_enabled", "cost_optimization", "cache"):
        return _as_bool(value, where)
    if name == "log_level":
        return _as_choice(value, _LOG_LEVELS, where, upper=True)
    if name == "strategy":
        return _as_choice(value, STRATEGIES, where)
    if name == "fallbacks":
        return _as_list(value, where)
    if name == "ledger":
        s = str(value).strip()
        if s.startswith(("redis://", "rediss://")):
            return LedgerURL(s)
        return None if not s else s if s == ":memory:" else Path(s).expanduser()
    if name == "router_state":
        s = str(value).strip()
        if not s:
            return None
        if not s.startswith("redis://"):
            raise ConfigError(f"{where}: expected a redis:// URL, got {redact_ledger_url(s)!r}")
        return LedgerURL(s)
    if name == "timeout":
        try:
            t = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected seconds, got {value!r}") from None
        if not t > 0:
            raise ConfigError(f"{where}: expected seconds > 0, got {value!r}")
        return t
    if name == "max_retries":
        return _as_int(value, where)
    if name == "base_url":
        s = str(value).strip().rstrip("/")
        if not s.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: expected an http(s) URL, got {value!r}")
        return s
    s = str(value).strip()
    return s or None


def _budgets(value: Any, where: str) -> tuple[BudgetConfig, ...]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected [[budgets]] tables")
    out = []
    for i, b in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(b, Mapping):
            raise ConfigError(f"{w}: expected a table")
        unknown = set(b) - {"limit", "limit_usd", "period", "project", "conversation", "tag",
                            "policy"}
        if unknown:
            raise ConfigError(f"{w}: unknown key {min(unknown)!r}")
        limit = b.get("limit", b.get("limit_usd"))
        if limit is None:
            raise ConfigError(f"{w}: missing 'limit' (USD)")
        out.append(BudgetConfig(
            limit=_as_money(limit, f"{w}.limit"),
            period=_as_choice(b.get("period", "total"), _PERIODS, f"{w}.period"),
            project=b.get("project"),
            conversation=b.get("conversation"),
            tag=b.get("tag"),
            policy=_as_choice(b.get("policy", "refuse"), _POLICIES, f"{w}.policy"),
        ))
    return tuple(out)


def _limits(value: Any, where: str) -> dict[str, RateLimitConfig]:
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where}: expected tables like [limits."openai/gpt-4o"]')
    out = {}
    for model, lim in value.items():
        w = f"{where}.{model}"
        if not isinstance(lim, Mapping):
            raise ConfigError(f"{w}: expected a table")
        unknown = set(lim) - {"requests", "input_tokens", "output_tokens"}
        if unknown:
            raise ConfigError(f"{w}: unknown key {min(unknown)!r}")
        out[str(model)] = RateLimitConfig(**{k: _as_int(v, f"{w}.{k}") for k, v in lim.items()})
    return out


# --- loading ------------------------------------------------------------------------------------


def provider_environment(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables provider settings read (keys, ``ORROUTE_PROVIDERS``...): ``settings``'s
    ``.env`` file under the process environment (``env``, default ``os.environ``), which wins."""
    dotenv = parse_env_file(settings.env_file) if settings.env_file else {}
    return {**dotenv, **(os.environ if env is None else env)}


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env_file: str | os.PathLike[str] | bool | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Reads the effective settings (see the module docstring for the order of precedence).

    Args:
        config_file: a TOML file to use instead of the default search; it must exist.
        env_file: a ``.env`` file to read instead of ``./.env`` (it must exist), or False to read
            none.
        env: the environment to read (default ``os.environ``); never modified.
        overrides: values that win over everything (e.g. from command-line flags); None values are
            ignored.

    Raises:
        ConfigError: a file cannot be read or parsed, or a value is invalid; the message names
            the file and key or the variable.
    """
    environ = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    # .env: fills variables the environment does not set
    env_path: Path | None = None
    if env_file is not False:
        explicit = env_file if env_file not in (None, True) else environ.get("ORROUTE_ENV_FILE")
        if explicit:
            env_path = Path(str(explicit)).expanduser()
            if not env_path.is_file():
                raise ConfigError(f".env file not found: {env_path}")
        elif Path(".env").is_file():
            env_path = Path(".env").resolve()
    dotenv = parse_env_file(env_path) if env_path else {}

    def lookup(var: str) -> tuple[str | None, str]:
        if var in environ:
            return environ[var], "env"
        if var in dotenv:
            return dotenv[var], f".env ({env_path})"
        return None, ""

    home_value, _ = lookup("ORROUTE_HOME")
    home = default_home({**environ, "ORROUTE_HOME": home_value} if home_value else environ)

    # config file
    cfg_path: Path | None = None
    if config_file is not None:
        cfg_path = Path(config_file).expanduser()
        if not cfg_path.is_file():
            raise ConfigError(f"config file not found: {cfg_path}")
    else:
        named, _ = lookup("ORROUTE_CONFIG")
        if named:
            cfg_path = Path(named).expanduser()
            if not cfg_path.is_file():
                raise ConfigError(f"config file not found: {cfg_path} (from ORROUTE_CONFIG)")
        elif Path("orroute.toml").is_file():
            cfg_path = Path("orroute.toml").resolve()
        elif (home / "config.toml").is_file():
            cfg_path = home / "config.toml"
    if cfg_path is not None:
        data = _read_toml(cfg_path)
        src = f"config ({cfg_path})"
        unknown = set(data) - _TOML_KEYS
        if unknown:
            raise ConfigError(f"{cfg_path}: unknown setting {min(unknown)!r}")
        for name, raw in data.items():
            where = f"{cfg_path}: {name}"
            if name == "gateway":
                continue  # the [gateway] table is read by orroute.gateway.settings
            if name in _PROVIDER_TABLES:
                continue  # read by orroute.provider_config.load_providers
            if name == "budgets":
                values[name] = _budgets(raw, where)
            elif name == "limits":
                values[name] = _limits(raw, where)
            else:
                values[name] = _convert(name, raw, where)
            sources[name] = src

    # environment and .env
    for name, var in ENV_VARS.items():
        raw, src = lookup(var)
        if raw is None:
            continue
        values[name] = _convert(name, raw, f"{var} (from {src})")
        sources[name] = src

    # overrides
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in _TOML_KEYS:
            raise InvalidArgumentError(f"unknown setting {name!r}")
        values[name] = _convert(name, raw, name) if name not in ("budgets", "limits") else raw
        sources[name] = "override"

    for name in (*_SCALAR_KEYS, "budgets", "limits", "timeout", "max_retries"):
        sources.setdefault(name, "default")
    nullable = {"api_key", "preferred_model", "ledger", "router_state", "app_name", "app_url",
                "timeout", "max_retries"}
    values = {k: v for k, v in values.items() if v is not None or k in nullable}
    if values.get("ledger") == ":memory:":
        values["ledger"] = Path(":memory:")
    if values.get("cost_optimization") and sources["strategy"] == "default":
        # OPENROUTER_COST_OPTIMIZATION=true picks the cost-optimized strategy unless a strategy
        # is set explicitly (argument, ORROUTE_STRATEGY, the config file or an override)
        values["strategy"] = "cost_optimized"
        sources["strategy"] = f"{sources['cost_optimization']} (cost_optimization)"
    sources["home"] = "env" if "ORROUTE_HOME" in environ else (
        f".env ({env_path})" if "ORROUTE_HOME" in dotenv else "default")
    return Settings(home=home, config_file=cfg_path, env_file=env_path, sources=sources, **values)
