"""``orroute ask``: one prompt through the router; optionally shows the choice and its cost."""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from typing import Any

import click

from ..config import STRATEGIES
from ._common import (
    USD,
    app,
    console,
    emit_json,
    field_of,
    make_manager,
    make_tracker,
    to_data,
    usd,
)


def _attempts(result: Any) -> list[dict[str, Any]]:
    out = []
    for a in getattr(result, "attempts", None) or []:
        d = a if isinstance(a, dict) else to_data(a)
        out.append(d if isinstance(d, dict) else {"attempt": d})
    return out


def text_of_chunk(chunk: Any) -> str:
    """The text of a streamed chunk (an OpenAI-shaped dict or object, or a string)."""
    if isinstance(chunk, str):
        return chunk
    choices = field_of(chunk, "choices")
    if choices:
        delta = field_of(choices[0], "delta")
        return str(field_of(delta, "content") or "")
    return ""


class StreamRecord:
    """What a streamed task produced, for --show-models and --json: the model and usage come from
    the chunks, the exact cost from the ledger row the router wrote for the task."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.model: str | None = None
        self.usage: dict[str, Any] = {}
        self.parts: list[str] = []
        self.cost: Any = None
        self.reasons: list[str] = []
        self.attempts: list[Any] = []

    def add(self, chunk: Any) -> str:
        self.model = field_of(chunk, "model") or self.model
        usage = field_of(chunk, "usage")
        if usage:
            self.usage = dict(to_data(usage))
        text = text_of_chunk(chunk)
        self.parts.append(text)
        return text

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def settle(self, settings: Any) -> None:
        from decimal import Decimal

        try:
            rows = make_tracker(settings).usage_history(limit=50)
        except Exception:  # noqa: BLE001 - the cost is then the one the API reported
            rows = []
        for r in reversed(rows):
            if r.task_id == self.task.id:
                self.cost, self.model = r.cost, r.model or self.model
                return
        if self.usage.get("cost") is not None:
            self.cost = Decimal(str(self.usage["cost"]))


@click.command(short_help="Answer a prompt with the model the router picks.")
@click.argument("prompt", required=False)
@click.option("--show-models", is_flag=True, help="Show the model chosen, why, and the cost.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help="Selection strategy (default: from the settings).")
@click.option("--stream", is_flag=True, help="Print the answer as it is generated.")
@click.option("--budget", type=USD, default=None, metavar="USD",
              help="Most this call may cost; refused before sending if it cannot fit.")
@click.option("--model", "-m", default=None, help="Model to try first.")
@click.option("--no-fallback", is_flag=True, help="Do not fall back to other models.")
@click.option("--type", "task_type", default="general", show_default=True,
              help="Task type: coding, reasoning, general, bulk_processing, ...")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--system", default=None, help="A system message.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer and its record as JSON.")
def ask(prompt: str | None, show_models: bool, strategy: str | None, stream: bool,
        budget: Decimal | None, model: str | None, no_fallback: bool, task_type: str,
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
    if show_models:
        _show_plan(manager, task)
    start = time.perf_counter()
    if stream and not as_json:
        result: Any = asyncio.run(_stream(manager, task))
        result.settle(s)
    else:
        result = manager.execute_task_sync(task)
    elapsed = time.perf_counter() - start
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


async def _stream(manager: Any, task: Any) -> StreamRecord:
    record = StreamRecord(task)
    async for chunk in manager.stream_task(task):
        text = record.add(chunk)
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
    sys.stdout.write("\n")
    return record


def _show_plan(manager: Any, task: Any) -> None:
    """The candidates the router will try and why (before the call; on stderr)."""
    plan = manager.plan(task)
    out = console(stderr=True)
    cx = plan.get("complexity") or {}
    if not isinstance(cx, dict):
        cx = {"score": cx}
    score = cx.get("score")
    level = f"complexity {float(score):.2f} ({cx.get('tier', '?')}); " if score is not None else ""
    out.print(f"[bold]task[/]: {plan.get('task_type', task.type)}, {level}candidates: "
              + " -> ".join(map(str, plan.get("candidates") or [])))


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
        err = a.get("error")
        if err and str(err).startswith("skipped:"):
            t.add_row("skipped", f"{a.get('model')}: {str(err)[8:]}")
        elif err:
            detail = a.get("message") or err
            t.add_row("failed", f"{a.get('model')}: {err} {a.get('status') or ''} "
                                f"{str(detail).splitlines()[0] if detail != err else ''}".strip())
    usage = getattr(result, "usage", None)
    if usage is not None:
        u = to_data(usage)
        if isinstance(u, dict):
            t.add_row("tokens", f"{u.get('prompt_tokens', 0):,} in, "
                                f"{u.get('completion_tokens', 0):,} out")
    t.add_row("cost", usd(getattr(result, "cost", None)))
    t.add_row("time", f"{elapsed:.2f}s")
    console(stderr=True).print(t)
