"""Offline replay of a workload under several selection strategies (private; see cost.simulate)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._exceptions import InvalidArgumentError, NoModelAvailableError
from .task import Task

_TASK_FIELDS = (
    "id",
    "type",
    "messages",
    "input_size",
    "max_tokens",
    "project",
    "capabilities",
    "quality",
    "budget",
    "conversation",
    "tags",
)


def _tasks(source: Any) -> list[Task]:
    if isinstance(source, (str, os.PathLike)):
        lines = Path(source).read_text(encoding="utf-8").splitlines()
        source = [json.loads(line) for line in lines if line.strip()]
    out: list[Task] = []
    for i, item in enumerate(source):
        if isinstance(item, Task):
            out.append(item)
        elif isinstance(item, Mapping):
            kwargs = {k: v for k, v in item.items() if k in _TASK_FIELDS}
            if "messages" not in kwargs and "prompt" in item:
                kwargs["messages"] = str(item["prompt"])
            out.append(Task(**kwargs))
        else:
            raise InvalidArgumentError(f"task {i} is neither a Task nor a mapping")
    return out


def simulate(
    tasks_or_jsonl: Iterable[Task | Mapping[str, Any]] | str | os.PathLike[str],
    strategies: Sequence[str] = ("balanced",),
    *,
    selector: Any = None,
    tracker: Any = None,
    detail: bool = False,
) -> Any:
    """Estimates what a workload would cost under each selection strategy, calling no API.

    A task with text (messages or ``prompt``, no ``input_size``) is planned by the engine, as an
    ``AIModelManager`` with that strategy would plan it: its first candidate, prompt count, output
    bound and estimate, which is the amount the router reserves (see
    :meth:`CostTracker.estimate_cost`). A task given by size only (``input_size``) is ranked by
    the selector and priced exactly: output from ``max_tokens`` or what ``tracker``'s ledger has
    seen, else 1024.

    Args:
        tasks_or_jsonl: Tasks, mappings of Task fields (``prompt`` accepted for ``messages``), or
            the path of a JSONL file of such mappings.
        strategies: selector strategies (``cost_optimized``, ``balanced``, ``performance``,
            ``quality_first``).
        selector: an ``orroute.ModelSelector`` (the default one over the bundled catalog).
        tracker: a CostTracker whose ledger supplies learned output lengths (in-memory otherwise).
        detail: one row per (strategy, task) instead of one per strategy.

    Returns:
        pandas.DataFrame: per strategy ``tasks``, ``unroutable``, ``total_cost`` (Decimal, exact),
        ``total_cost_usd``, ``mean_cost_usd``, ``models`` (distinct models chosen); with
        ``detail=True`` the per-task rows (strategy, task_id, task_type, model, prompt_tokens,
        completion_tokens, cost, cost_usd, error).

    >>> simulate([{"type": "coding", "prompt": "x", "input_size": 500}],  # doctest: +SKIP
    ...          strategies=["cost_optimized", "quality_first"])
    """
    import pandas as pd

    from .cost import CostTracker

    if isinstance(strategies, str):
        strategies = [strategies]
    if selector is None:
        from .selector import ModelSelector

        selector = ModelSelector()
    tracker = tracker if tracker is not None else CostTracker(":memory:", catalog=selector.catalog)
    tasks = _tasks(tasks_or_jsonl)
    rows: list[dict[str, Any]] = []
    for strategy in strategies:
        planner: Any = None
        for task in tasks:
            if task.messages and task.input_size is None:
                if planner is None:
                    from . import _engine

                    catalog = selector.catalog
                    planner = _engine.planner(getattr(catalog, "_core", catalog), strategy)
                rows.append(_planned_row(planner, task, strategy))
                continue
            prompt = task.input_size
            if prompt is None:
                from .tokenizer import count_tokens

                prompt = count_tokens(task.messages)
            row: dict[str, Any] = {
                "strategy": strategy,
                "task_id": task.id,
                "task_type": task.type,
                "model": None,
                "prompt_tokens": int(prompt),
                "completion_tokens": None,
                "cost": None,
                "cost_usd": float("nan"),
                "error": None,
            }
            try:
                ranked = selector.rank(
                    task.type, int(prompt), task.budget, strategy=strategy, explain=False, limit=1
                )
                if not ranked:
                    raise NoModelAvailableError("no candidate")
                model = ranked[0].model
                completion = task.max_tokens or tracker.expected_completion_tokens(task.type, model)
                cost = tracker._price(model, int(prompt), int(completion))
                row.update(
                    model=model, completion_tokens=int(completion), cost=cost, cost_usd=float(cost)
                )
            except NoModelAvailableError as exc:
                row["error"] = str(exc)
            rows.append(row)
    return _frame(pd, rows, strategies, detail)


def _planned_row(planner: Any, task: Task, strategy: str) -> dict[str, Any]:
    """One task as the engine plans it under ``strategy`` (its estimate is the reservation)."""
    from . import _engine

    row: dict[str, Any] = {"strategy": strategy, "task_id": task.id, "task_type": task.type,
                           "model": None, "prompt_tokens": None, "completion_tokens": None,
                           "cost": None, "cost_usd": float("nan"), "error": None}
    try:
        plan = planner.plan(_engine.task_request(task))
    except (NoModelAvailableError, InvalidArgumentError) as exc:
        row["error"] = str(exc)
        return row
    row.update(model=plan["candidates"][0], prompt_tokens=int(plan["prompt_tokens"]),
               completion_tokens=int(plan["max_tokens"]))
    if plan["estimate"] is None:
        row["error"] = f"{row['model']} cannot be priced"
    else:
        cost = Decimal(plan["estimate"])
        row.update(cost=cost, cost_usd=float(cost))
    return row


def _frame(pd: Any, rows: list[dict[str, Any]], strategies: Sequence[str], detail: bool) -> Any:
    detail_df = pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "task_id",
            "task_type",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "cost_usd",
            "error",
        ],
    )
    if detail:
        return detail_df
    summary = []
    for strategy in strategies:
        mine = [r for r in rows if r["strategy"] == strategy]
        costs = [r["cost"] for r in mine if r["cost"] is not None]
        total = sum(costs, Decimal(0))
        summary.append(
            {
                "strategy": strategy,
                "tasks": len(mine),
                "unroutable": len(mine) - len(costs),
                "total_cost": total,
                "total_cost_usd": float(total),
                "mean_cost_usd": float(total / len(costs)) if costs else float("nan"),
                "models": len({r["model"] for r in mine if r["model"]}),
            }
        )
    return pd.DataFrame(summary).set_index("strategy")
