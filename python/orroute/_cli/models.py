"""``orroute models``: list, show, test, benchmark, performance, recommend."""

from __future__ import annotations

import difflib
import statistics
import time
from decimal import Decimal
from typing import Any

import click

from ..config import STRATEGIES
from ._common import (
    EXIT_API,
    EXIT_NOT_FOUND,
    USD,
    CLIError,
    app,
    cell,
    console,
    emit_json,
    field_of,
    make_client,
    make_tracker,
    per_million,
    print_table,
    to_data,
    usd,
)

_M = Decimal(1_000_000)


def load_catalog(live: bool = False) -> Any:
    """The catalog commands use: the bundled snapshot, or with ``live`` the endpoint's ``/models``
    (fetched now; a one-line error, exit code 4, if the endpoint cannot be reached)."""
    import orroute

    if not live:
        return orroute.Catalog.bundled()
    from ..config import load_settings

    s = load_settings()
    client = make_client(s)
    try:
        return client.models.list(refresh=True, fallback=False).to_catalog()
    except orroute.APIError as e:
        raise CLIError(f"cannot fetch the live catalog from {s.base_url}: {e}", EXIT_API) from e
    finally:
        client.close()


def lookup(catalog: Any, model_id: str) -> Any:
    """The model, or a one-line 'unknown model' error with close matches (exit code 5)."""
    found = catalog.get(model_id)
    if found is not None:
        return found
    ids = list(catalog.ids)
    close = difflib.get_close_matches(model_id, ids, n=3, cutoff=0.6)
    close += [i for i in ids if model_id.lower() in i.lower() and i not in close][: 3 - len(close)]
    hint = f"; did you mean {', '.join(close)}?" if close else " (see `orroute models list`)"
    raise CLIError(f"unknown model {model_id!r}{hint}", EXIT_NOT_FOUND)


def _price(m: Any, field: str) -> Decimal | None:
    prices = m.pricing.base
    return getattr(prices, field, None)


def model_summary(m: Any) -> dict[str, Any]:
    """The fields of a model shown in lists (prices in USD per million tokens)."""
    dynamic = bool(getattr(m.pricing, "dynamic", False))
    return {
        "id": m.id,
        "name": m.name,
        "provider": m.provider,
        "context_length": m.context_length,
        "max_completion_tokens": m.max_completion_tokens,
        "prompt_per_mtok": None if dynamic else m.pricing.prompt * _M,
        "completion_per_mtok": None if dynamic else m.pricing.completion * _M,
        "dynamic_price": dynamic,
        "capabilities": list(m.capabilities),
    }


def model_detail(m: Any) -> dict[str, Any]:
    d = model_summary(m)
    base = m.pricing.base
    prices = {}
    for field in ("prompt", "completion", "request", "image", "web_search", "internal_reasoning",
                  "input_cache_read", "input_cache_write", "input_cache_write_1h", "audio"):
        v = getattr(base, field, None)
        if v is not None and (v != 0 or field in ("prompt", "completion")):
            prices[field] = v
    tiers = []
    for t in getattr(m.pricing, "tiers", []) or []:
        tiers.append({"min_prompt_tokens": t.min_prompt_tokens, "prompt": t.prices.prompt,
                      "completion": t.prices.completion})
    d.update({
        "description": m.description,
        "created": m.created,
        "input_modalities": list(m.input_modalities),
        "output_modalities": list(m.output_modalities),
        "tokenizer": m.tokenizer,
        "supported_parameters": list(m.supported_parameters),
        "is_moderated": m.is_moderated,
        "expiration_date": m.expiration_date,
        "prices_per_token": prices,
        "price_tiers": tiers,
    })
    return d


@click.group()
def models() -> None:
    """Browse, compare, test and benchmark models."""


_SORTS = ("price", "context", "quality", "name", "created")


@models.command("list")
@click.option("--capability", "-c", "capabilities", multiple=True, metavar="NAME",
              help="Required capability (repeatable): tools, vision, reasoning, coding, ...")
@click.option("--max-price", type=float, default=None, metavar="USD",
              help="Highest prompt price, USD per million tokens.")
@click.option("--max-completion-price", type=float, default=None, metavar="USD",
              help="Highest completion price, USD per million tokens.")
@click.option("--min-context", type=int, default=None, metavar="TOKENS",
              help="Smallest context window.")
@click.option("--provider", "-p", "providers", multiple=True,
              help="Author, e.g. openai (repeatable).")
@click.option("--free/--paid", "free", default=None, help="Only free, or only paid, models.")
@click.option("--search", "-s", default=None, help="Substring of the id or name.")
@click.option("--sort", type=click.Choice(_SORTS), default="name", show_default=True)
@click.option("--desc", is_flag=True, help="Reverse the order.")
@click.option("--limit", "-n", type=int, default=None, help="Show at most N models.")
@click.option("--live", is_flag=True,
              help="Fetch the endpoint's /models now instead of the bundled snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(capabilities: tuple[str, ...], max_price: float | None,
                max_completion_price: float | None, min_context: int | None,
                providers: tuple[str, ...], free: bool | None, search: str | None, sort: str,
                desc: bool, limit: int | None, live: bool, as_json: bool) -> None:
    """List the models of the catalog, filtered and sorted."""
    catalog = load_catalog(live)
    found = catalog.filter(
        capability=list(capabilities) or None,
        max_prompt_price=max_price,
        max_completion_price=max_completion_price,
        min_context=min_context,
        provider=list(providers) or None,
        free=free,
        include_dynamic=max_price is None and max_completion_price is None,
    )
    if search:
        s = search.lower()
        found = [m for m in found if s in m.id.lower() or s in m.name.lower()]
    rows = [model_summary(m) for m in found]
    if sort == "quality":
        quality = _quality_scores([r["id"] for r in rows])
        for r in rows:
            r["quality"] = quality.get(r["id"])
    key = {
        "name": lambda r: r["id"],
        "price": lambda r: (r["prompt_per_mtok"] is None,
                            (r["prompt_per_mtok"] or 0) + (r["completion_per_mtok"] or 0)),
        "context": lambda r: r["context_length"] or 0,
        "created": lambda r: 0,
        "quality": lambda r: (r.get("quality") is None, -(r.get("quality") or 0)),
    }[sort]
    if sort == "created":
        created = {m.id: m.created for m in found}
        key = lambda r: created[r["id"]]
    rows.sort(key=key, reverse=desc ^ (sort in ("context", "created")))
    if limit is not None:
        rows = rows[:limit]
    if as_json:
        emit_json(rows)
        return
    columns = ["model", "context", "prompt $/M", "output $/M", "capabilities"]
    if sort == "quality":
        columns.insert(1, "quality")
    table = []
    for r in rows:
        row = [r["id"], r["context_length"] or None,
               "dynamic" if r["dynamic_price"] else usd(r["prompt_per_mtok"]),
               "dynamic" if r["dynamic_price"] else usd(r["completion_per_mtok"]),
               ", ".join(c for c in r["capabilities"] if c in _SHOWN_CAPS)]
        if sort == "quality":
            row.insert(1, None if r.get("quality") is None else f"{r['quality']:.2f}")
        table.append(row)
    print_table(None, columns, table,
                justify={"context": "right", "prompt $/M": "right", "output $/M": "right",
                         "quality": "right"},
                caption=f"{len(rows)} of {len(catalog)} models")


_SHOWN_CAPS = ("tools", "structured_outputs", "vision", "reasoning", "audio", "file_input",
               "large_context", "long_output")


def _quality_scores(ids: list[str]) -> dict[str, float]:
    """Overall quality prior of each model, from the selector's table."""
    import orroute

    specs = orroute.ModelSelector().models
    out: dict[str, float] = {}
    for mid in ids:
        spec = specs.get(mid)
        if spec is not None:
            out[mid] = float(spec.quality)
    return out


@models.command("show")
@click.argument("model_id")
@click.option("--live", is_flag=True,
              help="Fetch the endpoint's /models now instead of the bundled snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(model_id: str, live: bool, as_json: bool) -> None:
    """Show everything the catalog knows about one model."""
    m = lookup(load_catalog(live), model_id)
    d = model_detail(m)
    if as_json:
        emit_json(d)
        return
    from rich.panel import Panel
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    t.add_row("id", d["id"])
    t.add_row("provider", d["provider"])
    t.add_row("context", cell(d["context_length"]) + " tokens")
    t.add_row("max output", cell(d["max_completion_tokens"]) + " tokens"
              if d["max_completion_tokens"] else "-")
    t.add_row("modalities", f"{'+'.join(d['input_modalities'])} -> "
                            f"{'+'.join(d['output_modalities'])}")
    t.add_row("tokenizer", d["tokenizer"] or "-")
    if d["dynamic_price"]:
        t.add_row("price", "dynamic (a router: priced by the model it picks)")
    else:
        for field, v in d["prices_per_token"].items():
            if field in ("prompt", "completion", "input_cache_read", "input_cache_write",
                         "internal_reasoning", "audio"):
                t.add_row(f"{field} price", f"{per_million(v)} per million tokens")
            else:
                t.add_row(f"{field} price", f"{usd(v)} each")
        for tier in d["price_tiers"]:
            if tier["min_prompt_tokens"]:
                t.add_row("above", f"{tier['min_prompt_tokens']:,} prompt tokens: "
                          f"{per_million(tier['prompt'])} / {per_million(tier['completion'])} "
                          "per million")
    t.add_row("capabilities", ", ".join(d["capabilities"]) or "-")
    t.add_row("parameters", ", ".join(d["supported_parameters"]) or "-")
    if d["expiration_date"]:
        t.add_row("expires", d["expiration_date"])
    desc = (d["description"] or "").strip().replace("\n", " ")
    if len(desc) > 300:
        desc = desc[:297] + "..."
    if desc:
        t.add_row("about", desc)
    console().print(Panel(t, title=d["name"], expand=False))


# --- commands that call a model --------------------------------------------------------------


def _measure(client: Any, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """One streamed completion: latency, time to first token, tokens/s, tokens and cost."""
    start = time.perf_counter()
    ttft = None
    parts: list[str] = []
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
        stream=True)
    usage = None
    served = model
    with stream:
        for chunk in stream:
            served = getattr(chunk, "model", None) or served
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            for choice in getattr(chunk, "choices", None) or []:
                text = getattr(getattr(choice, "delta", None), "content", None)
                if text:
                    if ttft is None:
                        ttft = time.perf_counter() - start
                    parts.append(text)
        usage = usage or getattr(stream, "usage", None)
    latency = time.perf_counter() - start
    pt = int(field_of(usage, "prompt_tokens", 0) or 0)
    ct = int(field_of(usage, "completion_tokens", 0) or 0)
    cost = field_of(usage, "cost")
    if cost is None and usage is not None:
        try:
            cost = load_catalog().cost(served, prompt_tokens=pt, completion_tokens=ct)
        except Exception:  # noqa: BLE001 - a model outside the catalog has no known price
            cost = None
    gen_time = latency - (ttft or 0)
    return {
        "model": served, "latency": latency, "ttft": ttft, "prompt_tokens": pt,
        "completion_tokens": ct,
        "tokens_per_second": (ct / gen_time) if ct and gen_time > 0 else None,
        "cost": None if cost is None else Decimal(str(cost)), "content": "".join(parts),
    }


@models.command("test", short_help="One real completion: answer, latency, TTFT, cost.")
@click.argument("model_id")
@click.option("--prompt", default="Say hello in five words.", show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--no-record", is_flag=True,
              help="Do not book the call in the ledger (tag source=models test).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def test_model(model_id: str, prompt: str, max_tokens: int, no_record: bool,
               as_json: bool) -> None:
    """Send one real completion to MODEL_ID; show the answer, latency, TTFT and exact cost. The
    call is booked in the ledger (see `models performance`)."""
    s = app().settings
    if s.is_openrouter:
        lookup(load_catalog(), model_id)
    client = make_client(s)
    tracker = None if no_record else make_tracker(s)
    try:
        r = _measure(client, model_id, prompt, max_tokens)
    except Exception as e:
        _record(tracker, "models test", model_id, None, e)
        raise
    finally:
        _close(client)
    _record(tracker, "models test", model_id, r)
    if as_json:
        emit_json(r)
        return
    click.echo(r["content"])
    console(stderr=True).print(
        f"[bold]{r['model']}[/]: {r['latency']:.2f}s total, TTFT "
        f"{_secs(r['ttft'])}, "
        f"{r['prompt_tokens']} in / {r['completion_tokens']} out, cost {usd(r['cost'])}")


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


def _record(tracker: Any, source: str, model: str, r: dict[str, Any] | None,
            error: BaseException | None = None) -> None:
    """Books one `models test` / `models benchmark` run in the ledger (tag ``source``), so that
    `models performance` and the analytics include it. A ledger failure is reported, never
    fatal: the measurement itself was made."""
    if tracker is None:
        return
    try:
        project = app().settings.project
        if r is not None:
            tracker.record_call(
                cost=r["cost"] if r["cost"] is not None else 0, model=r["model"],
                model_requested=model, project=project, task_type="general",
                tags={"source": source}, prompt_tokens=r["prompt_tokens"],
                completion_tokens=r["completion_tokens"], latency=r["latency"], ttft=r["ttft"])
        else:
            tracker.record_call(cost=0, model=model, project=project, task_type="general",
                                tags={"source": source}, outcome="error",
                                error_class=type(error).__name__ if error else "")
    except Exception as e:  # noqa: BLE001 - see the docstring
        click.echo(f"warning: not recorded in the ledger: {e}", err=True)


@models.command("benchmark", short_help="Compare latency, TTFT, tokens/s and cost.")
@click.argument("model_ids", nargs=-1)
@click.option("--runs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--prompt", default="Explain in three sentences why the sky is blue.",
              show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--no-record", is_flag=True,
              help="Do not book the runs in the ledger (tag source=models benchmark).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def benchmark(model_ids: tuple[str, ...], runs: int, prompt: str, max_tokens: int,
              no_record: bool, as_json: bool) -> None:
    """Compare latency, TTFT, tokens/s and cost of models (default: the configured order, or
    the integration guide's six). Every run is booked in the ledger (see `models
    performance`)."""
    from rich.progress import Progress

    from ..config import GUIDE_MODEL_ORDER

    s = app().settings
    ids = list(model_ids) or s.model_order() or list(GUIDE_MODEL_ORDER)
    if s.is_openrouter:
        catalog = load_catalog()
        for mid in ids:
            lookup(catalog, mid)
    client = make_client(s)
    tracker = None if no_record else make_tracker(s)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in ids}
    errors: dict[str, list[str]] = {m: [] for m in ids}
    try:
        with Progress(console=console(stderr=True), transient=True) as progress:
            bar = progress.add_task("benchmarking", total=len(ids) * runs)
            for mid in ids:
                for _ in range(runs):
                    progress.update(bar, description=f"{mid}")
                    try:
                        results[mid].append(_measure(client, mid, prompt, max_tokens))
                        _record(tracker, "models benchmark", mid, results[mid][-1])
                    except Exception as e:  # noqa: BLE001 - a failing model is a result too
                        errors[mid].append(str(e).splitlines()[0] if str(e) else type(e).__name__)
                        _record(tracker, "models benchmark", mid, None, e)
                    progress.advance(bar)
    finally:
        _close(client)
    rows: list[dict[str, Any]] = []
    for mid in ids:
        rs = results[mid]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r[key] is not None]
            return statistics.median(vals) if vals else None

        costs = [r["cost"] for r in rs if r["cost"] is not None]
        rows.append({
            "model": mid, "runs": runs, "ok": len(rs), "errors": errors[mid],
            "latency_p50": med("latency"), "ttft_p50": med("ttft"),
            "tokens_per_second": med("tokens_per_second"),
            "cost_per_call": (sum(costs, Decimal(0)) / len(costs)) if costs else None,
        })
    if as_json:
        emit_json(rows)
        return
    print_table(f"benchmark: {runs} run(s) per model, {max_tokens} max tokens",
                ["model", "ok", "latency p50", "TTFT p50", "tokens/s", "cost/call"],
                [(r["model"], f"{r['ok']}/{r['runs']}", _secs(r["latency_p50"]),
                  _secs(r["ttft_p50"]),
                  None if r["tokens_per_second"] is None else f"{r['tokens_per_second']:.0f}",
                  usd(r["cost_per_call"])) for r in rows],
                justify={"ok": "right", "latency p50": "right", "TTFT p50": "right",
                         "tokens/s": "right", "cost/call": "right"})
    for r in rows:
        if r["errors"]:
            click.echo(f"{r['model']}: {r['errors'][0]}", err=True)


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}s"


# Task names people use (the reference system's `--task code-analysis`) -> the selector's types.
_TASK_ALIASES = {
    "code": "coding", "code_analysis": "coding", "code_review": "coding", "programming": "coding",
    "analysis": "reasoning", "summarize": "bulk_processing", "bulk": "bulk_processing",
    "chat": "general",
    "question": "general", "qa": "general", "long_context": "large_context",
}


def task_type_name(name: str) -> str:
    """The selector's name for a task type given on the command line."""
    from ..selector import task_types

    t = name.strip().lower().replace("-", "_").replace(" ", "_")
    return t if t in task_types() else _TASK_ALIASES.get(t, t)


@models.command("recommend", short_help="Best models for a task type, with reasons.")
@click.option("--task", "task_type", required=True,
              help="Task type: coding, reasoning, general, bulk_processing, large_context, ... "
                   "(aliases such as code-analysis work).")
@click.option("--budget", type=USD, default=None, metavar="USD",
              help="Most one call may cost.")
@click.option("--input-size", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Prompt size in tokens.")
@click.option("--output-size", type=click.IntRange(min=1), default=None,
              help="Expected output tokens (default: the task type's).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None)
@click.option("--capability", "-c", "capabilities", multiple=True, metavar="NAME",
              help="Required capability (repeatable).")
@click.option("--allow-free", is_flag=True, help="Consider free (rate-limited) models too.")
@click.option("--top", "-n", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend(task_type: str, budget: Decimal | None, input_size: int, output_size: int | None,
              strategy: str | None, capabilities: tuple[str, ...], allow_free: bool, top: int,
              as_json: bool) -> None:
    """The best models for a task type, with scores, estimated cost and the reasons; and what
    the other strategies would pick."""
    import orroute

    s = app().settings
    strategy = strategy or s.strategy
    kind = task_type_name(task_type)
    constraints: dict[str, Any] = {}
    if output_size is not None:
        constraints["expected_output_tokens"] = output_size
    if capabilities:
        constraints["capabilities"] = list(capabilities)
    if allow_free:
        constraints["allow_free"] = True
    selector = orroute.ModelSelector(strategy=strategy)
    limit = None if budget is None else str(budget)
    ranked = selector.rank(kind, input_size, limit, limit=top, **constraints)
    others: dict[str, Any] = {}
    for other in STRATEGIES:
        if other != strategy:
            pick = selector.rank(kind, input_size, limit, strategy=other, explain=False, limit=1,
                                 **constraints)
            others[other] = to_data(pick[0]) if pick else None
    if as_json:
        emit_json({"task_type": kind, "strategy": strategy, "input_size": input_size,
                   "budget": limit, "ranked": [to_data(r) for r in ranked],
                   "other_strategies": others})
        return
    print_table(
        f"{kind}: {input_size:,} input tokens, budget {'none' if budget is None else usd(limit)}, "
        f"strategy {strategy}",
        ["#", "model", "score", "quality", "est. cost", "tier"],
        [(i, r.model, f"{r.score:.3f}", f"{r.quality:.2f}", usd(r.estimated_cost), r.tier)
         for i, r in enumerate(ranked, 1)],
        justify={"#": "right", "score": "right", "quality": "right", "est. cost": "right"})
    if ranked:
        click.echo(f"why {ranked[0].model}:")
        for reason in ranked[0].reasons:
            click.echo(f"  - {reason}")
    for other, pick in others.items():
        if pick:
            click.echo(f"{other:>15}: {pick['model']} ({usd(pick['estimated_cost'])}, "
                       f"quality {pick['quality']:.2f})")


@models.command("performance", short_help="Per-model latency, success, quality and cost.")
@click.option("--period", type=click.Choice(["today", "week", "month", "all"]), default="all",
              show_default=True)
@click.option("--project", default=None, help="Only this project.")
@click.option("--task", "task_type", default=None, help="Only this task type.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def performance(period: str, project: str | None, task_type: str | None, as_json: bool) -> None:
    """Latency and TTFT p50/p95/p99, tokens/s, success rate, quality (mean feedback score) and
    cost per call of each model, from the calls and the feedback recorded in the ledger
    (including `models test` and `models benchmark` runs)."""
    from ..analytics import performance as measure
    from ._common import since_for

    s = app().settings
    rows = measure(make_tracker(s), since=since_for(period), project=project,
                   task_type=task_type_name(task_type) if task_type else None)
    if as_json:
        emit_json({"period": period, "ledger": f"{s.ledger_path}", "models": rows})
        return
    if not rows:
        click.echo(f"no calls recorded ({period}) in {s.ledger_path}")
        return
    print_table(
        f"model performance, {period}",
        ["model", "calls", "success", "latency p50", "p95", "p99", "TTFT p50", "p95 ", "p99 ",
         "tokens/s", "quality", "cost/call"],
        [(r.model, r.calls, f"{r.success_rate:.0%}", _secs(r.latency_p50), _secs(r.latency_p95),
          _secs(r.latency_p99), _secs(r.ttft_p50), _secs(r.ttft_p95), _secs(r.ttft_p99),
          "-" if r.tokens_per_second is None else f"{r.tokens_per_second:.0f}",
          "-" if r.quality is None else f"{r.quality:.2f} ({r.feedback_count})",
          usd(r.cost_per_call)) for r in rows],
        justify={c: "right" for c in ("success", "latency p50", "p95", "p99", "TTFT p50", "p95 ",
                                      "p99 ", "tokens/s", "quality", "cost/call")},
        caption=f"quality: mean feedback score (count); ledger {s.ledger_path}")


@models.command("rate", context_settings={"ignore_unknown_options": True},
                short_help="Record a quality score for a model (kept in the ledger).")
@click.argument("model_id")
@click.argument("score", type=click.FloatRange(0, 1))
@click.option("--task", "task_type", default="general", show_default=True,
              help="Task type the score is for (aliases such as code-analysis work).")
@click.option("--result-id", default="", help="The call the score is about, if known.")
def rate(model_id: str, score: float, task_type: str, result_id: str) -> None:
    """Record a quality SCORE in [0, 1] for MODEL_ID on a task type. Routers started later on
    this ledger rank with it; `models performance` shows the mean."""
    import orroute

    from ..analytics import record_feedback

    lookup(orroute.Catalog.bundled(), model_id)
    record_feedback(make_tracker(app().settings), model_id, score,
                    task_type=task_type_name(task_type), result_id=result_id)
    click.echo(f"recorded {score:g} for {model_id} on {task_type_name(task_type)}")
