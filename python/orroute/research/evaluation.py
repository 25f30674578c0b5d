"""Held-out evaluation of the learned router (``orroute.research.evaluate``; ``bench/routing_eval.py``).

Protocol: K-fold cross-validation over prompts (fixed seed). Every fold trains a LearnedRouter and the
task-type baseline on the other folds; all metrics are computed on the out-of-fold predictions, so
every number is on prompts the router never saw. Costs are the real per-answer USD costs of the
data; the router routes on its own *predicted* costs.

Metrics:
- accuracy-cost curve over ``cost_weight`` (rule: argmax P - cost_weight * expected cost) and over
  ``threshold`` (cheapest model with P >= threshold);
- cost to match the best single model's accuracy, as a share of that model's cost;
- RouterBench AIQ: mean quality of the non-decreasing convex hull of a router's (cost, accuracy)
  points over [cheapest model's cost, dearest model's cost];
- RouteLLM PGR(f) = (acc(f) - acc_weak) / (acc_strong - acc_weak) with f the share of calls sent
  to the strong model; APGR = mean PGR over f in [0, 1]; CPT(x) = smallest f with PGR >= x.
Baselines: every single model, random mixes of two models (their convex hull), a task-type-only
router (knows the benchmark / MMLU subject; predicts the per-task mean from the training folds),
a random router (for PGR), the oracle (cheapest correct model per prompt).
"""

from __future__ import annotations

import itertools
from typing import Any

from .._outcomes import Outcomes, load_outcomes
from .metrics import STRONG_WEAK, _folds, aiq, hull, hull_at, pgr_curve, pgr_metrics

__all__ = ["Outcomes", "evaluate", "load_outcomes"]



def cascade_cv(data: Outcomes, folds: int = 5, seed: int = 0, task_types: bool = True,
               cost_weights: Any = None, **options: Any) -> dict[str, Any]:
    """Held-out figures of ``CascadeRouter`` (same folds as ``cross_validated``).

    Per fold the cascades are chosen on the training folds only (``CascadeRouter.fit``, with or
    without the task types), then run on the held-out prompts with their real answers and costs.
    Returns ``{"score", "cost"}`` per prompt for the default setting (weight chosen on the training
    folds to reach the best single model's training accuracy), ``"curve"``: (weight, mean cost,
    accuracy) per fixed cost weight, and ``"stages"``: the cascades chosen in each fold.
    """
    import numpy as np

    from .._cascade import CascadeRouter, answer_codes, simulate

    if data.answers is None or data.costs is None:
        raise ValueError(f"{data.name}: no answers/costs for a cascade")
    s, c = data.scores, data.costs
    n = len(s)
    codes = answer_codes(data.answers)
    tasks = np.array(data.tasks)
    weights = list(cost_weights) if cost_weights is not None else list(np.logspace(0, 4, 17))
    score, cost = np.zeros(n), np.zeros(n)
    curve_s, curve_c = np.zeros((len(weights), n)), np.zeros((len(weights), n))
    stages = []
    # per fold and weight: the training folds' cost (in-sample: the cascade was chosen there)
    train_cost: list[list[float]] = []
    folds_test: list[Any] = []

    def run(router: Any, test: Any, out_s: Any, out_c: Any) -> None:
        idx = {m: j for j, m in enumerate(data.models)}
        for t in np.unique(tasks[test]):
            te = test[tasks[test] == t]
            casc = router.cascade(t if task_types else None)
            cand = (tuple(idx[m] for m in casc.models), casc.agree)
            out_s[te], out_c[te] = simulate(cand, s[te], c[te], codes[te])

    for test in _folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        args = ([data.prompts[i] for i in train],
                {m: s[train, j].tolist() for j, m in enumerate(data.models)},
                {m: c[train, j].tolist() for j, m in enumerate(data.models)},
                {m: [data.answers[i][j] for i in train] for j, m in enumerate(data.models)},
                [data.tasks[i] for i in train] if task_types else None)
        routers = CascadeRouter.fit_path(*args, cost_weights=[None, *weights], **options)
        stages.append(routers[0])
        run(routers[0], test, score, cost)
        tr_s, tr_c = np.zeros(n), np.zeros(n)
        fold_costs = []
        for wi, r in enumerate(routers[1:]):
            run(r, test, curve_s[wi], curve_c[wi])
            run(r, train, tr_s, tr_c)
            fold_costs.append(float(tr_c[train].sum()))
        train_cost.append(fold_costs)
        folds_test.append(test)
    curve = [(float(w), float(curve_c[i].mean()), float(curve_s[i].mean()))
             for i, w in enumerate(weights)]
    return {"score": score, "cost": cost, "curve": curve, "stages": stages,
            "train_cost": train_cost, "folds": folds_test, "curve_s": curve_s,
            "curve_c": curve_c}


def cascade_at_share(cv: dict[str, Any], reference: Any, share: float) -> dict[str, float]:
    """Held-out accuracy and cost share of the cascade when, in every fold, the cost weight is
    the one whose *training* cost share of ``reference`` (per-prompt costs) is the largest not
    above ``share`` (the C++ operating-point rule over the weight grid)."""
    import numpy as np

    from .. import _core

    acc_num, cost_num, ref_num, n = 0.0, 0.0, 0.0, 0
    misses = []
    for fold_costs, test in zip(cv["train_cost"], cv["folds"], strict=True):
        train = np.setdiff1d(np.arange(len(reference)), test)
        shares = [c / reference[train].sum() for c in fold_costs]
        # one "prompt" per setting suffices: the grid choice only needs the totals
        i, _ = _core.choose_grid_point([[x] for x in shares], [1.0], share,
                                       _core.ShareMode.AT_MOST, 0, 0, 0.9)
        acc_num += float(cv["curve_s"][i][test].sum())
        cost_num += float(cv["curve_c"][i][test].sum())
        ref_num += float(reference[test].sum())
        misses.append(float(cv["curve_c"][i][test].sum() / reference[test].sum()) - share)
        n += len(test)
    return {"accuracy": acc_num / n, "share": cost_num / ref_num,
            "max_over": max(misses)}


# ---------------------------------------------------------------------------- predictions


def cross_validated(data: Outcomes, folds: int = 5, seed: int = 0, **options: Any) -> dict:
    """Out-of-fold predictions: learned P/C and task-type P/C, each [prompt, model]."""
    import numpy as np

    from ..routing import LearnedRouter

    n, m = data.scores.shape
    p_learned = np.zeros((n, m))
    c_learned = np.zeros((n, m))
    p_task = np.zeros((n, m))
    c_task = np.zeros((n, m))
    tasks = np.array(data.tasks)
    costs = data.costs if data.costs is not None else np.zeros((n, m))
    for test in _folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        router = LearnedRouter.fit(
            [data.prompts[i] for i in train],
            {mod: data.scores[train, j].tolist() for j, mod in enumerate(data.models)},
            {mod: costs[train, j].tolist() for j, mod in enumerate(data.models)},
            **options,
        )
        probs, pred_costs = router.predict_many([data.prompts[i] for i in test])
        p_learned[test] = np.array(probs)
        c_learned[test] = np.array(pred_costs)
        overall = data.scores[train].mean(axis=0)
        for task in np.unique(tasks[test]):
            tr = train[tasks[train] == task]
            te = test[tasks[test] == task]
            p_task[te] = data.scores[tr].mean(axis=0) if len(tr) else overall
            c_task[te] = costs[tr].mean(axis=0) if len(tr) else costs[train].mean(axis=0)
    return {"learned": (p_learned, c_learned), "task": (p_task, c_task)}


# ---------------------------------------------------------------------------- curves and metrics


def _route_points(p: Any, c_pred: Any, scores: Any, costs: Any, weights: Any) -> list:
    import numpy as np

    rows = np.arange(len(p))
    points = []
    for w in weights:
        u = p - w * c_pred - 1e-12 * c_pred  # ties -> cheaper
        choice = u.argmax(axis=1)
        points.append((float(costs[rows, choice].mean()), float(scores[rows, choice].mean()), w))
    return points


def _threshold_points(p: Any, c_pred: Any, scores: Any, costs: Any, thresholds: Any) -> list:
    import numpy as np

    rows = np.arange(len(p))
    points = []
    for t in thresholds:
        masked = np.where(p >= t, c_pred, np.inf)
        choice = np.where(np.isfinite(masked.min(axis=1)), masked.argmin(axis=1), p.argmax(axis=1))
        points.append((float(costs[rows, choice].mean()), float(scores[rows, choice].mean()), t))
    return points


def cost_to_reach(points: list, target: float) -> float | None:
    """Smallest cost among raw points with quality >= target (None if never reached)."""
    ok = [c for c, q, *_ in points if q >= target - 1e-12]
    return min(ok) if ok else None


def _eval_routerbench(data: Outcomes, cv: dict, seed: int) -> dict[str, Any]:
    import numpy as np

    s, c = data.scores, data.costs
    n = s.shape[0]
    singles = {mod: (float(c[:, j].mean()), float(s[:, j].mean())) for j, mod in enumerate(data.models)}
    best = max(singles, key=lambda k: singles[k][1])
    best_cost, best_acc = singles[best]
    weights = np.concatenate([[0.0], np.logspace(-1, 5, 121)])
    thresholds = np.linspace(0, 1, 101)
    curves = {
        name: _route_points(p, cp, s, c, weights) for name, (p, cp) in cv.items()
    }
    for name in ("learned", "task"):
        p, cp = cv[name]
        curves[f"{name}/threshold"] = _threshold_points(p, cp, s, c, thresholds)
    singles_pts = [(cc, q, k) for k, (cc, q) in singles.items()]
    lo = min(cc for cc, _ in singles.values())
    hi = max(cc for cc, _ in singles.values())
    hulls = {k: hull(v) for k, v in curves.items()}
    hulls["random mixes"] = hull(singles_pts)
    correct = s > 0
    oracle_choice = np.where(
        correct.any(axis=1), np.where(correct, c, np.inf).argmin(axis=1), c.argmin(axis=1)
    )
    oracle = (float(c[np.arange(n), oracle_choice].mean()), float(s.max(axis=1).mean()))

    out: dict[str, Any] = {
        "singles": singles, "best": best, "oracle": oracle, "curves": curves, "hulls": hulls,
        "aiq": {k: aiq(h, lo, hi) for k, h in hulls.items()},
        "match_cost": {}, "match_share": {},
    }
    for k, pts in curves.items():
        cost = cost_to_reach(pts, best_acc)
        out["match_cost"][k] = cost
        out["match_share"][k] = None if cost is None else cost / best_cost
    for k, h in hulls.items():
        reach = [x for x, y in h if y >= best_acc]
        if not reach and h[-1][1] >= best_acc:
            reach = [h[-1][0]]
        # interpolated (a random mix of two router settings) cost on the hull
        cost = None
        for (x1, y1), (x2, y2) in itertools.pairwise(h):
            if y1 < best_acc <= y2:
                cost = x1 + (x2 - x1) * (best_acc - y1) / (y2 - y1)
                break
        if h[0][1] >= best_acc:
            cost = h[0][0]
        out.setdefault("match_share_hull", {})[k] = None if cost is None else cost / best_cost
    grid = np.linspace(lo, best_cost, 200)
    diff = np.array([hull_at(hulls["learned"], x) - hull_at(hulls["task"], x) for x in grid])
    out["vs_task"] = {"min_gap": float(diff.min()), "mean_gap": float(diff.mean()),
                      "share_ge": float((diff >= -1e-9).mean())}
    strong, weak = STRONG_WEAK["routerbench"]
    js, jw = data.models.index(strong), data.models.index(weak)
    out["pgr"] = _pgr_block(cv, s[:, js], s[:, jw], js, jw, data, seed)
    return out


def _pgr_block(cv: dict, strong: Any, weak: Any, js: int, jw: int, data: Outcomes,
               seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    tie = rng.random(len(strong)) * 1e-9
    scores = {
        "learned": cv["learned"][0][:, js] - cv["learned"][0][:, jw],
        "task-type": cv["task"][0][:, js] - cv["task"][0][:, jw] + tie,
        "random": rng.random(len(strong)),
        "oracle": (strong - weak) + tie,
    }
    block = {}
    for name, sc in scores.items():
        fs, pgr = pgr_curve(sc, strong, weak)
        block[name] = {**pgr_metrics(fs, pgr), "curve": (fs, pgr)}
    block["_acc"] = {"strong": float(strong.mean()), "weak": float(weak.mean())}
    return block


def _print_routerbench(r: dict[str, Any]) -> None:
    best = r["best"]
    bc, ba = r["singles"][best]
    print("\n== RouterBench (ARC-Challenge, MBPP, Winogrande; held-out, out-of-fold) ==")
    print(f"{'model':40s} {'accuracy':>9s} {'USD/prompt':>11s}")
    for k, (c, q) in sorted(r["singles"].items(), key=lambda kv: kv[1][0]):
        print(f"{k:40s} {q:9.4f} {c:11.6f}")
    print(f"{'oracle (cheapest correct model)':40s} {r['oracle'][1]:9.4f} {r['oracle'][0]:11.6f}")
    print(f"\nbest single model: {best} (accuracy {ba:.4f}, {bc:.6f} USD/prompt)")
    print(f"{'router':22s} {'AIQ':>7s} {'max acc':>8s} {'cost to match best (share)':>28s} "
          f"{'hull share':>10s}")
    for k in ["learned", "learned/threshold", "task", "task/threshold", "random mixes"]:
        h = r["hulls"][k]
        share = r["match_share"].get(k)
        hs = r["match_share_hull"][k]
        mc = r["match_cost"].get(k)
        raw = "not reached" if share is None else f"{mc:.6f} ({share:6.1%})"
        print(f"{k:22s} {r['aiq'][k]:7.4f} {h[-1][1]:8.4f} {raw:>28s} "
              f"{'-' if hs is None else f'{hs:.1%}':>10s}")
    v = r["vs_task"]
    print(f"learned - task-type hull accuracy over [cheapest, best model cost]: min {v['min_gap']:+.4f}"
          f", mean {v['mean_gap']:+.4f}, learned >= task-type on {v['share_ge']:.0%} of the grid")
    print("\naccuracy-cost curve (learned, rule argmax P - w*cost):")
    print(f"{'cost_weight':>12s} {'USD/prompt':>11s} {'accuracy':>9s}   task-type at same w")
    task_pts = {w: (c, q) for c, q, w in r["curves"]["task"]}
    for c, q, w in r["curves"]["learned"][::10]:
        tc, tq = task_pts[w]
        print(f"{w:12.1f} {c:11.6f} {q:9.4f}   {tc:11.6f} {tq:9.4f}")


def _eval_cascade(data: Outcomes, r: dict[str, Any], folds: int, seed: int) -> dict[str, Any]:
    cv = cascade_cv(data, folds=folds, seed=seed, task_types=True)
    best_cost, best_acc = r["singles"][r["best"]]
    task_hull = r["hulls"]["task"]
    reach = [c for _, c, a in cv["curve"] if a >= best_acc]
    singles = [(c, q) for c, q in r["singles"].values()]
    lo, hi = min(c for c, _ in singles), max(c for c, _ in singles)
    ref = data.costs[:, data.models.index(r["best"])]
    return {
        "aiq": aiq(hull([(c, a) for _, c, a in cv["curve"]] + singles), lo, hi),
        "at_half": cascade_at_share(cv, ref, 0.5),
        "accuracy": float(cv["score"].mean()), "cost": float(cv["cost"].mean()),
        "share": float(cv["cost"].mean() / best_cost),
        "curve": [(w, c, a, hull_at(task_hull, c)) for w, c, a in cv["curve"]],
        "match_share": min(reach) / best_cost if reach else None,
        "best": r["best"], "best_acc": best_acc, "best_cost": best_cost,
        "stages": [repr(x) for x in cv["stages"]],
    }


def _print_cascade(cr: dict[str, Any]) -> None:
    print("\ncascade router (per task type; cascades chosen on the training folds, answers agree ->"
          " accept, else escalate):")
    print(f"default (reach {cr['best']}'s training accuracy): accuracy {cr['accuracy']:.4f} at "
          f"{cr['share']:.1%} of its cost")
    ms = cr["match_share"]
    print("cost to match the best model on the held-out curve: "
          + ("not reached" if ms is None else f"{ms:.1%}"))
    h = cr["at_half"]
    print(f"operating point 'at most 50% of {cr['best']}'s cost', chosen on the training folds: "
          f"held-out accuracy {h['accuracy']:.4f} at {h['share']:.1%} (worst fold "
          f"{h['max_over']:+.1%} over 50%); AIQ of the cascade curve (with single models) "
          f"{cr['aiq']:.4f}")
    print(f"{'cost_weight':>12s} {'cost share':>10s} {'accuracy':>9s} {'task-type hull':>15s}")
    for w, c, a, h in cr["curve"]:
        print(f"{w:12.1f} {c / cr['best_cost']:10.1%} {a:9.4f} {h:15.4f}")


def _print_pgr(title: str, block: dict[str, Any]) -> None:
    a = block["_acc"]
    print(f"\n-- {title}: strong acc {a['strong']:.4f}, weak acc {a['weak']:.4f} --")
    print(f"{'router':12s} {'APGR':>6s} {'CPT(50%)':>9s} {'CPT(80%)':>9s} {'PGR@50%calls':>13s}")
    for k, v in block.items():
        if k.startswith("_"):
            continue
        print(f"{k:12s} {v['APGR']:6.3f} {v['CPT50']:9.1%} {v['CPT80']:9.1%} {v['PGR@50%']:13.3f}")


def _plots(out_dir: str, results: dict[str, Any]) -> list[str]:
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    rb = results.get("routerbench")
    if rb:
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for k, style in [("learned", "-"), ("task", "--"), ("random mixes", ":")]:
            h = rb["hulls"][k]
            ax.plot([x for x, _ in h], [y for _, y in h], style, label=f"{k} (AIQ {rb['aiq'][k]:.3f})")
        pts = rb["curves"]["learned"]
        ax.plot([c for c, *_ in pts], [q for _, q, _ in pts], ".", alpha=0.3, color="C0")
        for k, (c, q) in rb["singles"].items():
            ax.plot(c, q, "k^", ms=5)
            ax.annotate(k.split("/")[-1], (c, q), fontsize=6)
        ax.plot(*rb["oracle"], "r*", ms=10, label="oracle")
        ax.set_xscale("log")
        ax.set_xlabel("USD per prompt (held-out, log)")
        ax.set_ylabel("accuracy")
        ax.set_title("RouterBench held-out accuracy vs cost")
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, "routerbench_accuracy_cost.png")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    for name in ("routerbench", "mmlu"):
        block = (results.get(name) or {}).get("pgr")
        if not block:
            continue
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for k, v in block.items():
            if not k.startswith("_"):
                fs, pgr = v["curve"]
                ax.plot(fs * 100, pgr, label=f"{k} (APGR {v['APGR']:.3f})")
        ax.set_xlabel("% calls to the strong model")
        ax.set_ylabel("PGR")
        ax.set_ylim(-0.1, 1.6)
        ax.set_title(f"{name}: performance gap recovered")
        ax.legend(fontsize=8)
        path = os.path.join(out_dir, f"{name}_pgr.png")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def route_speed(data: Outcomes, repeats: int = 5) -> dict[str, float]:
    """CPU seconds of ``LearnedRouter.fit`` on the whole table (defaults) next to a scikit-learn
    peer doing the same job (``_sklearn_fit_seconds``, when installed), and
    CPU microseconds per ``route()`` call on long few-shot prompts (>= 1,500 chars) and on
    short ones (< 300 chars), for the default router and for a peer whose word features read the
    whole prompt (``word_window=0``, the version-1 behaviour), both fitted here (1 epoch: speed
    does not depend on training) and timed in the same run. Best of ``repeats`` passes (CPU time,
    so other processes on the machine do not count)."""
    import time

    from ..routing import LearnedRouter

    costs = data.costs if data.costs is not None else data.scores * 0.0
    sc = {mod: data.scores[:, j].tolist() for j, mod in enumerate(data.models)}
    co = {mod: costs[:, j].tolist() for j, mod in enumerate(data.models)}
    long = [p for p in data.prompts if len(p) >= 1500][:200]
    short = [p for p in data.prompts if len(p) < 300][:200]
    out: dict[str, float] = {
        "long_chars": sum(map(len, long)) / max(len(long), 1),
        "short_chars": sum(map(len, short)) / max(len(short), 1),
    }
    t0 = time.process_time()
    LearnedRouter.fit(data.prompts, sc, co)
    out["fit_s"] = time.process_time() - t0
    out["fit_rows"] = float(data.scores.size)
    peer = _sklearn_fit_seconds(data)
    if peer is not None:
        out["peer_fit_s"] = peer
    for label, opts in (("default", {}), ("whole_prompt_words", {"word_window": 0})):
        router = LearnedRouter.fit(data.prompts, sc, co, epochs=1, **opts)
        for kind, prompts in (("long", long), ("short", short)):
            if not prompts:
                continue
            best = float("inf")
            for _ in range(repeats):
                t0 = time.process_time()
                for p in prompts:
                    router.route(p, 100.0)
                best = min(best, (time.process_time() - t0) / len(prompts))
            out[f"{label}_{kind}_us"] = best * 1e6
    return out


def _sklearn_fit_seconds(data: Outcomes) -> float | None:
    """CPU seconds for the same job done with scikit-learn (when installed): hashed character
    3-5-grams of the last 256 chars and word 1-2-grams of the last 512, then one logistic
    regression per model. A peer for ``LearnedRouter.fit``'s speed, not for its accuracy."""
    import time

    try:
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    t0 = time.process_time()
    chars = HashingVectorizer(analyzer="char", ngram_range=(3, 5), n_features=1 << 16)
    words = HashingVectorizer(ngram_range=(1, 2), n_features=1 << 16)
    x = sparse.hstack([chars.transform([p[-256:] for p in data.prompts]),
                       words.transform([p[-512:] for p in data.prompts])]).tocsr()
    for j in range(data.scores.shape[1]):
        y = data.scores[:, j] > 0.5
        if y.all() or not y.any():
            continue
        LogisticRegression(C=1.0, solver="liblinear").fit(x, y)
    return time.process_time() - t0


def _print_speed(sp: dict[str, float]) -> None:
    if "fit_s" in sp:
        line = (f"\nfit (defaults) on {sp['fit_rows']:,.0f} outcome rows: {sp['fit_s']:.2f} s CPU, "
                f"{sp['fit_rows'] / sp['fit_s']:,.0f} rows/s")
        if "peer_fit_s" in sp:
            line += (f"; peer scikit-learn (hashed n-grams + one LogisticRegression per model): "
                     f"{sp['peer_fit_s']:.2f} s ({sp['peer_fit_s'] / sp['fit_s']:.2f}x)")
        print(line)
    print("\nroute() CPU time per call (best of 5 passes over <= 200 prompts):")
    print(f"{'prompts':28s} {'default':>10s} {'words: whole prompt':>20s} {'ratio':>6s}")
    for kind in ("long", "short"):
        a, b = sp.get(f"default_{kind}_us"), sp.get(f"whole_prompt_words_{kind}_us")
        if a is None or b is None:
            continue
        name = f"{kind} (mean {sp[f'{kind}_chars']:.0f} chars)"
        print(f"{name:28s} {a:8.1f}us {b:18.1f}us {b / a:5.2f}x")


def evaluate(
    datasets: tuple[str, ...] = ("routerbench", "mmlu"),
    folds: int = 5,
    seed: int = 0,
    out_dir: str | None = None,
    verbose: bool = True,
    speed: bool = True,
    cascade: bool = True,
    cost_share: bool = False,
    paths: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Runs the held-out evaluation, prints the report, optionally writes PNG plots.

    Args:
        datasets: bundled outcome tables to evaluate ("routerbench", "mmlu"), and "gsm8k"
            (verify-then-escalate cascades on the shared GSM8K development set,
            ``orroute.research.verify_eval``), "selfconsistency" (what k agreeing cheap samples
            buy, on the shared RouterDC GSM8K table: ``orroute.research.self_consistency``),
            "mtbench" (RouteLLM's MT-Bench judgements: ``orroute.research.mt_bench``),
            "routerbench-verified" (RouterBench cascades with a sandboxed code check on MBPP:
            ``orroute.research.verified_routerbench``; needs sanitized MBPP's tests);
            "bounds" (what each ingredient the verify-then-escalate router could add reaches at
            best, in-sample: ``orroute.research.bounds``).
        folds: cross-validation folds (prompts are split, never individual rows).
        seed: fold assignment and random-baseline seed.
        out_dir: directory for PNG plots (needs matplotlib); None = no plots.
        verbose: print the report.
        speed: also time ``route()`` on long and short RouterBench prompts (``route_speed``).
        cascade: also evaluate ``CascadeRouter`` (per task type) on RouterBench (``cascade_cv``,
            ~1 min).
        cost_share: also check that a requested cost share, chosen on the training folds,
            holds on the held-out folds (``share_transfer``; nested CV, a few minutes on MMLU).
        paths: data files that are not bundled: ``"mbpp"`` (sanitized MBPP's JSON, for
            "routerbench-verified"), ``"mtbench"`` (a RouteLLM ``evals/mt_bench`` directory or the
            compact table; default ``bench/data/mt_bench/``).
        **options: LearnedRouter.fit options.

    Returns:
        dataset name -> metrics (curves, hulls, AIQ, match shares, PGR blocks).
    """
    import time

    import numpy as np

    results: dict[str, Any] = {}
    paths = paths or {}
    for name in datasets:
        if name == "selfconsistency":  # shared data: k cheap samples must agree (self_consistency.py)
            from .self_consistency import evaluate_self_consistency

            results[name] = evaluate_self_consistency(verbose=verbose)
            continue
        if name == "mtbench":  # RouteLLM's MT-Bench judgements (bench/data/mt_bench)
            from .mt_bench import evaluate_mt_bench

            results[name] = evaluate_mt_bench(folds=folds, seed=seed, path=paths.get("mtbench"),
                                              verbose=verbose)
            continue
        if name == "routerbench-verified":  # cascades with the MBPP code check (code_check.py)
            from .verified_routerbench import evaluate_verified_routerbench

            results[name] = evaluate_verified_routerbench(
                folds=folds, seed=seed, mbpp_path=paths.get("mbpp"), verbose=verbose)
            continue
        if name == "bounds":  # in-sample ceilings of the ingredients issue 19 could add
            from .bounds import evaluate_bounds

            results[name] = evaluate_bounds(
                lambda d: cross_validated(d, folds=folds, seed=seed, **options)["learned"][0],
                seed=seed, verbose=verbose)
            continue
        if name == "gsm8k":  # shared data, not bundled: verify-then-escalate cascades
            from .verify_eval import evaluate_gsm8k

            results[name] = evaluate_gsm8k(folds=folds, seed=seed, verbose=verbose, speed=speed)
            continue
        data = load_outcomes(name)
        t0 = time.perf_counter()
        cv = cross_validated(data, folds=folds, seed=seed, **options)
        secs = time.perf_counter() - t0
        if name == "routerbench":
            r = _eval_routerbench(data, cv, seed)
            if verbose:
                _print_routerbench(r)
            if cascade and data.answers is not None:
                r["cascade"] = _eval_cascade(data, r, folds, seed)
                if verbose:
                    _print_cascade(r["cascade"])
            if verbose:
                _print_pgr(f"RouterBench {' vs '.join(STRONG_WEAK[name])}", r["pgr"])
        else:
            strong, weak = STRONG_WEAK[name]
            js, jw = data.models.index(strong), data.models.index(weak)
            s = data.scores
            r = {"pgr": _pgr_block(cv, s[:, js], s[:, jw], js, jw, data, seed)}
            if verbose:
                print(f"\n== RouteLLM MMLU ({len(data.prompts)} prompts, {folds}-fold CV) ==")
                _print_pgr(f"MMLU {strong} vs {weak}", r["pgr"])
        if cost_share:
            from .verify_eval import print_share_transfer, share_transfer

            r["share_transfer"] = share_transfer(data, cv, folds=folds, seed=seed)
            if verbose:
                print_share_transfer(name, r["share_transfer"])
        r["cv_seconds"] = secs
        if speed and name == "routerbench":
            r["speed"] = route_speed(data)
            if verbose:
                _print_speed(r["speed"])
        r["n_prompts"] = len(data.prompts)
        if verbose:
            print(f"({folds}-fold fit+predict over {len(data.prompts)} prompts x "
                  f"{len(data.models)} models: {secs:.1f} s)")
        results[name] = r
    if out_dir:
        written = _plots(out_dir, results)
        if verbose:
            print("\nplots: " + ", ".join(written))
    _ = np
    return results
