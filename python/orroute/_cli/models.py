"""``orroute models``: list, show, test, benchmark, performance, recommend."""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Any

import click

from ._common import (
    EXIT_NOT_FOUND, CLIError, app, cell, emit_json, per_million, print_table, usd,
)

_M = Decimal(1_000_000)


def load_catalog() -> Any:
    """The catalog every command uses (the bundled snapshot; the client refreshes its own)."""
    import orroute

    return orroute.Catalog.bundled()


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
@click.option("--provider", "-p", "providers", multiple=True, help="Author, e.g. openai (repeatable).")
@click.option("--free/--paid", "free", default=None, help="Only free, or only paid, models.")
@click.option("--search", "-s", default=None, help="Substring of the id or name.")
@click.option("--sort", type=click.Choice(_SORTS), default="name", show_default=True)
@click.option("--desc", is_flag=True, help="Reverse the order.")
@click.option("--limit", "-n", type=int, default=None, help="Show at most N models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_models(capabilities: tuple[str, ...], max_price: float | None,
                max_completion_price: float | None, min_context: int | None,
                providers: tuple[str, ...], free: bool | None, search: str | None, sort: str,
                desc: bool, limit: int | None, as_json: bool) -> None:
    """List the models of the catalog, filtered and sorted."""
    catalog = load_catalog()
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
        key = lambda r: created[r["id"]]  # noqa: E731
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
    """Overall quality prior of each model, from the selector (empty when it has none)."""
    import orroute

    selector = orroute.ModelSelector()
    quality = getattr(selector, "quality", None)
    out: dict[str, float] = {}
    if quality is None:
        return out
    for mid in ids:
        try:
            q = quality(mid)
        except Exception:  # noqa: BLE001 - a model without a prior simply has none
            q = None
        if q is not None:
            out[mid] = float(q)
    return out


@models.command("show")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(model_id: str, as_json: bool) -> None:
    """Show everything the catalog knows about one model."""
    m = lookup(load_catalog(), model_id)
    d = model_detail(m)
    if as_json:
        emit_json(d)
        return
    from rich.panel import Panel
    from rich.table import Table

    from ._common import console

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


def _unused(*_: Any) -> None:  # keep app imported for commands added below
    app()
