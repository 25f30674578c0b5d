"""RouterBench with a real code check (``bench/routing_eval.py --datasets routerbench-verified``).

Cascades per task type, as ``CascadeRouter`` chooses them (answers of cheap models must agree,
else the next model; ``enumerate_cascades``), plus, on MBPP, **verified chains**: ask model a, run
its code against the problem's first test (``code_check``); accept on a pass, else ask b (checked
the same way), ..., else the final model, whose answer is always accepted. Every model called is
paid. Scores are RouterBench's own 0/1 labels.

Protocol (held-out): the same 5 folds as ``bench/routing_eval.py``. Per fold and cost weight w,
each task's cascade maximises ``training accuracy - w * training cost`` (one w for all tasks:
the budget split that is optimal on the training folds); the operating point "at most X% of
GPT-4's cost" is, per fold, the weight whose *training* cost share is the largest not above X
(``_core.choose_grid_point``); every figure is on the held-out fold.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

from .metrics import _folds

VERIFIED = "verified"


def verified_chains(n_models: int, max_checked: int = 2) -> list[tuple[int, ...]]:
    """(checked model, ..., final model) chains with 1..``max_checked`` checked stages, models
    distinct."""
    out: list[tuple[int, ...]] = []
    for k in range(2, max_checked + 2):
        out.extend(permutations(range(n_models), k))
    return out


def simulate_verified(chain: tuple[int, ...], s: Any, c: Any, passed: Any) -> tuple[Any, Any]:
    """Per-prompt (score, cost) of a verified chain on a [prompt, model] table; ``passed``: the
    check's 0/1 outcome per [prompt, model]."""
    import numpy as np

    n = len(s)
    done = np.zeros(n, bool)
    score = np.zeros(n)
    cost = np.zeros(n)
    for j in chain[:-1]:
        cost += np.where(done, 0.0, c[:, j])
        ok = ~done & (passed[:, j] > 0)
        score[ok] = s[ok, j]
        done |= ok
    last = chain[-1]
    cost += np.where(done, 0.0, c[:, last])
    score[~done] = s[~done, last]
    return score, cost


def candidate_matrices(data: Any, passed: Any | None, rows: Any) -> tuple[Any, Any, list[str]]:
    """[prompt, candidate] score and cost of every candidate on ``rows`` (one task type):
    agreement cascades, then verified chains when ``passed`` (aligned with ``rows``) is given."""
    import numpy as np

    from .._cascade import answer_codes, enumerate_cascades, simulate

    s, c = data.scores[rows], data.costs[rows]
    codes = answer_codes([data.answers[i] for i in rows])
    cands = enumerate_cascades(len(data.models), 3)
    names = [f"agree {idx}/{agree}" for idx, agree in cands]
    cols = [simulate(cand, s, c, codes) for cand in cands]
    if passed is not None:
        chains = verified_chains(len(data.models))
        names += [f"{VERIFIED} {ch}" for ch in chains]
        cols += [simulate_verified(ch, s, c, passed) for ch in chains]
    score = np.array([x for x, _ in cols], dtype=np.float32).T
    cost = np.array([y for _, y in cols], dtype=np.float64).T
    return score, cost, names


def verified_cv(data: Any, passed_mbpp: Any | None, folds: int = 5, seed: int = 0,
                weights: Any = None, reference: str = "gpt-4-1106-preview") -> dict[str, Any]:
    """Held-out curve over cost weights and the per-fold training cost shares (see the module
    docstring). ``passed_mbpp``: [MBPP prompt, model] check outcomes in table order, or None for
    the agreement cascades alone."""
    import numpy as np

    n = len(data.prompts)
    tasks = np.array(data.tasks)
    weights = np.asarray(weights if weights is not None else np.logspace(0, 4, 81))
    per_task = {}
    for t in np.unique(tasks):
        rows = np.nonzero(tasks == t)[0]
        passed = passed_mbpp if (t == "mbpp" and passed_mbpp is not None) else None
        per_task[t] = (rows, *candidate_matrices(data, passed, rows))
    ref = data.costs[:, data.models.index(reference)]
    ref_score = data.scores[:, data.models.index(reference)]
    curve_s = np.zeros((len(weights), n))
    curve_c = np.zeros((len(weights), n))
    train_share = []
    train_cost: list[Any] = []  # per fold: [weight, prompt] cost on the training rows (0 on test)
    chosen: list[dict[str, list[str]]] = []
    fold_list = _folds(n, folds, seed)
    for test in fold_list:
        in_test = np.zeros(n, bool)
        in_test[test] = True
        shares = np.zeros(len(weights))
        fold_cost = np.zeros((len(weights), n))
        picks: dict[str, list[str]] = {}
        for t, (rows, sc, co, names) in per_task.items():
            tr, te = ~in_test[rows], in_test[rows]
            acc_tr, cost_tr = sc[tr].sum(axis=0, dtype=np.float64), co[tr].sum(axis=0)
            for wi, w in enumerate(weights):
                ch = int(np.lexsort((cost_tr, -(acc_tr - w * cost_tr)))[0])  # ties -> cheaper
                curve_s[wi, rows[te]] = sc[te, ch]
                curve_c[wi, rows[te]] = co[te, ch]
                fold_cost[wi, rows[tr]] = co[tr, ch]
                shares[wi] += cost_tr[ch]
                picks.setdefault(t, []).append(names[ch])
        train_share.append(shares / ref[~in_test].sum())
        train_cost.append(fold_cost)
        chosen.append(picks)
    return {"weights": weights, "curve_s": curve_s, "curve_c": curve_c, "folds": fold_list,
            "train_share": train_share, "train_cost": train_cost, "chosen": chosen, "ref": ref, "ref_score": ref_score,
            "tasks": tasks}


def at_share(cv: dict[str, Any], share: float, mix: bool = False, seed: int = 0) -> dict[str, Any]:
    """Held-out accuracy and cost share when each fold uses the weight whose training share is
    the largest not above ``share``. ``mix``: also send a random share p of the fold's prompts to
    the next dearer weight, p set so that the *training* share is exactly ``share`` (a point on
    the segment between two settings, as AIQ's hull assumes).

    ``share_90``: per fold, the 90% interval of the share a batch of the held-out fold's size would
    cost under the chosen setting, from bootstrap batches of the *training* prompts (what a user
    can be told in advance); ``inside``: how many held-out folds landed in their interval."""
    import numpy as np

    from .. import _core

    rng = np.random.default_rng(seed)
    interval_rng = np.random.default_rng(seed + 1)  # its own stream: the mixing stays as it was
    acc, cost, ref, n = 0.0, 0.0, 0.0, 0
    over: list[float] = []
    intervals: list[tuple[float, float]] = []
    inside = 0
    by_task: dict[str, list[str]] = {}
    # per task: [prompts, held-out score, the reference model's score, cost, reference cost]
    per_task: dict[str, list[float]] = {}
    for fi, (test, shares) in enumerate(zip(cv["folds"], cv["train_share"], strict=True)):
        i, _ = _core.choose_grid_point([[float(x)] for x in shares], [1.0], share,
                                       _core.ShareMode.AT_MOST, 0, 0, 0.9)
        use = np.full(len(test), i)
        dearer = [k for k in range(len(shares)) if shares[k] > share]
        k, p = i, 0.0
        if mix and dearer and shares[i] <= share:
            k = min(dearer, key=lambda j: (shares[j], j))
            p = (share - shares[i]) / (shares[k] - shares[i])
            use[rng.random(len(test)) < p] = k
        lo, hi = _share_interval(cv, fi, i, k, p, len(test), interval_rng)
        intervals.append((lo, hi))
        got_s = cv["curve_s"][use, test]
        got_c = cv["curve_c"][use, test]
        acc += float(got_s.sum())
        cost += float(got_c.sum())
        ref += float(cv["ref"][test].sum())
        realised = float(got_c.sum() / cv["ref"][test].sum())
        over.append(realised - share)
        inside += int(lo <= realised <= hi)
        n += len(test)
        for t in np.unique(cv["tasks"][test]):
            m = cv["tasks"][test] == t
            row = per_task.setdefault(str(t), [0.0] * 5)
            for k, v in enumerate((m.sum(), got_s[m].sum(), cv["ref_score"][test][m].sum(),
                                   got_c[m].sum(), cv["ref"][test][m].sum())):
                row[k] += float(v)
        for t, picks in cv["chosen"][fi].items():
            by_task.setdefault(t, []).append(picks[i])
    return {"accuracy": acc / n, "share": cost / ref, "max_over": max(over),
            "min_over": min(over), "cascades": by_task,
            "share_90": (float(np.mean([a for a, _ in intervals])),
                         float(np.mean([b for _, b in intervals]))), "inside": inside,
            "folds": len(intervals),
            "per_task": {t: {"n": int(r[0]), "accuracy": r[1] / r[0], "reference": r[2] / r[0],
                             "prompts_behind": r[2] - r[1], "cost_share": r[3] / r[4]}
                         for t, r in per_task.items()}}


def _share_interval(cv: dict[str, Any], fold: int, i: int, k: int, p: float, size: int,
                    rng: Any, rounds: int = 400) -> tuple[float, float]:
    """90% interval of the cost share of ``size`` prompts drawn from fold ``fold``'s training rows
    under setting ``i`` (each prompt sent to setting ``k`` with probability ``p``)."""
    import numpy as np

    train = np.setdiff1d(np.arange(len(cv["ref"])), cv["folds"][fold])
    ci, ck = cv["train_cost"][fold][i, train], cv["train_cost"][fold][k, train]
    ref = cv["ref"][train]
    vals = np.empty(rounds)
    for r in range(rounds):
        j = rng.integers(0, len(train), size)
        cost = np.where(rng.random(size) < p, ck[j], ci[j])
        vals[r] = cost.sum() / ref[j].sum()
    lo, hi = np.quantile(vals, [0.05, 0.95])
    return float(lo), float(hi)


def in_sample_ceiling(data: Any, passed_mbpp: Any | None, share: float = 0.5,
                      reference: str = "gpt-4-1106-preview") -> dict[str, Any]:
    """What this candidate family can do at best: each task's cascade chosen *and scored* on all
    prompts (no held-out fold; optimistic by construction). Accuracy at ``share`` of the
    reference's cost (grid point, and mixed with the next dearer weight) and the hull's points."""
    import numpy as np

    tasks = np.array(data.tasks)
    per = []
    for t in np.unique(tasks):
        rows = np.nonzero(tasks == t)[0]
        sc, co, _ = candidate_matrices(data, passed_mbpp if t == "mbpp" else None, rows)
        per.append((sc.sum(axis=0, dtype=np.float64), co.sum(axis=0)))
    return family_ceiling(per, data.costs[:, data.models.index(reference)], share)


def family_ceiling(per_task: list[tuple[Any, Any]], ref: Any, share: float) -> dict[str, Any]:
    """The in-sample ceiling of a candidate family: ``per_task`` holds, per task, each
    candidate's summed score and summed cost over the task's prompts; ``ref``: the reference's
    cost per prompt (all tasks). Per cost weight, each task takes its best candidate."""
    import numpy as np

    n = len(ref)
    pts = []
    for w in np.logspace(0, 4, 161):
        acc = cost = 0.0
        for a, c in per_task:
            ch = int(np.lexsort((c, -(a - w * c)))[0])
            acc, cost = acc + a[ch], cost + c[ch]
        pts.append((cost / ref.sum(), acc / n))
    below = max((p for p in pts if p[0] <= share), key=lambda p: (p[1], -p[0]))
    above = [p for p in pts if p[0] > share]
    mixed = below[1]
    if above:
        up = min(above, key=lambda p: p[0])
        mixed = below[1] + (share - below[0]) / (up[0] - below[0]) * (up[1] - below[1])
    return {"grid": below, "mixed": mixed,
            "points": [(s_ * float(ref.mean()), a) for s_, a in pts]}


def curve_points(cv: dict[str, Any]) -> list[tuple[float, float, float]]:
    """(weight, held-out mean cost, held-out accuracy) per cost weight."""
    return [(float(w), float(cv["curve_c"][i].mean()), float(cv["curve_s"][i].mean()))
            for i, w in enumerate(cv["weights"])]


def evaluate_verified_routerbench(folds: int = 5, seed: int = 0, mbpp_path: str | None = None,
                                  cache_path: str | None = "bench/out/cache/mbpp_runs.json",
                                  targets: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6),
                                  verbose: bool = True) -> dict[str, Any]:
    """Agreement cascades alone vs with the MBPP code check (first test; all three tests as a
    reference that uses the grader's own tests), on the same folds, same run."""
    import numpy as np

    from .._outcomes import load_outcomes
    from .code_check import routerbench_mbpp_checks
    from .metrics import aiq, hull

    data = load_outcomes("routerbench")
    mb = np.array([t == "mbpp" for t in data.tasks])
    prompts = [p for p, m in zip(data.prompts, mb, strict=True) if m]
    variants: dict[str, Any] = {"agreement cascades (no code check)": None}
    for which, label in (("first", "+ MBPP code check (first test)"),
                         ("all", "+ MBPP code check (all 3 tests: the grader's, reference)")):
        variants[label] = routerbench_mbpp_checks(prompts, data.models, mbpp_path=mbpp_path,
                                                  cache_path=cache_path, which=which)
    j_ref = data.models.index("gpt-4-1106-preview")
    ref_cost, ref_acc = float(data.costs[:, j_ref].mean()), float(data.scores[:, j_ref].mean())
    singles = [(float(data.costs[:, j].mean()), float(data.scores[:, j].mean()))
               for j in range(len(data.models))]
    lo, hi = min(c for c, _ in singles), max(c for c, _ in singles)
    out: dict[str, Any] = {"reference": (ref_cost, ref_acc), "variants": {}}
    first_pass = variants["+ MBPP code check (first test)"]
    ys = data.scores[mb] > 0.5
    out["check"] = {m: {"pass": float(first_pass[:, j].mean()),
                        "right_if_pass": _cond(ys[:, j], first_pass[:, j] > 0),
                        "right_if_fail": _cond(ys[:, j], first_pass[:, j] == 0)}
                    for j, m in enumerate(data.models)}
    for name, passed in variants.items():
        ceiling = in_sample_ceiling(data, passed, 0.5)
        cv = verified_cv(data, passed, folds=folds, seed=seed)
        pts = curve_points(cv)
        out["variants"][name] = {
            "aiq": aiq(hull([(c, a) for _, c, a in pts] + singles), lo, hi),
            "curve": [(w, c / ref_cost, a) for w, c, a in pts],
            "at": {t: at_share(cv, t) for t in targets},
            "mixed": {t: at_share(cv, t, mix=True, seed=seed) for t in targets},
            "ceiling": {"grid": ceiling["grid"], "mixed": ceiling["mixed"],
                        "aiq": aiq(hull(ceiling["points"] + singles), lo, hi)}}
    if verbose:
        _print(out, targets)
    return out


def _cond(event: Any, given: Any) -> float:
    return float(event[given].mean()) if given.any() else float("nan")


def _print(r: dict[str, Any], targets: tuple[float, ...]) -> None:
    ref_cost, ref_acc = r["reference"]
    print("\n== RouterBench cascades with a code check on MBPP (5-fold, held-out; operating points "
          "chosen on the training folds) ==")
    print(f"GPT-4 alone: accuracy {ref_acc:.4f} at {ref_cost:.6f} USD/prompt")
    print("MBPP code check (first test, sandboxed): pass rate, P(RouterBench label right | pass / "
          "fail):")
    for m, x in r["check"].items():
        print(f"  {m:40s} pass {x['pass']:6.1%}  right|pass {x['right_if_pass']:.3f}  "
              f"right|fail {x['right_if_fail']:.3f}")
    print(f"{'variant':58s} {'AIQ':>7s} " + " ".join(
        f"{'<=' + format(t, '.0%') + ': acc @ share (worst fold)':>34s}" for t in targets))
    for name, v in r["variants"].items():
        cells = " ".join(f"{v['at'][t]['accuracy']:.4f} @ {v['at'][t]['share']:5.1%} "
                         f"({v['at'][t]['max_over']:+.1%})".rjust(34) for t in targets)
        print(f"{name:58s} {v['aiq']:7.4f} {cells}")
        cells = " ".join(f"{v['mixed'][t]['accuracy']:.4f} @ {v['mixed'][t]['share']:5.1%} "
                         f"({v['mixed'][t]['max_over']:+.1%})".rjust(34) for t in targets)
        print(f"{'  mixed with the next setting to the exact training share':58s} {'':7s} {cells}")
        cells = " ".join(f"{v['mixed'][t]['share_90'][0]:5.1%}-{v['mixed'][t]['share_90'][1]:5.1%} "
                         f"({v['mixed'][t]['inside']}/{v['mixed'][t]['folds']} in)".rjust(34)
                         for t in targets)
        print(f"{'  its share on a fold-sized batch, 90% from training folds':58s} {'':7s} {cells}")
    print("in-sample ceiling of each candidate family (chosen and scored on all prompts, "
          "optimistic): accuracy at <=50% (grid point / mixed), AIQ")
    for name, v in r["variants"].items():
        c = v["ceiling"]
        print(f"  {name:56s} {c['grid'][1]:.4f} @ {c['grid'][0]:5.1%} / {c['mixed']:.4f}  "
              f"AIQ {c['aiq']:.4f}")
    for name, v in r["variants"].items():
        print(f"\n{name}: held-out curve (cost weight, share of GPT-4's cost, accuracy)")
        for w, sh, a in v["curve"][::8]:
            print(f"  {w:10.1f} {sh:8.1%} {a:8.4f}")
        print("  mixed at <=50%, per task: prompts, accuracy vs GPT-4's (prompts behind), share "
              "of GPT-4's cost on the task")
        for t, x in v["mixed"][0.5]["per_task"].items():
            print(f"    {t:28s} {x['n']:4d} {x['accuracy']:.4f} vs {x['reference']:.4f} "
                  f"({x['prompts_behind']:+5.1f}) {x['cost_share']:6.1%}")
        at = v["at"][0.5]["cascades"]
        for t, picks in at.items():
            print(f"  at <=50%, {t}: " + "; ".join(sorted(set(picks))))
