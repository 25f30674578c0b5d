"""``orroute analytics cost`` and ``orroute simulate``: reports from the ledger, offline replay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from ..config import STRATEGIES
from ._common import CLIError, app, emit_json, make_tracker, print_records, records, usd

_PERIODS = ("today", "week", "month", "all")
_BY = {"model": "model", "project": "project", "task-type": "task_type", "day": "day",
       "provider": "provider"}


@click.group()
def analytics() -> None:
    """Reports from the usage ledger."""


@analytics.command("cost")
@click.option("--period", type=click.Choice(_PERIODS), default="today", show_default=True)
@click.option("--by", "by", type=click.Choice(list(_BY)), default="model", show_default=True)
@click.option("--project", default=None, help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cost(period: str, by: str, project: str | None, as_json: bool) -> None:
    """Spend, calls, tokens and estimate error for a period, grouped."""
    s = app().settings
    tracker = make_tracker(s)
    kwargs: dict[str, Any] = {"period": period, "by": _BY[by]}
    if project:
        kwargs["project"] = project
    rows = records(tracker.report(**kwargs))
    if as_json:
        emit_json({"period": period, "by": by, "ledger": str(s.ledger_path), "rows": rows})
        return
    total = sum((Decimal(str(r.get("cost") or 0)) for r in rows), Decimal(0))
    print_records(f"cost by {by}, {period}", rows,
                  caption=f"total {usd(total)}   ledger {s.ledger_path}")


@click.command("simulate")
@click.argument("workload", type=click.Path(dir_okay=False, exists=True))
@click.option("--strategies", "-s", default=",".join(STRATEGIES), show_default=True,
              help="Comma-separated strategies to compare.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def simulate_cmd(workload: str, strategies: str, as_json: bool) -> None:
    """Estimate what WORKLOAD.jsonl (one task per line) would cost under each strategy, without
    calling any API."""
    import orroute

    chosen = [x.strip() for x in strategies.split(",") if x.strip()]
    bad = [x for x in chosen if x not in STRATEGIES]
    if bad:
        raise click.BadParameter(f"unknown strategy {bad[0]!r} (one of {', '.join(STRATEGIES)})",
                                 param_hint="--strategies")
    table = orroute.simulate(workload, strategies=chosen)
    rows = records(table)
    if not rows:
        raise CLIError(f"{workload}: no tasks")
    if as_json:
        emit_json({"workload": workload, "rows": rows})
        return
    print_records(f"simulated cost of {workload}", rows)
