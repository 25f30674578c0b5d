"""Stand-in for ``AIModelManager`` while the router is not in the package: the demo's tasks run on
the pieces it is built from (``ModelSelector`` ranks, ``CostTracker`` reserves and settles,
``AsyncOpenRouter`` sends). It offers exactly the manager methods the demo uses (``plan``,
``execute_task``, ``stream_task``), so the demo switches to the real router by itself as soon as
``orroute.AIModelManager`` exists (see ``_demo_show.make_engine``), and this module can then go.

It has no circuit breaker, rate limiter or complexity analysis: those are the router's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import _exceptions as E


@dataclass(frozen=True)
class DirectAttempt:
    model: str
    error: str | None
    status: int = 0
    latency: float = 0.0
    message: str = ""


@dataclass
class DirectResult:
    content: str
    model: str
    usage: dict[str, int]
    cost: Decimal
    attempts: list[DirectAttempt]
    reasons: list[str]
    candidates: list[str]
    task_type: str
    complexity: dict[str, Any] = field(default_factory=dict)


class DirectRouter:
    """Selector + CostTracker + AsyncOpenRouter, shaped like ``AIModelManager``."""

    def __init__(self, *, api_key: str | None, base_url: str, strategy: str, ledger: str,
                 project: str, budget: Decimal, max_candidates: int = 3) -> None:
        import orroute

        self.selector = orroute.ModelSelector(strategy=strategy)
        self.catalog = orroute.Catalog.bundled()
        self.tracker = orroute.CostTracker(ledger)
        self.tracker.set_budget(budget, project=project, policy="downgrade")
        self.client = orroute.AsyncOpenRouter(api_key=api_key, base_url=base_url, max_retries=1)
        self.project = project
        self.max_candidates = max_candidates

    def _prompt_tokens(self, task: Any, model: str = "gpt-4o") -> int:
        from .tokenizer import count_tokens

        return int(task.input_size if task.input_size is not None
                   else count_tokens(task.messages, model=model))

    def plan(self, task: Any) -> dict[str, Any]:
        """Candidates for the task: the selector's ranking within what the budget has left."""
        tokens = self._prompt_tokens(task)
        left = self.tracker.headroom(project=self.project)
        out = task.max_tokens or 1024
        ranked = self.selector.rank(task.type, tokens, None, limit=self.max_candidates,
                                    expected_output_tokens=out)
        reasons = list(ranked[0].reasons) if ranked else []
        if left is not None and ranked and ranked[0].estimated_cost > left:
            # the downgrade policy: what the budget has left bounds the choice
            try:
                ranked = self.selector.rank(task.type, tokens, left, limit=self.max_candidates,
                                            expected_output_tokens=out)
                reasons = [f"downgraded: ${left:.6f} left in the budget",
                           *ranked[0].reasons]
            except E.NoModelAvailableError:
                pass
        return {"candidates": [r.model for r in ranked], "reasons": reasons,
                "task_type": task.type, "complexity": {}}

    async def execute_task(self, task: Any) -> DirectResult:
        return await self._run(task, stream_sink=None)

    async def stream_task(self, task: Any) -> AsyncIterator[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        # the stand-in streams one model; fallbacks apply before the first chunk only
        plan = self.plan(task)
        model = plan["candidates"][0]
        prompt = self._prompt_tokens(task, model)
        worst = self.catalog.worst_case_cost(model, prompt_tokens=prompt,
                                             max_output_tokens=task.max_tokens)
        start = time.perf_counter()
        ttft = None
        with self.tracker.reserve(worst, project=self.project, model=model,
                                  task_id=task.id) as reservation:
            stream = await self.client.chat.completions.create(
                model=model, messages=task.messages, max_tokens=task.max_tokens, stream=True)
            async for chunk in stream:
                if ttft is None:
                    ttft = time.perf_counter() - start
                data = chunk.to_dict() if hasattr(chunk, "to_dict") else dict(chunk)
                chunks.append(data)
                yield data
            self._settle(reservation, task, model, stream.usage, prompt, worst, start, ttft, 1)

    async def _run(self, task: Any, stream_sink: Any) -> DirectResult:
        plan = self.plan(task)
        attempts: list[DirectAttempt] = []
        refusal: E.BudgetExceededError | None = None
        for model in plan["candidates"]:
            prompt = self._prompt_tokens(task, model)
            worst = self.catalog.worst_case_cost(model, prompt_tokens=prompt,
                                                 max_output_tokens=task.max_tokens)
            try:
                reservation = await self._reserve(worst, model, task)
            except E.BudgetExceededError as e:
                attempts.append(DirectAttempt(model, "skipped:budget", message=str(e)))
                refusal = e
                continue
            start = time.perf_counter()
            try:
                with reservation:
                    completion = await self.client.chat.completions.create(
                        model=model, messages=task.messages, max_tokens=task.max_tokens)
                    cost = self._settle(reservation, task, model, completion.usage, prompt, worst,
                                        start, None, len(attempts) + 1)
            except E.APIError as e:
                attempts.append(DirectAttempt(model, type(e).__name__, e.status_code or 0,
                                              time.perf_counter() - start, str(e)))
                if isinstance(e, E.PaymentRequiredError):
                    raise
                continue
            attempts.append(DirectAttempt(model, None, 200, time.perf_counter() - start))
            choice = completion.choices[0]
            usage = completion.usage
            return DirectResult(
                content=choice.message.content or "", model=completion.model or model,
                usage={"prompt_tokens": usage.prompt_tokens or 0,
                       "completion_tokens": usage.completion_tokens or 0},
                cost=cost, attempts=attempts, reasons=plan["reasons"],
                candidates=plan["candidates"], task_type=task.type)
        if refusal is not None and all(a.error == "skipped:budget" for a in attempts):
            refusal.attempts = attempts  # type: ignore[attr-defined]
            raise refusal
        last = attempts[-1] if attempts else None
        err = E.NoModelAvailableError(
            f"every candidate failed or was skipped: {', '.join(a.model for a in attempts)}"
            + (f" (last: {last.message})" if last else ""))
        err.attempts = attempts  # type: ignore[attr-defined]
        raise err

    async def _reserve(self, amount: Decimal, model: str, task: Any) -> Any:
        """Reserves ``amount``; while other calls hold reservations that may free up, waits a
        little for them to settle before giving up (worst cases are far above actual costs)."""
        import asyncio

        for _ in range(60):
            try:
                return self.tracker.reserve(amount, project=self.project, model=model,
                                            task_id=task.id)
            except E.BudgetExceededError:
                if self.tracker.live_reservations()[0] == 0:
                    raise
                await asyncio.sleep(0.05)
        return self.tracker.reserve(amount, project=self.project, model=model, task_id=task.id)

    def _settle(self, reservation: Any, task: Any, model: str, usage: Any, prompt: int,
                estimate: Decimal, start: float, ttft: float | None, attempts: int) -> Decimal:
        pt = int(getattr(usage, "prompt_tokens", None) or prompt)
        ct = int(getattr(usage, "completion_tokens", None) or 0)
        cost = self.catalog.cost(model, prompt_tokens=pt, completion_tokens=ct)
        reservation.settle(cost, model=model, prompt_tokens=pt, completion_tokens=ct,
                           task_type=task.type, estimated_cost=estimate,
                           latency=time.perf_counter() - start, ttft=ttft, attempts=attempts)
        return Decimal(cost)
