"""``orroute budget set|status|remove|cutoff|resume``: budgets kept in the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from ._common import USD, app, emit_json, make_tracker, print_table, usd

_PERIODS = ("total", "daily", "weekly", "monthly")


@click.group(short_help="Set and inspect budgets kept in the ledger.")
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


_scope_options = [
    click.option("--project", default=None, help="Budget for one project (default: global)."),
    click.option("--conversation", default=None, help="Budget for one conversation."),
    click.option("--tag", default=None, metavar="KEY=VALUE",
                 help="Budget for a tag, e.g. user=alice."),
]


def scope_options(f: Any) -> Any:
    for opt in reversed(_scope_options):
        f = opt(f)
    return f


def status_row(b: Any) -> dict[str, Any]:
    start, end = b.window
    return {"name": b.name, "scope": b.scope, "period": b.period, "limit": b.limit,
            "spent": b.spent, "reserved": b.reserved, "remaining": b.remaining,
            "used": round(b.fraction_used, 4), "policy": b.policy,
            "window_start": start, "window_end": end}


# ignore_unknown_options: "-5" is the LIMIT argument (then refused by its range with a clear
# message), not an unknown option "-5".
@budget.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("limit", type=USD)
@click.option("--period", type=click.Choice(_PERIODS), default="total", show_default=True)
@scope_options
@click.option("--policy", type=click.Choice(["refuse", "downgrade"]), default="refuse",
              show_default=True, help="Refuse calls over the limit, or pick cheaper models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def set_budget(limit: Decimal, period: str, project: str | None, conversation: str | None,
               tag: str | None, policy: str, as_json: bool) -> None:
    """Set a budget of LIMIT USD per period (global unless a scope is given)."""
    tracker = make_tracker(app().settings)
    status = tracker.set_budget(limit, period=period, policy=policy,
                                **_scope(project, conversation, tag))
    if as_json:
        emit_json(status_row(status))
        return
    click.echo(f"budget {status.name}: {usd(status.limit)} ({status.policy}); spent "
               f"{usd(status.spent)}, {usd(status.remaining)} left")


@budget.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Every budget: limit, spent, reserved and remaining in its current window."""
    s = app().settings
    tracker = make_tracker(s)
    rows = [status_row(b) for b in tracker.budgets()]
    cutoff = tracker.cutoff_reason
    if as_json:
        emit_json({"ledger": f"{s.ledger_path}", "cutoff": cutoff, "budgets": rows})
        return
    if cutoff:
        click.echo(f"EMERGENCY CUTOFF ENGAGED: {cutoff}", err=True)
    if not rows:
        click.echo(f"no budgets in {s.ledger_path} (set one with `orroute budget set`)")
        return
    print_table("budgets", ["budget", "limit", "spent", "reserved", "remaining", "used", "policy"],
                [(r["name"], usd(r["limit"]), usd(r["spent"]), usd(r["reserved"]),
                  usd(r["remaining"]), f"{r['used']:.0%}", r["policy"]) for r in rows],
                justify={c: "right" for c in ("limit", "spent", "reserved", "remaining", "used")},
                caption=f"ledger {s.ledger_path}")


@budget.command("remove")
@click.option("--period", type=click.Choice(_PERIODS), default="total", show_default=True)
@scope_options
def remove(period: str, project: str | None, conversation: str | None, tag: str | None) -> None:
    """Delete a budget."""
    from ._common import EXIT_NOT_FOUND, CLIError

    if not make_tracker(app().settings).remove_budget(period=period,
                                                      **_scope(project, conversation, tag)):
        raise CLIError("no such budget", EXIT_NOT_FOUND)
    click.echo("budget removed")


@budget.command("cutoff")
@click.option("--reason", default="engaged from the command line", show_default=True)
def cutoff(reason: str) -> None:
    """Stop all spending in every process sharing the ledger (emergency cutoff)."""
    make_tracker(app().settings).cutoff(reason)
    click.echo("emergency cutoff engaged")


@budget.command("resume")
def resume() -> None:
    """Lift the emergency cutoff."""
    make_tracker(app().settings).resume()
    click.echo("spending resumed")
