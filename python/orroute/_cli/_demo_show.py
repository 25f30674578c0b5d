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

from . import _demo_workload as D

_BULK = "bulk_processing"


def _text_of_chunk(chunk: Any) -> str:
    """Text of one streamed chunk (an OpenAI-shaped dict or object, or a plain string)."""
    if isinstance(chunk, str):
        return chunk
    choices = _get(chunk, "choices")
    if choices:
        return str(_get(_get(choices[0], "delta"), "content") or "")
    return ""


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _error_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"{type(e).__name__}: {msg}"


def _outcome(spec: D.DemoSpec, result: Any, latency: float) -> D.Outcome:
    """Normalizes the manager's TaskResult for display."""
    failed, skipped = [], []
    for a in _get(result, "attempts") or []:
        err = _get(a, "error")
        if not err:
            continue
        model = str(_get(a, "model"))
        if str(err).startswith("skipped:"):
            skipped.append((model, str(err)[8:]))
        else:
            status = _get(a, "status")
            failed.append((model, f"{err}{' ' + str(status) if status else ''}"))
    usage = _get(result, "usage") or {}
    out = D.Outcome(
        task_id=spec.id, task_type=spec.type, model=_get(result, "model"),
        cost=Decimal(str(_get(result, "cost") or 0)), latency=latency,
        reasons=[str(r) for r in (_get(result, "reasons") or [])], failed_attempts=failed,
        content=str(_get(result, "content") or ""),
        prompt_tokens=int(_get(usage, "prompt_tokens") or 0),
        completion_tokens=int(_get(usage, "completion_tokens") or 0),
    )
    out.skipped = skipped
    complexity = _get(result, "complexity") or {}
    if isinstance(complexity, (int, float)):
        complexity = {"score": complexity}
    score = _get(complexity, "score")
    out.complexity = (None if score is None else float(score), _get(complexity, "tier"))
    return out


_ALERTS = (25, 50, 80, 100)  # % of the budget


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
        self.ledger = Path(ledger) if ledger else settings.home / "demo.sqlite3"
        # every run books to its own project, so runs sharing a ledger stay apart (and the
        # notebooks can compare them)
        self.project = time.strftime("demo-%Y%m%d-%H%M%S", time.gmtime())
        self.limit_tasks = limit_tasks
        self.inject_faults = faults
        self.quiet = quiet
        if console is None:
            import sys

            from rich.console import Console

            console = Console(highlight=False, quiet=quiet,
                              width=None if sys.stdout.isatty() else 120)
        self.con = console
        self.fake: Any = None
        self.tracker: Any = None
        self.alerts_seen = 0
        self.alerts: list[str] = []
        self.outcomes: list[D.Outcome] = []
        self.progress: Any = None
        self.bar: Any = None
        self.failing: dict[str, str] = {}  # model -> id of the task after which it recovers

    # --- printing -------------------------------------------------------------------------------

    def say(self, *parts: Any, **kw: Any) -> None:
        if not self.quiet:
            self.con.print(*parts, **kw)

    def header(self, base_url: str, n: int) -> None:
        if self.offline:
            why = "no OPENROUTER_API_KEY set" if not self.settings.api_key else "--offline"
            self.say(f"[bold]orroute demo[/] - offline ({why}): FakeOpenRouter at {base_url}\n"
                     f"  latencies modelled on OpenRouter's typical figures, {self.speed:g}x "
                     "time-compressed; faults injected: a provider outage and a rate limit")
        else:
            self.say(f"[bold]orroute demo[/] - live: {base_url} (key "
                     f"{self.settings.masked_api_key}); this spends real credits, at most the "
                     "budget")
        self.say(f"{n} tasks (coding, questions, bulk summarization, reasoning, planning, long "
                 f"context) through AIModelManager; strategy [cyan]{self.strategy}[/], budget "
                 f"[cyan]${self.budget}[/] (policy downgrade, alerts at 25/50/80/100%)\n"
                 f"ledger {self.ledger}, project {self.project}\n")

    def show_outcome(self, i: int, n: int, spec: D.DemoSpec, out: D.Outcome) -> None:
        for model, why in out.skipped:
            self.say(f"  [dim]- skipped {model}: {why}[/]")
        for model, err in out.failed_attempts:
            self.say(f"  [yellow]! {model} failed ({err}); falling back[/]")
        if out.error:
            color = "yellow" if out.error.startswith("refused by the budget") else "red"
            self.say(f"[{color}]x[/] [{i:>2}/{n}] {spec.type:<15} {spec.label[:30]:<30} "
                     f"[{color}]{out.error}[/]")
            return
        cx = ""
        if out.complexity and out.complexity[0] is not None:
            cx = f"complexity {out.complexity[0]:.2f} ({out.complexity[1]}) "
        self.say(f"[green]v[/] [{i:>2}/{n}] {spec.type:<15} {spec.label[:30]:<30} -> "
                 f"[bold]{out.model}[/]  ${out.cost:.6f}  {out.latency:.2f}s")
        picked = [r for r in out.reasons
                  if r.startswith(("downgraded", "quality", "tier", "preferred", "budget"))]
        picked = [r.split(" (")[0] for r in picked or out.reasons[:1]]  # details stay in --json
        reason = "; ".join(picked[:2])
        if cx or reason:
            self.say(f"      [dim]{cx}{'- ' + reason if reason else ''}[/]")

    def poll_alerts(self) -> None:
        """Shows budget alerts the ledger fired since the last look (any process may fire them;
        the ledger keeps each once per threshold and window)."""
        alerts = self.tracker.alerts
        for a in alerts[self.alerts_seen:]:
            text = str(getattr(a, "message", None) or a)
            self.alerts.append(text)
            self.say(f"  [bold magenta]budget alert:[/] {text}")
        self.alerts_seen = len(alerts)

    # --- the manager ----------------------------------------------------------------------------

    def make_manager(self, base_url: str, api_key: str | None) -> Any:
        """``AIModelManager`` over the demo's ledger, with the budget for this run's project."""
        import orroute

        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        self.tracker = orroute.CostTracker(self.ledger)
        self.alerts_seen = len(self.tracker.alerts)
        manager = orroute.AIModelManager(
            api_key=api_key, base_url=base_url, strategy=self.strategy, ledger=str(self.ledger),
            project=self.project,
            budget={"limit": self.budget, "project": self.project, "policy": "downgrade"},
        )
        # Alerts from a quarter of the budget: the workload's spend varies with the injected
        # faults (which fallback answered), and the demo is there to show an alert.
        self.tracker.set_budget(self.budget, project=self.project, policy="downgrade",
                                thresholds=_ALERTS)
        return manager

    async def run_one(self, manager: Any, spec: D.DemoSpec, task: Any) -> D.Outcome:
        start = time.perf_counter()
        try:
            if spec.stream:
                return await self.stream_one(manager, spec, task, start)
            result = await manager.execute_task(task)
        except Exception as e:  # noqa: BLE001 - the demo shows the failure and goes on
            import orroute

            error = _error_line(e)
            if isinstance(e, orroute.BudgetError):
                left = getattr(e, "remaining", None)
                error = "refused by the budget" + (f" (${left:.6f} left)" if left is not None
                                                   else "")
            out = D.Outcome(spec.id, spec.type, None, Decimal(0), time.perf_counter() - start,
                            error=error)
            for a in getattr(e, "attempts", None) or []:
                if _get(a, "error") and not str(_get(a, "error")).startswith("skipped:"):
                    out.failed_attempts.append((str(_get(a, "model")), str(_get(a, "error"))))
            return out
        return _outcome(spec, result, time.perf_counter() - start)

    async def stream_one(self, manager: Any, spec: D.DemoSpec, task: Any,
                         start: float) -> D.Outcome:
        if self.progress is not None:
            self.progress.stop()
        plan = manager.plan(task)
        first = (plan.get("candidates") or ["?"])[0]
        self.say(f"\n[bold]streaming[/] {spec.id} ({spec.label}) from {first}:")
        parts: list[str] = []
        model = None
        async for chunk in manager.stream_task(task):
            model = _get(chunk, "model") or model
            text = _text_of_chunk(chunk)
            if text:
                parts.append(text)
                if not self.quiet:
                    self.con.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        self.say("\n")
        if self.progress is not None:
            self.progress.start()
        out = D.Outcome(spec.id, spec.type, model, Decimal(0), time.perf_counter() - start,
                        content="".join(parts), reasons=list(plan.get("reasons") or []))
        for rec in reversed(self.tracker.usage_history(project=self.project, limit=20)):
            if rec.task_id == spec.id:  # the exact figures, as the router booked them
                out.model, out.cost = rec.model or model, rec.cost
                out.prompt_tokens, out.completion_tokens = rec.prompt_tokens, rec.completion_tokens
                break
        return out

    # --- faults (offline only) --------------------------------------------------------------------

    def plan_faults(self, manager: Any, specs: list[D.DemoSpec], tasks: dict[str, Any]) -> None:
        """A provider outage on the model the router would pick first for reasoning (it recovers
        after the third reasoning task) and one rate limit with Retry-After on the first choice
        for bulk summaries."""
        if not (self.offline and self.inject_faults and self.fake is not None):
            return
        from ..testing import Fault

        first: dict[str, D.DemoSpec] = {}
        for spec in specs:
            first.setdefault(spec.type, spec)
        for kind, fault, until in (
            ("reasoning", Fault.server_error(503), "reason-3"),
            (_BULK, Fault.rate_limit(retry_after=0.3), None),
        ):
            chosen = first.get(kind)
            if chosen is None:
                continue
            candidates = manager.plan(tasks[chosen.id]).get("candidates") or []
            if not candidates:
                continue
            model = candidates[0]
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
                self.say(f"  [dim]({model}'s provider is back: the outage is over)[/]")

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> D.DemoSummary:
        import logging

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # alerts are shown by the demo itself; keep the ledger's log line for them quiet
        cost_log = logging.getLogger("orroute.cost")
        propagate, cost_log.propagate = cost_log.propagate, False
        if not cost_log.handlers:
            cost_log.addHandler(logging.NullHandler())
        t0 = time.perf_counter()
        specs = D.workload_specs()
        if self.limit_tasks is not None:
            specs = specs[: self.limit_tasks]
        tasks = {t.id: t for t in D.workload(project=self.project)}
        if self.offline:
            self.fake = D.start_offline(speed=self.speed)
            base_url, api_key = self.fake.base_url, "sk-or-v1-offline-demo-0000000000"
        else:
            base_url, api_key = self.settings.base_url, self.settings.api_key
        try:
            manager = self.make_manager(base_url, api_key)
            self.header(base_url, len(specs))
            self.plan_faults(manager, specs, tasks)
            with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=self.con,
                          transient=True, disable=self.quiet) as progress:
                self.progress = progress
                self.bar = progress.add_task("running tasks", total=len(specs))
                await self.run_all(manager, specs, tasks)
            self.progress = None
            summary = self.summarize(len(specs), time.perf_counter() - t0, base_url)
            if self.offline and self.inject_faults:
                from ._demo_outage import provider_outage

                summary.provider_outage = await provider_outage(
                    self.ledger, f"{self.project}-outage", self.say)
            return summary
        finally:
            cost_log.propagate = propagate
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
                self.poll_alerts()
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

    def summarize(self, n: int, seconds: float, base_url: str) -> D.DemoSummary:
        import orroute

        catalog = orroute.Catalog.bundled()
        ok = [o for o in self.outcomes if o.error is None]
        rows = self.tracker.usage_history(project=self.project)
        total = sum((r.cost for r in rows), Decimal(0))
        premium = D.PREMIUM_MODEL
        premium_cost: Decimal | None
        try:
            premium_cost = sum(
                (catalog.cost(premium, prompt_tokens=r.prompt_tokens,
                              completion_tokens=r.completion_tokens)
                 for r in rows if r.outcome == "ok"),
                Decimal(0),
            )
        except orroute.OrRouteError:
            premium_cost = None

        def table(by: str) -> dict[str, dict[str, Any]]:
            return {(r.key or "?"): {"calls": r.calls, "errors": r.errors, "cost": r.cost,
                                     "tokens": r.prompt_tokens + r.completion_tokens}
                    for r in self.tracker.report("total", by, project=self.project)}

        summary = D.DemoSummary(
            mode="offline" if self.offline else "live", base_url=base_url,
            ledger=str(self.ledger), project=self.project, budget=self.budget,
            strategy=self.strategy, tasks=n, succeeded=len(ok), failed=n - len(ok),
            fallbacks=sum(1 for o in ok if o.failed_attempts), alerts=list(self.alerts),
            total_cost=total, premium_model=premium, premium_cost=premium_cost,
            savings=None if premium_cost is None else premium_cost - total,
            by_model=table("model"), by_task_type=table("task_type"), seconds=seconds,
            outcomes=self.outcomes,
        )
        if not self.quiet:
            self.report(summary)
        return summary

    def report(self, s: D.DemoSummary) -> None:
        from rich.table import Table

        self.say("")
        for title, rows, head in (("cost by model", s.by_model, "model"),
                                  ("cost by task type", s.by_task_type, "task type")):
            t = Table(title=title, title_justify="left")
            t.add_column(head)
            for col in ("calls", "tokens", "cost"):
                t.add_column(col, justify="right")
            for key, row in sorted(rows.items(), key=lambda kv: -kv[1]["cost"]):
                t.add_row(key, str(row["calls"]), f"{row['tokens']:,}", f"${row['cost']:.6f}")
            self.con.print(t)
        refused = sum(1 for o in self.outcomes if (o.error or "").startswith("refused by the"))
        self.say(f"{s.succeeded}/{s.tasks} tasks done in {s.seconds:.1f}s"
                 + (f" ({refused} refused by the budget)" if refused else "")
                 + f"; {s.fallbacks} needed "
                 f"a fallback; {len(s.alerts)} budget alert(s); spent [bold]${s.total_cost:.6f}[/]"
                 f" of the ${s.budget} budget")
        if s.premium_cost and s.savings is not None:
            pct = s.savings / s.premium_cost * 100
            self.say(f"always using {s.premium_model}: ${s.premium_cost:.6f} -> "
                     f"[bold green]saved ${s.savings:.6f} ({pct:.0f}%)[/]")
        self.say(f"\nledger: {s.ledger} (project {s.project})\n"
                 f"  orroute --ledger {s.ledger} analytics cost --period all --by model\n"
                 f"  ORROUTE_LEDGER={s.ledger} jupyter lab notebooks/cost_analysis.ipynb")


def run_demo(
    *,
    settings: Any,
    offline: bool | None = None,
    budget: Decimal | float | str = Decimal("0.008"),
    strategy: str | None = None,
    speed: float = 4.0,
    concurrency: int = 4,
    ledger: str | Path | None = None,
    limit_tasks: int | None = None,
    faults: bool = True,
    quiet: bool = False,
    console: Any = None,
) -> D.DemoSummary:
    """Runs the demo and returns its summary; prints as it goes unless ``quiet``.

    Args:
        settings: :class:`orroute.config.Settings` (key, base URL, ledger, strategy).
        offline: True forces FakeOpenRouter, False forces the real API; None = offline when no key.
        budget: the demo's budget in USD (alerts at 25, 50, 80 and 100%).
        speed: time compression of the offline latencies (1 = real-time figures).
        concurrency: tasks in flight at once.
        ledger: ledger file (default: ``demo.sqlite3`` next to the settings' ledger).
        limit_tasks: run only the first N tasks (tests).
        faults: inject the offline faults (a failing provider, a rate limit).
    """
    return asyncio.run(DemoShow(
        settings=settings, offline=offline, budget=Decimal(str(budget)), strategy=strategy,
        speed=speed, concurrency=concurrency, ledger=ledger, limit_tasks=limit_tasks,
        faults=faults, quiet=quiet, console=console,
    ).run())
