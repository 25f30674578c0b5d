"""The demo's provider-outage scene (offline): the same model at two providers, OpenRouter
first and Anthropic's own API next. OpenRouter goes down half way; the engine sends the same model
to Anthropic (its Messages API, translated), every task still answers, and each call is priced at
the prices of the provider that served it and booked with that provider in the ledger."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

MODEL = "anthropic/claude-sonnet-4.5"
_OR_KEY = "sk-or-v1-offline-demo-0000000000"
_ANT_KEY = "sk-ant-offline-demo-0000000000"


async def provider_outage(ledger: Path, project: str, say: Callable[..., None], *,
                          tasks: int = 6) -> dict[str, Any]:
    """Runs the scene; returns ``{tasks, answered, by_provider: {name: {calls, cost}}}``."""
    from ..manager import AIModelManager
    from ..provider_config import parse_providers
    from ..task import Task
    from ..testing import FakeAnthropic, FakeOpenRouter, Fault

    with FakeOpenRouter(api_key=_OR_KEY, use_uvloop=False) as orf, \
            FakeAnthropic(api_key=_ANT_KEY, use_uvloop=False) as ant:
        providers = parse_providers(
            {"providers": {"openrouter": {"priority": 0}, "anthropic": {"priority": 1}}},
            {"OPENROUTER_API_KEY": _OR_KEY, "OPENROUTER_BASE_URL": orf.base_url,
             "ANTHROPIC_API_KEY": _ANT_KEY, "ANTHROPIC_BASE_URL": ant.base_url})
        manager = AIModelManager(api_key=_OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                                 ledger=str(ledger), project=project, providers=providers,
                                 refresh_catalog=False, retry_base_delay=0.01, max_retries=1)
        say(f"\n[bold]provider outage[/]: {MODEL} at OpenRouter (priority 0) and at Anthropic's "
            "own API (priority 1)")
        by: dict[str, dict[str, Any]] = {}
        answered = 0
        for i in range(tasks):
            if i == tasks // 2:
                orf.fail("*", Fault.server_error(503))
                say("  [red]OpenRouter is down[/] (every call answers 503)")
            try:
                r = await manager.execute_task(Task(messages=f"Summarize ticket #{i + 1} in one line.",
                                                    max_tokens=60, project=project))
            except Exception as e:  # noqa: BLE001 - shown, and counted as not answered
                say(f"  task {i + 1}: [red]failed[/]: {e}")
                continue
            answered += 1
            row = by.setdefault(r.provider, {"calls": 0, "cost": Decimal(0)})
            row["calls"] += 1
            row["cost"] += r.cost
            say(f"  task {i + 1}: {r.model} answered by [bold]{r.provider}[/] as {r.provider_model}"
                f" (${r.cost:.6f}, {r.cost_source})")
        costs = ", ".join(f"{p} {v['calls']} call(s) ${v['cost']:.6f}" for p, v in by.items())
        say(f"  [bold green]outage survived[/]: {answered}/{tasks} tasks answered; {costs}")
        return {"tasks": tasks, "answered": answered, "by_provider": by}
