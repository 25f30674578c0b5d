"""Research code of issue 19: the MBPP code check's test binding and cache, verified chains, the
MT-Bench loader (RouteLLM's judgement files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orroute.research import code_check as cc
from orroute.research import mt_bench as mt
from orroute.research.verified_routerbench import simulate_verified, verified_chains
from orroute.verify import extract_code

BUNDLED = Path(__file__).parents[2] / "bench" / "data" / "mt_bench" / "mt_bench_routellm.jsonl.gz"


def test_the_test_is_bound_to_the_answers_function_when_it_used_another_name() -> None:
    test = "assert remove_Occ('hello', 'l') == 'heo'"
    answer = "def helper(s):\n    return s\n\ndef remove_occurrences(s, ch):\n    return s\n"
    suite = cc.test_suite(answer, [test], ["import math"])
    assert suite.splitlines() == ["import math", "remove_Occ = remove_occurrences", "", test]


def test_answers_are_run_in_the_sandbox_once_then_read_from_the_cache(tmp_path) -> None:
    right = "```python\ndef add_two(a, b):\n    return a + b\n```"
    wrong = "```python\ndef add_two(a, b):\n    return a - b\n```"
    hang = "```python\ndef add(a, b):\n    while True: pass\n```"
    answers = [right, wrong, "no code", hang]
    suites = [cc.test_suite(extract_code(a), ["assert add(2, 3) == 5"], [])
              for a in answers]
    path = str(tmp_path / "runs.json")
    cache = cc.RunCache(path)
    assert cc.check_answers(answers, suites, cache) == [True, False, False, False]
    stored = json.loads((tmp_path / "runs.json").read_text())
    assert len(stored) == 3  # "no code" is never run
    # a cache that says otherwise is believed: nothing runs again
    flipped = {k: not v for k, v in stored.items()}
    (tmp_path / "runs.json").write_text(json.dumps(flipped))
    assert cc.check_answers(answers, suites, cc.RunCache(path)) == [False, True, False, True]


def test_a_verified_chain_accepts_the_first_passing_answer_and_pays_every_call() -> None:
    s = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    c = np.array([[1.0, 2.0, 10.0]] * 3)
    passed = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])  # row 3: model 0 passes but is wrong
    score, cost = simulate_verified((0, 1, 2), s, c, passed)
    assert score.tolist() == [1.0, 1.0, 0.0]
    assert cost.tolist() == [1.0, 3.0, 1.0]
    score, cost = simulate_verified((1, 2), s, c, np.zeros((3, 3)))
    assert score.tolist() == [1.0, 1.0, 1.0] and cost.tolist() == [12.0] * 3
    assert len(verified_chains(4)) == 4 * 3 + 4 * 3 * 2
    assert all(len(set(ch)) == len(ch) for ch in verified_chains(4))


def _judge_prompt(answer: str) -> str:
    return ("[Instruction]\nRate.\n\n[Question]\nQ\n\n[The Start of Assistant's Answer]\n"
            f"{answer}\n[The End of Assistant's Answer]")


def test_mt_bench_is_read_from_routellms_files_decontaminated(tmp_path) -> None:
    qs = [{"question_id": 81, "category": "writing", "turns": ["Write.", "Again."]},
          {"question_id": 82, "category": "math", "turns": ["Add 2 and 2.", "Now 3."]}]
    (tmp_path / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    (tmp_path / "contaminated_prompts.jsonl").write_text(
        json.dumps({"eval_prompt": "Write.", "train_prompt": "Write."}) + "\n")
    rows = []
    for qid in (81, 82):
        for model, sc in ((mt.STRONG, (9, 8)), (mt.WEAK, (6, 4))):
            for turn in (1, 2):
                rows.append({"question_id": qid, "model": model, "turn": turn,
                             "score": sc[turn - 1],
                             "user_prompt": _judge_prompt(f"{model} says 4") if turn == 1
                             else "multi-turn prompt"})
    (tmp_path / "judgements.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = mt.load_mt_bench(str(tmp_path))
    assert d.prompts == ["Add 2 and 2."] and d.categories == ["math"]  # 81 is contaminated
    assert d.weak_answers == [f"{mt.WEAK} says 4"]
    assert d.strong.tolist() == [8.5] and d.weak.tolist() == [5.0]
    # the bundled compact table is the same derivation of RouteLLM's files
    bundled = mt.load_mt_bench(str(BUNDLED))
    assert len(bundled.prompts) == 72 and set(bundled.categories) == set(mt.CATEGORIES)
    assert 9.0 < bundled.strong.mean() < 9.5 and 8.0 < bundled.weak.mean() < 8.5


def test_a_judge_prompt_without_an_answer_is_refused(tmp_path) -> None:
    (tmp_path / "question.jsonl").write_text(
        json.dumps({"question_id": 1, "category": "math", "turns": ["a", "b"]}) + "\n")
    (tmp_path / "contaminated_prompts.jsonl").write_text("")
    (tmp_path / "judgements.jsonl").write_text(json.dumps(
        {"question_id": 1, "model": mt.WEAK, "turn": 1, "score": 5, "user_prompt": "x"}) + "\n")
    with pytest.raises(ValueError, match="no answer"):
        mt.derive(str(tmp_path))


def _table(n: int = 200, seed: int = 0):
    """A cheap model right on 60% of prompts (its check passes exactly then), a strong one
    right on 90%, on two task types; answers never agree (so only checks can help)."""
    from orroute._outcomes import Outcomes

    rng = np.random.default_rng(seed)
    cheap = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(cheap, (rng.random(n) < 0.75).astype(float))
    tasks = ["mbpp" if i % 2 else "arc" for i in range(n)]
    answers = [[f"a{i}", f"b{i}"] for i in range(n)]
    return Outcomes("t", [f"p{i}" for i in range(n)], tasks, ["cheap", "gpt-4-1106-preview"],
                    np.stack([cheap, strong], axis=1), np.tile([1.0, 10.0], (n, 1)),
                    answers), cheap


def test_the_code_check_lifts_the_held_out_curve_on_its_task_only() -> None:
    from orroute.research.verified_routerbench import at_share, verified_cv

    data, cheap = _table()
    mb = np.array([t == "mbpp" for t in data.tasks])
    passed = np.stack([cheap[mb], np.zeros(mb.sum())], axis=1)
    plain = verified_cv(data, None, folds=4, weights=[0.02, 0.1])
    checked = verified_cv(data, passed, folds=4, weights=[0.02, 0.1])
    # at w = 0.02 a checked chain (cheap, then strong on a failed check) is the best MBPP choice:
    # the strong model's accuracy at the cheap price plus 40% of the strong one
    i = 0
    assert checked["curve_s"][i][mb].mean() >= plain["curve_s"][i][mb].mean()
    assert checked["curve_c"][i][mb].mean() < plain["curve_c"][i][mb].mean()
    assert np.array_equal(checked["curve_s"][i][~mb], plain["curve_s"][i][~mb])
    assert all(picks["mbpp"][0] == "verified (0, 1)" for picks in checked["chosen"])
    assert all(not picks["arc"][0].startswith("verified") for picks in checked["chosen"])
    r = at_share(checked, 0.5)
    assert r["share"] <= 0.5 + 0.1
    mixed = at_share(checked, 0.5, mix=True)
    assert abs(mixed["share"] - 0.5) < abs(r["share"] - 0.5) + 1e-9


def test_mt_bench_keeps_the_turn_1_scores_a_turn_1_check_can_see() -> None:
    d = mt.load_mt_bench(str(BUNDLED))
    assert len(d.strong_turn1) == len(d.prompts) == len(d.weak_turn1)
    # the two-turn mean is not the turn-1 score: turn 2 moves it on some questions
    assert np.any(d.strong_turn1 != d.strong) and np.all((d.weak_turn1 >= 1) & (d.weak_turn1 <= 10))


def test_the_category_prior_falls_back_to_the_training_mean_for_an_unseen_category() -> None:
    gain = np.array([2.0, 4.0, 0.0, 1.0, 9.0])
    cats = np.array(["math", "math", "writing", "writing", "roleplay"])
    train = np.array([0, 1, 2, 3])
    prior = mt.category_prior(gain, cats, train, np.array([0, 2, 4]))
    assert prior.tolist() == [3.0, 0.5, 1.75]  # roleplay is not in train: the overall mean


def test_prior_times_check_orders_by_expected_gain_and_never_inverts_the_check() -> None:
    prior = np.array([3.0, 3.0, 1.0, -2.0, -2.0])
    p = np.array([0.9, 0.2, 0.9, 0.9, 0.1])
    s = mt.prior_times_check(prior, p)
    # a big-gain category outranks a small one at the same probability; within a category the
    # likelier escalation goes first, also where the category's mean gain is negative (clipped)
    assert s[0] > s[2] > s[3] > s[4] and s[0] > s[1]
    assert s[3] < s[1]


def test_the_mt_bench_cascade_scores_are_out_of_fold_and_the_product_tracks_its_parts() -> None:
    d = mt.load_mt_bench(str(BUNDLED))
    scores = mt.mt_bench_cv(d, folds=5, seed=0)
    product = scores["category prior x turn-1 check (fixed settings)"]
    cat = scores[mt.CATEGORY_ALONE]
    assert product.shape == (len(d.prompts),) and np.all(np.isfinite(product))
    # within one category of one fold the prior is constant, so the product's order there is
    # the check's order, not the category's: the scores are not a relabelled category router
    assert len(np.unique(np.round(product, 9))) > len(np.unique(np.round(cat, 6)))
    # no leakage of the label: shuffling the held-out questions' scores changes nothing
    # upstream, so the score of a question does not depend on its own judge scores
    d2 = mt.MtBench(d.prompts, d.categories, d.weak_answers, d.strong.copy(), d.weak.copy(),
                    d.strong_turn1.copy(), d.weak_turn1.copy())
    test = np.sort(mt._folds(len(d.prompts), 5, 0)[0])
    d2.strong[test] = 1.0
    d2.strong_turn1[test] = 1.0
    again = mt.mt_bench_cv(d2, folds=5, seed=0)["category prior x turn-1 check (fixed settings)"]
    np.testing.assert_allclose(again[test], product[test])


def test_the_operating_point_reports_its_share_interval_and_where_accuracy_is_lost() -> None:
    from orroute.research.verified_routerbench import at_share, verified_cv

    data, cheap = _table(400, seed=3)
    mb = np.array([t == "mbpp" for t in data.tasks])
    passed = np.stack([cheap[mb], np.zeros(mb.sum())], axis=1)
    cv = verified_cv(data, passed, folds=4, weights=np.logspace(-3, 0, 13))
    mixed = at_share(cv, 0.5, mix=True)
    lo, hi = mixed["share_90"]
    # the mixed point costs exactly 50% on the training folds, so a fold-sized batch drawn from
    # them lands around it; the interval is a real spread, not a point
    assert lo < 0.5 < hi and hi - lo > 0.01
    assert 0 <= mixed["inside"] <= mixed["folds"] == 4
    # the per-task breakdown adds up to the whole: prompts, accuracy and GPT-4's accuracy
    per = mixed["per_task"]
    assert sum(x["n"] for x in per.values()) == len(data.prompts)
    total = sum(x["n"] * x["accuracy"] for x in per.values()) / len(data.prompts)
    assert total == pytest.approx(mixed["accuracy"])
    ref = data.scores[:, data.models.index("gpt-4-1106-preview")]
    assert sum(x["n"] * x["reference"] for x in per.values()) == pytest.approx(ref.sum())
    behind = sum(x["prompts_behind"] for x in per.values())
    assert behind == pytest.approx(ref.sum() - mixed["accuracy"] * len(data.prompts))
    # per task, the cascade costs at most what GPT-4 alone would (the table's dearest model)
    assert all(0.0 <= x["cost_share"] <= 1.0 + 1e-9 for x in per.values())


def test_the_in_sample_ceiling_grows_with_the_candidates_and_respects_the_share() -> None:
    from dataclasses import replace

    from orroute.research.metrics import aiq, hull
    from orroute.research.verified_routerbench import in_sample_ceiling

    data, cheap = _table(300, seed=5)
    # RouterBench-sized prices (1e-4..1e-3 USD), where the ceiling's weight grid (1..1e4) bites
    data = replace(data, costs=data.costs * 1e-4)
    mb = np.array([t == "mbpp" for t in data.tasks])
    passed = np.stack([cheap[mb], np.zeros(mb.sum())], axis=1)
    plain, checked = in_sample_ceiling(data, None, 0.5), in_sample_ceiling(data, passed, 0.5)
    for c in (plain, checked):
        assert c["grid"][0] <= 0.5 and c["mixed"] >= c["grid"][1] - 1e-12
    # verified chains only add candidates: the best hull can only rise
    assert aiq(hull(checked["points"]), 1e-4, 1e-3) >= aiq(hull(plain["points"]), 1e-4, 1e-3) - 1e-12
    assert checked["grid"][1] > plain["grid"][1]  # the check buys accuracy at the same budget
