"""Verify-then-escalate cascades through the engine, and budget-targeted routing."""

from __future__ import annotations

import asyncio
import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.routing import LearnedRouter, VerifiedCascade, fit_operating_point
from orroute.testing import FakeOpenRouter
from orroute.verify import arithmetic, self_consistency

CHEAP, STRONG = "test/cheap", "test/strong"


@pytest.fixture
def fake():
    with FakeOpenRouter(models=[CHEAP, STRONG]) as f:
        yield f


def _manager(fake: FakeOpenRouter, tmp_path: Path) -> tuple[orroute.AIModelManager, orroute.CostTracker]:
    tracker = orroute.CostTracker(str(tmp_path / "ledger.db"))
    m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=tracker,
                               fallbacks=[CHEAP, STRONG], retry_base_delay=0.001)
    return m, tracker


def _chat_models(fake: FakeOpenRouter) -> list[str]:
    return [q.model for q in fake.requests if q.path.endswith("/chat/completions")]


def test_a_failed_check_escalates_and_every_stage_is_recorded(fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], [arithmetic()])
    fake.set_reply(CHEAP, "16 - 3 = 12\n#### 12")          # wrong step: escalate
    fake.set_reply(STRONG, "16 - 3 = 13\n#### 13")
    r = m.execute_cascade_sync(Task(id="t1", messages="16 eggs, 3 eaten. Left?"), cascade)
    assert r.model == STRONG and r.content.endswith("13")
    assert [s.model for s in r.stages] == [CHEAP, STRONG]
    assert r.stages[0].escalated and r.stages[0].verdicts[0].outcome == "fail"
    assert r.stages[1].verdicts[0].outcome == "pass" and not r.stages[1].escalated
    assert r.cost == r.stages[0].cost + r.stages[1].cost and r.stages[0].cost > 0
    records = tracker.usage_history()
    assert [x.model for x in records] == [CHEAP, STRONG]
    assert all(x.task_id == "t1" for x in records)
    assert sum((x.cost for x in records), Decimal(0)) == r.cost
    assert m.reserved()[0] == 0                             # every reservation settled

    fake.set_reply(CHEAP, "16 - 3 = 13\n#### 13")          # check passes: the cheap answer stands
    r = asyncio.run(m.execute_cascade(Task(messages="16 eggs, 3 eaten. Left?"), cascade))
    assert r.model == CHEAP and len(r.stages) == 1 and r.escalations == 0
    assert _chat_models(fake) == [CHEAP, STRONG, CHEAP]


def test_self_consistency_draws_samples_through_the_engine(fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], [self_consistency(3)])
    fake.set_reply(CHEAP, "#### 18")
    r = m.execute_cascade_sync(Task(messages="q"), cascade)
    assert r.model == CHEAP and len(r.stages[0].samples) == 2
    assert len(r.calls) == 3 and r.cost == sum((c.cost for c in r.calls), Decimal(0))
    assert len(tracker.usage_history()) == 3


def test_a_learned_score_above_the_threshold_escalates(fake, tmp_path) -> None:
    from orroute.verify import EscalationScorer

    prompts = [f"What is {i} + 1?" for i in range(60)]
    answers = [f"#### {i + 1}" if i % 2 else "I am not sure, maybe 3" for i in range(60)]
    labels = [0.0 if i % 2 else 1.0 for i in range(60)]
    scorer = EscalationScorer.fit(prompts, answers, labels)
    m, _ = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], scorer=scorer, threshold=0.5)
    fake.set_reply(CHEAP, "I am not sure, maybe 3")
    r = m.execute_cascade_sync(Task(messages="What is 2 + 1?"), cascade)
    assert r.model == STRONG and r.stages[0].score is not None and r.stages[0].score > 0.5
    fake.set_reply(CHEAP, "#### 3")
    r = m.execute_cascade_sync(Task(messages="What is 2 + 1?"), cascade)
    assert r.model == CHEAP and r.stages[0].score < 0.5
    with pytest.raises(orroute.InvalidArgumentError):
        VerifiedCascade([CHEAP, STRONG], scorer=scorer)     # a score needs a threshold


def _stream(m, cascade, prompt: str):
    async def go():
        s = await m.execute_cascade(Task(messages=prompt), cascade, stream=True)
        chunks = [c async for c in s]
        return s, "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                          if c.get("choices")), len(chunks)
    return asyncio.run(go())


def test_the_final_stage_streams(fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], [arithmetic()])
    fake.set_reply(CHEAP, "2 + 2 = 5\n#### 5")
    fake.set_reply(STRONG, "2 + 2 = 4, so the answer is 4. " * 5)
    s, text, n_chunks = _stream(m, cascade, "2 + 2?")
    assert text == "2 + 2 = 4, so the answer is 4. " * 5 and n_chunks > 1
    assert s.result.model == STRONG and s.result.stages[0].escalated
    assert s.result.content == text
    assert [x.model for x in tracker.usage_history()] == [CHEAP, STRONG]

    fake.set_reply(CHEAP, "2 + 2 = 4\n#### 4")             # accepted: one whole chunk
    s, text, n_chunks = _stream(m, cascade, "2 + 2?")
    assert text == "2 + 2 = 4\n#### 4" and n_chunks == 1 and s.result.model == CHEAP


def test_the_final_stage_streams_to_a_plain_for_loop(fake, tmp_path) -> None:
    from orroute.testing import Fault

    m, tracker = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], [arithmetic()])
    fake.set_reply(CHEAP, "2 + 2 = 5\n#### 5")
    fake.set_reply(STRONG, "2 + 2 = 4, so the answer is 4. " * 5)
    s = m.execute_cascade_sync(Task(id="sync", messages="2 + 2?"), cascade, stream=True)
    assert s.result is None                                  # nothing has run yet
    chunks = list(s)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "2 + 2 = 4, so the answer is 4. " * 5 and len(chunks) > 1
    assert s.result.model == STRONG and s.result.stages[0].escalated
    assert s.result.content == text and s.result.result.task_id == "sync"
    assert s.result.stages[1].verdicts[0].outcome == "pass"
    assert [x.model for x in tracker.usage_history()] == [CHEAP, STRONG]
    assert s.result.cost == sum((x.cost for x in tracker.usage_history()), Decimal(0))

    fake.set_reply(CHEAP, "2 + 2 = 4\n#### 4")             # accepted: one whole chunk
    s = m.execute_cascade_sync(Task(messages="2 + 2?"), cascade, stream=True)
    assert [c["choices"][0]["delta"]["content"] for c in s] == ["2 + 2 = 4\n#### 4"]
    assert s.result.model == CHEAP

    fake.set_reply(CHEAP, "2 + 2 = 5\n#### 5")             # leaving early cancels the stream
    fake.set_reply(STRONG, "four " * 40)
    fake.fail(STRONG, Fault.hang(after_tokens=5))            # never ends unless cancelled
    s = m.execute_cascade_sync(Task(messages="2 + 2?"), cascade, stream=True)
    for _ in s:
        break
    s.close()
    assert s.result is None
    assert fake.wait_until(lambda: fake.open_connections == 0, timeout=5)
    assert fake.wait_until(lambda: m.reserved()[0] == 0, timeout=5)   # the hold is released
    with pytest.raises(orroute.InvalidArgumentError):
        m.execute_cascade_sync(Task(messages="q"), orroute.routing.CascadeRouter(
            {None: orroute.routing.Cascade((CHEAP,), ())}), stream=True)


def test_stream_task_sync_yields_chunks_and_raises_a_failure(fake, tmp_path) -> None:
    from orroute.testing import Fault

    m, tracker = _manager(fake, tmp_path)
    fake.set_reply(CHEAP, "one two three four five six")
    chunks = list(m.stream_task_sync(Task(messages="count"), model=CHEAP))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == "one two three four five six"
    assert len(tracker.usage_history()) == 1
    fake.fail("*", Fault.server_error(500))
    with pytest.raises(orroute.APIError):
        list(m.stream_task_sync(Task(messages="count"), model=CHEAP))
    assert m.reserved()[0] == 0


def test_a_failing_stage_stops_the_cascade(fake, tmp_path) -> None:
    from orroute.testing import Fault

    m, _ = _manager(fake, tmp_path)
    fake.fail(CHEAP, Fault.server_error(500))
    with pytest.raises(orroute.APIError):
        m.execute_cascade_sync(Task(messages="q"), VerifiedCascade([CHEAP, STRONG]))
    assert _chat_models(fake).count(STRONG) == 0             # no silent fallback
    assert m.reserved()[0] == 0


# ---------------------------------------------------------------------------- cost shares


def _table(n: int = 300):
    prompts, scores, costs = [], {"cheap": [], "strong": []}, {"cheap": [], "strong": []}
    for i in range(n):
        hard = i % 3 == 0
        prompts.append(f"Prove theorem {i} step by step in detail" if hard else f"What is {i}+1?")
        scores["cheap"].append(0.0 if hard else 1.0)
        scores["strong"].append(1.0)
        costs["cheap"].append(0.0001)
        costs["strong"].append(0.002 + (i % 7) * 1e-4)
    return prompts, scores, costs


def test_route_with_a_cost_share_uses_the_calibrated_weight(tmp_path) -> None:
    prompts, scores, costs = _table()
    router, op = fit_operating_point(prompts, scores, costs, reference="strong",
                                     max_cost_share=0.5, epochs=10, learning_rate=0.5)
    assert op.share <= 0.5 and op.met and op.share_lo <= op.share <= op.share_hi
    assert op.share > 0.3              # the hard third goes to the strong model
    assert router.route("Prove theorem 9 step by step in detail", max_cost_share=0.5) == "strong"
    assert router.route("What is 4+1?", max_cost_share=0.5) == "cheap"
    with pytest.raises(orroute.InvalidArgumentError):
        router.route("x", max_cost_share=0.3)                # not calibrated for 0.3
    path = tmp_path / "r.bin"
    router.save(path)
    again = LearnedRouter.load(path)
    assert again.operating_point == op
    assert again.route("What is 4+1?", max_cost_share=0.5) == "cheap"
    _, cross = fit_operating_point(prompts, scores, costs, reference="strong", max_cost_share=0.5,
                                   folds=3, epochs=10, learning_rate=0.5)
    assert cross.share <= 0.5 and cross.met and cross.rows == len(prompts)
    # 90% is out of reach (easy prompts are as likely right on the cheap model): the closest
    again.calibrate(prompts, costs, reference="strong", target_cost_share=0.9)
    t = again.operating_point
    assert t.mode == "target" and t.share >= op.share
    assert again.route("What is 4+1?", target_cost_share=0.9) == again.route(
        "What is 4+1?", cost_weight=t.cost_weight)


def test_cli_fit_writes_the_operating_point(tmp_path) -> None:
    from click.testing import CliRunner

    from orroute.cli import cli

    prompts, scores, costs = _table()
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "score:cheap", "score:strong", "cost:cheap", "cost:strong"])
        for i, p in enumerate(prompts):
            w.writerow([p, scores["cheap"][i], scores["strong"][i], costs["cheap"][i],
                        costs["strong"][i]])
    out = tmp_path / "r.bin"
    r = CliRunner().invoke(cli, ["routing", "fit", str(table), "-o", str(out),
                                 "--max-cost-share", "0.5", "--option", "epochs=10", "--json"])
    assert r.exit_code == 0, r.output
    op = json.loads(r.output)["operating_point"]
    assert op["reference"] == "strong" and op["requested"] == 0.5 and op["share"] <= 0.5
    assert json.loads((tmp_path / "r.bin.op.json").read_text())["cost_weight"] == op["cost_weight"]
    r = CliRunner().invoke(cli, ["routing", "fit", str(table), "-o", str(out),
                                 "--max-cost-share", "0.5", "--target-cost-share", "0.4"])
    assert r.exit_code == 1


def test_cascade_calibration_targets_a_cost_share() -> None:
    from orroute.verify import EscalationScorer

    n = 200
    prompts = [f"What is {i} + 1?" for i in range(n)]
    # a quarter of the answers fail the arithmetic check; the rest differ in hedging
    answers = [f"{i} + 1 = {i + 2}\n#### {i + 2}" if i % 4 == 0 else
               (f"I think maybe {i} + 1 = {i + 1}\n#### {i + 1}" if i % 4 == 1 else
                f"{i} + 1 = {i + 1}\n#### {i + 1}") for i in range(n)]
    labels = [1.0 if i % 4 in (0, 1) else 0.0 for i in range(n)]
    scorer = EscalationScorer.fit(prompts, answers, labels,
                                  extra=[[1.0 if i % 4 else -1.0] for i in range(n)])
    cascade = VerifiedCascade([CHEAP, STRONG], [arithmetic()], scorer=scorer, threshold=0.99)
    cheap, strong = [0.001] * n, [0.01] * n
    op = cascade.calibrate(prompts, answers, cheap, strong, target_cost_share=0.6)
    # every prompt pays the cheap model (10%); the failing quarter always adds the strong one
    assert op.share == pytest.approx(0.6, abs=0.01)
    assert cascade.threshold == op.threshold and cascade.operating_point is op
    floor = VerifiedCascade([CHEAP, STRONG], [arithmetic()]).calibrate(
        prompts, answers, cheap, strong, max_cost_share=0.5)
    assert floor.share == pytest.approx(0.1 + 0.25)      # verifiers alone: the failing quarter
    with pytest.raises(orroute.InvalidArgumentError):
        VerifiedCascade(["a", "b", "c"]).calibrate([], [], [], [], target_cost_share=0.5)


def test_the_ledger_shows_each_cascade_run_and_what_it_saved(fake, tmp_path) -> None:
    from orroute import analytics

    m, tracker = _manager(fake, tmp_path)
    cascade = VerifiedCascade([CHEAP, STRONG], [arithmetic()])
    fake.set_reply(CHEAP, "2 + 2 = 5\n#### 5")
    fake.set_reply(STRONG, "2 + 2 = 4\n#### 4")
    m.execute_cascade_sync(Task(id="esc", messages="2 + 2?"), cascade)
    fake.set_reply(CHEAP, "2 + 2 = 4\n#### 4")
    m.execute_cascade_sync(Task(id="ok1", messages="2 + 2?"), cascade)
    asyncio.run(m.execute_cascade(Task(id="ok2", messages="2 + 2?"), cascade))
    m.execute_task_sync(Task(id="plain", messages="hi"), model=STRONG)   # not a cascade
    rows = {r.task_id: r for r in tracker.usage_history()}
    assert rows["esc"].tags == {"cascade": "2/2", "cascade_final": STRONG}
    assert rows["plain"].tags == {}
    runs = analytics.cascades(tracker)
    assert [(r.task_id, r.stages, r.escalated) for r in runs] == [
        ("esc", (CHEAP, STRONG), True), ("ok1", (CHEAP,), False), ("ok2", (CHEAP,), False)]
    analytics.record_feedback(tracker, CHEAP, 0.9)
    assert analytics.cascade_summary(tracker)[0].final_only_cost is None   # not in the bundled
    catalog = m.selector.catalog                                          # catalog: unpriced
    (s,) = analytics.cascade_summary(tracker, catalog=catalog)
    assert (s.first, s.final, s.runs, s.escalated) == (CHEAP, STRONG, 3, 1)
    assert s.cost == sum((r.cost for r in runs), Decimal(0))
    # the final model alone: the escalated run's own call, the others' first answers repriced
    repriced = [Decimal(catalog.cost(STRONG, prompt_tokens=r.first_call.prompt_tokens,
                                     completion_tokens=r.first_call.completion_tokens))
                for r in runs[1:]]
    assert s.final_only_cost == runs[0].final_cost + sum(repriced, Decimal(0))
    assert s.quality_first == pytest.approx(0.9) and s.quality_final is None
