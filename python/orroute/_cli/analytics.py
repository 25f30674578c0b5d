"""``orroute analytics cost`` and ``orroute simulate``: reports from the ledger, offline replay."""

from __future__ import annotations

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
    since_for,
    to_data,
    usd,
)

PERIODS = ("today", "week", "month", "all")
# --by choices -> the ledger's grouping (tag:KEY is accepted too)
_BY = {"model": "model", "provider": "provider", "project": "project", "task-type": "task_type",
       "conversation": "conversation", "user": "tag:user", "outcome": "outcome",
       "hour": "hour", "day": "day", "week": "week", "month": "month"}


def _by(value: str) -> str:
    if value in _BY:
        return _BY[value]
    if value.startswith("tag:") and len(value) > 4:
        return value
    raise click.BadParameter(f"{value!r}: one of {', '.join(_BY)} or tag:KEY",
                             param_hint="--by")


_period_option = click.option(
    "--period", type=click.Choice(PERIODS), default="today", show_default=True,
    help="today (UTC), the last 7 or 30 days, or everything.")
_project_option = click.option("--project", default=None, help="Only this project.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.0%}"


@click.group()
def analytics() -> None:
    """Reports from the usage ledger: spend, forecast, savings, trends, estimates, cheaper
    models."""


@analytics.command("cost")
@_period_option
@click.option("--by", "by", default="model", show_default=True, metavar="COLUMN",
              help=f"Group by {', '.join(_BY)} or tag:KEY.")
@click.option("--bucket", type=click.Choice(["hour", "day", "week", "month"]), default=None,
              help="Also split each group by this time bucket.")
@_project_option
@_json_option
def cost(period: str, by: str, bucket: str | None, project: str | None, as_json: bool) -> None:
    """Spend, calls, errors, tokens and share for a period, grouped."""
    from ..analytics import spend

    s = app().settings
    rows = spend(make_tracker(s), by=_by(by), bucket=bucket, since=since_for(period),
                 project=project)
    total = sum((r.cost for r in rows), Decimal(0))
    by_time = _by(by) in ("hour", "day", "week", "month")
    label = (lambda r: r.period) if by_time else (lambda r: r.key or "(none)")
    if as_json:
        emit_json({"period": period, "by": by, "bucket": bucket, "project": project,
                   "ledger": f"{s.ledger_path}", "total_cost": total,
                   "rows": [{by: label(r), **({"bucket": r.period} if bucket else {}),
                             **to_data(r)} for r in rows]})
        return
    if not rows:
        click.echo(f"no calls recorded ({period}) in {s.ledger_path}")
        return
    columns = [by, *(["bucket"] if bucket else []), "calls", "errors", "tokens in", "tokens out",
               "cost", "share", "mean latency"]
    print_table(
        f"cost by {by}" + (f" per {bucket}" if bucket else "") + f", {period}"
        + (f", project {project}" if project else ""),
        columns,
        [(label(r), *([r.period] if bucket else []), r.calls, r.errors, r.prompt_tokens,
          r.completion_tokens, usd(r.cost), f"{r.share:.0%}",
          "-" if r.mean_latency_s is None else f"{r.mean_latency_s:.2f}s") for r in rows],
        justify={c: "right" for c in ("share", "mean latency", "cost")},
        caption=f"total {usd(total)} over {sum(r.calls for r in rows)} calls; "
                f"ledger {s.ledger_path}")


@analytics.command("forecast")
@click.option("--budget", "budget", default=None, metavar="NAME",
              help="Only this budget, e.g. project:demo/daily (see `orroute budget status`).")
@click.option("--level", type=click.FloatRange(0.5, 0.999), default=0.9, show_default=True,
              help="Coverage of the interval.")
@_json_option
def forecast_cmd(budget: str | None, level: float, as_json: bool) -> None:
    """Where each budget's period will end at the current pace: projected spend with an
    interval, and the chance of going over the limit."""
    from ..analytics import forecast

    s = app().settings
    rows = forecast(make_tracker(s), budget=budget, level=level)
    if as_json:
        emit_json({"ledger": f"{s.ledger_path}", "level": level, "forecasts": rows})
        return
    if not rows:
        click.echo(f"no budgets in {s.ledger_path} (set one with `orroute budget set`)")
        return
    print_table(
        f"budget forecast ({level:.0%} interval)",
        ["budget", "limit", "spent", "rate", "projected", "interval",
         "P(over)", "period ends"],
        [(f.budget, usd(f.limit), usd(f.spent),
          "-" if f.rate is None else usd(f.rate, per=f"/{f.unit}"),
          usd(f.projected) if f.projected is not None else "-",
          f"{usd(f.low)} - {usd(f.high)}" if f.low is not None else
          ("too little history" if f.rate is None else "n/a (total budget)"),
          "-" if f.probability_over is None else f"{f.probability_over:.0%}",
          _period_end(f))
         for f in rows],
        justify={c: "right" for c in ("limit", "spent", "projected", "P(over)")},
        caption="rate: mean spend per whole hour (daily budgets) or day over the recent past")


def _period_end(f: Any) -> str:
    if f.window_end is not None:
        return str(f.window_end.strftime("%Y-%m-%d %H:%M"))
    if f.exhausted_at is not None:
        return "runs out " + f.exhausted_at.strftime("%Y-%m-%d %H:%M")
    return "-" if f.rate is None else "never at this rate"


@analytics.command("savings")
@click.option("--baseline", required=True, metavar="MODEL",
              help="The model to compare with, e.g. openai/gpt-4o.")
@_period_option
@_project_option
@_json_option
def savings_cmd(baseline: str, period: str, project: str | None, as_json: bool) -> None:
    """What your successful calls cost against the same tokens on a baseline model."""
    import orroute

    from ..analytics import savings
    from .models import lookup

    lookup(orroute.Catalog.bundled(), baseline)  # unknown: close matches, exit 5
    s = app().settings
    r = savings(make_tracker(s), baseline, since=since_for(period), project=project)
    if as_json:
        emit_json({"period": period, "project": project, "ledger": f"{s.ledger_path}",
                   **to_data(r), "by_model": [
                       {"model": m, "calls": n, "actual": a, "baseline_cost": b}
                       for m, n, a, b in r.by_model]})
        return
    if not r.calls:
        click.echo(f"no successful calls ({period}) in {s.ledger_path}")
        return
    print_table(
        f"savings against {baseline}, {period}",
        ["model", "calls", "actual", f"on {baseline}", "saved"],
        [(m, n, usd(a), usd(b), usd(b - a)) for m, n, a, b in r.by_model],
        justify={c: "right" for c in ("actual", f"on {baseline}", "saved")},
        caption=f"saved {usd(r.saved)} ({r.saved_share:.0%}) over {r.calls} calls"
                + (f"; {r.unpriced} calls not priceable on {baseline}" if r.unpriced else ""))


@analytics.command("trends")
@click.option("--bucket", type=click.Choice(["hour", "day", "week", "month"]), default="day",
              show_default=True)
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True,
              help="today (UTC), the last 7 or 30 days, or everything.")
@_project_option
@_json_option
def trends_cmd(bucket: str, period: str, project: str | None, as_json: bool) -> None:
    """Calls, errors, fallbacks and cache hits over time."""
    from ..analytics import trends

    s = app().settings
    rows = trends(make_tracker(s), bucket, since=since_for(period), project=project)
    if as_json:
        emit_json({"bucket": bucket, "period": period, "project": project,
                   "rows": [{**to_data(r), "error_rate": r.error_rate} for r in rows]})
        return
    if not rows:
        click.echo(f"no calls recorded ({period}) in {s.ledger_path}")
        return
    print_table(f"calls per {bucket}, {period}",
                [bucket, "calls", "errors", "error rate", "fallbacks", "cache hits",
                 "prompt cache hits", "cost"],
                [(r.period, r.calls, r.errors, f"{r.error_rate:.0%}", r.fallbacks, r.cache_hits,
                  r.prompt_cache_hits, usd(r.cost)) for r in rows],
                justify={"error rate": "right", "cost": "right"},
                caption="fallbacks: calls that needed more than one attempt; prompt cache hits: "
                        "calls with cached prompt tokens")


@analytics.command("estimates")
@click.option("--by", type=click.Choice(["model", "task_type", "provider", "project", "total"]),
              default="model", show_default=True)
@_period_option
@_project_option
@_json_option
def estimates_cmd(by: str, period: str, project: str | None, as_json: bool) -> None:
    """The router's expected cost against the actual cost (not the worst-case reservation)."""
    from ..analytics import estimates

    s = app().settings
    rows = estimates(make_tracker(s), by, since=since_for(period), project=project)
    if as_json:
        emit_json({"by": by, "period": period, "project": project, "rows": rows})
        return
    if not rows:
        click.echo(f"no calls with an estimate ({period}) in {s.ledger_path}")
        return
    print_table(f"estimates against actual cost by {by}, {period}",
                [by, "calls", "estimated", "actual", "error", "median est/actual"],
                [(r.key or "(none)", r.calls, usd(r.estimated), usd(r.actual), _pct(r.error),
                  "-" if r.median_ratio is None else f"{r.median_ratio:.2f}x") for r in rows],
                justify={c: "right" for c in ("estimated", "actual", "error",
                                              "median est/actual")},
                caption="error = (estimated - actual) / actual; positive: over-estimated")


@analytics.command("alternatives")
@click.option("--tolerance", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Accept models this much below the used model's quality (0..1).")
@_period_option
@_project_option
@_json_option
def alternatives_cmd(tolerance: float, period: str, project: str | None, as_json: bool) -> None:
    """Which of your calls could have gone to a cheaper model of the same quality (your
    feedback, else the selector's priors)."""
    from ..analytics import cheaper_alternatives

    s = app().settings
    rows = cheaper_alternatives(make_tracker(s), tolerance=tolerance, since=since_for(period),
                                project=project)
    if as_json:
        emit_json({"period": period, "project": project, "tolerance": tolerance,
                   "alternatives": [{**to_data(a), "saving_share": a.saving_share}
                                    for a in rows]})
        return
    if not rows:
        click.echo(f"no cheaper model of the same quality found ({period})")
        return
    print_table(f"cheaper models of at least the same quality, {period}",
                ["task type", "model", "calls", "cost", "quality", "instead", "its quality",
                 "would cost", "saving"],
                [(a.task_type, a.model, a.calls, usd(a.cost), f"{a.quality:.2f}",
                  a.alternative, f"{a.alternative_quality:.2f}", usd(a.alternative_cost),
                  f"{usd(a.saving)} ({a.saving_share:.0%})") for a in rows],
                justify={c: "right" for c in ("cost", "would cost", "saving")},
                caption="quality: the selector's for the task type, with your feedback folded in")


@analytics.command("feedback")
@_json_option
def feedback_cmd(as_json: bool) -> None:
    """Quality feedback kept in the ledger: mean score per model and task type."""
    from ..analytics import feedback

    s = app().settings
    rows = feedback(make_tracker(s))
    if as_json:
        emit_json({"ledger": f"{s.ledger_path}", "feedback": rows})
        return
    if not rows:
        click.echo(f"no feedback in {s.ledger_path} (record some with `orroute models rate`)")
        return
    print_table("feedback", ["model", "task type", "scores", "mean"],
                [(r.model, r.task_type, r.count, f"{r.mean:.2f}") for r in rows],
                justify={"mean": "right"})


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
