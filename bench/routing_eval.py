#!/usr/bin/env python3
"""Held-out evaluation of orroute's learned router on the bundled RouterBench and RouteLLM-MMLU
outcome tables: accuracy-cost curves, cost to match the best single model, AIQ, PGR/APGR/CPT, and
the baselines (single models, random mixes, task-type-only router, random router, oracle).

Usage: PYTHONPATH=python python3 bench/routing_eval.py [--folds 5] [--seed 0] [--out bench/out/routing]
       [--datasets routerbench,mmlu] [--option key=value ...]
"""

from __future__ import annotations

import argparse
import ast

from orroute.routing import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/routing", help="directory for PNG plots ('' = none)")
    ap.add_argument("--datasets", default="routerbench,mmlu")
    ap.add_argument("--option", action="append", default=[], help="router option key=value")
    args = ap.parse_args()
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    evaluate(datasets=tuple(args.datasets.split(",")), folds=args.folds, seed=args.seed,
             out_dir=args.out or None, **options)


if __name__ == "__main__":
    main()
