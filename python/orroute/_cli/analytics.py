"""``orroute analytics cost`` and ``orroute simulate``: reports from the ledger, offline replay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..config import STRATEGIES
from ._common import (
    CLIError,
    app,
    emit_json,
    make_tracker,
    print_table,
    records,
    to_data,
    usd,
)

PERIODS = ("today", "week", "month", "all")
_BY = {"model": "model", "project": "project", "task-type": "task_type", "day": None,
       "provider": "provider", "outcome": "outcome"}


def since_for(period: str, now: datetime | None = None) -> datetime | None:
    """Start of a reporting period (UTC): today = since midnight, week / month = the last 7 / 30
    days, all = no start."""
    now = now or datetime.now(timezone.utc)
    if period == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return now - timedelta(days=7)
    if period == "month":
        return now - timedelta(days=30)
    return None


@click.group()
def analytics() -> None:
    """Reports from the usage ledger."""


@analytics.command("cost")
@click.option("--period", type=click.Choice(PERIODS), default="today", show_default=True,
              help="today (UTC), the last 7 or 30 days, or everything.")
@click.option("--by", "by", type=click.Choice(list(_BY)), default="model", show_default=True)
@click.option("--project", default=None, help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cost(period: str, by: str, project: str | None, as_json: bool) -> None:
    """Spend, calls, tokens, latency and estimate error for a period, grouped."""
    s = app().settings
    tracker = make_tracker(s)
    key = _BY[by]
    report = tracker.report("day" if by == "day" else "total", key, since=since_for(period),
                            project=project)
    total = sum((r.cost for r in report), Decimal(0))
    rows = []
    for r in sorted(report, key=(lambda r: r.period) if by == "day" else (lambda r: -r.cost)):
        rows.append({
            by: r.period if by == "day" else (r.key or "(none)"), "calls": r.calls,
            "errors": r.errors, "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens, "cost": r.cost,
            "share": float(r.cost / total) if total else 0.0,
            "estimated": r.estimated, "estimate_error": r.estimate_error,
            "mean_latency_s": r.mean_latency_s,
        })
    if as_json:
        emit_json({"period": period, "by": by, "project": project, "ledger": f"{s.ledger_path}",
                   "total_cost": total, "rows": rows})
        return
    if not rows:
        click.echo(f"no calls recorded ({period}) in {s.ledger_path}")
        return
    print_table(
        f"cost by {by}, {period}" + (f", project {project}" if project else ""),
        [by, "calls", "errors", "tokens in", "tokens out", "cost", "share", "est. error",
         "mean latency"],
        [(r[by], r["calls"], r["errors"], r["prompt_tokens"], r["completion_tokens"],
          usd(r["cost"]), f"{r['share']:.0%}",
          "-" if r["estimate_error"] is None else f"{r['estimate_error']:+.0%}",
          "-" if r["mean_latency_s"] is None else f"{r['mean_latency_s']:.2f}s") for r in rows],
        justify={c: "right" for c in ("share", "est. error", "mean latency", "cost")},
        caption=f"total {usd(total)} over {sum(r['calls'] for r in rows)} calls; "
                f"ledger {s.ledger_path}")


@click.command("simulate", short_help="Estimate a JSONL workload's cost per strategy, offline.")
@click.argument("workload", type=click.Path(dir_okay=False, exists=True))
@click.option("--strategies", "-s", default=",".join(STRATEGIES), show_default=True,
              help="Comma-separated strategies to compare.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate_cmd(workload: str, strategies: str, as_json: bool) -> None:
    """Estimate what WORKLOAD.jsonl (one task per line: type, messages or prompt, max_tokens ...)
    would cost under each strategy, without calling any API."""
    import orroute

    chosen = [x.strip() for x in strategies.split(",") if x.strip()]
    bad = [x for x in chosen if x not in STRATEGIES]
    if bad:
        raise click.BadParameter(f"unknown strategy {bad[0]!r} (one of {', '.join(STRATEGIES)})",
                                 param_hint="--strategies")
    _check_jsonl(workload)
    s = app().settings
    # the ledger's history (if any) teaches the expected output length per task type and model
    tracker = (
        make_tracker(s)
        if not isinstance(s.ledger_path, Path) or Path(str(s.ledger_path)).exists()
        else None
    )
    table = orroute.simulate(workload, strategies=chosen, tracker=tracker)
    rows = records(table)
    if not rows or not any(r.get("tasks") for r in rows):
        raise CLIError(f"{workload}: no tasks")
    if as_json:
        emit_json({"workload": workload, "strategies": chosen, "rows": to_data(rows)})
        return
    cheapest = min(rows, key=lambda r: r["total_cost"])
    print_table(
        f"simulated cost of {workload} ({rows[0]['tasks']} tasks, no API calls)",
        ["strategy", "tasks", "unroutable", "total", "per task", "vs cheapest", "models used"],
        [(r["strategy"], r["tasks"], r["unroutable"], usd(r["total_cost"]),
          usd(Decimal(str(r["total_cost"])) / r["tasks"] if r["tasks"] else None),
          "-" if not cheapest["total_cost"] else f"{r['total_cost'] / cheapest['total_cost']:.1f}x",
          _models_cell(r.get("models"))) for r in rows],
        justify={c: "right" for c in ("total", "per task", "vs cheapest")})


def _check_jsonl(path: str) -> None:
    """One clear line for a malformed workload file: which line, and what is wrong."""
    import json

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"{path}: cannot read: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
        except ValueError as e:
            raise CLIError(f"{path}:{n}: not JSON ({e.args[0].split(':')[0]})") from None
        if not isinstance(task, dict):
            raise CLIError(f"{path}:{n}: expected a JSON object (one task per line)")


def _models_cell(models: Any) -> str:
    if isinstance(models, (list, tuple, set)):
        models = sorted(models)
        return ", ".join(models[:3]) + (f" +{len(models) - 3}" if len(models) > 3 else "")
    return str(models)
