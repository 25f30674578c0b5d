"""``orroute serve`` and ``orroute keys create|list|revoke`` (registered in orroute's CLI app)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from decimal import Decimal

import click

from .._cli._common import USD

__all__ = ["keys", "serve"]

_PERIODS = ["total", "daily", "weekly", "monthly"]


def _settings(config: str | None, ledger: str | None) -> object:
    from .settings import load_gateway_settings

    try:
        return load_gateway_settings(config, ledger=ledger)
    except (OSError, ValueError) as e:
        raise click.UsageError(f"cannot load settings: {e}") from None


@click.command()
@click.option("--host", default=None, help="Interface to listen on [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on [default: 8080; 0 picks a free one].")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="TOML config file (upstream key/base_url/ledger and a [gateway] table).")
@click.option("--ledger", type=click.Path(dir_okay=False), default=None,
              help="Ledger SQLite file (default: the one every orroute command uses).")
@click.option("--strategy", default=None,
              help="What orroute/auto means: cost_optimized, balanced, performance, quality_first.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes sharing the port (SO_REUSEPORT) [default: 1].")
def serve(host: str | None, port: int | None, config: str | None, ledger: str | None,
          strategy: str | None, workers: int | None) -> None:
    """Serve an OpenAI-compatible endpoint (/v1/chat/completions, /v1/models) and the AI service
    API (/api/v1/ai/*) that route through orroute with per-key budgets."""
    from .server import Gateway
    from .settings import load_gateway_settings

    try:
        settings = load_gateway_settings(config, host=host, port=port, ledger=ledger,
                                         strategy=strategy, workers=workers)
    except (OSError, ValueError) as e:
        raise click.UsageError(f"cannot load settings: {e}") from None
    if not settings.api_key:
        click.echo("warning: no upstream key (OPENROUTER_API_KEY); upstream calls may be refused",
                   err=True)
    children = []
    reuse = settings.workers > 1
    if reuse:
        if settings.port == 0:
            raise click.UsageError("--workers needs a fixed --port")
        import subprocess

        args = [sys.executable, "-m", "orroute", "serve", "--host", settings.host,
                "--port", str(settings.port), "--workers", "1"]
        if config:
            args += ["--config", config]
        if ledger:
            args += ["--ledger", ledger]
        if strategy:
            args += ["--strategy", strategy]
        env = {**os.environ, "ORROUTE_GATEWAY_REUSE_PORT": "1"}
        children = [subprocess.Popen(args, env=env) for _ in range(settings.workers - 1)]
    reuse = reuse or os.environ.get("ORROUTE_GATEWAY_REUSE_PORT") == "1"

    def ready(gw: Gateway) -> None:
        click.echo(f"orroute gateway listening on {gw.url} (OpenAI base_url {gw.base_url}); "
                   f"upstream {settings.base_url}; ledger {gw.tracker.path}", err=True)

    try:
        Gateway(settings).run(ready=ready, reuse_port=reuse)
    finally:
        for c in children:
            c.terminate()
        for c in children:
            c.wait(timeout=10)


@click.group()
def keys() -> None:
    """Create, list and revoke gateway keys (stored hashed in the ledger)."""


def _store_and_tracker(config: str | None, ledger: str | None) -> tuple[object, object]:
    from ..cost import CostTracker
    from .keys import KeyStore

    s = _settings(config, ledger)
    tracker = CostTracker(s.ledger_path())  # type: ignore[attr-defined]
    return KeyStore(tracker.path), tracker


_common = [
    click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                 help="TOML config file."),
    click.option("--ledger", type=click.Path(dir_okay=False), default=None,
                 help="Ledger SQLite file (default: the shared one)."),
]


def _with_common(f):  # type: ignore[no-untyped-def]
    for opt in reversed(_common):
        f = opt(f)
    return f


@keys.command("create")
@click.option("--project", "-p", required=True, help="Project the key spends for.")
@click.option("--budget", "-b", type=USD, default=None,
              help="Budget of the project in USD (sets or replaces the project's budget).")
@click.option("--period", type=click.Choice(_PERIODS), default="total", show_default=True)
@click.option("--name", default="", help="A label for the key.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@_with_common
def keys_create(project: str, budget: Decimal | None, period: str, name: str, as_json: bool,
                config: str | None, ledger: str | None) -> None:
    """Create a key; it is printed once, alone on the last line (store it now)."""
    limit = budget
    store, tracker = _store_and_tracker(config, ledger)
    if limit is not None:
        tracker.set_budget(limit, period=period, project=project)  # type: ignore[attr-defined]
    key, rec = store.create(project, name=name)  # type: ignore[attr-defined]
    if as_json:
        click.echo(json.dumps({"key": key, "id": rec.id, "project": project, "name": name,
                               "budget": None if limit is None else f"{limit.normalize():f}",
                               "period": period if limit is not None else None,
                               "ledger": tracker.path}))  # type: ignore[attr-defined]
        return
    btxt = "no budget" if limit is None else f"budget ${limit.normalize():f} ({period})"
    click.echo(f"created gateway key {rec.id}... for project {project!r}, {btxt}")
    click.echo("store it now; it is not shown again:")
    click.echo(key)


@keys.command("list")
@click.option("--project", "-p", default=None, help="Only this project's keys.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@_with_common
def keys_list(project: str | None, include_revoked: bool, as_json: bool, config: str | None,
              ledger: str | None) -> None:
    """List keys (ids only: the keys themselves are not stored)."""
    store, tracker = _store_and_tracker(config, ledger)
    recs = store.list(project=project, include_revoked=include_revoked)  # type: ignore[attr-defined]
    budgets = {b.scope: b for b in tracker.budgets()}  # type: ignore[attr-defined]
    rows = []
    for r in recs:
        b = budgets.get(f"project:{r.project}")
        d = r.as_dict()
        d["budget"] = None if b is None else {"limit": str(b.limit), "spent": str(b.spent),
                                              "remaining": str(b.remaining), "period": b.period}
        rows.append(d)
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no gateway keys")
        return
    click.echo(f"{'ID':<16} {'PROJECT':<20} {'CREATED (UTC)':<20} {'STATE':<8} BUDGET")
    for d in rows:
        created = datetime.fromtimestamp(d["created_at"], tz=timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S")
        b = d["budget"]
        btxt = "-" if b is None else f"${b['spent']} of ${b['limit']} ({b['period']})"
        state = "active" if d["active"] else "revoked"
        click.echo(f"{d['id']:<16} {d['project']:<20} {created:<20} {state:<8} {btxt}")


@keys.command("revoke")
@click.argument("key_id")
@_with_common
def keys_revoke(key_id: str, config: str | None, ledger: str | None) -> None:
    """Revoke a key by its id (orr-gw-XXXXXXXX) or the whole key."""
    store, _ = _store_and_tracker(config, ledger)
    if not store.revoke(key_id):  # type: ignore[attr-defined]
        raise click.ClickException("no active gateway key matches")
    click.echo(f"revoked {key_id[:15]}")
