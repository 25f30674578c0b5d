"""The pieces of issue 19's bounds (``orroute.research.bounds``): simulated signals of a given
AUC, the vote and three-way candidates, the frontier."""

from __future__ import annotations

import numpy as np
import pytest

from orroute.research import bounds as b


@pytest.mark.parametrize("auc", [0.5, 0.6, 0.75, 0.9])
def test_a_simulated_signal_has_the_auc_asked_for(auc: float) -> None:
    rng = np.random.default_rng(1)
    y = rng.random(40_000) < 0.3
    assert b.auc_of(b.signal(y, auc, rng), y) == pytest.approx(auc, abs=0.01)


def test_a_perfect_signal_separates_and_auc_counts_ties_half() -> None:
    y = np.array([0, 1, 0, 1, 1])
    assert b.auc_of(b.signal(y, 1.0, np.random.default_rng(0)), y) == 1.0
    assert b.auc_of(np.zeros(5), y) == 0.5
    assert b.auc_of([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert np.isnan(b.auc_of([1.0, 2.0], [1, 1]))


def test_a_vote_accepts_the_plurality_only_when_enough_models_give_it() -> None:
    # 3 prompts x 4 models (3 voters, model 3 is the final one); answer codes per model
    codes = np.array([[7, 7, 5, 1], [7, 5, 6, 1], [4, 4, 4, 1]])
    s = np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 1]], dtype=float)
    c = np.array([[1, 2, 3, 10]] * 3, dtype=float)
    score, cost = b.vote([0, 1, 2], 2, 3, s, c, codes)
    assert score.tolist() == [1, 1, 0]         # 2 agree -> theirs; no pair -> final; 3 agree
    assert cost.tolist() == [6, 16, 6]         # the final model is paid only when asked
    score, cost = b.vote([0, 1, 2], 3, 3, s, c, codes)
    assert score.tolist() == [0, 1, 0] and cost.tolist() == [16, 16, 6]


def test_three_way_sends_the_likeliest_failures_strong_and_the_safest_cheap() -> None:
    fail = np.array([0.9, 0.1, 0.5, 0.7, 0.2])
    cascade = (np.full(5, 1.0), np.full(5, 3.0))
    cheap = (np.full(5, 2.0), np.full(5, 1.0))
    strong = (np.full(5, 3.0), np.full(5, 10.0))
    score, cost = b.three_way(cascade, cheap, strong, fail, 0.4, 0.2)
    assert score.tolist() == [3, 2, 1, 3, 1]   # 2 of 5 strong (0.9, 0.7), 1 cheap (0.1)
    assert cost.tolist() == [10, 1, 3, 10, 3]
    score, _ = b.three_way(cascade, cheap, strong, fail, 0.0, 0.0)
    assert score.tolist() == [1] * 5


def test_the_frontier_keeps_only_candidates_no_cheaper_one_matches() -> None:
    acc = np.array([5.0, 7.0, 6.0, 7.0, 9.0])
    cost = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert b.hull_candidates(acc, cost) == [0, 1, 4]
