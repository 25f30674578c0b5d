"""What an ingredient of the verify-then-escalate router could reach at best (issue 19, "bound
first"): ``bench/routing_eval.py --datasets bounds``.

Each bound adds one ingredient to the agreement cascades of ``CascadeRouter`` on RouterBench (or
to the category prior x turn-1 check on MT-Bench) and measures the family's **in-sample ceiling**:
per task, the candidate maximising ``accuracy - w * cost`` is chosen *and scored* on all prompts
(``verified_routerbench.family_ceiling``), so every figure is optimistic. An ingredient that does
not reach a target here cannot reach it held-out.

Ingredients we have no data for are simulated as a **signal of a given AUC** on the thing they
predict (binormal: ``z = d * y + N(0, 1)``, ``d = sqrt(2) * Phi^-1(AUC)``), drawn independently
per model and prompt, the most favourable assumption (real checks err on the same hard prompts).
AUC 0.5 is pure noise: what it "gains" is the selection bias of choosing among noisy candidates
in-sample, the floor against which the other rows are read.

- **check**: a verifier of the cheap model's answer on ARC-Challenge and Winogrande (whose answers
  are single letters: nothing real to check); chains "model a, checked; else the final model",
  three thresholds on the signal.
- **votes**: more than three of RouterBench's 11 models: ask 4-6 of the cheap ones, accept the
  plurality answer when at least k agree, else GPT-4 or Claude-v1 (real answers, no simulation).
- **three-way**: a prompt-level prediction that the cascade will fail (the learned router's job):
  the prompts it ranks most likely to fail go straight to GPT-4 (skipping the cascade's calls),
  those ranked least likely take the cascade's first model's answer unchecked, the rest the
  cascade. Measured with simulated signals and with the LearnedRouter's own out-of-fold
  probability that the cascade's first model is right.
- **MT-Bench**: the category prior x turn-1 check with a check of a given AUC on "GPT-4 scores
  higher on turn 1" in place of the escalation model (mean of 10 fold assignments), against the
  real check's AUC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations
from statistics import NormalDist
from typing import Any

from .metrics import _folds, aiq, hull, pgr_curve, pgr_metrics

REFERENCE = "gpt-4-1106-preview"
CHECKED_TASKS = ("arc_challenge", "winogrande")
VOTE_FINALS = ("gpt-4-1106-preview", "claude-v1")
SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)  # share of a task's prompts sent straight to GPT-4 / cheap


def separation(auc: float) -> float:
    """The binormal distance between the classes' means that gives ``auc`` (1 for a perfect
    signal, which is the event itself)."""
    return 1.0 if auc >= 1.0 else math.sqrt(2.0) * NormalDist().inv_cdf(auc)


def signal(y: Any, auc: float, rng: Any) -> Any:
    """A score of the given AUC for the 0/1 event ``y``: ``separation(auc) * y`` plus unit
    normal noise (binormal, equal variances); AUC 1 is ``y`` itself (ties broken at random)."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    noise = rng.standard_normal(y.shape)
    return separation(auc) * y + (1e-6 if auc >= 1.0 else 1.0) * noise


def posterior(z: Any, auc: float, base_rate: float) -> Any:
    """P(event | ``signal`` value ``z``) for a signal of ``auc`` and an event of ``base_rate``
    (the binormal likelihood ratio; a perfect signal gives the event itself)."""
    import numpy as np

    if auc >= 1.0:
        return np.clip(z, 0.0, 1.0)
    d = separation(auc)
    return 1.0 / (1.0 + np.exp(-(math.log(base_rate / (1 - base_rate)) + d * z - d * d / 2)))


def auc_of(score: Any, y: Any) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney)."""
    import numpy as np

    score, y = np.asarray(score, float), np.asarray(y) > 0
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for v in np.unique(score):  # average ranks of ties
        tie = score == v
        ranks[tie] = ranks[tie].mean()
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return float("nan")
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def vote(subset: Sequence[int], k: int, final: int, s: Any, c: Any,
         codes: Any) -> tuple[Any, Any]:
    """Per-prompt (score, cost) of: ask every model of ``subset``, accept the plurality answer when
    at least ``k`` of them give it, else ask ``final``."""
    import numpy as np

    sub = list(subset)
    a = codes[:, sub]
    counts = (a[:, :, None] == a[:, None, :]).sum(axis=2)
    best = counts.argmax(axis=1)
    ok = counts.max(axis=1) >= k
    picked = np.take_along_axis(s[:, sub], best[:, None], axis=1)[:, 0]
    return (np.where(ok, picked, s[:, final]),
            c[:, sub].sum(axis=1) + np.where(ok, 0.0, c[:, final]))


def three_way(cascade: tuple[Any, Any], cheap: tuple[Any, Any], strong: tuple[Any, Any],
              fail_score: Any, to_strong: float, to_cheap: float) -> tuple[Any, Any]:
    """Per-prompt (score, cost) when the ``to_strong`` share of prompts with the highest
    ``fail_score`` go to the strong model alone, the ``to_cheap`` share with the lowest to the
    cheap model alone, the rest through the cascade; each argument pair is (score, cost) per
    prompt."""
    import numpy as np

    n = len(fail_score)
    order = np.argsort(-np.asarray(fail_score), kind="stable")
    route = np.ones(n, dtype=int)  # 0 cheap, 1 cascade, 2 strong
    route[order[n - round(to_cheap * n):]] = 0
    route[order[:round(to_strong * n)]] = 2
    score = np.choose(route, [cheap[0], cascade[0], strong[0]])
    cost = np.choose(route, [cheap[1], cascade[1], strong[1]])
    return score, cost


def hull_candidates(acc: Any, cost: Any) -> list[int]:
    """Indices of the candidates on the (cost, accuracy) frontier: no cheaper one is as accurate."""
    import numpy as np

    out, best = [], -math.inf
    for i in np.lexsort((-acc, cost)):
        if acc[i] > best + 1e-9:
            out.append(int(i))
            best = float(acc[i])
    return out


class _RouterBench:
    """RouterBench's table, its agreement cascades per task, and the ceiling of a family."""

    def __init__(self) -> None:
        import numpy as np

        from .._cascade import answer_codes, enumerate_cascades
        from .._outcomes import load_outcomes
        from .verified_routerbench import candidate_matrices

        self.data = d = load_outcomes("routerbench")
        self.tasks = np.array(d.tasks)
        self.j_ref = d.models.index(REFERENCE)
        self.ref = d.costs[:, self.j_ref]
        self.cascades = enumerate_cascades(len(d.models), 3)
        self.per_task: dict[str, tuple[Any, Any, Any, Any]] = {}  # rows, [prompt, cand] s, c, codes
        for t in np.unique(self.tasks):
            rows = np.nonzero(self.tasks == t)[0]
            sc, co, _ = candidate_matrices(d, None, rows)
            self.per_task[str(t)] = (rows, sc, co, answer_codes([d.answers[i] for i in rows]))
        singles = [(float(d.costs[:, j].mean()), float(d.scores[:, j].mean()))
                   for j in range(len(d.models))]
        self.singles = singles
        self.cost_range = (min(c for c, _ in singles), max(c for c, _ in singles))

    def ceiling(self, extra: dict[str, list[tuple[Any, Any]]]) -> tuple[float, float]:
        """(accuracy at <= 50% of GPT-4's cost, mixed; AIQ) of the agreement cascades plus the
        ``extra`` per-prompt (score, cost) candidates of each task."""
        import numpy as np

        from .verified_routerbench import family_ceiling

        per = []
        for t, (_, sc, co, _) in self.per_task.items():
            more = extra.get(t, [])
            per.append((np.concatenate([sc.sum(axis=0, dtype=np.float64),
                                        [float(x.sum()) for x, _ in more]]),
                        np.concatenate([co.sum(axis=0), [float(y.sum()) for _, y in more]])))
        c = family_ceiling(per, self.ref, 0.5)
        return c["mixed"], aiq(hull(c["points"] + self.singles), *self.cost_range)


def _check_chains(rb: _RouterBench, auc: float, rng: Any) -> dict[str, list[tuple[Any, Any]]]:
    from .verified_routerbench import simulate_verified, verified_chains

    extra: dict[str, list[tuple[Any, Any]]] = {}
    middle = separation(auc) / 2
    for t in CHECKED_TASKS:
        rows = rb.per_task[t][0]
        s, c = rb.data.scores[rows], rb.data.costs[rows]
        z = signal(s > 0.5, auc, rng)
        for shift in (-0.5, 0.0, 0.5) if auc < 1.0 else (0.0,):  # pass rates around the middle
            passed = z > middle + shift
            extra[t] = extra.get(t, []) + [simulate_verified(ch, s, c, passed)
                                           for ch in verified_chains(len(rb.data.models), 1)]
    return extra


def _vote_candidates(rb: _RouterBench) -> dict[str, list[tuple[Any, Any]]]:
    models = rb.data.models
    finals = [models.index(m) for m in VOTE_FINALS]
    cheap = [j for j, m in enumerate(models) if m not in (*VOTE_FINALS, "claude-v2")]
    extra: dict[str, list[tuple[Any, Any]]] = {}
    for t, (rows, _, _, codes) in rb.per_task.items():
        s, c = rb.data.scores[rows], rb.data.costs[rows]
        extra[t] = [vote(sub, k, f, s, c, codes) for m in (4, 5, 6)
                    for sub in combinations(cheap, m) for k in range(m // 2 + 1, m + 1)
                    for f in finals]
    return extra


def _three_way_candidates(rb: _RouterBench, fail_score: Any) -> dict[str, list[tuple[Any, Any]]]:
    """``fail_score(task, rows, cascade index, cascade scores) -> per-prompt score``."""
    extra: dict[str, list[tuple[Any, Any]]] = {}
    for t, (rows, sc, co, _) in rb.per_task.items():
        s, c = rb.data.scores[rows], rb.data.costs[rows]
        strong = (s[:, rb.j_ref], c[:, rb.j_ref])
        for i in hull_candidates(sc.sum(axis=0), co.sum(axis=0)):
            first = rb.cascades[i][0][0]
            f = fail_score(t, rows, i, sc[:, i])
            extra.setdefault(t, []).extend(
                three_way((sc[:, i], co[:, i]), (s[:, first], c[:, first]), strong, f, q, r)
                for q in SHARES for r in SHARES if q + r <= 1)
    return extra


def _router_fail_score(rb: _RouterBench, p_right: Any) -> tuple[Any, dict[str, float]]:
    """Three-way candidates on ``1 - p_right`` of the cascade's first model (``p_right``: the
    LearnedRouter's out-of-fold [prompt, model] probabilities), and that score's within-task AUC
    for "the cascade's answer is wrong" (mean over the frontier cascades)."""
    import numpy as np

    aucs: dict[str, list[float]] = {}

    def fail(t: str, rows: Any, i: int, cascade_score: Any) -> Any:
        f = 1.0 - p_right[rows, rb.cascades[i][0][0]]
        a = auc_of(f, cascade_score < 0.5)
        if not math.isnan(a):
            aucs.setdefault(t, []).append(a)
        return f

    extra = _three_way_candidates(rb, fail)
    return extra, {t: float(np.mean(v)) for t, v in aucs.items()}


def routerbench_bounds(router_probabilities: Callable[[Any], Any] | None = None,
                       aucs: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0), draws: int = 3,
                       seed: int = 0) -> dict[str, Any]:
    """Rows ``(ingredient, signal AUC or None, accuracy at <= 50% mixed, AIQ)``.
    ``router_probabilities(outcomes)``: the LearnedRouter's out-of-fold [prompt, model]
    probabilities (``evaluation.cross_validated``), for the real three-way row (skipped if None).
    """
    import numpy as np

    rb = _RouterBench()
    rows: list[tuple[str, Any, float, float]] = [("agreement cascades", None, *rb.ceiling({}))]

    def simulated(name: str, make: Any, auc: float) -> None:
        got = [rb.ceiling(make(np.random.default_rng(seed + k)))
               for k in range(draws if auc < 1 else 1)]
        rows.append((name, auc, float(np.mean([a for a, _ in got])),
                     float(np.mean([b for _, b in got]))))

    for auc in aucs:
        simulated("+ check of ARC/Winogrande answers", lambda g, a=auc: _check_chains(rb, a, g),
                  auc)
    rows.append(("+ votes of 4-6 cheap models", None, *rb.ceiling(_vote_candidates(rb))))
    for auc in aucs:
        simulated("+ three-way (prompt predicts cascade failure)",
                  lambda g, a=auc: _three_way_candidates(
                      rb, lambda t, r, i, sc: signal(sc < 0.5, a, g)), auc)
    if router_probabilities is not None:
        extra, real_auc = _router_fail_score(rb, router_probabilities(rb.data))
        rows.append(("+ three-way, LearnedRouter out-of-fold", real_auc, *rb.ceiling(extra)))
    return {"rows": rows}


def mt_bench_bounds(aucs: Sequence[float] = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0),
                    repeats: int = 10, draws: int = 20, seed: int = 0) -> dict[str, Any]:
    """APGR of the category prior x turn-1 check when the check has a given AUC on "GPT-4 scores
    higher on turn 1" (a calibrated probability from the binormal signal), mean over ``repeats``
    fold assignments; and the real check's out-of-fold AUC and APGR on the same assignments."""
    import numpy as np

    from .. import _core
    from .mt_bench import FIXED_L2, _features, category_prior, load_mt_bench, prior_times_check

    d = load_mt_bench()
    n = len(d.prompts)
    gain = d.strong - d.weak
    turn1 = (d.strong_turn1 > d.weak_turn1).astype(float)
    cats = np.array(d.categories)
    feats = _features(d, False)

    def apgr(score: Any) -> float:
        fs, pgr = pgr_curve(score, d.strong, d.weak)
        return pgr_metrics(fs, pgr)["APGR"]

    real_auc, real_apgr = [], []
    sim: dict[float, list[float]] = {a: [] for a in aucs}
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        tie = rng.random(n) * 1e-9
        prior, p_real = np.zeros(n), np.zeros(n)
        for test in _folds(n, 5, seed + r):
            train = np.setdiff1d(np.arange(n), test)
            prior[test] = category_prior(gain, cats, train, test)
            m = _core.EscalationModel.fit(feats[train].tolist(), turn1[train].tolist(), [],
                                          FIXED_L2)
            p_real[test] = m.predict_many(feats[test].tolist())
        real_auc.append(auc_of(p_real, turn1))
        real_apgr.append(apgr(prior_times_check(prior, p_real) + tie))
        for a in aucs:
            vals = []
            for _ in range(draws):
                z = signal(turn1, a, rng)
                p = posterior(z, a, float(turn1.mean()))
                vals.append(apgr(prior_times_check(prior, p) + tie))
            sim[a].append(float(np.mean(vals)))
    return {"real": (float(np.mean(real_auc)), float(np.mean(real_apgr)),
                     float(min(real_apgr)), float(max(real_apgr))),
            "simulated": {a: (float(np.mean(v)), float(min(v)), float(max(v)))
                          for a, v in sim.items()}}


def evaluate_bounds(router_probabilities: Callable[[Any], Any] | None = None, seed: int = 0,
                    verbose: bool = True) -> dict[str, Any]:
    out = {"routerbench": routerbench_bounds(router_probabilities, seed=seed),
           "mtbench": mt_bench_bounds(seed=seed)}
    if verbose:
        _print(out)
    return out


def _print(r: dict[str, Any]) -> None:
    print("\n== Bounds (issue 19): in-sample ceilings of each added ingredient, optimistic ==")
    print("RouterBench (targets: accuracy >= 0.875 at <= 50% of GPT-4's cost; AIQ >= 0.862); "
          "AUC 0.5 = pure noise (selection bias)")
    print(f"  {'ingredient':48s} {'signal AUC':>22s} {'acc <=50%':>9s} {'AIQ':>7s}")
    for name, auc, acc, a in r["routerbench"]["rows"]:
        if isinstance(auc, dict):
            shown = " ".join(f"{t[:3]} {v:.2f}" for t, v in auc.items())
        else:
            shown = "-" if auc is None else f"{auc:.2f}"
        print(f"  {name:48s} {shown:>22s} {acc:9.4f} {a:7.4f}")
    m = r["mtbench"]
    print("MT-Bench (target APGR >= 0.72): category prior x a turn-1 check of a given AUC, mean "
          "[range] over 10 fold assignments")
    auc, mean, lo, hi = m["real"]
    print(f"  {'real check (escalation model)':32s} AUC {auc:.3f}  APGR {mean:.3f} "
          f"[{lo:.3f}, {hi:.3f}]")
    for a, (mean, lo, hi) in m["simulated"].items():
        print(f"  {'simulated check':32s} AUC {a:.3f}  APGR {mean:.3f} [{lo:.3f}, {hi:.3f}]")
