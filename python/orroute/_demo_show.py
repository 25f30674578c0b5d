"""The running and the showing of ``orroute demo`` (see :mod:`orroute.demo` for the workload).

Everything the demo decides (which model, fallbacks, retries, costs, budgets, alerts) is decided by
the library: ``AIModelManager`` runs each task, its ``CostTracker`` keeps the ledger and fires the
alerts. This module only schedules the workload and prints what happened.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import demo as D

_BULK = "bulk_processing"


def _text_of_chunk(chunk: Any) -> str:
    """Text of one streamed chunk (an openai-shaped chunk, or a plain string)."""
    if isinstance(chunk, str):
        return chunk
    choices = getattr(chunk, "choices", None)
    if choices:
        delta = getattr(choices[0], "delta", None)
        return (getattr(delta, "content", None) or "") if delta is not None else ""
    return str(getattr(chunk, "content", "") or "")


def _error_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    status = getattr(e, "status_code", None)
    return f"{status} {msg}" if status else f"{type(e).__name__}: {msg}"


def _outcome(spec: D.DemoSpec, result: Any, latency: float) -> D.Outcome:
    """Normalizes the manager's TaskResult for display."""
    attempts = list(getattr(result, "attempts", None) or [])
    failed = []
    for a in attempts:
        err = a.get("error") if isinstance(a, dict) else getattr(a, "error", None)
        model = a.get("model") if isinstance(a, dict) else getattr(a, "model", None)
        if err:
            failed.append((str(model), str(err).splitlines()[0]))
    usage = getattr(result, "usage", None)

    def u(name: str) -> int:
        if usage is None:
            return 0
        v = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, 0)
        return int(v or 0)

    reasons = getattr(result, "reasons", None) or []
    if isinstance(reasons, str):
        reasons = [reasons]
    return D.Outcome(
        task_id=spec.id, task_type=spec.type, model=getattr(result, "model", None),
        cost=Decimal(str(getattr(result, "cost", 0) or 0)), latency=latency,
        reasons=[str(r) for r in reasons], failed_attempts=failed,
        content=str(getattr(result, "content", "") or ""),
        prompt_tokens=u("prompt_tokens"), completion_tokens=u("completion_tokens"),
    )


class DemoShow:
    def __init__(self, *, settings: Any, offline: bool | None, budget: Decimal,
                 strategy: str | None, speed: float, concurrency: int,
                 ledger: str | Path | None, limit_tasks: int | None, faults: bool, quiet: bool,
                 console: Any) -> None:
        self.settings = settings
        self.offline = (not settings.api_key) if offline is None else offline
        self.budget = budget
        self.strategy = strategy or settings.strategy
        self.speed = speed
        self.concurrency = max(1, concurrency)
        self.ledger = Path(ledger) if ledger else settings.ledger_path.with_name("demo.sqlite")
        self.limit_tasks = limit_tasks
        self.inject_faults = faults
        self.quiet = quiet
        if console is None:
            from rich.console import Console

            console = Console(highlight=False, quiet=quiet)
        self.con = console
        self.fake: Any = None
        self.alerts: list[str] = []
        self.outcomes: list[D.Outcome] = []
        self.progress: Any = None
        self.bar: Any = None
        self.failing: dict[str, str] = {}  # model -> until which task id it fails

    # --- printing -------------------------------------------------------------------------------

    def say(self, *parts: Any, **kw: Any) -> None:
        if not self.quiet:
            self.con.print(*parts, **kw)

    def header(self, base_url: str, n: int) -> None:
        if self.offline:
            why = "no OPENROUTER_API_KEY set" if not self.settings.api_key else "--offline"
            self.say(f"[bold]orroute demo[/] - offline ({why}): FakeOpenRouter at {base_url}, "
                     f"latencies modelled on OpenRouter's, {self.speed:g}x time-compressed, "
                     "with injected faults")
        else:
            self.say(f"[bold]orroute demo[/] - live: {base_url} (key "
                     f"{self.settings.masked_api_key}); this spends real credits, up to the budget")
        self.say(f"{n} tasks (coding, questions, bulk summarization, reasoning, planning, long "
                 f"context); strategy [cyan]{self.strategy}[/], budget [cyan]${self.budget}[/], "
                 f"ledger {self.ledger}\n")

    def show_outcome(self, i: int, n: int, spec: D.DemoSpec, out: D.Outcome) -> None:
        for model, err in out.failed_attempts:
            self.say(f"  [yellow]! {model} failed ({err}) - falling back[/]")
        if out.error:
            self.say(f"[red]x[/] [{i:>2}/{n}] {spec.type:<15} {spec.label:<28} [red]{out.error}[/]")
            return
        reason = "; ".join(out.reasons[:2]) if out.reasons else ""
        self.say(f"[green]v[/] [{i:>2}/{n}] {spec.type:<15} {spec.label[:28]:<28} -> "
                 f"[bold]{out.model}[/] ${out.cost:.6f} {out.latency:.2f}s"
                 + (f"\n      [dim]why: {reason}[/]" if reason else ""))

    def on_alert(self, alert: Any) -> None:
        text = str(getattr(alert, "message", None) or alert)
        self.alerts.append(text)
        self.say(f"  [bold magenta]budget alert:[/] {text}")

    # --- the manager ----------------------------------------------------------------------------

    def make_manager(self, base_url: str, api_key: str | None) -> Any:
        import orroute

        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        manager = orroute.AIModelManager(
            api_key=api_key, base_url=base_url, strategy=self.strategy, ledger=str(self.ledger),
            budget=self.budget,
        )
        add = getattr(manager, "on_alert", None)
        if callable(add):
            add(self.on_alert)
        return manager

    async def run_one(self, manager: Any, spec: D.DemoSpec, task: Any) -> D.Outcome:
        start = time.perf_counter()
        try:
            if spec.stream:
                return await self.stream_one(manager, spec, task, start)
            result = await manager.execute_task(task)
        except Exception as e:  # noqa: BLE001 - the demo shows the failure and goes on
            out = D.Outcome(spec.id, spec.type, None, Decimal(0), time.perf_counter() - start,
                            error=_error_line(e))
            return out
        return _outcome(spec, result, time.perf_counter() - start)

    async def stream_one(self, manager: Any, spec: D.DemoSpec, task: Any,
                         start: float) -> D.Outcome:
        if self.progress is not None:
            self.progress.stop()
        self.say(f"\n[bold]streaming[/] {spec.id} ({spec.label}):")
        parts: list[str] = []
        stream = manager.stream_task(task)
        async for chunk in stream:
            text = _text_of_chunk(chunk)
            if text:
                parts.append(text)
                if not self.quiet:
                    self.con.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        self.say("\n")
        if self.progress is not None:
            self.progress.start()
        result = getattr(stream, "result", None)
        if callable(result):
            result = result()
        if result is not None:
            out = _outcome(spec, result, time.perf_counter() - start)
        else:
            out = D.Outcome(spec.id, spec.type, getattr(stream, "model", None),
                            Decimal(str(getattr(stream, "cost", 0) or 0)),
                            time.perf_counter() - start)
        out.content = out.content or "".join(parts)
        return out

    # --- faults (offline only) --------------------------------------------------------------------

    def plan_faults(self, specs: list[D.DemoSpec]) -> None:
        """A provider outage on the model chosen for reasoning (cleared later: recovery), and a
        rate limit with Retry-After on the model chosen for bulk work."""
        if not (self.offline and self.inject_faults and self.fake is not None):
            return
        import orroute

        from .testing import Fault

        selector = orroute.ModelSelector()
        for task_type, fault, until in (
            ("reasoning", Fault.server_error(503), "reason-3"),
            (_BULK, Fault.rate_limit(retry_after=0.2), None),
        ):
            try:
                model = selector.select_model(task_type, 500, None)
            except orroute.OrRouteError:
                continue
            if until is None:
                self.fake.fail(model, fault, times=1)
            else:
                self.fake.fail(model, fault)
                self.failing[model] = until

    def after_task(self, spec: D.DemoSpec) -> None:
        for model, until in list(self.failing.items()):
            if spec.id == until:
                self.fake.fail(model, None)
                del self.failing[model]
                self.say(f"  [dim]({model} is answering again: the outage is over)[/]")

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> D.DemoSummary:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        t0 = time.perf_counter()
        specs = D.workload_specs()
        if self.limit_tasks is not None:
            specs = specs[: self.limit_tasks]
        tasks = {t.id: t for t in D.workload(project=self.settings.project or "demo")}
        if self.offline:
            self.fake = D.start_offline(speed=self.speed)
            base_url, api_key = self.fake.base_url, "sk-or-v1-offline-demo-key-0000"
        else:
            base_url, api_key = self.settings.base_url, self.settings.api_key
        try:
            self.header(base_url, len(specs))
            manager = self.make_manager(base_url, api_key)
            self.plan_faults(specs)
            with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=self.con,
                          transient=True, disable=self.quiet) as progress:
                self.progress = progress
                self.bar = progress.add_task("running tasks", total=len(specs))
                await self.run_all(manager, specs, tasks)
            self.progress = None
            close = getattr(manager, "aclose", None) or getattr(manager, "close", None)
            if close is not None:
                r = close()
                if asyncio.iscoroutine(r):
                    await r
            return self.summarize(manager, len(specs), time.perf_counter() - t0, base_url)
        finally:
            if self.fake is not None:
                self.fake.stop()

    async def run_all(self, manager: Any, specs: list[D.DemoSpec], tasks: dict[str, Any]) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        bulk_sem = asyncio.Semaphore(self.concurrency * 2)
        done = 0
        n = len(specs)
        lock = asyncio.Lock()

        async def one(spec: D.DemoSpec) -> None:
            nonlocal done
            async with (bulk_sem if spec.type == _BULK else sem):
                out = await self.run_one(manager, spec, tasks[spec.id])
            async with lock:
                done += 1
                self.outcomes.append(out)
                self.show_outcome(done, n, spec, out)
                self.after_task(spec)
                if self.progress is not None:
                    self.progress.advance(self.bar)

        # the streamed task runs on its own, so that its text is not interleaved with other lines
        pending: list[asyncio.Task[None]] = []
        for spec in specs:
            if spec.stream:
                await asyncio.gather(*pending)
                pending = []
                await one(spec)
            else:
                pending.append(asyncio.create_task(one(spec)))
                await asyncio.sleep(0)
        await asyncio.gather(*pending)

    # --- the report -----------------------------------------------------------------------------

    def summarize(self, manager: Any, n: int, seconds: float, base_url: str) -> D.DemoSummary:
        import orroute

        catalog = orroute.Catalog.bundled()
        ok = [o for o in self.outcomes if o.error is None]
        total = sum((o.cost for o in ok), Decimal(0))
        premium = D.PREMIUM_MODEL
        premium_cost: Decimal | None = Decimal(0)
        for o in ok:
            try:
                premium_cost += catalog.cost(premium, prompt_tokens=o.prompt_tokens,
                                             completion_tokens=o.completion_tokens)
            except orroute.OrRouteError:
                premium_cost = None
                break
        by_model: dict[str, dict[str, Any]] = {}
        by_type: dict[str, dict[str, Any]] = {}
        for o in ok:
            for key, table in ((o.model or "?", by_model), (o.task_type, by_type)):
                row = table.setdefault(key, {"tasks": 0, "cost": Decimal(0), "tokens": 0})
                row["tasks"] += 1
                row["cost"] += o.cost
                row["tokens"] += o.prompt_tokens + o.completion_tokens
        summary = D.DemoSummary(
            mode="offline" if self.offline else "live", base_url=base_url,
            ledger=str(self.ledger), budget=self.budget, strategy=self.strategy, tasks=n,
            succeeded=len(ok), failed=n - len(ok),
            fallbacks=sum(1 for o in ok if o.failed_attempts), alerts=list(self.alerts),
            total_cost=total, premium_model=premium, premium_cost=premium_cost,
            savings=None if premium_cost is None else premium_cost - total,
            by_model=by_model, by_task_type=by_type, seconds=seconds, outcomes=self.outcomes,
        )
        if not self.quiet:
            self.report(summary)
        return summary

    def report(self, s: D.DemoSummary) -> None:
        from rich.table import Table

        for title, rows in (("cost by model", s.by_model), ("cost by task type", s.by_task_type)):
            t = Table(title=title, title_justify="left")
            t.add_column(title.split()[-1] if "model" in title else "task type")
            t.add_column("tasks", justify="right")
            t.add_column("tokens", justify="right")
            t.add_column("cost", justify="right")
            for key, row in sorted(rows.items(), key=lambda kv: -kv[1]["cost"]):
                t.add_row(key, str(row["tasks"]), f"{row['tokens']:,}", f"${row['cost']:.6f}")
            self.con.print(t)
        self.say(f"\n{s.succeeded}/{s.tasks} tasks done in {s.seconds:.1f}s, {s.fallbacks} with a "
                 f"fallback, {len(s.alerts)} budget alert(s); total [bold]${s.total_cost:.6f}[/] "
                 f"of the ${s.budget} budget")
        if s.premium_cost:
            pct = (s.savings / s.premium_cost * 100) if s.premium_cost else Decimal(0)
            self.say(f"always using {s.premium_model} would have cost ${s.premium_cost:.6f}: "
                     f"[bold green]saved ${s.savings:.6f} ({pct:.0f}%)[/]")
        self.say(f"ledger: {s.ledger}\n  explore it: orroute --ledger {s.ledger} analytics cost "
                 f"--by model; or open notebooks/cost_analysis.ipynb with ORROUTE_LEDGER={s.ledger}")
