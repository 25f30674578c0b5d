"""CascadeRouter: cheap models first, accept on agreement, escalate on disagreement."""

from __future__ import annotations

import pytest

import orroute
from orroute.routing import Cascade, CascadeRouter, extract_answer


def _router() -> CascadeRouter:
    return CascadeRouter({None: Cascade(("cheap1", "cheap2", "big"), (2, 0))})


def test_extract_answer_letters_code_and_text() -> None:
    assert extract_answer("B") == "B"
    assert extract_answer(" (c) because ...") == "C"
    assert extract_answer("A) home") == "A"
    assert extract_answer("B\n") == "B"
    # a sentence starting with the article "A" is not an option letter
    assert extract_answer("A function that adds") == "a function that adds"
    code1 = "Here:\n```python\ndef f(x):\n    return x + 1  # add\n```\nDone."
    code2 = "Sure!\n```python\ndef f(x):\n  return x+1\n```"
    assert extract_answer(code1) == extract_answer(code2)
    assert extract_answer(code1).startswith("code:")
    assert extract_answer(code1) != extract_answer(code1.replace("+ 1", "+ 2"))
    assert extract_answer("") is None and extract_answer(None) is None
    for r in ("B", code1, "x" * 100):
        key = extract_answer(r)
        assert extract_answer(key) == key


def test_agreement_accepts() -> None:
    r = _router()
    assert r.decide({}) == "cheap1"
    assert r.decide({"cheap1": "B"}) == "cheap2"
    assert r.decide({"cheap1": "B", "cheap2": "(B) the second"}) is None
    assert r.chosen_model({"cheap1": "B", "cheap2": "(B) the second"}) == "cheap1"
    assert r.answer({"cheap1": "B", "cheap2": "(B) the second"}) == "B"


def test_disagreement_escalates() -> None:
    r = _router()
    assert r.decide({"cheap1": "A", "cheap2": "B"}) == "big"
    # unreadable answers never agree
    assert r.decide({"cheap1": "", "cheap2": ""}) == "big"
    responses = {"cheap1": "A", "cheap2": "B", "big": "C"}
    assert r.decide(responses) is None
    assert r.chosen_model(responses) == "big"
    assert r.answer(responses) == "C"
    with pytest.raises(orroute.InvalidArgumentError):
        r.chosen_model({"cheap1": "A", "cheap2": "B"})


def test_two_of_three_stage() -> None:
    r = CascadeRouter({None: Cascade(("a", "b", "c", "big"), (2, 2, 0))})
    assert r.decide({"a": "A", "b": "B"}) == "c"
    assert r.decide({"a": "A", "b": "B", "c": "B"}) is None
    assert r.chosen_model({"a": "A", "b": "B", "c": "B"}) == "b"
    assert r.decide({"a": "A", "b": "B", "c": "C"}) == "big"


def test_task_types_pick_their_cascade() -> None:
    r = CascadeRouter({"mc": Cascade(("a", "b", "big"), (2, 0)), "code": Cascade(("big",), ())})
    assert r.decide({}, task_type="code") == "big"
    assert r.decide({}, task_type="mc") == "a"


def _synthetic(n: int = 200, cheap2_errs: bool = True) -> tuple:
    """Two cheap models, each wrong on 10% of prompts (different prompts, so they disagree there),
    and a big model that is always right and 20x dearer. ``cheap2_errs=False``: cheap2 is always
    right."""
    prompts = [f"q{i}" for i in range(n)]
    truth = ["ABCD"[i % 4] for i in range(n)]
    wrong = ["ABCD"[(i + 1) % 4] for i in range(n)]
    bad1 = [i % 10 == 0 for i in range(n)]
    bad2 = [cheap2_errs and i % 10 == 5 for i in range(n)]
    resp = {"cheap1": [w if b else t for t, w, b in zip(truth, wrong, bad1)],
            "cheap2": [w if b else t for t, w, b in zip(truth, wrong, bad2)],
            "big": list(truth)}
    scores = {"cheap1": [0.0 if b else 1.0 for b in bad1],
              "cheap2": [0.0 if b else 1.0 for b in bad2], "big": [1.0] * n}
    costs = {"cheap1": [0.001] * n, "cheap2": [0.001] * n, "big": [0.02] * n}
    return prompts, scores, costs, resp


def test_fit_picks_cheaper_stages_when_as_accurate() -> None:
    # agreement of the cheap pair is always right, disagreement escalates: as accurate as big
    r = CascadeRouter.fit(*_synthetic())
    c = r.cascade()
    assert c.models[-1] == "big" and set(c.models[:2]) == {"cheap1", "cheap2"}
    assert r.info["train_accuracy"] == pytest.approx(1.0)
    assert r.info["train_cost"] == pytest.approx(0.002 + 0.2 * 0.02)
    # a cheap model that is always right beats any cascade
    r2 = CascadeRouter.fit(*_synthetic(cheap2_errs=False))
    assert r2.cascade().models == ("cheap2",)


def test_fit_per_task_type_and_cost_weight() -> None:
    prompts, scores, costs, resp = _synthetic()
    tasks = ["t1" if i % 2 else "t2" for i in range(len(prompts))]
    r = CascadeRouter.fit(prompts, scores, costs, resp, tasks)
    assert set(r.stages) == {"t1", "t2"}
    # cheap1 only errs on even prompts (t2), cheap2 only on odd ones (t1)
    assert r.cascade("t1").models == ("cheap1",) and r.cascade("t2").models == ("cheap2",)
    # cost_weight 0: the most accurate cascade, ties broken towards the cheapest one
    r0 = CascadeRouter.fit(prompts, scores, costs, resp, cost_weight=0.0)
    assert r0.cascade() == CascadeRouter.fit(prompts, scores, costs, resp).cascade()
    assert r0.info["train_accuracy"] == pytest.approx(1.0)
    # a huge cost weight: the cheapest single model
    r1 = CascadeRouter.fit(prompts, scores, costs, resp, cost_weight=1e6)
    assert len(r1.cascade().models) == 1 and r1.cascade().models[0].startswith("cheap")
    with pytest.raises(orroute.InvalidArgumentError):
        CascadeRouter.fit(prompts, scores, costs, {"cheap1": resp["cheap1"]})


def test_save_load_roundtrip(tmp_path) -> None:
    r = CascadeRouter({"mc": Cascade(("a", "b", "c", "big"), (2, 3, 0)), None: Cascade(("big",), ())},
                      cost_weight=10.0, info={"rows": 5})
    path = tmp_path / "cascade.json"
    r.save(path)
    back = CascadeRouter.load(path)
    assert back.stages == r.stages
    assert back.cost_weight == 10.0 and back.info == {"rows": 5}
    assert back.decide({"a": "A", "b": "A"}, task_type="mc") is None
    assert back.decide({}, task_type="other") == "big"
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(orroute.InvalidArgumentError):
        CascadeRouter.load(tmp_path / "bad.json")


def test_bundled_answer_keys_align_with_the_outcome_table() -> None:
    from orroute.routing import load_outcomes

    data = load_outcomes("routerbench")
    assert data.answers is not None and len(data.answers) == len(data.prompts) == 2205
    gpt4 = data.models.index("gpt-4-1106-preview")
    arc = [i for i, t in enumerate(data.tasks) if t == "arc_challenge"]
    letters = [data.answers[i][gpt4] for i in arc]
    assert sum(a in ("A", "B", "C", "D") for a in letters) > 0.99 * len(arc)


def test_manager_execute_cascade_runs_stages_until_agreement() -> None:
    import asyncio
    from decimal import Decimal

    from orroute import Task
    from orroute.testing import FakeOpenRouter

    models = ["test/a", "test/b", "test/c"]
    cascade = CascadeRouter({None: Cascade(("test/a", "test/b", "test/c"), (2, 0))})
    with FakeOpenRouter(models=models) as fake:
        m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                   fallbacks=models, retry_base_delay=0.001)
        fake.set_reply("test/a", "B")
        fake.set_reply("test/b", "B) because")
        fake.set_reply("test/c", "C")
        r = m.execute_cascade_sync(Task(messages="Which? A) x B) y"), cascade)
        assert [c.model for c in r.calls] == ["test/a", "test/b"]   # agreement: c not called
        assert r.model == "test/a" and r.content == "B"
        assert r.cost == sum((c.cost for c in r.calls), Decimal(0)) and r.cost > 0
        chat = [q.model for q in fake.requests if q.path.endswith("/chat/completions")]
        assert chat == ["test/a", "test/b"]

        fake.set_reply("test/b", "A")                                 # disagreement escalates
        r = asyncio.run(m.execute_cascade(Task(messages="Which? A) x B) y"), cascade))
        assert [c.model for c in r.calls] == ["test/a", "test/b", "test/c"]
        assert r.model == "test/c" and r.content == "C"
