#!/usr/bin/env python3
"""Time of ModelSelector.select_model and rank() against catalog size, from Python.

The bundled catalog (414 models) is replicated x1, x4, x16, x64 (each copy's ids get a "-cN"
suffix, so copies are distinct models with the same prices and capabilities): a curve, so a cost
that grows faster than the catalog shows as a rising "ns/model" column. Also prints, in the same
run, a bare Python->C++ call (parse_money) as the floor every binding pays. The "varied" row cycles
through 64 fixed pseudo-random (task type, input size, budget) queries, so no single repeated
query (nor anything cached for it) is all that is timed. Targets (issue #21): select_model over
~26k models <= 100 µs; rank(limit=k) costs about one scan, not a full sort.

Usage: PYTHONPATH=python python3 bench/selection.py [--n 2000] [--scales 1,4,16,64]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import orroute
from orroute import _core
from orroute.catalog import Catalog, bundled_catalog_path


def median_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def replicated_catalog(scale: int) -> Catalog:
    """The bundled catalog with every model copied `scale` times under distinct ids."""
    doc = json.loads(bundled_catalog_path().read_text())
    if scale > 1:
        models = []
        for copy in range(scale):
            for m in doc["data"]:
                c = dict(m)
                if copy:
                    c["id"] = f"{m['id']}-c{copy}"
                    c["canonical_slug"] = f"{m.get('canonical_slug') or m['id']}-c{copy}"
                models.append(c)
        doc["data"] = models
    return Catalog.from_json(json.dumps(doc))


def varied_queries(count: int = 64) -> list[tuple[str, int, float | None]]:
    """Fixed pseudo-random queries: input sizes log-uniform in 1..100k, budgets often absent."""
    rng = random.Random(21)
    out: list[tuple[str, int, float | None]] = []
    for _ in range(count):
        task = rng.choice(["general", "coding", "reasoning", "summarization", "extraction"])
        size = int(10 ** rng.uniform(0, 5))
        budget = None if rng.random() < 0.4 else rng.choice([0.001, 0.01, 0.05, 0.2, 1.0])
        out.append((task, size, budget))
    return out


def curve_point(
    sel: orroute.ModelSelector, queries: list[tuple[str, int, float | None]], n: int
) -> list[tuple[str, float]]:
    """(label, median µs) of each query, rank(limit=4) and the full rank on one catalog."""
    rows: list[tuple[str, float]] = []
    for task, size, budget in queries:
        t = median_us(lambda t=task, s=size, b=budget: sel.select_model(t, s, b), n)
        rows.append((f"select_model({task!r}, {size}, {budget})", t))
    varied = varied_queries()
    pos = [0]

    def next_varied() -> None:
        task, size, budget = varied[pos[0] % len(varied)]
        pos[0] += 1
        try:
            sel.select_model(task, size, budget)
        except orroute.NoModelAvailableError:
            pass  # a tight budget on a big input: refused, timed all the same

    rows.append(("select_model(varied input/budget)", median_us(next_varied, max(n, 64))))
    for limit in (4, 0):
        t = median_us(
            lambda lim=limit: sel.rank("coding", 2000, 0.05, explain=False, limit=lim or None),
            max(20, n // 10),
        )
        rows.append((f"rank(coding, limit={limit or 'all'}, no reasons)", t))
    t = median_us(lambda: sel.rank("coding", 2000, 0.05, limit=4), max(20, n // 10))
    rows.append(("rank(coding, limit=4, reasons)", t))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="timed calls per figure (median taken)")
    ap.add_argument("--scales", default="1,4,16,64")
    args = ap.parse_args()
    floor = median_us(lambda: _core.parse_money(1), args.n)
    print(f"bare binding call (parse_money): {floor:.2f} µs\n")
    queries = [("general", 500, None), ("coding", 2000, 0.05), ("reasoning", 20000, 0.5)]
    print(
        f"{'models':>7} {'selectable':>10}  {'query':<36}{'µs':>10}{'ns/model':>10}"
    )
    for scale in (int(x) for x in args.scales.split(",") if x.strip()):
        sel = orroute.ModelSelector(replicated_catalog(scale))
        for label, t in curve_point(sel, queries, max(50, args.n // scale)):
            models = len(sel.catalog)
            print(f"{models:>7} {len(sel.models):>10}  {label:<36}{t:>10.1f}{t * 1000 / models:>10.2f}")
        print()
    print("target: select_model over ~26k models <= 100 µs")


if __name__ == "__main__":
    main()
