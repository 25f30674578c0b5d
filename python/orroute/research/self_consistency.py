"""What the self-consistency verifier buys: k cheap samples must agree, else escalate
(``bench/routing_eval.py --datasets selfconsistency``; ``orroute.routing.evaluate``).

The RouteLLM GSM8K development set holds ONE Mixtral answer per problem, so agreement among k
samples cannot be measured on it. The shared RouterDC GSM8K table (``routerdc_split2/
gsm8k-train.json``, 1,000 problems x 7 open 7-8B models) holds, per problem and model, the share
of 10 sampled answers that were right. From those counts the verifier's outcome is computed
exactly for k samples drawn from the 10 (hypergeometric, no sampling noise), for
``orroute.verify.self_consistency(k)``'s rule (the first answer is kept when at least 2/3 of the
k agree with it), between two bounds on how wrong answers coincide, which the table does not
record:

- ``distinct``: wrong answers never agree (agreement implies the first answer is right);
- ``common``: all wrong answers are the same answer (wrong majorities are accepted).

A real model lies between the two. The cascade: cheap model with k samples, escalate to the
strong model (its own single-answer accuracy) when the check fails. PGR = (cascade accuracy -
cheap accuracy) / (strong - cheap); escalating the same share of problems at random gives PGR =
that share, so ``PGR - escalated`` is what the agreement signal adds. Cost share: k cheap
samples at ``ratio`` of the strong answer's cost (default: Mixtral/GPT-4 on the RouteLLM set)
plus the escalations. No model is fitted: nothing to hold out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from math import ceil, comb
from typing import Any

from .verify_eval import shared_data_dir

STRONG = "meta-math/MetaMath-Mistral-7B"
CHEAP = ("mistralai/Mistral-7B-v0.1", "meta-llama/Meta-Llama-3-8B",
         "cognitivecomputations/dolphin-2.6-mistral-7b", "cognitivecomputations/dolphin-2.9-llama3-8b")
SAMPLES = 10  # answers per problem and model behind each RouterDC score
KS = (2, 3, 5)
MIN_SHARE = 2 / 3  # orroute.verify.self_consistency's default


def load_routerdc_gsm8k(path: str | None = None) -> list[dict[str, float]]:
    """Per problem: model -> share of its 10 sampled answers that were right."""
    path = path or os.path.join(shared_data_dir(), "routing", "routerdc_split2", "gsm8k-train.json")
    with open(path, encoding="utf-8") as f:
        return [dict(r["scores"]) for r in json.load(f)]


def _hg(j: int, n: int, good: int, draws: int) -> float:
    """P(j good among ``draws`` drawn without replacement from ``n`` holding ``good``)."""
    if j < 0 or j > draws or j > good or draws - j > n - good:
        return 0.0
    return comb(good, j) * comb(n - good, draws - j) / comb(n, draws)


@dataclass(frozen=True)
class Outcome:
    """One problem, one cheap model, k samples: P(accepted and right), P(accepted and wrong),
    P(escalated)."""

    ok: float
    wrong: float
    escalate: float


def outcome(correct: int, k: int, wrong_agree: bool, n: int = SAMPLES,
            min_share: float = MIN_SHARE) -> Outcome:
    """The verifier on ``k`` of ``n`` recorded answers, ``correct`` of them right (see the
    module docstring for ``wrong_agree``)."""
    need = ceil(min_share * k - 1e-9)
    ok = wrong = 0.0
    for j in range(k + 1):  # j right answers among the k; the first one right or wrong
        first_right = correct / n * _hg(j - 1, n - 1, correct - 1, k - 1) if correct else 0.0
        first_wrong = (n - correct) / n * _hg(j, n - 1, correct, k - 1) if correct < n else 0.0
        if j >= need:
            ok += first_right
        if wrong_agree and k - j >= need:
            wrong += first_wrong
    return Outcome(ok, wrong, 1.0 - ok - wrong)


def cascade_table(rows: list[dict[str, float]], cheap: str, strong: str = STRONG,
                  ks: tuple[int, ...] = KS, ratio: float = 0.03) -> dict[str, Any]:
    """Accuracy, escalation share, PGR and cost share of cheap(k samples) -> strong."""
    n = len(rows)
    acc_w = sum(r[cheap] for r in rows) / n
    acc_s = sum(r[strong] for r in rows) / n
    out: dict[str, Any] = {"cheap": cheap, "strong": strong, "acc_cheap": acc_w,
                           "acc_strong": acc_s, "n": n, "ratio": ratio, "rows": []}
    for k in ks:
        for bound, agree in (("distinct", False), ("common", True)):
            acc = esc = acc_wrong = 0.0
            for r in rows:
                o = outcome(round(r[cheap] * SAMPLES), k, agree)
                acc += o.ok + o.escalate * r[strong]
                esc += o.escalate
                acc_wrong += o.wrong
            acc, esc = acc / n, esc / n
            pgr = (acc - acc_w) / (acc_s - acc_w) if acc_s > acc_w else float("nan")
            out["rows"].append({"k": k, "bound": bound, "accuracy": acc, "escalated": esc,
                                "pgr": pgr, "gain_over_random": pgr - esc,
                                "cost_share": k * ratio + esc,
                                "accepted_wrong": acc_wrong / n})
    return out


def _arithmetic_point(ratio_out: list[float]) -> dict[str, float]:
    """The arithmetic verifier alone on the RouteLLM dev set (one Mixtral answer), for
    comparison: escalated share, PGR, cost share."""
    import numpy as np

    from ..verify import Answer, arithmetic, as_verdict
    from .verify_eval import load_gsm8k

    d = load_gsm8k()
    check = arithmetic()
    fail = np.array([as_verdict(check(Answer(p, a)), "arithmetic").failed
                     for p, a in zip(d.prompts, d.weak_answers, strict=True)])
    acc = float(np.where(fail, d.strong, d.weak).mean())
    aw, as_ = float(d.weak.mean()), float(d.strong.mean())
    ratio = float(d.cost_weak.sum() / d.cost_strong.sum())
    ratio_out.append(ratio)
    return {"escalated": float(fail.mean()), "accuracy": acc, "pgr": (acc - aw) / (as_ - aw),
            "cost_share": ratio + float(d.cost_strong[fail].sum() / d.cost_strong.sum()),
            "ratio": ratio}


def evaluate_self_consistency(verbose: bool = True) -> dict[str, Any]:
    ratio: list[float] = []
    try:
        arith: dict[str, float] | None = _arithmetic_point(ratio)
    except FileNotFoundError:
        arith = None
    rows = load_routerdc_gsm8k()
    tables = [cascade_table(rows, c, ratio=ratio[0] if ratio else 0.03) for c in CHEAP]
    out = {"arithmetic_routellm_dev": arith, "tables": tables}
    if verbose:
        _print(out)
    return out


def _print(r: dict[str, Any]) -> None:
    t0 = r["tables"][0]
    print(f"\n== self-consistency verifier (k cheap samples must agree, >= 2/3 with the first) "
          f"on GSM8K: RouterDC table, {t0['n']} problems x 10 sampled answers per model ==")
    print(f"strong: {t0['strong']} (accuracy {t0['acc_strong']:.3f}); cheap sample cost = "
          f"{t0['ratio']:.1%} of a strong answer (Mixtral/GPT-4 on the RouteLLM set); exact over "
          "the recorded samples; wrong answers 'distinct' (never agree) .. 'common' (always agree)")
    print(f"{'cheap model':44s} {'acc':>5s} {'k':>2s} {'bound':>8s} {'escalated':>9s} "
          f"{'accuracy':>8s} {'PGR':>6s} {'PGR-esc':>7s} {'cost share':>10s} {'acc. wrong':>10s}")
    for t in r["tables"]:
        for x in t["rows"]:
            print(f"{t['cheap']:44s} {t['acc_cheap']:5.3f} {x['k']:2d} {x['bound']:>8s} "
                  f"{x['escalated']:9.1%} {x['accuracy']:8.3f} {x['pgr']:6.3f} "
                  f"{x['gain_over_random']:+7.3f} {x['cost_share']:10.1%} "
                  f"{x['accepted_wrong']:10.1%}")
    a = r["arithmetic_routellm_dev"]
    if a is not None:
        print(f"for comparison, the arithmetic verifier alone on the RouteLLM dev set (Mixtral -> "
              f"GPT-4, one sample): escalated {a['escalated']:.1%}, PGR {a['pgr']:.3f} "
              f"(PGR-esc {a['pgr'] - a['escalated']:+.3f}), cost share {a['cost_share']:.1%}")
    print("(PGR-esc: what agreement adds over escalating the same share of problems at random; "
          "'acc. wrong': wrong cheap answers accepted, of all problems)")
