"""``orroute config``: show the effective settings, write a starter config file."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CLIError, app, emit_json, print_table

_TEMPLATE = """\
# orroute configuration. Precedence: command-line flags > environment > .env > this file.
# Keep the API key in the environment or in .env (OPENROUTER_API_KEY), not here.

# base_url = "https://openrouter.ai/api/v1"   # or any OpenAI-compatible endpoint
# preferred_model = "openai/gpt-4o"
fallback_enabled = true
cost_optimization = false     # true: the cost_optimized strategy when no strategy is set
strategy = "balanced"          # cost_optimized | balanced | performance | quality_first
project = "default"
log_level = "WARNING"
# ledger = "~/.orroute/ledger.sqlite"

# Models to try in order after the preferred one (empty: the selector ranks candidates per task).
# The integration guide's order:
# fallbacks = [{fallbacks}]

# Budgets: limit in USD per period (total | daily | weekly | monthly) for a scope.
# policy: refuse (BudgetExceededError) or downgrade (pick a cheaper model that fits).
# [[budgets]]
# limit = 5.00
# period = "daily"
# project = "default"
# policy = "downgrade"

# Rate limits per model, per minute.
# [limits."openai/gpt-4o"]
# requests = 60
# input_tokens = 200000
# output_tokens = 40000
"""


@click.group()
def config() -> None:
    """Show or create the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(as_json: bool) -> None:
    """Print the effective settings and where each came from (the API key masked)."""
    s = app().settings
    data = s.as_dict()
    if as_json:
        data["sources"] = dict(s.sources)
        emit_json(data)
        return
    rows = []
    for name, value in data.items():
        if name in ("budgets", "limits", "config_file", "env_file"):
            continue
        if isinstance(value, list):
            joined = ", ".join(value)
            value = (joined or "(selector ranks candidates)") if name == "fallbacks" else value
        if name == "api_key" and value is None:
            value = "(not set)"
        rows.append((name, "-" if value is None else str(value), s.sources.get(name, "")))
    for b in s.budgets:
        scope = ", ".join(f"{k}={b.as_dict()[k]}" for k in ("project", "conversation", "tag")
                          if k in b.as_dict()) or "global"
        rows.append(("budget", f"${b.limit} {b.period} ({scope}, {b.policy})",
                     s.sources.get("budgets", "")))
    for model, lim in s.limits.items():
        rows.append(("limit", f"{model}: " + ", ".join(f"{v:,} {k}/min"
                                                      for k, v in lim.as_dict().items()),
                     s.sources.get("limits", "")))
    caption = (f"config file: {s.config_file or '(none)'}   .env: {s.env_file or '(none)'}")
    print_table("orroute settings", ["setting", "value", "source"], rows, caption=caption)


@config.command("init")
@click.option("--path", "path", type=click.Path(dir_okay=False), default=None,
              help="Where to write (default: $ORROUTE_HOME/config.toml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str | None, force: bool) -> None:
    """Write a commented starter config file."""
    from ..config import GUIDE_MODEL_ORDER

    target = Path(path) if path else app().settings.home / "config.toml"
    if target.exists() and not force:
        raise CLIError(f"{target} exists (use --force to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(_TEMPLATE.replace(
        "{fallbacks}", ", ".join(f'"{m}"' for m in GUIDE_MODEL_ORDER)), encoding="utf-8")
    click.echo(str(target))
