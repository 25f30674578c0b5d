#!/usr/bin/env python3
"""Held-out comparison of candidate learned-routing methods on the bundled outcome tables.

Every number is out-of-fold on the same K folds as ``bench/routing_eval.py`` (``_folds(n, k, seed)``).
Hyper-parameters are fixed a priori or chosen by inner CV on the training folds only (never on the
test fold, never per prompt). Text-only, no external service.

Methods (each yields P[prompt, model]; routing uses the learned router's predicted costs, except the
task-type router which uses per-task mean costs as in routing_eval):
  lr          the current C++ LearnedRouter (defaults)
  task        per-benchmark means (told the benchmark; the baseline to beat)
  cluster     unsupervised k-means clusters of the full prompt (TF-IDF) -> per-cluster means
              (a task-type router without labels); k by inner CV
  knn         cosine kNN over TF-IDF word 1-2 + char 3-5 n-grams of the *question* (last block of
              the prompt), shrunk to the cluster mean; k by inner CV
  sklr        per-model logistic regression on TF-IDF(question) + cluster one-hots + difficulty
              features (option/answer structure, lengths, rare words, digits); C by inner CV
  stack       mean of lr and knn probabilities
  *+iso       per-model isotonic calibration fitted on inner out-of-fold predictions

Also: per-task AUC of "does the cheap model get this prompt right" for each method, and an upper
bound: a router that sends a prompt to a cheap model when a signal says the cheap model will be
right, else to GPT-4, with a perfect signal and with a signal of a given AUC (binormal noise).

Usage: PYTHONPATH=python python3 tools/routing_experiments.py [--folds 5] [--seed 0] [--mmlu]
Needs numpy and scikit-learn.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
from scipy import sparse
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import normalize

from orroute.research import evaluation as E

# ---------------------------------------------------------------------------- text pieces

def question(prompt: str) -> str:
    """The last block of a (few-shot) prompt: the question actually asked."""
    blocks = [b for b in prompt.strip().split("\n\n") if b.strip()]
    q = blocks[-1] if blocks else prompt
    if len(q) < 40 and len(blocks) > 1:  # a trailing instruction line: keep the block before too
        q = blocks[-2] + "\n\n" + q
    return q


_OPT = re.compile(r"^\s*\(?([A-H])[).:]\s*(.*)$", re.MULTILINE)


def difficulty_features(q: str) -> list[float]:
    opts = _OPT.findall(q)
    opt_len = [len(o[1]) for o in opts] or [0]
    words = re.findall(r"[A-Za-z]+", q)
    stem = _OPT.sub("", q)
    return [
        np.log1p(len(q)), np.log1p(len(stem)), len(opts), np.log1p(np.mean(opt_len)),
        np.log1p(np.std(opt_len)), np.log1p(max(opt_len)), sum(c.isdigit() for c in q) / (len(q) + 1),
        np.mean([len(w) for w in words]) if words else 0.0,
        sum(1 for w in words if len(w) >= 10) / (len(words) + 1),
        q.count(",") / (len(words) + 1), q.count("?"),
        sum(w.lower() in {"not", "except", "least", "false", "never"} for w in words),
        sum(w.lower() in {"if", "then", "because", "therefore", "why", "how", "explain"} for w in words),
        q.count("\n"), float(bool(re.search(r"\d+\s*[-+*/^=]\s*\d+", q))),
    ]


# ---------------------------------------------------------------------------- methods

def logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def shrunk_means(labels_tr, y_tr, labels_te, prior, a=5.0):
    out = np.tile(prior, (len(labels_te), 1))
    for c in np.unique(labels_te):
        m = labels_tr == c
        n = m.sum()
        out[labels_te == c] = (y_tr[m].sum(0) + a * prior) / (n + a)
    return out


class Featurized:
    """TF-IDF matrices fitted on a training split (refit per fold: no test-fold statistics)."""

    def __init__(self, prompts_tr, qs_tr):
        self.full = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True,
                                    min_df=2, max_features=20000)
        self.qw = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                  max_features=30000, stop_words="english")
        self.qc = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                  min_df=2, max_features=30000)
        self.Xf_tr = self.full.fit_transform(prompts_tr)
        self.Xq_tr = self._q(qs_tr, fit=True)

    def _q(self, qs, fit=False):
        if fit:
            a, b = self.qw.fit_transform(qs), self.qc.fit_transform(qs)
        else:
            a, b = self.qw.transform(qs), self.qc.transform(qs)
        return normalize(sparse.hstack([a, b]).tocsr())

    def test(self, prompts_te, qs_te):
        return self.full.transform(prompts_te), self._q(qs_te)


def clusters(Xf_tr, Xf_te, k, seed):
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, batch_size=1024)
    km.fit(Xf_tr)
    return km.predict(Xf_tr), km.predict(Xf_te)


def knn_predict(Xq_tr, y_tr, Xq_te, base_te, k, a=3.0, self_exclude=False):
    S = (Xq_te @ Xq_tr.T).toarray()
    if self_exclude:
        np.fill_diagonal(S, -1)
    idx = np.argpartition(-S, k, axis=1)[:, :k]
    w = np.take_along_axis(S, idx, axis=1).clip(0)
    num = np.einsum("ik,ikm->im", w, y_tr[idx])
    return (num + a * base_te) / (w.sum(1, keepdims=True) + a)


def sklr_predict(Z_tr, y_tr, Z_te, C):
    out = np.zeros((Z_te.shape[0], y_tr.shape[1]))
    for j in range(y_tr.shape[1]):
        yj = (y_tr[:, j] > 0.5).astype(int)
        if yj.min() == yj.max():
            out[:, j] = yj[0]
            continue
        clf = LogisticRegression(C=C, max_iter=200, solver="liblinear")
        clf.fit(Z_tr, yj)
        out[:, j] = clf.predict_proba(Z_te)[:, 1]
    return out


def brier(p, y):
    return float(((p - y) ** 2).mean())


def fold_predictions(data, train, test, seed, inner=True):
    """All methods' predictions for one outer fold (hyper-parameters by inner 3-fold CV)."""
    prompts = data.prompts
    y = data.scores
    qs = [question(p) for p in prompts]
    ptr = [prompts[i] for i in train]
    qtr = [qs[i] for i in train]
    F = Featurized(ptr, qtr)
    Xf_te, Xq_te = F.test([prompts[i] for i in test], [qs[i] for i in test])
    y_tr = y[train]
    prior = y_tr.mean(0)
    D = np.array([difficulty_features(q) for q in qs])
    D = (D - D[train].mean(0)) / (D[train].std(0) + 1e-9)

    # inner CV to pick hyper-parameters (on training folds only)
    choices = {"cluster_k": 8, "knn_k": 25, "sklr_C": 1.0}
    inner_oof = {}
    if inner:
        ntr = len(train)
        ifolds = E._folds(ntr, 3, seed + 17)
        grid_k = [3, 8, 20, 50]
        grid_knn = [10, 25, 50, 100]
        grid_C = []  # C fixed a priori (1.0): the inner grid was too slow on 2 shared cores
        loss = {("c", k): 0.0 for k in grid_k} | {("n", k): 0.0 for k in grid_knn} | {
            ("l", c): 0.0 for c in grid_C}
        oof_knn = {k: np.zeros_like(y_tr) for k in grid_knn}
        for ite in ifolds:
            itr = np.setdiff1d(np.arange(ntr), ite)
            G = Featurized([ptr[i] for i in itr], [qtr[i] for i in itr])
            Gf_te, Gq_te = G.test([ptr[i] for i in ite], [qtr[i] for i in ite])
            ip = y_tr[itr].mean(0)
            for k in grid_k:
                ltr, lte = clusters(G.Xf_tr, Gf_te, k, seed)
                loss[("c", k)] += brier(shrunk_means(ltr, y_tr[itr], lte, ip), y_tr[ite])
            ltr, lte = clusters(G.Xf_tr, Gf_te, 8, seed)
            base = shrunk_means(ltr, y_tr[itr], lte, ip)
            for k in grid_knn:
                pk = knn_predict(G.Xq_tr, y_tr[itr], Gq_te, base, k)
                oof_knn[k][ite] = pk
                loss[("n", k)] += brier(pk, y_tr[ite])
            oh_tr = np.eye(8)[ltr]
            oh_te = np.eye(8)[lte]
            Dtr = D[train][itr]
            Dte = D[train][ite]
            for c in grid_C:
                Z_tr = sparse.hstack([G.Xq_tr, oh_tr, Dtr]).tocsr()
                Z_te = sparse.hstack([Gq_te, oh_te, Dte]).tocsr()
                loss[("l", c)] += brier(sklr_predict(Z_tr, y_tr[itr], Z_te, c), y_tr[ite])
        choices["cluster_k"] = min(grid_k, key=lambda k: loss[("c", k)])
        choices["knn_k"] = min(grid_knn, key=lambda k: loss[("n", k)])
        
        inner_oof["knn"] = oof_knn[choices["knn_k"]]

    out = {}
    ltr, lte = clusters(F.Xf_tr, Xf_te, choices["cluster_k"], seed)
    out["cluster"] = shrunk_means(ltr, y_tr, lte, prior)
    ltr8, lte8 = clusters(F.Xf_tr, Xf_te, 8, seed)
    base = shrunk_means(ltr8, y_tr, lte8, prior)
    out["knn"] = knn_predict(F.Xq_tr, y_tr, Xq_te, base, choices["knn_k"])
    Z_tr = sparse.hstack([F.Xq_tr, np.eye(8)[ltr8], D[train]]).tocsr()
    Z_te = sparse.hstack([Xq_te, np.eye(8)[lte8], D[test]]).tocsr()
    out["sklr"] = sklr_predict(Z_tr, y_tr, Z_te, choices["sklr_C"])
    if "knn" in inner_oof:  # isotonic calibration of kNN on inner out-of-fold predictions
        cal = np.zeros_like(out["knn"])
        for j in range(y.shape[1]):
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            iso.fit(inner_oof["knn"][:, j], y_tr[:, j])
            cal[:, j] = iso.predict(out["knn"][:, j])
        out["knn+iso"] = cal
    return out, choices


# ---------------------------------------------------------------------------- upper bound

def bound_two_model(y_cheap, y_strong, c_cheap, c_strong, auc, budget_share, rng, reps=20):
    """Accuracy at ``budget_share`` of the strong model's mean cost of the router 'cheap model if
    the signal says it is right, else strong', with a binormal signal of the given AUC (inf =
    perfect). Returns the mean over ``reps`` noise draws."""
    from scipy.stats import norm

    n = len(y_cheap)
    budget = budget_share * c_strong.mean()
    accs = []
    for _ in range(reps if np.isfinite(auc) else 1):
        if np.isfinite(auc):
            d = np.sqrt(2) * norm.ppf(auc)
            s = y_cheap * d + rng.standard_normal(n)
        else:
            s = y_cheap + rng.random(n) * 1e-6
        order = np.argsort(s)  # least likely-easy first -> strong
        # send the first f to strong: find the largest f with cost within budget
        cost_strong_first = np.cumsum(c_strong[order] - c_cheap[order])
        base = c_cheap.sum()
        f = np.searchsorted(cost_strong_first, budget * n - base, side="right")
        choice_strong = np.zeros(n, bool)
        choice_strong[order[:f]] = True
        accs.append(np.where(choice_strong, y_strong, y_cheap).mean())
    return float(np.mean(accs))


# ---------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mmlu", action="store_true", help="also the MMLU two-model table")
    ap.add_argument("--only-mmlu", action="store_true", help="only the MMLU two-model table")
    ap.add_argument("--only-difficulty", action="store_true", help="only the difficulty model")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.only_difficulty:
        difficulty_model(E.load_outcomes("routerbench"), args.folds, args.seed)
        return
    if args.only_mmlu:
        mmlu_report(args)
        return

    data = E.load_outcomes("routerbench")
    n, m = data.scores.shape
    preds = {k: np.zeros((n, m)) for k in ["cluster", "knn", "knn+iso", "sklr"]}
    for fi, test in enumerate(E._folds(n, args.folds, args.seed)):
        train = np.setdiff1d(np.arange(n), test)
        t0 = time.perf_counter()
        out, ch = fold_predictions(data, train, test, args.seed)
        for k, v in out.items():
            preds[k][test] = v
        print(f"fold {fi}: {ch} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    cv = E.cross_validated(data, folds=args.folds, seed=args.seed)
    print(f"current LR CV: {time.perf_counter() - t0:.1f} s")
    p_lr, c_lr = cv["learned"]
    preds["lr"] = p_lr
    preds["stack(lr,knn)"] = (p_lr + preds["knn"]) / 2
    preds["stack(lr,sklr)"] = (p_lr + preds["sklr"]) / 2
    preds["task"] = cv["task"][0]
    np.savez_compressed("/tmp/routing_oof.npz", **{k.replace("/", "_"): v for k, v in preds.items()},
                        c_lr=c_lr, c_task=cv["task"][1])
    report(data, preds, c_lr, cv["task"][1], rng)
    difficulty_model(data, args.folds, args.seed)
    if args.mmlu:
        mmlu_report(args)


def report(data, preds, c_lr, c_task, rng):
    s, c = data.scores, data.costs
    n = len(s)
    tasks = np.array(data.tasks)
    js = data.models.index("gpt-4-1106-preview")
    best_cost, best_acc = c[:, js].mean(), s[:, js].mean()
    lo, hi = c.mean(0).min(), c.mean(0).max()
    weights = np.concatenate([[0.0], np.logspace(-1, 5, 121)])
    task_hull = E.hull(E._route_points(preds["task"], c_task, s, c, weights))
    grid = np.linspace(lo, best_cost, 200)
    print("\n== RouterBench, out-of-fold (5-fold, seed 0) ==")
    print(f"{'method':16s} {'AIQ':>7s} {'Brier':>7s} {'share to match GPT-4':>21s} "
          f"{'acc@50%':>8s} {'vs task min':>11s} {'mean':>7s} {'>=task':>7s}")
    results = {}
    for k, p in preds.items():
        cp = c_task if k == "task" else c_lr
        pts = E._route_points(p, cp, s, c, weights)
        h = E.hull(pts)
        a = E.aiq(h, lo, hi)
        mc = E.cost_to_reach(pts, best_acc)
        diff = np.array([E.hull_at(h, x) - E.hull_at(task_hull, x) for x in grid])
        acc50 = E.hull_at(h, 0.5 * best_cost)
        results[k] = (a, acc50)
        print(f"{k:16s} {a:7.4f} {brier(p, s):7.4f} "
              f"{'not reached' if mc is None else f'{mc / best_cost:.1%}':>21s} {acc50:8.4f} "
              f"{diff.min():+11.4f} {diff.mean():+7.4f} {(diff >= -1e-9).mean():7.0%}")

    bootstrap(data, preds, c_lr, c_task, rng)

    # within-task discrimination: AUC of P(cheap model correct) per task
    cheap = {"arc_challenge": "zero-one-ai/Yi-34B-Chat", "mbpp": "gpt-3.5-turbo-1106",
             "winogrande": "zero-one-ai/Yi-34B-Chat"}
    print("\nwithin-task AUC of predicting the cheap model's correctness (out-of-fold):")
    print(f"{'method':16s} " + " ".join(f"{t[:12]:>13s}" for t in cheap) + "   gpt-4 (pooled within-task)")
    for k, p in preds.items():
        if k == "task":
            continue
        row = []
        for t, mod in cheap.items():
            j = data.models.index(mod)
            sel = tasks == t
            row.append(roc_auc_score(s[sel, j] > 0.5, p[sel, j]))
        g = []
        for t in cheap:
            sel = tasks == t
            g.append(roc_auc_score(s[sel, js] > 0.5, p[sel, js]))
        print(f"{k:16s} " + " ".join(f"{x:13.3f}" for x in row) + f"   {np.mean(g):.3f}")

    # upper bound: per task 'cheap if the signal says right, else GPT-4', budget 50% of GPT-4's cost
    print("\nupper bound at 50% of GPT-4's cost: per task, cheap model (above) if a signal says it is"
          "\nright, else GPT-4; the signal has the given within-task AUC (binormal); budget spread"
          "\nacross tasks in proportion to GPT-4's cost on each task.")
    print(f"GPT-4 accuracy to match: {best_acc:.4f}")
    for auc in [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, np.inf]:
        tot = 0.0
        for t, mod in cheap.items():
            sel = tasks == t
            j = data.models.index(mod)
            tot += sel.sum() * bound_two_model(s[sel, j], s[sel, js], c[sel, j], c[sel, js],
                                               auc, 0.5, rng)
        print(f"  AUC {'perfect' if not np.isfinite(auc) else f'{auc:.2f}':>7s}: accuracy {tot / n:.4f}")


def _aiq_fast(p, cp, s, c, weights, lo, hi, grid):
    h = E.hull(E._route_points(p, cp, s, c, weights))
    vals = np.array([E.hull_at(h, x) for x in grid])
    return vals, float(np.mean([E.hull_at(h, x) for x in np.linspace(lo, hi, 200)]))


def bootstrap(data, preds, c_lr, c_task, rng, reps=200):
    """Paired bootstrap over prompts (out-of-fold predictions fixed): AIQ difference to the
    task-type router and accuracy difference at 50% of GPT-4's cost, with 90% intervals."""
    s, c = data.scores, data.costs
    n = len(s)
    js = data.models.index("gpt-4-1106-preview")
    weights = np.concatenate([[0.0], np.logspace(-1, 5, 61)])
    diffs = {k: ([], []) for k in preds if k != "task"}
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        ss, cc = s[idx], c[idx]
        lo, hi = cc.mean(0).min(), cc.mean(0).max()
        half = [0.5 * cc[:, js].mean()]
        tv, ta = _aiq_fast(preds["task"][idx], c_task[idx], ss, cc, weights, lo, hi, half)
        for k in diffs:
            v, a = _aiq_fast(preds[k][idx], c_lr[idx], ss, cc, weights, lo, hi, half)
            diffs[k][0].append(a - ta)
            diffs[k][1].append(v[0] - tv[0])
    print(f"\npaired bootstrap over prompts ({reps} resamples): method minus task-type router")
    print(f"{'method':16s} {'dAIQ mean':>10s} {'90% interval':>20s} {'d acc@50% mean':>15s} "
          f"{'90% interval':>20s}")
    for k, (da, dv) in diffs.items():
        qa = np.percentile(da, [5, 95])
        qv = np.percentile(dv, [5, 95])
        print(f"{k:16s} {np.mean(da):+10.4f} [{qa[0]:+.4f}, {qa[1]:+.4f}] {np.mean(dv):+15.4f} "
              f"[{qv[0]:+.4f}, {qv[1]:+.4f}]")


def difficulty_model(data, folds, seed):
    """A dedicated 'difficulty' model: ridge regression (alpha 1, fixed a priori) of an item's mean
    score over all models on question TF-IDF + difficulty features, trained within each task on the
    training folds (a less noisy target than one model's 0/1). Prints the out-of-fold within-task
    AUC of -difficulty for 'the cheap model is right' (same cheap models as above) and for 'GPT-4 is
    right'."""
    from sklearn.linear_model import Ridge

    s = data.scores
    n = len(s)
    tasks = np.array(data.tasks)
    qs = [question(p) for p in data.prompts]
    D = np.array([difficulty_features(q) for q in qs])
    target = s.mean(1)
    pred = np.zeros(n)
    for test in E._folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        for t in np.unique(tasks):
            tr = train[tasks[train] == t]
            te = test[tasks[test] == t]
            F = Featurized([data.prompts[i] for i in tr], [qs[i] for i in tr])
            _, Xq_te = F.test([data.prompts[i] for i in te], [qs[i] for i in te])
            mu, sd = D[tr].mean(0), D[tr].std(0) + 1e-9
            Z_tr = sparse.hstack([F.Xq_tr, (D[tr] - mu) / sd]).tocsr()
            Z_te = sparse.hstack([Xq_te, (D[te] - mu) / sd]).tocsr()
            pred[te] = Ridge(alpha=1.0).fit(Z_tr, target[tr]).predict(Z_te)
    cheap = {"arc_challenge": "zero-one-ai/Yi-34B-Chat", "mbpp": "gpt-3.5-turbo-1106",
             "winogrande": "zero-one-ai/Yi-34B-Chat"}
    js = data.models.index("gpt-4-1106-preview")
    print("\ndifficulty model (ridge on the mean score over models, per task), out-of-fold AUC:")
    for t, mod in cheap.items():
        sel = tasks == t
        j = data.models.index(mod)
        print(f"  {t:14s} cheap right: {roc_auc_score(s[sel, j] > 0.5, pred[sel]):.3f}   "
              f"GPT-4 right: {roc_auc_score(s[sel, js] > 0.5, pred[sel]):.3f}   "
              f"mean score (Spearman): "
              f"{np.corrcoef(np.argsort(np.argsort(pred[sel])), np.argsort(np.argsort(target[sel])))[0, 1]:.3f}")


def mmlu_report(args):
    data = E.load_outcomes("mmlu")
    n, m = data.scores.shape
    cv = E.cross_validated(data, folds=args.folds, seed=args.seed)
    preds = {k: np.zeros((n, m)) for k in ["cluster", "knn", "sklr"]}
    for test in E._folds(n, args.folds, args.seed):
        train = np.setdiff1d(np.arange(n), test)
        out, _ = fold_predictions(data, train, test, args.seed, inner=False)
        for k, v in preds.items():
            v[test] = out[k]
    preds["lr"] = cv["learned"][0]
    preds["stack(lr,knn)"] = (preds["lr"] + preds["knn"]) / 2
    preds["task"] = cv["task"][0]
    strong, weak = E.STRONG_WEAK["mmlu"]
    js, jw = data.models.index(strong), data.models.index(weak)
    s = data.scores
    print("\n== MMLU GPT-4 vs Mixtral, out-of-fold (fixed k=8 clusters, kNN k=25, C=1) ==")
    print(f"{'method':16s} {'APGR':>6s} {'CPT50':>6s} {'CPT80':>6s} {'AUC(weak ok)':>12s}")
    rng = np.random.default_rng(args.seed)
    for k, p in preds.items():
        sc = p[:, js] - p[:, jw] + rng.random(n) * 1e-9
        fs, pgr = E.pgr_curve(sc, s[:, js], s[:, jw])
        mt = E.pgr_metrics(fs, pgr)
        print(f"{k:16s} {mt['APGR']:6.3f} {mt['CPT50']:6.1%} {mt['CPT80']:6.1%} "
              f"{roc_auc_score(s[:, jw] > 0.5, p[:, jw]):12.3f}")


if __name__ == "__main__":
    main()
