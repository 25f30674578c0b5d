"""Held-out evaluation of verify-then-escalate cascades and budget-targeted operating points
(``bench/routing_eval.py --datasets gsm8k,...``; ``orroute.research.evaluate``).

GSM8K (RouteLLM's development half, 658 problems, Mixtral-8x7B and GPT-4-1106 answers): a cascade
always asks Mixtral, then escalates to GPT-4 when the escalation score is high. Scores are
out-of-fold (K folds over problems): the escalation model is fitted on the training folds only,
its router features (a LearnedRouter's P(Mixtral right), P(GPT-4 right)) are themselves
out-of-fold inside the training folds (inner K-fold), and operating points (the threshold for a
requested cost share) are chosen on inner out-of-fold scores of the training folds, then applied
unchanged to the held-out fold.

Metrics (RouteLLM): PGR at a share f of prompts sent to the strong model, APGR = area under PGR
over f in [0, 1], CPT(x) = smallest f with PGR >= x. Costs (for cost shares): tokens counted with
cl100k_base at GPT-4-1106's catalog price ($10/$30 per M) and Mixtral-8x7B at $0.60 per M; the
cascade pays Mixtral on every prompt.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from typing import Any

from .metrics import STRONG_WEAK, _folds, pgr_curve, pgr_metrics

GSM8K_STRONG = "gpt-4-1106-preview"
GSM8K_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
PRICES = {GSM8K_STRONG: (10e-6, 30e-6), GSM8K_WEAK: (0.6e-6, 0.6e-6)}  # USD per token in, out
TARGET_SHARES = (0.2, 0.3, 0.5)


def shared_data_dir() -> str:
    """``$ORROUTE_SHARED_DATA`` or ``<checkout>/../shared/data`` (the team's shared data)."""
    env = os.environ.get("ORROUTE_SHARED_DATA")
    if env:
        return env
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))  # <checkout>/python/orroute/research/verify_eval.py
    return os.path.normpath(os.path.join(checkout, "..", "shared", "data"))


@dataclass
class Gsm8k:
    prompts: list[str]
    weak_answers: list[str]
    strong_answers: list[str]
    weak: Any    # numpy 0/1
    strong: Any
    cost_weak: Any  # USD per prompt
    cost_strong: Any


def load_gsm8k(path: str | None = None) -> Gsm8k:
    import numpy as np

    from ..tokenizer import get_encoding

    path = path or os.path.join(shared_data_dir(), "routing", "routellm_gsm8k_dev",
                                "gsm8k_responses_dev.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    enc = get_encoding("cl100k_base")

    def cost(model: str, prompt: str, answer: str) -> float:
        pin, pout = PRICES[model]
        return len(enc.encode_ordinary(prompt)) * pin + len(enc.encode_ordinary(answer)) * pout

    prompts = [r["prompt"] for r in rows]
    wa = [r[f"{GSM8K_WEAK}_response"] for r in rows]
    sa = [r[f"{GSM8K_STRONG}_response"] for r in rows]
    return Gsm8k(prompts, wa, sa,
                 np.array([r[GSM8K_WEAK] == "True" for r in rows], dtype=float),
                 np.array([r[GSM8K_STRONG] == "True" for r in rows], dtype=float),
                 np.array([cost(GSM8K_WEAK, p, a) for p, a in zip(prompts, wa, strict=True)]),
                 np.array([cost(GSM8K_STRONG, p, a) for p, a in zip(prompts, sa, strict=True)]))


def _router_probs(d: Gsm8k, train: Any, test: Any) -> Any:
    """LearnedRouter (prompt only) fitted on ``train``: [P(weak right), P(strong right)] on test."""
    import numpy as np

    from ..routing import LearnedRouter

    r = LearnedRouter.fit([d.prompts[i] for i in train],
                          {"weak": d.weak[train].tolist(), "strong": d.strong[train].tolist()})
    probs, _ = r.predict_many([d.prompts[i] for i in test])
    return np.array(probs)


def _oof(n_rows: Any, folds: int, seed: int, fn: Any) -> Any:
    """Out-of-fold values of ``fn(train, test)`` over the index array ``n_rows``."""
    import numpy as np

    out: Any = None
    for te_pos in _folds(len(n_rows), folds, seed):
        tr_pos = np.setdiff1d(np.arange(len(n_rows)), te_pos)
        v = fn(n_rows[tr_pos], n_rows[te_pos])
        if out is None:
            out = np.zeros((len(n_rows), *np.shape(v)[1:]))
        out[te_pos] = v
    return out


VARIANTS = {
    # name: use the prompt-only router's probabilities as features
    "escalation model (verifier + signals + router)": True,
    "escalation model (verifier + signals)": False,
}


L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
LABELS = ("strong better", "weak wrong")


def gsm8k_cv(d: Gsm8k, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Out-of-fold scores of every variant, baselines, and operating points chosen on the training
    folds (see the module docstring). Per outer fold, the escalation model's label ("the strong
    model did better" or "the cheap answer is wrong") and L2 strength are chosen by inner K-fold
    APGR on the training folds; the inner out-of-fold scores of that choice calibrate the
    operating points."""
    import numpy as np

    from .. import _core
    from ..verify import Answer, arithmetic, as_verdict, choose_operating_point

    n = len(d.prompts)
    labels = {"strong better": (d.strong > d.weak).astype(float), "weak wrong": 1.0 - d.weak}
    check = arithmetic()
    verdict = np.array([as_verdict(check(Answer(p, a)), "arithmetic").as_feature()
                        for p, a in zip(d.prompts, d.weak_answers, strict=True)])
    feats = np.array([_core.escalation_features(p, a, [])
                      for p, a in zip(d.prompts, d.weak_answers, strict=True)])

    def design(rows: Any, probs: Any, use_router: bool) -> Any:
        cols = [feats[rows], verdict[rows, None]]
        if use_router:
            cols.append(probs)
        return np.hstack(cols)

    def fit_predict(train: Any, test: Any, p_train: Any, p_test: Any, use_router: bool,
                    label: str, l2: float) -> Any:
        m = _core.EscalationModel.fit(design(train, p_train, use_router).tolist(),
                                      labels[label][train].tolist(), [], l2)
        return np.array(m.predict_many(design(test, p_test, use_router).tolist()))

    def apgr(score: Any, rows: Any) -> float:
        fs, pgr = pgr_curve(score, d.strong[rows], d.weak[rows])
        return pgr_metrics(fs, pgr)["APGR"]

    scores = {k: np.zeros(n) for k in VARIANTS}
    scores["prompt-only LearnedRouter (P strong - P weak)"] = np.zeros(n)
    ops: dict[str, list[dict[str, Any]]] = {k: [] for k in VARIANTS}
    chosen: dict[str, list[tuple[str, float]]] = {k: [] for k in VARIANTS}
    cost_w, cost_s = d.cost_weak, d.cost_strong
    for test in _folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        p_test = _router_probs(d, train, test)
        p_train = _oof(train, folds, seed + 1, lambda tr, te: _router_probs(d, tr, te))
        scores["prompt-only LearnedRouter (P strong - P weak)"][test] = p_test[:, 1] - p_test[:, 0]
        pos = np.arange(len(train))
        for name, use_router in VARIANTS.items():
            best: tuple[float, str, float, Any] | None = None
            for label in LABELS:
                for l2 in L2_GRID:
                    inner = _oof(pos, 3, seed + 2, lambda tr, te, lb=label, l=l2, rows=train,
                                 pr=p_train, ur=use_router: fit_predict(
                                     rows[tr], rows[te], pr[tr], pr[te], ur, lb, l))
                    a = apgr(inner, train)
                    if best is None or a > best[0] + 1e-12:
                        best = (a, label, l2, inner)
            assert best is not None
            _, label, l2, inner = best
            chosen[name].append((label, l2))
            scores[name][test] = fit_predict(train, test, p_train, p_test, use_router, label, l2)
            for target in TARGET_SHARES:
                op = choose_operating_point(inner, cost_w[train], cost_w[train] + cost_s[train],
                                            cost_s[train], target_cost_share=target,
                                            bootstrap=500, seed=seed)
                esc = scores[name][test] >= op.threshold
                realized = float((cost_w[test].sum() + cost_s[test][esc].sum()) / cost_s[test].sum())
                acc = float(np.where(esc, d.strong[test], d.weak[test]).mean())
                ops[name].append({"target": target, "calib_share": op.share,
                                  "calib_lo": op.share_lo, "calib_hi": op.share_hi,
                                  "realized": realized, "accuracy": acc,
                                  "escalated": float(esc.mean()), "n": len(test)})
    # VerifiedCascade's rule: a failed verifier always escalates, the score orders the rest
    scores["as VerifiedCascade runs it (fail -> escalate, then score)"] = (
        scores["escalation model (verifier + signals)"] + (verdict < 0))
    rng = np.random.default_rng(seed)
    tie = rng.random(n) * 1e-9
    scores["arithmetic verifier only (fail -> escalate)"] = (verdict < 0).astype(float) + tie
    scores["random"] = rng.random(n)
    scores["oracle"] = (d.strong - d.weak) + tie
    return {"scores": scores, "ops": ops, "verdict": verdict, "chosen": chosen}


def _cost_share_curve(score: Any, d: Gsm8k, fs: Any) -> Any:
    import numpy as np

    order = np.argsort(-score, kind="stable")
    extra = np.concatenate([[0.0], np.cumsum(d.cost_strong[order])])
    n = len(score)
    return np.array([(d.cost_weak.sum() + extra[round(float(f) * n)]) / d.cost_strong.sum()
                     for f in fs])


def decision_time_us(d: Gsm8k, repeats: int = 5) -> dict[str, float]:
    """CPU microseconds per prompt of the verify/escalate decision (no model call): the arithmetic
    verifier alone, and the whole decision (verifier + features + escalation model)."""
    import numpy as np

    from .. import _core
    from ..verify import Answer, EscalationScorer, arithmetic, as_verdict

    check = arithmetic()
    label = (d.strong > d.weak).astype(float)
    scorer = EscalationScorer.fit(d.prompts, d.weak_answers, label.tolist(),
                                  extra=[[0.0, 0.5, 0.5]] * len(d.prompts))
    pairs = list(zip(d.prompts, d.weak_answers, strict=True))
    out = {}
    for name, fn in (
        ("arithmetic verifier", lambda p, a: check(Answer(p, a))),
        ("verifier + escalation score", lambda p, a: scorer.score(
            p, a, [as_verdict(check(Answer(p, a)), "arithmetic").as_feature(), 0.5, 0.5])),
        ("core only (check_calculations)", lambda p, a: _core.check_calculations(a)),
    ):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.process_time()
            for p, a in pairs:
                fn(p, a)
            best = min(best, (time.process_time() - t0) / len(pairs))
        out[name] = best * 1e6
    _ = np
    return out


def evaluate_gsm8k(folds: int = 5, seed: int = 0, path: str | None = None,
                   verbose: bool = True, speed: bool = True) -> dict[str, Any]:
    import numpy as np

    d = load_gsm8k(path)
    t0 = time.perf_counter()
    cv = gsm8k_cv(d, folds=folds, seed=seed)
    secs = time.perf_counter() - t0
    block: dict[str, Any] = {}
    for name, sc in cv["scores"].items():
        fs, pgr = pgr_curve(sc, d.strong, d.weak)
        shares = _cost_share_curve(sc, d, fs)
        m = pgr_metrics(fs, pgr)
        hit = np.nonzero(pgr >= 0.5 - 1e-12)[0]
        m["cost_share_at_PGR50"] = float(shares[hit[0]]) if len(hit) else 1.0 + float(
            d.cost_weak.sum() / d.cost_strong.sum())
        m["APGR_90"], m["CPT50_90"] = _bootstrap(sc, d, seed)
        block[name] = m
    out = {"pgr": block, "ops": cv["ops"], "n": len(d.prompts), "cv_seconds": secs,
           "chosen": cv["chosen"],
           "acc": {"strong": float(d.strong.mean()), "weak": float(d.weak.mean())},
           "weak_cost_share": float(d.cost_weak.sum() / d.cost_strong.sum()),
           "verifier": {"fail": float((cv["verdict"] < 0).mean()),
                        "weak_wrong_given_fail": _cond(d.weak == 0, cv["verdict"] < 0),
                        "weak_wrong_given_notfail": _cond(d.weak == 0, cv["verdict"] >= 0)}}
    if speed:
        out["decision_us"] = decision_time_us(d)
    if verbose:
        _print_gsm8k(out, folds)
    return out


def _bootstrap(score: Any, d: Gsm8k, seed: int, rounds: int = 300) -> tuple[Any, Any]:
    """90% bootstrap intervals (prompts resampled, held-out scores fixed) of APGR and CPT(50%)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(score)
    apgr, cpt = [], []
    for _ in range(rounds):
        i = rng.integers(0, n, n)
        if d.strong[i].mean() <= d.weak[i].mean():
            continue
        fs, pgr = pgr_curve(score[i], d.strong[i], d.weak[i])
        m = pgr_metrics(fs, pgr)
        apgr.append(m["APGR"])
        cpt.append(m["CPT50"])
    return (tuple(np.quantile(apgr, [0.05, 0.95])), tuple(np.quantile(cpt, [0.05, 0.95])))


def _cond(event: Any, given: Any) -> float:
    return float(event[given].mean()) if given.any() else float("nan")


def _print_gsm8k(r: dict[str, Any], folds: int) -> None:
    a = r["acc"]
    print(f"\n== GSM8K dev (RouteLLM, {r['n']} problems, {folds}-fold, held-out) ==")
    print(f"GPT-4 {a['strong']:.4f}, Mixtral {a['weak']:.4f}; Mixtral costs "
          f"{r['weak_cost_share']:.1%} of GPT-4 (paid on every prompt by a cascade)")
    v = r["verifier"]
    print(f"arithmetic verifier fails {v['fail']:.1%} of Mixtral answers; Mixtral wrong when it "
          f"fails {v['weak_wrong_given_fail']:.1%}, when it does not {v['weak_wrong_given_notfail']:.1%}")
    print(f"{'cascade score (escalate highest first)':57s} {'APGR [90% CI]':>20s} "
          f"{'CPT(50%) [90% CI]':>22s} {'CPT(80%)':>9s} {'cost share @PGR50':>18s}")
    for k, m in r["pgr"].items():
        a, c = m["APGR_90"], m["CPT50_90"]
        print(f"{k:57s} {m['APGR']:6.3f} [{a[0]:.3f},{a[1]:.3f}] {m['CPT50']:7.1%} "
              f"[{c[0]:5.1%},{c[1]:5.1%}] {m['CPT80']:9.1%} {m['cost_share_at_PGR50']:18.1%}")
    print("(CPT: share of prompts escalated to GPT-4, RouteLLM's convention; cost share: Mixtral on "
          "every prompt + GPT-4 on the escalated ones, of GPT-4 alone)")
    for name, picks in r["chosen"].items():
        print(f"  {name}: label, l2 chosen per fold by inner CV: "
              + ", ".join(f"{lb}/{l2:g}" for lb, l2 in picks))
    print("\noperating points chosen on the training folds (inner out-of-fold scores), applied to "
          "the held-out fold (~132 prompts each; calibration interval: ~526 prompts):")
    print(f"{'variant':50s} {'target':>6s} {'calib share [90%]':>22s} {'held-out share':>15s} "
          f"{'|miss| max':>10s} {'accuracy':>9s}")
    import numpy as np

    for name, rows in r["ops"].items():
        for target in TARGET_SHARES:
            rs = [x for x in rows if x["target"] == target]
            w = np.array([x["n"] for x in rs], dtype=float)
            realized = float(np.average([x["realized"] for x in rs], weights=w))
            acc = float(np.average([x["accuracy"] for x in rs], weights=w))
            miss = max(abs(x["realized"] - target) for x in rs)
            lo = np.mean([x["calib_lo"] for x in rs])
            hi = np.mean([x["calib_hi"] for x in rs])
            cal = np.mean([x["calib_share"] for x in rs])
            print(f"{name:50s} {target:6.0%} {cal:8.1%} [{lo:5.1%},{hi:5.1%}] {realized:15.1%} "
                  f"{miss:10.1%} {acc:9.4f}")
    if "decision_us" in r:
        print("\nverify/escalate decision time per prompt (CPU, best of 5 over the 658 answers; no "
              "model call):")
        for k, us in r["decision_us"].items():
            print(f"  {k:40s} {us:8.1f} us")
    print(f"({folds}-fold nested CV: {r['cv_seconds']:.1f} s)")


# ---------------------------------------------------------------------------- cost-share transfer


def share_transfer(data: Any, cv: dict[str, Any], folds: int = 5, seed: int = 0,
                   targets: tuple[float, ...] = (0.3, 0.5), inner: int = 3) -> dict[str, Any]:
    """Does a requested cost share hold on new prompts? Per outer fold (the folds of
    ``cross_validated``, whose out-of-fold predictions ``cv`` holds), the operating point is chosen
    on the training folds only — from the outer router's own in-sample predictions (what
    ``fit_operating_point`` does by default) and, for comparison, from inner out-of-fold
    predictions (``inner`` routers per fold; ``fit_operating_point(folds=3)``) — then applied to
    the held-out fold.

    RouterBench (costs): the cost weight of ``route`` for a share of GPT-4's cost. MMLU (no
    costs): a threshold on P(GPT-4 right) - P(Mixtral right) for a share of calls to GPT-4.
    Returns per target and calibration: mean realised share, largest miss, accuracy.
    """
    import numpy as np

    from .. import _core
    from ..routing import LearnedRouter, _choose_weight

    s = data.scores
    n, _ = s.shape
    strong, weak = STRONG_WEAK[data.name]
    js, jw = data.models.index(strong), data.models.index(weak)
    has_costs = data.costs is not None
    costs: Any = data.costs
    p_out = cv["learned"][0]
    c_out = cv["learned"][1]

    def fit(idx: Any) -> Any:
        return LearnedRouter.fit([data.prompts[i] for i in idx],
                                 {m: s[idx, j].tolist() for j, m in enumerate(data.models)},
                                 {m: costs[idx, j].tolist() for j, m in enumerate(data.models)}
                                 if has_costs else None)

    def predict(router: Any, idx: Any) -> tuple[Any, Any]:
        pr, pc = router.predict_many([data.prompts[i] for i in idx])
        return np.array(pr), np.array(pc)

    rows: list[dict[str, Any]] = []
    for test in _folds(n, folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        p_in = np.zeros((len(train), s.shape[1]))
        c_in = np.zeros_like(p_in)
        for te_pos in _folds(len(train), inner, seed + 1):
            tr_pos = np.setdiff1d(np.arange(len(train)), te_pos)
            p_in[te_pos], c_in[te_pos] = predict(fit(train[tr_pos]), train[te_pos])
        calibrations = {"out-of-fold (inner CV)": (p_in, c_in),
                        "in-sample": predict(fit(train), train)}
        for cal_name, (pc, cc) in calibrations.items():
            for target in targets:
                if has_costs:
                    op = _choose_weight(pc, cc, costs[train], js, None, target, None, None)
                    u = p_out[test] - op.cost_weight * c_out[test] - 1e-12 * c_out[test]
                    choice = u.argmax(axis=1)
                    realized = float(costs[test, choice].sum() / costs[test, js].sum())
                    acc = float(s[test, choice].mean())
                    calib = op.share
                else:
                    score = pc[:, js] - pc[:, jw]
                    ones = np.ones(len(train))
                    op2 = _core.choose_operating_point(score.tolist(), (0 * ones).tolist(),
                                                       ones.tolist(), ones.tolist(), target,
                                                       _core.ShareMode.TARGET, 200, seed, 0.9)
                    esc = (p_out[test, js] - p_out[test, jw]) >= op2.threshold
                    realized = float(esc.mean())
                    acc = float(np.where(esc, s[test, js], s[test, jw]).mean())
                    calib = op2.share
                rows.append({"calibration": cal_name, "target": target, "calib": calib,
                             "realized": realized, "accuracy": acc, "n": len(test)})
    return {"rows": rows, "unit": "GPT-4 cost" if has_costs else "calls to GPT-4"}


def print_share_transfer(name: str, r: dict[str, Any]) -> None:
    import numpy as np

    print(f"\n{name}: requested share of {r['unit']} (target), chosen on the training folds, "
          "realised on the held-out folds:")
    print(f"{'calibration':26s} {'target':>6s} {'calib':>6s} {'held-out (mean)':>15s} "
          f"{'max |miss|':>10s} {'accuracy':>9s}")
    cals = dict.fromkeys(x["calibration"] for x in r["rows"])
    for cal in cals:
        for target in dict.fromkeys(x["target"] for x in r["rows"]):
            rs = [x for x in r["rows"] if x["calibration"] == cal and x["target"] == target]
            w = np.array([x["n"] for x in rs], dtype=float)
            print(f"{cal:26s} {target:6.0%} {np.mean([x['calib'] for x in rs]):6.1%} "
                  f"{np.average([x['realized'] for x in rs], weights=w):15.1%} "
                  f"{max(abs(x['realized'] - target) for x in rs):10.1%} "
                  f"{np.average([x['accuracy'] for x in rs], weights=w):9.4f}")
