"""Settings -> the network client and the engine's configuration (keys, endpoint, attribution,
timeouts, retries, breakers, rate limits)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .. import _core, _logs
from .. import _exceptions as _exc

__all__ = ["engine_config", "give_back_leases", "limit_args", "limit_scope", "new_client",
           "stream_of", "user_agent"]


def give_back_leases(ledger: Any) -> None:
    """``ledger.release_leases()`` (a ledger or an engine), best effort: at exit (a
    ``weakref.finalize``) or close. In a forked child only the child's own leases go back (the
    core ledger never touches the parent's there)."""
    try:
        ledger.release_leases()
    except Exception:  # noqa: BLE001 (logged; best effort: dead processes' leases get reclaimed)
        if _logs.enabled(10, "orroute.cost"):  # DEBUG
            _logs.logger("orroute.cost").debug("could not give back budget leases", exc_info=True)


def user_agent() -> str:
    from .. import __version__

    return f"orroute/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]}"


def new_client(
    *,
    base_url: str,
    api_keys: Sequence[str],
    app_name: str,
    app_url: str,
    timeouts: Any,
    stream_timeouts: Any,
    max_retries: int,
    stream_deadline: float | None = None,
) -> Any:
    """A network client (one libcurl event loop thread): retries with backoff (honouring
    Retry-After up to a minute), key rotation, app attribution headers; a stream whose timeouts
    set no total ends at ``stream_deadline`` (None: the core's default)."""
    return _core.NetClient(
        base_url=base_url,
        api_keys=list(api_keys),
        app_name=app_name,
        app_url=app_url,
        user_agent=user_agent(),
        timeouts=timeouts,
        stream_timeouts=stream_timeouts,
        max_retries=max_retries,
        backoff_base=0.5,
        backoff_max=8.0,
        max_retry_after=60.0,
        stream_deadline=stream_deadline,
    )


def stream_of(call: Any) -> Any:
    """The chunk reader of a started streamed chat call."""
    return _core.ChatStream(call)


_BREAKER_FIELDS = {
    "failures": "breaker_failures",
    "failure_rate": "breaker_failure_rate",
    "min_calls": "breaker_min_calls",
    "window": "breaker_window",
    "cooldown": "breaker_cooldown",
    "successes_to_close": "breaker_successes_to_close",
}


def engine_config(
    *,
    base_url: str,
    api_keys: Sequence[str],
    app_name: str | None,
    app_url: str | None,
    strategy: str,
    timeout: float,
    stream_deadline: float | None,
    max_retries: int,
    retry_base_delay: float,
    max_retry_wait: float,
    max_admission_wait: float,
    thresholds: Sequence[float],
    fallbacks: Sequence[str],
    preferred_model: str | None,
    server_side_fallbacks: int,
    default_max_tokens: int,
    max_candidates: int,
    refresh_catalog: bool,
    unpriced_model_price: tuple[Decimal, Decimal] | None,
    cost_check_multiple: int,
    router_state: str | None,
    breaker: Mapping[str, Any] | None,
    limits: Mapping[str, Mapping[str, Any]] | None,
) -> Any:
    """The engine's configuration from the manager's (already resolved) settings."""
    cfg = _core.EngineConfig()
    cfg.base_url = base_url.rstrip("/")
    cfg.api_keys = [k for k in api_keys if k]
    cfg.user_agent = user_agent()  # the client's: one agent whoever sends
    if app_name:
        cfg.app_name = app_name
    if app_url:
        cfg.app_url = app_url
    cfg.strategy = strategy
    cfg.timeout = float(timeout)
    if stream_deadline is not None:  # None: the core's default
        cfg.stream_deadline = float(stream_deadline)
    cfg.max_retries = int(max_retries)
    cfg.retry_base_delay = float(retry_base_delay)
    cfg.max_server_wait = float(max_retry_wait)
    cfg.max_admission_wait = float(max_admission_wait)
    if len(thresholds) != 3:
        raise _exc.InvalidArgumentError("thresholds must be three numbers (low, medium, high)")
    low, mid, high = (float(t) for t in thresholds)
    cfg.thresholds = (low, mid, high)
    cfg.fallbacks = list(fallbacks or [])
    cfg.preferred_model = preferred_model or ""
    cfg.server_side_fallbacks = int(server_side_fallbacks)
    cfg.default_max_tokens = int(default_max_tokens)
    cfg.max_candidates = int(max_candidates)
    cfg.refresh_catalog = bool(refresh_catalog)
    cfg.unpriced_model_price = unpriced_model_price
    cfg.cost_check_multiple = int(cost_check_multiple)
    if router_state:
        if not _core.redis_available():
            raise _exc.InvalidArgumentError(
                "router_state needs the Redis backend, and this orroute was built without hiredis"
            )
        cfg.router_state = str(router_state)
    for name, value in (breaker or {}).items():
        attr = _BREAKER_FIELDS.get(name)
        if attr is None:
            raise _exc.InvalidArgumentError(f"unknown breaker setting {name!r}")
        setattr(cfg, attr, value)
    for scope, spec in (limits or {}).items():
        cfg.set_limit(limit_scope(scope), **limit_args(scope, spec))
    return cfg


def limit_scope(scope: str) -> str:
    """``"key"``, ``"model:<id>"`` (a bare model id gets the prefix) or another scope as is."""
    if scope == "key" or ":" in scope.split("/")[0]:
        return scope
    return f"model:{scope}"


_LIMIT_NAMES = {
    "limit_requests": "requests",
    "requests": "requests",
    "limit_input": "input_tokens",
    "input_tokens": "input_tokens",
    "limit_output": "output_tokens",
    "output_tokens": "output_tokens",
    "window": "window",
}


def limit_args(scope: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A rate limit's fields (the plan's ``limit_requests`` ... or the engine's names)."""
    out: dict[str, Any] = {}
    for k, v in spec.items():
        if k not in _LIMIT_NAMES:
            raise _exc.InvalidArgumentError(f"unknown rate limit field {k!r} for {scope!r}")
        out[_LIMIT_NAMES[k]] = float(v) if k == "window" else int(v)
    return out
