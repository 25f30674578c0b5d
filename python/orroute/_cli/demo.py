"""``orroute demo``: the mixed agent workload of orroute.demo, through AIModelManager."""

from __future__ import annotations

from decimal import Decimal

import click

from ._common import USD, app, emit_json


@click.command(short_help="Run the mixed agent workload (offline without a key).")
@click.option("--offline/--online", "offline", default=None,
              help="Force FakeOpenRouter, or the real API (default: offline without a key).")
@click.option("--budget", type=USD, default="0.008", show_default=True,
              help="The demo's budget in USD (alerts at 50% and 80%).")
@click.option("--strategy", type=click.Choice(["cost_optimized", "balanced", "performance",
                                               "quality_first"]), default=None,
              help="Selection strategy (default: from the settings).")
@click.option("--speed", type=click.FloatRange(min=0.1), default=4.0, show_default=True,
              help="Offline time compression (1 = OpenRouter's typical latencies).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--tasks", "limit_tasks", type=click.IntRange(1, 30), default=None,
              help="Run only the first N of the 30 tasks.")
@click.option("--no-faults", is_flag=True, help="Offline: do not inject faults.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
def demo(offline: bool | None, budget: Decimal, strategy: str | None, speed: float,
         concurrency: int, limit_tasks: int | None, no_faults: bool, as_json: bool) -> None:
    """Run ~30 mixed agent tasks under a budget and show routing, fallbacks, streaming, alerts
    and the cost report. Offline (no key) it finishes within a minute.

    The demo books its spend to $ORROUTE_HOME/demo.sqlite3, unless a ledger is set (--ledger,
    ORROUTE_LEDGER or the config file)."""
    from ._demo_show import run_demo

    s = app().settings
    ledger = s.ledger_path if s.sources.get("ledger") != "default" else None
    summary = run_demo(settings=s, offline=offline, budget=str(budget),
                       strategy=strategy, speed=speed, concurrency=concurrency, ledger=ledger,
                       limit_tasks=limit_tasks, faults=not no_faults, quiet=as_json)
    if as_json:
        emit_json(summary)
