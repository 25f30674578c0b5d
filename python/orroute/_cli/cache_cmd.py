"""``orroute cache stats`` and ``orroute cache clear``: the response cache next to the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._common import app, emit_json, print_table

if TYPE_CHECKING:
    from ..cache import ResponseCache


def _open(location: str | None) -> ResponseCache:
    from ..cache import ResponseCache

    s = app().settings
    return ResponseCache(location or str(s.ledger_path))


@click.group()
def cache() -> None:
    """The response cache (see docs/observability.md): what it holds, what it saved."""


@cache.command()
@click.option("--location", metavar="PATH|URL",
              help="A cache file or redis:// URL (default: the ledger's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(location: str | None, as_json: bool) -> None:
    """Entries, size, hits, misses, hit rate, evictions and the money hits saved."""
    st = _open(location).stats()
    if as_json:
        emit_json(st.to_json())
        return
    rows = [("entries", st.entries), ("bytes", st.bytes), ("hits", st.hits),
            ("misses", st.misses), ("hit rate", f"{st.hit_rate:.1%}"), ("stores", st.stores),
            ("evictions", st.evictions), ("saved", st.saved)]
    print_table("response cache", ["", "value"], rows, justify={"value": "right"})


@cache.command()
@click.option("--location", metavar="PATH|URL",
              help="A cache file or redis:// URL (default: the ledger's).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def clear(location: str | None, yes: bool) -> None:
    """Removes every cached reply and resets the counters (the ledger's rows stay)."""
    if not yes:
        click.confirm("Remove every cached reply?", abort=True)
    n = _open(location).clear()
    click.echo(f"removed {n} cached repl{'y' if n == 1 else 'ies'}")
