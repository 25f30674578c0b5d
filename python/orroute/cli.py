"""The ``orroute`` command line. ``main()`` is the console-script entry point.

Commands here so far: ``orroute demo`` (selects a model for a sample task and explains why).
"""

from __future__ import annotations

from decimal import Decimal

import click

__all__ = ["main", "cli"]

SAMPLE_PROMPT = (
    "Write a Python function merge_intervals(intervals) that merges overlapping closed intervals, "
    "with type hints, a docstring and pytest tests covering empty input, nested and touching "
    "intervals."
)
STRATEGY_NAMES = ["cost_optimized", "balanced", "performance", "quality_first"]


def _estimate_tokens(text: str) -> int:
    """Prompt size in tokens: the tokenizer when it is available, else ~4 characters per token."""
    try:
        from orroute import count_tokens  # provided by the tokenizer component

        return int(count_tokens(text))
    except Exception:  # noqa: BLE001 - any failure falls back to the estimate
        return max(1, len(text) // 4)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orroute", message="orroute %(version)s")
def cli() -> None:
    """orroute: cheap, reliable and accountable LLM calls through OpenRouter."""


@cli.command()
@click.option("--task-type", "-t", default="coding", show_default=True, help="Task type to select for.")
@click.option("--prompt", "-p", default=SAMPLE_PROMPT, help="Prompt of the sample task.")
@click.option("--input-size", type=click.IntRange(min=0), default=None,
              help="Prompt size in tokens (default: counted from the prompt).")
@click.option("--budget", type=str, default="0.05", show_default=True,
              help="Most the call may cost, in USD ('none' for no limit).")
@click.option("--strategy", "-s", type=click.Choice(STRATEGY_NAMES), default="balanced",
              show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many ranked candidates to list.")
def demo(task_type: str, prompt: str, input_size: int | None, budget: str, strategy: str,
         top: int) -> None:
    """Select a model for a sample task from the bundled catalog and explain the choice (offline)."""
    import orroute

    try:
        limit = None if budget.strip().lower() in {"none", ""} else Decimal(budget)
    except ArithmeticError:
        raise click.BadParameter(f"not an amount of USD: {budget!r}", param_hint="--budget") from None
    size = input_size if input_size is not None else _estimate_tokens(prompt)
    selector = orroute.ModelSelector(strategy=strategy)
    click.echo(
        f"orroute demo: model selection over the bundled OpenRouter catalog "
        f"({len(selector.catalog)} models, offline)"
    )
    short = prompt if len(prompt) <= 90 else prompt[:87] + "..."
    click.echo(f"task: {task_type} | {size} input tokens | budget "
               f"{'none' if limit is None else '$' + format(limit, 'f')} | strategy {strategy}")
    click.echo(f"prompt: {short}")
    try:
        ranked = selector.rank(task_type, size, limit, limit=top)
    except (orroute.NoModelAvailableError, orroute.InvalidArgumentError) as e:
        raise click.ClickException(str(e)) from e

    best = ranked[0]
    click.echo("")
    click.echo(f"selected: {best.model}")
    for reason in best.reasons:
        click.echo(f"  - {reason}")
    click.echo("")
    click.echo(f"top {len(ranked)} candidates ({strategy}):")
    click.echo(f"  {'model':48s} {'score':>6s} {'quality':>7s} {'est. cost':>15s}  tier")
    for r in ranked:
        click.echo(f"  {r.model:48s} {r.score:6.3f} {r.quality:7.2f} "
                   f"{'$' + format(r.estimated_cost, 'f'):>15s}  {r.tier}")
    click.echo("")
    click.echo("other strategies:")
    for other in STRATEGY_NAMES:
        if other == strategy:
            continue
        pick = selector.rank(task_type, size, limit, strategy=other, explain=False, limit=1)[0]
        click.echo(f"  {other:15s} -> {pick.model} (${format(pick.estimated_cost, 'f')}, "
                   f"quality {pick.quality:.2f})")


def _register_gateway() -> None:
    from .gateway.cli import keys, serve

    cli.add_command(serve)
    cli.add_command(keys)


_register_gateway()


def main() -> None:
    """Console-script entry point (``orroute``)."""
    cli(prog_name="orroute")


if __name__ == "__main__":
    main()
