"""``orroute ask``: one prompt through the router; optionally shows the choice and its cost."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from ..config import STRATEGIES
from ._common import CLIError, app, console, emit_json, make_manager, to_data, usd


def _attempts(result: Any) -> list[dict[str, Any]]:
    out = []
    for a in getattr(result, "attempts", None) or []:
        d = a if isinstance(a, dict) else to_data(a)
        out.append(d if isinstance(d, dict) else {"attempt": d})
    return out


def _text_of_chunk(chunk: Any) -> str:
    if isinstance(chunk, str):
        return chunk
    choices = getattr(chunk, "choices", None)
    if choices:
        delta = getattr(choices[0], "delta", None)
        return (getattr(delta, "content", None) or "") if delta is not None else ""
    return str(getattr(chunk, "content", "") or "")


@click.command()
@click.argument("prompt", required=False)
@click.option("--show-models", is_flag=True, help="Show the model chosen, why, and the cost.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="Selection strategy (default: from the settings).")
@click.option("--stream", is_flag=True, help="Print the answer as it is generated.")
@click.option("--budget", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="Most this call may cost; refused before sending if it cannot fit.")
@click.option("--model", "-m", default=None, help="Model to try first.")
@click.option("--no-fallback", is_flag=True, help="Do not fall back to other models.")
@click.option("--type", "task_type", default="general", show_default=True,
              help="Task type: coding, reasoning, general, bulk_processing, ...")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--system", default=None, help="A system message.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its record as JSON.")
def ask(prompt: str | None, show_models: bool, strategy: str | None, stream: bool,
        budget: float | None, model: str | None, no_fallback: bool, task_type: str,
        max_tokens: int | None, system: str | None, as_json: bool) -> None:
    """Answer PROMPT (or stdin when PROMPT is - or missing) with the model the router picks."""
    import orroute

    if prompt in (None, "-"):
        if sys.stdin.isatty():
            raise click.UsageError("give a PROMPT or pipe one on stdin")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.UsageError("the prompt is empty")
    s = app().settings
    if model:
        from .models import load_catalog, lookup

        if s.is_openrouter:
            lookup(load_catalog(), model)  # unknown id: one line, exit 5, before any call
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    task = orroute.Task(type=task_type, messages=messages, max_tokens=max_tokens,
                        project=s.project, budget=budget)
    manager = make_manager(s, strategy=strategy, preferred_model=model,
                           fallback=False if no_fallback else None)
    start = time.perf_counter()
    if stream and not as_json:
        result = asyncio.run(_stream(manager, task))
    else:
        result = manager.execute_task_sync(task)
    elapsed = time.perf_counter() - start
    _close(manager)
    if result is None:
        raise CLIError("the stream ended without a result")
    if as_json:
        data = to_data(result)
        if not isinstance(data, dict):
            data = {"content": getattr(result, "content", None)}
        data.setdefault("seconds", round(elapsed, 4))
        emit_json(data)
        return
    if not stream:
        click.echo(getattr(result, "content", "") or "")
    if show_models:
        _show_choice(result, elapsed)


async def _stream(manager: Any, task: Any) -> Any:
    stream = manager.stream_task(task)
    async for chunk in stream:
        text = _text_of_chunk(chunk)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
    sys.stdout.write("\n")
    result = getattr(stream, "result", None)
    return result() if callable(result) else result


def _close(manager: Any) -> None:
    close = getattr(manager, "close", None)
    if callable(close):
        r = close()
        if asyncio.iscoroutine(r):
            asyncio.run(r)


def _show_choice(result: Any, elapsed: float) -> None:
    """The model chosen, why, the attempts, tokens and cost (on stderr, after the answer)."""
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("model", str(getattr(result, "model", "?")))
    reasons = getattr(result, "reasons", None) or []
    if isinstance(reasons, str):
        reasons = [reasons]
    for i, r in enumerate(reasons):
        t.add_row("why" if i == 0 else "", str(r))
    for a in _attempts(result):
        if a.get("error"):
            t.add_row("failed", f"{a.get('model')}: {str(a.get('error')).splitlines()[0]}")
    usage = getattr(result, "usage", None)
    if usage is not None:
        u = to_data(usage)
        if isinstance(u, dict):
            t.add_row("tokens", f"{u.get('prompt_tokens', 0):,} in, "
                                f"{u.get('completion_tokens', 0):,} out")
    t.add_row("cost", usd(getattr(result, "cost", None)))
    t.add_row("time", f"{elapsed:.2f}s")
    console(stderr=True).print(t)
