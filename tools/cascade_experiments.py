#!/usr/bin/env python3
"""Held-out evaluation of cascading routers on RouterBench (ARC-Challenge, MBPP, Winogrande).

A cascade calls cheap models first and accepts their answer when they agree (answer keys from
``orroute._cascade.extract_answer``: option letter, code hash, short text); otherwise it calls the
next model; the last model's answer is always accepted. Cost = sum of the costs of every model called.
Same 5 folds as bench/routing_eval.py (``orroute.research.evaluation._folds``, seed 0): per fold the cascades
(models, order, agreement rule, one per task type or one for all) are chosen on the training folds
only (``CascadeRouter.fit``), then run on the held-out fold with the real answers, scores, costs.

Prints: the default setting (cost weight chosen on the training folds to reach the best single
model's training accuracy), the held-out accuracy-cost curve over fixed cost weights next to the
task-type router's hull at the same cost, and the in-sample ceiling (best cascade per task chosen on
*all* prompts: an optimistic bound, not a held-out figure).

Usage: PYTHONPATH=python python3 tools/cascade_experiments.py [--folds 5] [--seed 0]   (~2-3 min)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from orroute._cascade import _tables
from orroute.research.evaluation import (
    _folds,
    _route_points,
    cascade_cv,
    hull,
    hull_at,
    load_outcomes,
)

GPT4 = "gpt-4-1106-preview"


def task_type_hull(data, folds: int, seed: int):
    s, c = data.scores, data.costs
    n = len(s)
    tasks = np.array(data.tasks)
    p, cp = np.zeros_like(s), np.zeros_like(c)
    for test in _folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        for t in np.unique(tasks[test]):
            tr, te = train[tasks[train] == t], test[tasks[test] == t]
            p[te], cp[te] = s[tr].mean(axis=0), c[tr].mean(axis=0)
    weights = np.concatenate([[0.0], np.logspace(-1, 5, 121)])
    return hull(_route_points(p, cp, s, c, weights))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_outcomes("routerbench")
    g = data.models.index(GPT4)
    gc, ga = data.costs[:, g].mean(), data.scores[:, g].mean()
    tasks = np.array(data.tasks)
    th = task_type_hull(data, args.folds, args.seed)
    print(f"RouterBench, {len(tasks)} prompts, {args.folds}-fold CV (seed {args.seed}); "
          f"GPT-4 accuracy {ga:.4f}, {gc:.6f} USD/prompt")
    for per_task in (True, False):
        t0 = time.perf_counter()
        r = cascade_cv(data, folds=args.folds, seed=args.seed, task_types=per_task)
        label = "per task type" if per_task else "one cascade for all prompts"
        print(f"\n== cascade, {label} ({time.perf_counter() - t0:.0f} s) ==")
        sc, co = r["score"], r["cost"]
        print(f"default (weight chosen on training folds to reach the best single model's "
              f"training accuracy): accuracy {sc.mean():.4f}, cost {co.mean() / gc:.1%} of GPT-4's"
              f"; task-type hull at that cost {hull_at(th, co.mean()):.4f}")
        for t in np.unique(tasks):
            m = tasks == t
            print(f"  {t:14s} accuracy {sc[m].mean():.4f} (GPT-4 {data.scores[m, g].mean():.4f}),"
                  f" cost {co[m].sum() / data.costs[m, g].sum():.1%} of GPT-4's there")
        print("  chosen per fold: " + "\n                    ".join(repr(x) for x in r["stages"]))
        print(f"{'cost_weight':>12s} {'cost/GPT-4':>10s} {'accuracy':>9s} {'task-type hull':>15s}")
        for w, c, a in r["curve"]:
            print(f"{w:12.1f} {c / gc:10.1%} {a:9.4f} {hull_at(th, c):15.4f}")
        reach = [c for _, c, a in r["curve"] if a >= ga]
        print("GPT-4's accuracy reached on the held-out curve: "
              + (f"at {min(reach) / gc:.1%} of its cost" if reach else "no"))

    print("\n== in-sample ceiling: best cascade per task chosen on ALL prompts (optimistic) ==")
    T = _tables(data.prompts, {m: data.scores[:, j].tolist() for j, m in enumerate(data.models)},
                {m: data.costs[:, j].tolist() for j, m in enumerate(data.models)},
                {m: [a[j] for a in data.answers] for j, m in enumerate(data.models)},
                data.tasks, 3)
    for gi, t in enumerate(T.names):
        m = tasks == t
        n, tc = m.sum(), data.costs[m, g].sum()
        acc, share = T.acc[gi] / n, T.cost[gi] / tc
        print(f"{t} (GPT-4 {data.scores[m, g].mean():.4f}):")
        for cap in (0.25, 0.5, 0.75):
            i = int(np.argmax(np.where(share <= cap, acc, -1)))
            models, agree = T.candidates[i]
            print(f"  cost <= {cap:.0%}: accuracy {acc[i]:.4f} at {share[i]:.1%}: "
                  f"{[data.models[j].split('/')[-1] for j in models]} agree={agree}")


if __name__ == "__main__":
    main()
