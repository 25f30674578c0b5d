#!/usr/bin/env python3
"""Held-out check of an escalation-score cascade on RouterBench at "at most 50% of GPT-4's cost".

Per task type, a fixed set of cheap models answers every prompt (the answer kept is their
majority, ties to the model most accurate on the training folds); a logistic score on the cheap
answers' pairwise agreement (optionally plus the LearnedRouter's predicted P(right), out-of-fold
inside the training folds) predicts "GPT-4 does better" minus "GPT-4 does worse"; prompts are
escalated to GPT-4 by that score per predicted GPT-4 dollar (a line fitted on the cheap calls'
cost), with the cut chosen on the training folds so that cheap calls + escalations cost 50% of
GPT-4 alone, then applied to the held-out fold. Same 5 folds as bench/routing_eval.py.

Result (seed 0; docs/routing.md): 0.859-0.864 at ~50%: no better than the CascadeRouter
(0.862 at 43.6%), and the router features add nothing. The issue's 0.875 stays out of reach.

Usage: PYTHONPATH=python python3 tools/score_cascade_experiments.py [seed]   (~1 min)
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from orroute.research.evaluation import load_outcomes
from orroute.research.metrics import _folds
from orroute.routing import LearnedRouter

GPT4 = "gpt-4-1106-preview"
YI, MIXTRAL, GPT35 = "zero-one-ai/Yi-34B-Chat", "mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106"
CONFIGS = {
    "Yi": {"arc_challenge": [YI], "winogrande": [YI], "mbpp": [YI]},
    "Yi / mbpp gpt-3.5": {"arc_challenge": [YI], "winogrande": [YI], "mbpp": [GPT35]},
    "Yi+Mixtral / mbpp gpt-3.5": {"arc_challenge": [YI, MIXTRAL], "winogrande": [YI, MIXTRAL],
                                  "mbpp": [GPT35]},
    "Yi+Mixtral+gpt-3.5 / mbpp gpt-3.5": {"arc_challenge": [YI, MIXTRAL, GPT35],
                                          "winogrande": [YI, MIXTRAL, GPT35], "mbpp": [GPT35]},
}


def logit_fit(X, y, l2=1.0, iters=50):
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-X @ w))
        g = X.T @ (p - y) + l2 * w
        H = (X.T * (p * (1 - p))) @ X + l2 * np.eye(len(w))
        w -= np.linalg.solve(H, g)
    return w


def main(seed: int = 0, folds: int = 5, target: float = 0.5) -> None:
    d = load_outcomes("routerbench")
    S, C, M = d.scores, d.costs, d.models
    n, g4 = len(S), M.index(GPT4)
    tasks = np.array(d.tasks)
    A = [[a if a is not None else f"none{j}" for j, a in enumerate(row)] for row in d.answers]

    def fit_pred(tr, te):
        r = LearnedRouter.fit([d.prompts[i] for i in tr],
                              {m: S[tr, j].tolist() for j, m in enumerate(M)},
                              {m: C[tr, j].tolist() for j, m in enumerate(M)})
        return np.array(r.predict_many([d.prompts[i] for i in te])[0])

    t0 = time.perf_counter()
    outer = list(_folds(n, folds, seed))
    p_test, p_train = np.zeros((n, len(M))), []
    for te in outer:  # router probabilities: held-out rows, and inner out-of-fold train rows
        tr = np.setdiff1d(np.arange(n), te)
        p_test[te] = fit_pred(tr, te)
        inner = np.zeros((len(tr), len(M)))
        for ite in _folds(len(tr), 3, seed + 1):
            inner[ite] = fit_pred(tr[np.setdiff1d(np.arange(len(tr)), ite)], tr[ite])
        p_train.append(inner)
    print(f"router features: {time.perf_counter() - t0:.0f} s")

    def run(kt, use_router):
        acc_out, cheap_cost, esc = np.zeros(n), np.zeros(n), np.zeros(n, bool)
        for fi, te in enumerate(outer):
            tr = np.setdiff1d(np.arange(n), te)
            P = np.zeros((n, len(M)))
            P[te], P[tr] = p_test[te], p_train[fi]
            gain = np.zeros(n)
            for t in sorted(set(tasks)):
                ks = [M.index(k) for k in kt[t]]
                mtr, mte = tr[tasks[tr] == t], te[tasks[te] == t]
                order = sorted(ks, key=lambda j: -S[mtr, j].mean())
                kept = {}
                for i in np.concatenate([mtr, mte]):
                    keys = [A[i][j] for j in order]
                    kept[i] = max(order, key=lambda j: (keys.count(A[i][j]), -order.index(j)))
                    acc_out[i], cheap_cost[i] = S[i, kept[i]], C[i, ks].sum()

                def f(i, ks=ks, kept=kept, P=P):
                    keys = [A[i][j] for j in ks]
                    row = [1.0] + [float(keys[a] == keys[b])
                                   for a, b in itertools.combinations(range(len(ks)), 2)]
                    if use_router:
                        row += [P[i, g4] - P[i, kept[i]], P[i, kept[i]], P[i, g4]]
                    return row

                Xtr = np.array([f(i) for i in mtr])
                y = np.array([S[i, g4] - S[i, kept[i]] for i in mtr])
                w_up, w_down = logit_fit(Xtr, (y > 0) * 1.0), logit_fit(Xtr, (y < 0) * 1.0)
                for rows in (mtr, mte):
                    X = np.array([f(i) for i in rows])
                    gain[rows] = 1 / (1 + np.exp(-X @ w_up)) - 1 / (1 + np.exp(-X @ w_down))
            line = np.polyfit(cheap_cost[tr], C[tr, g4], 1)
            score = gain / np.maximum(np.polyval(line, cheap_cost), 1e-6)
            o = tr[np.argsort(-score[tr], kind="stable")]
            cum = (cheap_cost[tr].sum() + np.concatenate([[0], np.cumsum(C[o, g4])])) / C[tr, g4].sum()
            k = int(np.searchsorted(cum, target, side="right") - 1)
            esc[te] = score[te] > (score[o[k - 1]] if k > 0 else np.inf)
        acc = float(np.where(esc, S[:, g4], acc_out).mean())
        return acc, float((cheap_cost.sum() + C[esc, g4].sum()) / C[:, g4].sum())

    print(f"GPT-4 alone: {S[:, g4].mean():.4f}; target {target:.0%} of its cost")
    for name, kt in CONFIGS.items():
        for use_router in (False, True):
            acc, share = run(kt, use_router)
            print(f"{name:36s} router features={use_router!s:5s} held-out {acc:.4f} at {share:.1%}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
