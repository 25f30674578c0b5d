"""Prompt compression: a long conversation bound for an expensive model has its older turns
summarised by a cheap model through the same engine (reserved and recorded like any call) or
trimmed, by the C++ rule (system prompt and last turns kept, tool calls never split from their
results)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.compress import SUMMARY_PREFIX, Compression
from orroute.testing import FakeOpenRouter, Fault
from orroute.testing._replies import synth_model
from orroute.tokenizer import count_tokens

CHEAP, STRONG = "test/cheap", "test/strong"
SUMMARY = "They discussed apples and pears; the user prefers pears."


@pytest.fixture
def fake():
    with FakeOpenRouter(models=[synth_model(CHEAP, "0.0000001", "0.0000002"),
                                synth_model(STRONG, "0.00001", "0.00003")]) as f:
        f.set_reply(CHEAP, SUMMARY)
        f.set_reply(STRONG, "Pears, then.")
        yield f


def _manager(fake: FakeOpenRouter, tmp_path: Path, **kw) -> tuple[orroute.AIModelManager,
                                                                  orroute.CostTracker]:
    tracker = orroute.CostTracker(str(tmp_path / "ledger.db"))
    m = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=tracker,
                               fallbacks=[STRONG], retry_base_delay=0.001, **kw)
    return m, tracker


def _conversation(turns: int = 6) -> list[dict]:
    msgs: list[dict] = [{"role": "system", "content": "You are a fruit expert."}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"Tell me about fruit number {i}. " * 30})
        msgs.append({"role": "assistant", "content": f"Fruit {i} is sweet and round. " * 30})
    msgs.append({"role": "user", "content": "So which one should I buy?"})
    return msgs


def _chats(fake: FakeOpenRouter) -> list:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def test_older_turns_are_summarised_by_the_cheap_model_and_the_final_call_is_smaller(
        fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path, compress={"max_tokens": 1200, "keep_last": 3,
                                                    "summarize_with": CHEAP})
    msgs = _conversation()
    before = int(count_tokens(msgs, model=STRONG))
    r = m.execute_task_sync(Task(id="t1", messages=msgs, max_tokens=50))
    assert r.model == STRONG and r.content == "Pears, then."
    summary_req, final_req = _chats(fake)
    assert summary_req.json["model"] == CHEAP and final_req.json["model"] == STRONG
    assert "fruit number 0" in summary_req.json["messages"][-1]["content"]   # the folded turns
    sent = final_req.json["messages"]
    assert sent[0] == msgs[0]                                  # the system prompt stays first
    assert sent[1] == {"role": "system", "content": SUMMARY_PREFIX + SUMMARY}
    assert sent[2:] == msgs[-3:]                               # the last 3 messages, verbatim
    # both calls are in the ledger, the summary under the task's id
    rows = tracker.usage_history()
    assert [(x.model, x.task_id) for x in rows] == [(CHEAP, "t1:summary"), (STRONG, "t1")]
    assert rows[0].task_type == "summarization" and rows[0].cost > 0
    assert m.reserved()[0] == 0
    # the final call is smaller than the conversation was
    c = r.compression
    assert c.prompt_tokens == before and r.usage.prompt_tokens < before
    assert r.usage.prompt_tokens == rows[1].prompt_tokens
    assert c.summary.model == CHEAP and c.cost == rows[0].cost and c.folded == len(msgs) - 4


def test_without_a_summariser_older_turns_are_dropped_and_tool_pairs_stay_whole(
        fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path, compress=Compression(max_tokens=300, keep_last=2))
    msgs = _conversation(4)[:-1] + [
        {"role": "user", "content": "Look up the price of pears."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "price", "arguments": '{"fruit": "pear"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "2.10"},
    ]
    r = m.execute_task_sync(Task(messages=msgs))
    (req,) = _chats(fake)                                      # no summary call
    assert req.json["messages"] == [msgs[0], *msgs[-2:]]       # the call and its result together
    assert r.compression.summary is None and len(tracker.usage_history()) == 1


def test_a_task_overrides_the_manager(fake, tmp_path) -> None:
    m, _ = _manager(fake, tmp_path, compress={"max_tokens": 300, "keep_last": 2})
    msgs = _conversation()
    r = m.execute_task_sync(Task(messages=msgs, compress=False))
    assert r.compression is None and _chats(fake)[-1].json["messages"] == msgs
    plain, _ = _manager(fake, tmp_path)
    r = plain.execute_task_sync(Task(messages=msgs, compress={"max_tokens": 300, "keep_last": 2}))
    assert r.compression is not None and len(_chats(fake)[-1].json["messages"]) == 3
    r = plain.execute_task_sync(Task(messages=msgs[:3], compress={"max_tokens": 100000}))
    assert r.compression is None                               # within the limit: untouched


def test_an_awaited_task_overrides_the_manager_both_ways(fake, tmp_path) -> None:
    """The awaited call asks for compression only when the manager or the task names one: a
    task's own compression on a manager without any, and a task's False on a manager with one,
    each as the blocking call does."""
    msgs = _conversation()
    plain, _ = _manager(fake, tmp_path)
    asked = Task(messages=msgs, compress={"max_tokens": 300, "keep_last": 2})
    r = asyncio.run(plain.execute_task(asked))
    assert r.compression is not None and len(_chats(fake)[-1].json["messages"]) == 3
    m, _ = _manager(fake, tmp_path, compress={"max_tokens": 300, "keep_last": 2})
    r = asyncio.run(m.execute_task(Task(messages=msgs, compress=False)))
    assert r.compression is None and _chats(fake)[-1].json["messages"] == msgs
    r = asyncio.run(m.execute_task(Task(messages=msgs)))
    assert r.compression is not None and len(_chats(fake)[-1].json["messages"]) == 3


def test_a_cost_threshold_compresses_for_the_expensive_model_only(fake, tmp_path) -> None:
    msgs = _conversation()
    tokens = int(count_tokens(msgs, model=STRONG))
    # the strong model's prompt would cost tokens x $10/M; the cheap one's 100x less
    limit = Decimal("0.00001") * tokens / 2
    m, _ = _manager(fake, tmp_path, compress={"max_cost": limit, "keep_last": 2})
    assert m.execute_task_sync(Task(messages=msgs), model=STRONG).compression is not None
    assert m.execute_task_sync(Task(messages=msgs), model=CHEAP).compression is None
    assert _chats(fake)[-1].json["messages"] == msgs


def test_async_and_streamed_calls_compress_too(fake, tmp_path) -> None:
    m, tracker = _manager(fake, tmp_path, compress={"max_tokens": 1200, "keep_last": 3,
                                                    "summarize_with": CHEAP})
    msgs = _conversation()

    async def go():
        r = await m.execute_task(Task(messages=msgs))
        chunks = [c async for c in m.stream_task(Task(messages=msgs))]
        return r, chunks

    r, chunks = asyncio.run(go())
    assert r.compression.summary is not None and chunks
    assert len(list(m.stream_task_sync(Task(messages=msgs)))) > 0
    models = [x.model for x in tracker.usage_history()]
    assert models == [CHEAP, STRONG] * 3
    assert all(len(q.json["messages"]) == 5 for q in _chats(fake) if q.json["model"] == STRONG)


def test_a_failed_summary_falls_back_to_trimming(fake, tmp_path) -> None:
    m, _ = _manager(fake, tmp_path, max_retries=0,
                    compress={"max_tokens": 1200, "keep_last": 3, "summarize_with": CHEAP})
    fake.fail(CHEAP, Fault.server_error(500))
    r = m.execute_task_sync(Task(messages=_conversation()))
    assert r.model == STRONG and r.compression.summary is None
    assert r.compression.summary_error == "InternalServerError"
    assert len(_chats(fake)[-1].json["messages"]) == 4


def test_the_summary_is_paid_from_the_task_budget_and_never_exceeds_it(fake, tmp_path) -> None:
    # A summariser whose worst case is above the task's budget is refused before it is sent
    # (the older turns are then trimmed): the task and its summary together stay within it.
    m, tracker = _manager(fake, tmp_path, max_retries=0,
                          compress={"max_tokens": 1200, "keep_last": 3, "summarize_with": STRONG})
    budget = Decimal("0.01")
    r = m.execute_task_sync(Task(id="t", messages=_conversation(), max_tokens=50, budget=budget))
    assert r.model == STRONG and r.compression.summary is None
    assert r.compression.summary_error == "BudgetExceededError"
    assert len(_chats(fake)) == 1  # only the task itself was sent
    assert sum(x.cost for x in tracker.usage_history()) == r.cost <= budget


def test_bad_options_are_refused() -> None:
    with pytest.raises(orroute.InvalidArgumentError):
        Compression()                                         # no threshold
    with pytest.raises(orroute.InvalidArgumentError):
        Compression(max_tokens=100, keep_last=0)
    with pytest.raises(orroute.InvalidArgumentError):
        Task(messages="hi", compress={"max_tokens": 10, "keep": 2})
    with pytest.raises(orroute.InvalidArgumentError):
        Compression(max_cost="lots")
