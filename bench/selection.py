#!/usr/bin/env python3
"""Median time of ModelSelector.select_model over the full bundled catalog, from Python.

The plan's reference system claims under 1 ms per selection. Also prints the cost of a bare
Python->C++ call in the same run (parse_money) as the floor every binding pays, and rank() with
reasons for comparison.

Usage: PYTHONPATH=python python3 bench/selection.py [--n 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import orroute
from orroute import _core


def median_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    sel = orroute.ModelSelector()
    print(f"catalog: {len(sel.catalog)} models, {len(sel.models)} selectable")
    floor = median_us(lambda: _core.parse_money(1), args.n)
    print(f"{'bare binding call (parse_money)':45s} {floor:8.2f} us")
    for task, size, budget in [
        ("general", 500, None),
        ("coding", 2000, 0.05),
        ("reasoning", 20000, 0.5),
    ]:
        t = median_us(lambda t=task, s=size, b=budget: sel.select_model(t, s, b), args.n)
        label = f"select_model({task!r}, {size}, {budget})"
        print(f"{label:45s} {t:8.2f} us")
    t = median_us(lambda: sel.rank("coding", 2000, 0.05), max(args.n // 20, 200))
    print(f"{'rank(coding, 2000, 0.05) with reasons':45s} {t:8.2f} us")
    t = median_us(lambda: sel.rank("coding", 2000, 0.05, explain=False), max(args.n // 20, 200))
    print(f"{'rank(coding, 2000, 0.05) without reasons':45s} {t:8.2f} us")


if __name__ == "__main__":
    main()
