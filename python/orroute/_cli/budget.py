"""``orroute budget set|status|cutoff|resume``: budgets kept in the ledger."""

from __future__ import annotations

from typing import Any

import click

from ._common import app, emit_json, field_of, make_tracker, print_records, to_data, usd

_PERIODS = ("total", "daily", "weekly", "monthly")


@click.group()
def budget() -> None:
    """Set and inspect budgets (stored in the ledger, shared by every process)."""


def _scope(project: str | None, conversation: str | None, tag: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if project:
        out["project"] = project
    if conversation:
        out["conversation"] = conversation
    if tag:
        if "=" not in tag:
            raise click.BadParameter("expected KEY=VALUE, e.g. user=alice", param_hint="--tag")
        out["tag"] = tag
    return out


@budget.command("set")
@click.argument("limit", type=click.FloatRange(min=0))
@click.option("--period", type=click.Choice(_PERIODS), default="total", show_default=True)
@click.option("--project", default=None)
@click.option("--conversation", default=None)
@click.option("--tag", default=None, metavar="KEY=VALUE")
@click.option("--policy", type=click.Choice(["refuse", "downgrade"]), default="refuse",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def set_budget(limit: float, period: str, project: str | None, conversation: str | None,
               tag: str | None, policy: str, as_json: bool) -> None:
    """Set a budget of LIMIT USD per period (global unless a scope is given)."""
    tracker = make_tracker(app().settings)
    scope = _scope(project, conversation, tag)
    result = tracker.set_budget(str(limit), period=period, policy=policy, **scope)
    status = tracker.budget_status(period=period, **scope)
    if as_json:
        emit_json({"budget": to_data(result), "status": to_data(status)})
        return
    click.echo(f"budget set: {usd(field_of(status, 'limit'))} {period} "
               f"({', '.join(f'{k}={v}' for k, v in scope.items()) or 'global'}, {policy}); "
               f"spent {usd(field_of(status, 'spent'))}")


@budget.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Every budget: limit, spent, reserved, remaining in its current window."""
    tracker = make_tracker(app().settings)
    rows = [to_data(b) for b in tracker.budgets()]
    if as_json:
        emit_json(rows)
        return
    print_records("budgets", rows)


@budget.command("cutoff")
@click.option("--reason", default="engaged from the command line")
def cutoff(reason: str) -> None:
    """Stop all spending in every process sharing the ledger (emergency cutoff)."""
    make_tracker(app().settings).cutoff(reason)
    click.echo("emergency cutoff engaged")


@budget.command("resume")
def resume() -> None:
    """Lift the emergency cutoff."""
    make_tracker(app().settings).resume()
    click.echo("spending resumed")
