"""``orroute credits`` and ``orroute health``."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import click

from ._common import (
    EXIT_API,
    CLIError,
    app,
    emit_json,
    field_of,
    make_client,
    make_manager,
    print_table,
    to_data,
    usd,
)


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def credits(as_json: bool) -> None:
    """Account credits, usage and the key's limits."""
    s = app().settings
    client = make_client(s)
    try:
        cr = client.credits()
        try:
            key = client.key_info()
        except Exception:  # noqa: BLE001 - some endpoints have no /key; credits still useful
            key = None
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    total = _dec(field_of(cr, "total_credits"))
    used = _dec(field_of(cr, "total_usage"))
    data: dict[str, Any] = {
        "total_credits": total,
        "total_usage": used,
        "remaining": None if total is None or used is None else total - used,
    }
    if key is not None:
        data["key"] = {k: to_data(field_of(key, k)) for k in (
            "label", "usage", "limit", "limit_remaining", "is_free_tier", "rate_limit")}
    if as_json:
        emit_json(data)
        return
    rows = [("credits", usd(total)), ("used", usd(used)), ("remaining", usd(data["remaining"]))]
    if key is not None:
        k = data["key"]
        rows.append(("key", k.get("label") or "-"))
        rows.append(("key limit", "none" if k.get("limit") is None else usd(k["limit"])))
        if k.get("limit_remaining") is not None:
            rows.append(("key remaining", usd(k["limit_remaining"])))
        rows.append(("free tier", "yes" if k.get("is_free_tier") else "no"))
    print_table(f"account at {s.base_url}", ["", "USD"], rows, justify={"USD": "right"})


@click.command()
@click.option("--probe", is_flag=True,
              help="Also send each configured model (default: the guide's six) a one-token "
                   "request.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(probe: bool, as_json: bool) -> None:
    """Check the API, the key, the ledger and the state of each model."""
    s = app().settings
    checks: list[dict[str, Any]] = []

    def check(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 - each failure is reported as a check
            checks.append({"check": name, "ok": False, "detail": str(e).splitlines()[0] if str(e)
                           else type(e).__name__, "seconds": time.perf_counter() - start})
            return None
        checks.append({"check": name, "ok": True, "detail": value,
                       "seconds": time.perf_counter() - start})
        return value

    check("api key",
          lambda: s.masked_api_key or ("not needed" if not s.is_openrouter else _no_key()))
    client = None
    if s.api_key or not s.is_openrouter:
        client = make_client(s)
        check(f"api {s.base_url}", lambda: f"{len(list(client.models.list()))} models")
        check("credits", lambda: _credits_line(client.credits()))
    check("ledger", lambda: _ledger_line(s))
    models: dict[str, Any] | None = None
    if probe and client is not None:
        from ..config import GUIDE_MODEL_ORDER
        from .models import _measure

        models = {}
        for mid in s.model_order() or list(GUIDE_MODEL_ORDER):
            r = check(f"model {mid}", lambda mid=mid: _measure(client, mid, "Say OK.", 1))
            models[mid] = "ok" if r is not None else "failing"
            if r is not None:
                checks[-1]["detail"] = f"answered in {r['latency']:.2f}s, {usd(r['cost'])}"
    router: dict[str, Any] | None = None
    if client is not None:
        router = check("router", lambda: make_manager(s).health())
        if router is not None:
            checks[-1]["detail"] = _router_line(router)
            checks[-1]["ok"] = router["overall"] != "down"
    ok = all(c["ok"] for c in checks)
    if as_json:
        emit_json({"ok": ok, "checks": checks, "models": models, "router": router})
    else:
        print_table("orroute health", ["check", "ok", "detail", "time"],
                    [(c["check"], "ok" if c["ok"] else "FAIL", _short(c["detail"]),
                      f"{c['seconds'] * 1000:.0f} ms") for c in checks])
    if not ok:
        raise CLIError("some checks failed", EXIT_API)


def _router_line(h: dict[str, Any]) -> str:
    """``ok``, or the overall state and every breaker that is not closed (model, provider or
    endpoint; shared across processes only with a Redis ``router_state``)."""
    opened = [f"{b['key']} {b['state']}" + (f" ({b['retry_in']:.0f}s)" if b["retry_in"] else "")
              for b in h.get("breakers") or []]
    return h["overall"] + (": " + ", ".join(opened) if opened else "")


def _no_key() -> str:
    raise CLIError("OPENROUTER_API_KEY is not set", EXIT_API)


def _credits_line(cr: Any) -> str:
    total, used = _dec(field_of(cr, "total_credits")), _dec(field_of(cr, "total_usage"))
    if total is None or used is None:
        return "unknown"
    return f"{usd(total - used)} left of {usd(total)}"


def _ledger_line(s: Any) -> str:
    from ._common import make_tracker

    tracker = make_tracker(s)
    cutoff = tracker.cutoff_reason
    if cutoff:
        raise CLIError(f"emergency cutoff engaged in {s.ledger_path}: {cutoff}")
    n = len(tracker.budgets())
    return f"{s.ledger_path} ({n} budget{'s' if n != 1 else ''})"


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={v2}" for k, v2 in v.items())
    return str(v)
