"""The self-consistency measurement's closed form (``orroute.research.self_consistency.outcome``) agrees with the
real verifier, ``orroute.verify.self_consistency``, run on every ordered draw of k of 10 answers."""

from __future__ import annotations

from itertools import combinations

import pytest

from orroute.research.self_consistency import outcome
from orroute.verify import Answer, self_consistency


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("correct", [0, 3, 7, 10])
@pytest.mark.parametrize("wrong_agree", [False, True])
def test_the_closed_form_matches_the_verifier_on_every_draw(k: int, correct: int,
                                                            wrong_agree: bool) -> None:
    answers = [f"so the answer is {'42' if i < correct else (7 if wrong_agree else 100 + i)}"
               for i in range(10)]
    check = self_consistency(k)
    ok = wrong = total = 0
    for head in range(10):  # the first answer, then every set of k - 1 others (order is moot)
        for rest in combinations([i for i in range(10) if i != head], k - 1):
            total += 1
            verdict = check(Answer("q", answers[head], samples=[answers[i] for i in rest]))
            if verdict.outcome != "pass":
                continue
            if head < correct:
                ok += 1
            else:
                wrong += 1
    o = outcome(correct, k, wrong_agree)
    assert o.ok == pytest.approx(ok / total)
    assert o.wrong == pytest.approx(wrong / total)
    assert o.escalate == pytest.approx(1 - (ok + wrong) / total)
