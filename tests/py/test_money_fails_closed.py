"""Money fails closed (docs/cost.md, "The contract"): through the manager and the gateway against a
FakeOpenRouter that lies about usage, no call spends without a reservation, no reply crashes the
process or fools the ledger, and budgets hold in the variant, auto-router, missing-max_tokens and
lease cases."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute._engine import engine_of
from orroute.testing import FakeOpenRouter, Fault

MODELS = ["test/a", "test/b"]  # synthetic: $1/M prompt, $2/M completion tokens


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=MODELS) as f:
        yield f


def manager(fake: FakeOpenRouter, **kw) -> orroute.AIModelManager:
    kw.setdefault("retry_base_delay", 0.001)
    return orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, **kw)


def chats(fake: FakeOpenRouter) -> list:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


HOSTILE = [
    Fault.lying_usage(cost="abc"),
    Fault.lying_usage(cost=1e300),
    Fault.lying_usage(cost=-5),
    Fault.lying_usage(cost=None),
    Fault.lying_usage(cost=1e9),
    Fault.lying_usage(prompt_tokens=-3),
    Fault.lying_usage(completion_tokens=1e20),
    Fault.lying_usage(completion_tokens=-1, cost=-1),
    Fault.lying_usage(**{"prompt_tokens_details.cached_tokens": -9}),
    Fault.no_usage(),
]


@pytest.mark.parametrize("fault", HOSTILE, ids=lambda f: repr(f.usage_patch or "no_usage"))
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_hostile_usage_is_charged_the_catalog_price_and_never_held(fake, fault, stream) -> None:
    m = manager(fake, budget=1, fallbacks=["test/a"])
    fake.script("test/a", [fault])
    task = Task(messages="Say hello", max_tokens=20)
    if stream:
        async def consume() -> None:
            async for _ in m.stream_task(task):
                pass
        asyncio.run(consume())
        cost = m.spent()
    else:
        r = m.execute_task_sync(task)
        cost = r.cost
        assert r.cost_source in ("catalog", "tokenizer")
        assert 0 <= r.usage["prompt_tokens"] <= 1000 and 0 <= r.usage["completion_tokens"] <= 1000
    # the catalog price of (at most) the prompt and the 20 reserved tokens, never the lie
    assert Decimal(0) < cost <= Decimal("0.0001")
    assert m.metrics()["test/a"]["usage_corrections"] == 1  # counted in metrics
    assert m.spent() == cost
    assert m.reserved() == (0, Decimal(0))  # settled, not left to expire


UNDER_REPORTS = [
    Fault.lying_usage(prompt_tokens=1, total_tokens=21, cost=None),  # few tokens, cost left to us
    Fault.lying_usage(prompt_tokens=1, total_tokens=21, cost=0.000041),  # priced as the lie
    Fault.lying_usage(cost=0),  # a paid call reported free
]


@pytest.mark.parametrize("fault", UNDER_REPORTS, ids=lambda f: repr(f.usage_patch))
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_upstream_under_reporting_a_call_is_booked_its_catalog_price(fake, fault, stream) -> None:
    """A 2,000-token prompt reported as 1 token, or a paid call reported free, would book a
    fraction of the call: the budget would never see what the upstream bills."""
    m = manager(fake, budget=1, fallbacks=["test/a"])
    task = Task(messages="word " * 2000, max_tokens=20)

    def run() -> Decimal:
        before = m.spent()
        if stream:
            async def consume() -> None:
                async for _ in m.stream_task(task):
                    pass
            asyncio.run(consume())
        else:
            m.execute_task_sync(task)
        return m.spent() - before

    honest = run()
    assert honest > Decimal("0.002")  # 2,000 prompt tokens at $1/M
    fake.script("test/a", [fault])
    assert run() >= honest
    assert m.metrics()["test/a"]["usage_corrections"] == 1
    assert m.reserved() == (0, Decimal(0))


def test_the_ledgers_approval_hook_guards_the_managers_calls(fake, tmp_path) -> None:
    """A CostTracker's approval rule, given to a manager as its ledger, was silently not applied to
    the manager's calls (its engine opened the ledger's file with a guard of its own)."""
    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0",
                                  approval_hook=lambda request: False)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    task = Task(messages="Say hello", max_tokens=20)
    with pytest.raises(orroute.ApprovalDeniedError):
        m.execute_task_sync(task)
    assert not chats(fake)
    asked: list[str] = []
    tracker.set_approval("0", lambda request: asked.append(request.model) is None)  # changed later
    assert m.execute_task_sync(task).content
    assert asked == ["test/a"]
    tracker.set_approval(None, None)
    m.execute_task_sync(task)
    assert asked == ["test/a"] and len(chats(fake)) == 2


def test_an_approval_a_fallback_needs_never_runs_on_the_network_thread(fake, tmp_path) -> None:
    """The hook of a fallback ran on the network thread: one slow answer (a human asked) stalled
    every call in flight. A fallback that needs approval is now skipped without asking (the call
    ends with the error that made it fall back); the hook runs only on the caller's thread."""
    release = threading.Event()
    asked: list[tuple[str, bool]] = []

    def hook(request: orroute.ApprovalRequest) -> bool:
        asked.append((request.model, threading.current_thread() is threading.main_thread()))
        if request.model == "test/b":
            release.wait(10)
        return True

    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0",
                                  approval_hook=hook)
    m = manager(fake, ledger=tracker, fallbacks=["test/a", "test/b"], max_retries=0)
    fake.fail("test/a", Fault.server_error(), times=1)
    started = time.monotonic()
    try:
        with pytest.raises(orroute.InternalServerError) as e:
            m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert "needs approval" in e.value.attempts[-1].message  # type: ignore[attr-defined]
    assert asked == [("test/a", True)]
    assert m.reserved() == (0, Decimal(0))


def test_a_retry_of_an_approved_call_is_not_asked_again(fake, tmp_path) -> None:
    asked: list[str] = []
    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0",
                                  approval_hook=lambda request: asked.append(request.model) is None)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"], max_retries=1)
    fake.fail("test/a", Fault.server_error(), times=1)
    assert m.execute_task_sync(Task(messages="Say hello", max_tokens=20)).content
    assert asked == ["test/a"] and len(chats(fake)) == 2


async def _async_no(request: orroute.ApprovalRequest) -> bool:
    return False


NOT_TRUE = [_async_no, lambda request: "no", lambda request: object(), lambda request: 1]


@pytest.mark.parametrize("hook", NOT_TRUE, ids=["async", "a-string", "an-object", "one"])
def test_an_approval_hook_that_does_not_return_true_refuses(fake, tmp_path, hook) -> None:
    """Only True approves. An async hook's coroutine (never run) and any other truthy answer
    approved the call: it was read with bool()."""
    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0",
                                  approval_hook=hook)
    with pytest.raises(orroute.ApprovalDeniedError, match="True"):
        tracker.reserve("1")
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    with pytest.raises(orroute.ApprovalDeniedError, match="True"):
        m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert not chats(fake)
    assert tracker.live_reservations() == (0, Decimal(0))


def test_an_approval_hook_of_an_awaited_call_stalls_no_other_call(fake, tmp_path) -> None:
    """The hook of an awaited call waits (for a human); another thread's call, which needs no
    approval, must finish meanwhile. The sync twin holds (the hook runs before the loop is
    involved); the awaited call's hook held every call of the engine."""
    other_done = threading.Event()
    waited: list[bool] = []

    def hook(request: orroute.ApprovalRequest) -> bool:
        if request.task_id == "outer":
            threading.Thread(target=lambda: (m.execute_task_sync(Task(messages="other",
                                                                      max_tokens=5)),
                                             other_done.set())).start()
            waited.append(other_done.wait(3))
        return True

    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0.00001",
                                  approval_hook=hook)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    m.execute_task_sync(Task(messages="warm", max_tokens=5))  # the loop idle, as it is between calls

    async def outer() -> None:
        await m.execute_task(Task(messages="outer " * 50, max_tokens=200, id="outer"))

    asyncio.run(outer())
    other_done.wait(10)
    assert waited == [True]


def test_an_approval_hook_of_an_awaited_call_may_call_the_manager(fake, tmp_path) -> None:
    """A hook that asks the manager itself (a cheap model's opinion, say) before approving: the
    awaited call that asked it goes on once it approves (it hung for good while the awaited call
    held the network loop)."""
    answers: list[str] = []

    def hook(request: orroute.ApprovalRequest) -> bool:
        if request.task_id == "outer":
            answers.append(m.execute_task_sync(Task(messages="may I?", max_tokens=5)).content)
        return True

    tracker = orroute.CostTracker(str(tmp_path / "ledger.sqlite3"), approval_above="0.00001",
                                  approval_hook=hook)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    m.execute_task_sync(Task(messages="warm", max_tokens=5))

    results: list[orroute.TaskResult] = []

    async def outer() -> None:
        results.append(await m.execute_task(Task(messages="outer " * 50, max_tokens=200, id="outer")))

    caller = threading.Thread(target=asyncio.run, args=(outer(),), daemon=True)  # a hang ends the test
    caller.start()
    caller.join(15)
    assert not caller.is_alive(), "the awaited call hung in its own hook"
    assert len(answers) == 1 and answers[0]
    assert results and results[0].content
    assert len(chats(fake)) == 3


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_a_settle_the_ledger_cannot_write_keeps_the_call_counted(fake, tmp_path, leases) -> None:
    """A call whose row cannot be written (a full disk, here a trigger refusing every row) was
    sent and billed: its reservation stays counted. It was released, so every later call found
    the budget untouched and the upstream was paid without limit."""
    import sqlite3

    path = str(tmp_path / "ledger.sqlite3")
    tracker = orroute.CostTracker(path, leases=leases)
    tracker.set_budget("0.0002")
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    task = Task(messages="Say hello", max_tokens=20)
    worst_case = m.plan(task)["estimate"]
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER no_rows BEFORE INSERT ON calls "
                   "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(orroute.BudgetExceededError):
        for _ in range(40):
            m.execute_task_sync(task)
    assert len(chats(fake)) <= Decimal("0.0002") / Decimal(worst_case)
    assert tracker.total_cost() == 0  # no row was written


@pytest.mark.parametrize("budget", [None, 1], ids=["no-ledger", "in-memory-budget"])
def test_money_rules_on_a_managers_private_tracker_refuse_rather_than_bind_nothing(
        fake, budget) -> None:
    """``manager.cost_tracker`` of a manager with no shared ledger is a tracker of its own: a
    cutoff, budget or approval rule set on it let every call of the manager through, silently
    (the emergency cutoff stopped nothing). They now raise; its estimates and history work."""
    m = manager(fake, budget=budget, fallbacks=["test/a"])
    tracker = m.cost_tracker
    for set_rule in (lambda: tracker.cutoff("runaway agent"),
                     lambda: tracker.set_budget("0.0000001"),
                     lambda: tracker.set_approval("0", lambda request: False)):
        with pytest.raises(orroute.InvalidArgumentError, match="would not bind this manager"):
            set_rule()
    task = Task(messages="Say hello", max_tokens=20)
    assert tracker.estimate_cost(task, model="test/a") == m.plan(task)["estimate"]
    tracker.track_usage("t1", "test/a", 10, "0.001")
    assert tracker.total_cost() == Decimal("0.001")
    m.execute_task_sync(task)


def test_the_cutoff_of_a_managers_shared_tracker_stops_its_calls(fake, tmp_path) -> None:
    m = manager(fake, ledger=str(tmp_path / "ledger.sqlite3"), fallbacks=["test/a"])
    m.cost_tracker.cutoff("runaway agent")
    with pytest.raises(orroute.EmergencyCutoffError):
        m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
    assert not chats(fake)


def test_a_negative_cost_never_refills_the_budget(fake) -> None:
    m = manager(fake, budget="0.0002", fallbacks=["test/a"])
    fake.fail("test/a", Fault.lying_usage(cost=-1000))
    spent = []
    with pytest.raises(orroute.BudgetExceededError):
        for _ in range(50):
            m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
            spent.append(m.spent())
    assert spent == sorted(spent) and spent[0] > 0
    assert m.spent() <= Decimal("0.0002")


def test_random_usage_lies_never_end_the_process(fake) -> None:
    rng = random.Random(14)
    values = [-1, 0, 1, 1.5, 1e300, -1e300, "abc", "12", None, [], {}, True, 2**62, "1e999"]
    fields = ["prompt_tokens", "completion_tokens", "total_tokens", "cost",
              "prompt_tokens_details.cached_tokens", "completion_tokens_details.reasoning_tokens"]
    m = manager(fake, budget=10, fallbacks=["test/a"])
    for _ in range(100):
        patch = {rng.choice(fields): rng.choice(values) for _ in range(rng.randint(1, 4))}
        fake.script("test/a", [Fault.lying_usage(**patch)])
        r = m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
        assert Decimal(0) <= r.cost <= Decimal("0.0001"), patch
    assert m.reserved() == (0, Decimal(0))


def test_missing_max_tokens_sends_the_reserved_bound(fake) -> None:
    m = manager(fake, budget="0.01", fallbacks=["test/a"], default_max_tokens=64)
    m.execute_task_sync(Task(messages="Write a long story"))
    assert chats(fake)[-1].json["max_tokens"] == 64
    m.execute_task_sync(Task(messages="Write a long story", max_tokens=9))
    assert chats(fake)[-1].json["max_tokens"] == 9


@pytest.mark.parametrize("bad", [2**63, 2**31, 0, -1, 1.5, True], ids=repr)
def test_out_of_range_max_tokens_is_refused_before_sending(fake, bad) -> None:
    m = manager(fake, budget=1, fallbacks=["test/a"])
    with pytest.raises(orroute.InvalidArgumentError, match="max_tokens"):
        m.execute_task_sync(Task(messages="hi", max_tokens=bad))
    assert chats(fake) == []


def test_budget_holds_when_the_upstream_ignores_max_tokens_in_a_stream(fake) -> None:
    limit = Decimal("0.0005")
    m = manager(fake, budget=limit, fallbacks=["test/a"])
    fake.fail("test/a", Fault.ignore_max_tokens(3000))  # ~$0.006 per answer if let run

    async def consume() -> list[dict]:
        return [c async for c in m.stream_task(Task(messages="Say hello", max_tokens=30))]

    chunks = asyncio.run(consume())
    assert m.metrics()["test/a"]["cut_at_reservation"] == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["orroute"]["cut_at_reservation"] is True
    with pytest.raises(orroute.BudgetExceededError):
        for _ in range(20):
            asyncio.run(consume())
    assert m.spent() <= limit


def test_a_stream_is_cut_at_the_output_the_reservation_covers_not_at_max_tokens(fake) -> None:
    """A reasoning budget is reserved on top of max_tokens (an upstream may raise max_tokens to fit
    it): a metered stream runs to that whole reservation before it is cut (it was cut at
    max_tokens, the answer lost while money for it was held)."""
    m = manager(fake, budget=1, fallbacks=["test/a"])
    fake.fail("test/a", Fault.ignore_max_tokens(3000))

    def cut_answer(**params) -> tuple[str, dict]:
        async def consume() -> list[dict]:
            return [c async for c in m.stream_task(Task(messages="Say hello", max_tokens=30, params=params))]
        chunks = asyncio.run(consume())
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        return text, chunks[-1]

    plain, last = cut_answer()
    assert last["orroute"]["cut_at_reservation"] is True
    budgeted, last = cut_answer(reasoning={"max_tokens": 200})
    assert last["orroute"]["cut_at_reservation"] is True
    count = orroute.count_tokens
    assert count(plain, model="openai/gpt-4o") <= 40
    assert 200 <= count(budgeted, model="openai/gpt-4o") <= 240


@pytest.mark.parametrize(
    ("model", "limit"),
    [("test/a:nitro", "0.0003"), ("test/a:floor", "0.0003"), ("test/a:online", "0.05")],
)
def test_variants_are_reserved_and_budgets_hold(fake, model, limit) -> None:
    m = manager(fake, budget=Decimal(limit), fallbacks=[model])
    calls = 0
    with pytest.raises(orroute.BudgetExceededError):
        for _ in range(60):
            fake.script("test/a", [Fault.lying_usage(cost=10)])  # an upstream asking for more
            m.execute_task_sync(Task(messages="Say hello", max_tokens=20))
            calls += 1
    assert calls > 0
    assert m.spent() <= Decimal(limit)
    assert {r.json["model"] for r in chats(fake)} == {model}


def test_a_free_variant_is_booked_free_whatever_the_upstream_claims(fake) -> None:
    m = manager(fake, budget="0.0001", fallbacks=["test/a:free"])
    for _ in range(5):  # the fake answers as test/a and reports its price
        assert m.execute_task_sync(Task(messages="Say hello", max_tokens=20)).cost == 0
    assert m.spent() == 0


def test_an_unpriced_model_is_refused_naming_the_setting_unless_priced(fake) -> None:
    m = manager(fake, budget=1, fallbacks=["acme/unknown"])
    with pytest.raises(orroute.UnpricedModelError, match="unpriced_model_price") as e:
        m.execute_task_sync(Task(messages="hi", max_tokens=5))
    assert "acme/unknown" in str(e.value)
    assert chats(fake) == []
    priced = manager(fake, budget=1, fallbacks=["acme/unknown"],
                     unpriced_model_price={"prompt": 1, "completion": 2})
    with pytest.raises(orroute.APIError):  # reserved, then sent: the fake does not know it
        priced.execute_task_sync(Task(messages="hi", max_tokens=5))
    assert [r.json["model"] for r in chats(fake)] == ["acme/unknown"]
    assert priced.reserved() == (0, Decimal(0))


def test_the_emergency_cutoff_refuses_even_free_calls(fake, tmp_path: Path) -> None:
    tracker = orroute.CostTracker(tmp_path / "l.sqlite3")
    m = manager(fake, ledger=tracker)
    tracker.cutoff("runaway")
    with pytest.raises(orroute.EmergencyCutoffError):
        m.execute_task_sync(Task(messages="hi", max_tokens=5), model="test/a:free")
    assert chats(fake) == []


def test_auto_router_is_reserved_at_the_dearest_model_and_the_budget_holds() -> None:
    with FakeOpenRouter() as fake:  # the bundled catalog: openrouter/auto is priced "-1"
        task = Task(messages="hi", max_tokens=100)
        probe = manager(fake, budget=1000, fallbacks=["openrouter/auto"])
        bound = probe.plan(task)["estimate"]
        mini = manager(fake, budget=1000, fallbacks=["openai/gpt-4o-mini"]).plan(task)["estimate"]
        assert bound is not None and bound > 50 * mini  # the dearest model it may pick
        # (the reservation counts the prompt with the router's tokenizer: within a few tokens)
        tight = manager(fake, budget=bound * Decimal("0.9"), fallbacks=["openrouter/auto"])
        with pytest.raises(orroute.BudgetExceededError):
            tight.execute_task_sync(task)
        assert chats(fake) == []  # refused before a byte was sent
        ok = manager(fake, budget=bound * Decimal("1.1"), fallbacks=["openrouter/auto"])
        ok.execute_task_sync(task)
        assert [r.json["model"] for r in chats(fake)] == ["openrouter/auto"]
        assert ok.spent() <= bound


@pytest.mark.parametrize(
    ("fault", "reported"),
    [(Fault.ignore_max_tokens(400), 400), (Fault.lying_usage(completion_tokens=900, cost=0.05), 900)],
    ids=["overran", "lied"],
)
def test_a_reply_reporting_more_output_than_max_tokens_is_booked_at_the_bound(
    fake, fault, reported, tmp_path: Path
) -> None:
    """The request carried max_tokens (the reservation's bound) and the upstream enforces it with
    its own tokenizer: a non-streamed reply reporting more output was booked as reported, so one
    lying reply could use up a budget. It is booked at the bound, flagged."""
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget(1)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    fake.fail("test/a", fault)
    task = Task(messages="Say hello", max_tokens=20)
    reserved = Decimal(m.plan(task)["estimate"])
    r = m.execute_task_sync(task)
    assert (r.usage["completion_tokens"], r.cost_source) == (20, "catalog")
    assert 0 < r.cost <= reserved
    (row,) = tracker.usage_history()
    assert (row.cost, row.completion_tokens) == (r.cost, 20)
    assert row.cost_source == (
        f"catalog: usage.completion_tokens {reported} is more than the 20 output tokens the request"
        " allowed (its max_tokens)"
    )


def test_a_reply_reporting_far_more_prompt_than_was_sent_is_booked_at_our_bound(
    fake, tmp_path: Path
) -> None:
    """A few-token prompt reported as 100,000 prompt tokens (within the window) was believed:
    one reply could use up a budget. Prompt tokens past twice our count of the request and 512
    are booked at that bound, at catalog price, flagged."""
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget(1)
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    fake.fail("test/a", Fault.lying_usage(prompt_tokens=100_000, cost=0.1))
    task = Task(messages="Say hello", max_tokens=20)
    counted = m.plan(task)["prompt_tokens"]
    r = m.execute_task_sync(task)
    bound = 2 * counted + 512
    assert (r.usage["prompt_tokens"], r.cost_source) == (bound, "catalog")
    (row,) = tracker.usage_history()
    assert (row.cost, row.prompt_tokens) == (r.cost, bound)
    assert row.cost < Decimal("0.01")  # 0.1 claimed
    assert row.cost_source.startswith("catalog: usage.prompt_tokens 100000 is more than twice the")


@pytest.mark.parametrize("char, real", [("\u00a0", 1025), ("\uff65", 3073)])
def test_a_byte_fallback_vocabulary_s_honest_prompt_count_is_booked_as_reported(
    fake, tmp_path: Path, char: str, real: int
) -> None:
    """Mistral 7B's tokenizer (32,000 tokens, byte fallback; Llama 2's counts the same) spells 1,024
    no-break spaces in 1,025 tokens and 1,024 halfwidth katakana middle dots in 3,073, where our
    count of the message (cl100k x 1.10) is 149 and 571: an honest reply was booked at twice our
    count and 512 (810 and 1,654). For such vocabularies the text's bytes bound the prompt."""
    model = "mistralai/mistral-7b-instruct"
    fake.add_model(model, prompt_price="0.000001", completion_price="0.000001")
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    m = manager(fake, ledger=tracker, fallbacks=[model])
    task = Task(messages=char * 1024, max_tokens=20)
    counted = m.plan(task)["prompt_tokens"]
    billed = real + 7  # the message's template, as we count it
    assert billed > 2 * counted + 512
    fake.fail(model, Fault.lying_usage(prompt_tokens=billed, cost=None))
    m.execute_task_sync(task)
    (row,) = tracker.usage_history()
    assert row.prompt_tokens == billed
    fake.fail(model, Fault.lying_usage(prompt_tokens=100_000, cost=None))  # a lie is still capped
    m.execute_task_sync(task)
    assert max(row.prompt_tokens for row in tracker.usage_history()) == len((char * 1024).encode()) + 512


BYTE_FALLBACK = "mistralai/mistral-7b-instruct"
NO_BREAK_SPACES = "\u00a0" * 1024  # 1,025 tokens in Mistral 7B's tokenizer; we count 149
HONEST_BYTE_FALLBACK_COUNT = 1025 + 7  # and the message's template, as we count it


def test_a_byte_fallback_vocabulary_s_prompt_is_reserved_what_it_may_honestly_bill(
    fake, tmp_path: Path
) -> None:
    """rev23: the audit believes a Mistral model's honest prompt count up to the text's bytes,
    but its reservation held our count of the text (149 tokens for 1,024 no-break spaces billed
    1,025): the call booked ~6x the prompt it had reserved, past what the budget admitted. The
    reservation holds the text's bytes and 512 for such vocabularies."""
    fake.add_model(BYTE_FALLBACK, prompt_price="0.000001", completion_price="0.000001")
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    m = manager(fake, ledger=tracker, fallbacks=[BYTE_FALLBACK])
    task = Task(messages=NO_BREAK_SPACES, max_tokens=20)
    reserved = Decimal(str(m.plan(task)["estimate"]))
    fake.fail(BYTE_FALLBACK, Fault.lying_usage(prompt_tokens=HONEST_BYTE_FALLBACK_COUNT, cost=None))
    m.execute_task_sync(task)
    (row,) = tracker.usage_history()
    assert row.prompt_tokens == HONEST_BYTE_FALLBACK_COUNT
    assert row.cost <= reserved


def test_a_byte_fallback_model_of_the_models_list_is_booked_its_honest_count(
    fake, tmp_path: Path
) -> None:
    """rev23: the audit's bound by the text's bytes was the requested model's alone: a Mistral
    model answering from the request's `models` (OpenRouter's fallback) had its honest count
    capped at twice our count and 512 (810 booked for 1,032 billed)."""
    fake.add_model(BYTE_FALLBACK, prompt_price="0.000001", completion_price="0.000001")
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    m = manager(fake, ledger=tracker, fallbacks=["test/a", BYTE_FALLBACK], server_side_fallbacks=1)
    task = Task(messages=NO_BREAK_SPACES, max_tokens=20)
    fake.fail("test/a", Fault.server_error(503), times=1)
    fake.fail(BYTE_FALLBACK, Fault.lying_usage(prompt_tokens=HONEST_BYTE_FALLBACK_COUNT, cost=None))
    m.execute_task_sync(task)
    assert [r.json["model"] for r in chats(fake)] == ["test/a"]  # one request: the upstream fell back
    (row,) = tracker.usage_history()
    assert (row.model, row.prompt_tokens) == (BYTE_FALLBACK, HONEST_BYTE_FALLBACK_COUNT)


def test_a_byte_fallback_model_a_router_picked_is_booked_its_honest_count(tmp_path: Path) -> None:
    """rev23: the audit's bound by the text's bytes was the requested model's: openrouter/auto
    answering as a Mistral model (a pick it may make) had its honest count capped at twice our
    count and 512 (810 booked for 1,032 billed)."""
    pick = "mistralai/mistral-large"
    reply = json.dumps({"id": "gen-1", "object": "chat.completion", "model": pick, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": HONEST_BYTE_FALLBACK_COUNT, "completion_tokens": 1}}).encode()
    with FakeOpenRouter() as fake:  # the bundled catalog: openrouter/auto may pick Mistral Large
        tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
        m = manager(fake, ledger=tracker, fallbacks=["openrouter/auto"])
        fake.fail("openrouter/auto", Fault.raw(reply), times=1)
        m.execute_task_sync(Task(messages=NO_BREAK_SPACES, max_tokens=20))
    (row,) = tracker.usage_history()
    assert (row.model, row.prompt_tokens) == (pick, HONEST_BYTE_FALLBACK_COUNT)


NESTED_TOOL = {"type": "function", "function": {
    "name": "configure", "description": "Apply a configuration.",
    "parameters": {"type": "object", "properties": {"config": {
        "type": "object", "description": "The configuration.",
        "properties": {f"setting_{i}": {"type": "string", "description": f"What setting {i} "
                                        "controls, in words the model reads before it answers."}
                       for i in range(200)}}}}}}


@pytest.mark.parametrize("why, extra", [
    # gpt-4o-mini bills an image 2,833 tokens and 5,667 a tile: 25,501 for a 1024-pixel square
    ("image", {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe it."},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
    # a nested schema's properties: rendered into the prompt, counted at its top level only
    ("nested tool schema", {"messages": "Configure it.", "params": {"tools": [NESTED_TOOL]}}),
    # the thinking of the turn before, sent back (OpenRouter's reasoning_details): billed as input
    ("reasoning carried back", {"messages": [
        {"role": "user", "content": "Go on."},
        {"role": "assistant", "content": "",
         "reasoning_details": [{"type": "reasoning.text", "text": "a long thought " * 3000}]},
        {"role": "user", "content": "And?"}]}),
    # the web plugin's results are added to the prompt upstream
    ("web plugin", {"messages": "What happened today?", "params": {"plugins": [{"id": "web"}]}}),
])
def test_a_prompt_we_count_only_in_part_is_booked_as_reported(
    fake, tmp_path: Path, why: str, extra: dict
) -> None:
    """The cap on reported prompt tokens (twice our count and 512) holds only where our count
    bounds what an honest upstream bills: past it, an image on gpt-4o-mini (25,501 tokens for what
    we count at 1,445 at most), a nested tool schema, reasoning sent back or the web plugin's
    results were booked at a fraction of the bill. There the window bounds the prompt, as before."""
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    m = manager(fake, ledger=tracker, fallbacks=["test/a"])
    task = Task(max_tokens=20, **extra)
    counted = m.plan(task)["prompt_tokens"]
    billed = 25_000
    assert billed > 2 * counted + 512, why
    fake.fail("test/a", Fault.lying_usage(prompt_tokens=billed, cost=None))
    m.execute_task_sync(task)
    (row,) = tracker.usage_history()
    assert row.prompt_tokens == billed, why
    assert row.cost >= Decimal(billed) / 1_000_000, why  # $1/M prompt tokens


def test_a_lease_never_starts_a_call_the_budget_cannot_cover(fake, tmp_path: Path) -> None:
    """Two managers (each with its own lease) on one ledger; the upstream reports prompts far
    above our count in non-streamed replies (the contract's one bounded exception: believed up to
    the context window), so calls settle above their reservations: once the budget is
    overspent, neither lease starts another call."""
    path = tmp_path / "shared.sqlite3"
    tracker = orroute.CostTracker(path)
    tracker.set_budget("0.002")
    a, b = manager(fake, ledger=tracker, fallbacks=["test/a"]), manager(fake, ledger=str(path),
                                                                        fallbacks=["test/a"])
    # ~$0.0008 where $0.00005 was reserved (an output overrun is booked at max_tokens)
    fake.fail("test/a", Fault.lying_usage(prompt_tokens=800, total_tokens=820, cost=None))
    refused = 0
    for i in range(20):
        try:
            (a if i % 2 else b).execute_task_sync(Task(messages="hi", max_tokens=20))
        except orroute.BudgetExceededError:
            refused += 1
    spent = tracker.total_cost()
    overrun = Decimal("0.0009")  # at most one call's overrun past the limit
    assert spent <= Decimal("0.002") + overrun
    assert refused >= 10


def test_alerts_fire_once_per_threshold_for_manager_calls(fake, tmp_path: Path) -> None:
    path = tmp_path / "alerts.sqlite3"
    tracker = orroute.CostTracker(path)
    tracker.set_budget("0.0004", thresholds=[50, 80])
    seen_tracker, seen_a, seen_b = [], [], []
    tracker.on_alert(seen_tracker.append)
    a = manager(fake, ledger=tracker, fallbacks=["test/a"])
    b = manager(fake, ledger=str(path), fallbacks=["test/a"])  # a second engine on the file
    a.on_alert(seen_a.append)
    b.on_alert(seen_b.append)
    with pytest.raises(orroute.BudgetExceededError):
        for i in range(30):
            (a if i % 2 else b).execute_task_sync(Task(messages="Say hello", max_tokens=20))
    fired = sorted(e.threshold_pct for e in seen_a + seen_b)
    assert fired == [50, 80]  # each threshold exactly once across both engines
    assert sorted(e.threshold_pct for e in seen_tracker) == sorted(
        e.threshold_pct for e in seen_a)
    assert sorted(e.threshold_pct for e in tracker.alerts) == [50, 80]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_python_callbacks_that_raise_on_the_network_thread_do_not_end_the_process(
        fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's callback bridge (``_core.Engine.submit``): a chunk or done callback that raises
    is reported through ``sys.unraisablehook`` and the stream stops; the process lives on."""
    import json as _json
    import sys
    import threading

    from orroute import _core

    reported: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(str(u.exc_value)))
    m = manager(fake, budget=1, fallbacks=["test/a"])
    done = threading.Event()

    def on_chunk(data: bytes) -> bool:
        raise RuntimeError("consumer bug")

    def on_done(res: dict) -> None:
        done.set()
        raise RuntimeError("done bug")

    et = _core.EngineTask()
    et.request_json = _json.dumps({"messages": [{"role": "user", "content": "hi"}],
                                   "max_tokens": 20})
    et.stream = True
    engine_of(m)._core.submit(et, on_chunk, on_done)
    assert done.wait(10)
    m.execute_task_sync(Task(messages="still alive", max_tokens=5))  # the engine still works
    assert any("consumer bug" in r for r in reported) and any("done bug" in r for r in reported)
    assert m.reserved() == (0, Decimal(0))


def test_every_core_error_kind_becomes_an_orroute_exception() -> None:
    """Errors cross the binding as an ErrorKind; one table in the bindings names their classes."""
    from orroute import _core, _exceptions

    for kind in _core.ErrorKind.__members__.values():
        cls = getattr(_exceptions, _core.python_class(kind))
        assert issubclass(cls, orroute.OrRouteError)
    assert _core.python_class(_core.ErrorKind.UNPRICED_MODEL) == "UnpricedModelError"


def test_a_refusal_carries_its_error_kind(fake) -> None:
    from orroute import _core

    m = manager(fake, budget=1, fallbacks=["acme/unknown"])
    res = engine_of(m).run(m._engine_task(Task(messages="hi", max_tokens=5)))
    assert res["budget_refused"] and res["budget_error_kind"] == _core.ErrorKind.UNPRICED_MODEL


@pytest.mark.parametrize("model", ["openrouter/auto", "anthropic/claude-sonnet-4.5",
                                   "openai/gpt-4o-mini:nitro"])
def test_the_plans_estimate_is_exactly_the_reservation(model) -> None:
    """A budget equal to the plan's estimate admits the call; one attounit less refuses it."""
    with FakeOpenRouter() as fake:
        task = Task(messages="Estimate me, please: a few words of prompt.", max_tokens=50)
        est = manager(fake, budget=1000, fallbacks=[model]).plan(task)["estimate"]
        exact = manager(fake, budget=est, fallbacks=[model])
        exact.execute_task_sync(task)
        below = manager(fake, budget=est - Decimal("1e-18"), fallbacks=[model])
        with pytest.raises(orroute.BudgetExceededError):
            below.execute_task_sync(task)


def test_the_manager_rotates_comma_separated_keys_from_the_environment(
        fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys have one reader (config.api_keys): "k1,k2" in the environment rotates in the manager as
    in the client (it used to be sent as one key "k1,k2", a 401)."""
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-first-0123456789,sk-or-v1-second-0123456789")
    m = orroute.AIModelManager(base_url=fake.base_url, fallbacks=["test/a"])
    for _ in range(4):
        m.execute_task_sync(Task(messages="hi", max_tokens=5))
    sent = {r.api_key.reveal() for r in chats(fake)}
    assert sent == {"sk-or-v1-first-0123456789", "sk-or-v1-second-0123456789"}


def test_embeddings_audit_the_upstreams_cost_with_the_managers_multiple(fake, tmp_path) -> None:
    """The drop-in's /embeddings checked ``usage.cost`` against 2x the catalog price whatever
    the manager's ``cost_check_multiple``: a cost 5x the catalog's is the upstream's to book
    under a multiple of 10, and is replaced by the catalog's under the default."""
    embed = "openai/text-embedding-3-small"
    fake.add_model(embed, prompt_price="0.000001", completion_price="0")
    reply = (b'{"object":"list","model":"' + embed.encode() + b'","data":[{"object":"embedding",'
             b'"index":0,"embedding":[0.5,0.25]}],"usage":{"prompt_tokens":1000,'
             b'"total_tokens":1000,"cost":0.005}}')  # 5x the catalog's $0.001
    for multiple, booked in ((10, Decimal("0.005")), (2, Decimal("0.001"))):
        tracker = orroute.CostTracker(str(tmp_path / f"ledger-{multiple}.sqlite3"))
        m = manager(fake, ledger=tracker, cost_check_multiple=multiple)
        fake.fail(embed, Fault.raw(reply), times=1)
        with orroute.openai_client(m) as oc:
            # ~500 tokens: the 1,000 reported are within twice our count and 512
            oc.embeddings.create(model=embed, input="hello " * 500, encoding_format="float")
        assert tracker.total_cost() == booked, multiple


def _image(**hints) -> dict:
    return {"type": "image_url", "image_url": {"url": "https://example.com/a.png", **hints}}


def test_an_image_is_reserved_at_its_most_whatever_size_the_caller_claims() -> None:
    """The upstream fetches the image and bills its real size; width/height in the part are the
    caller's hints. A 1x1 claim reserved 255 tokens for an image OpenAI may bill 1,445 for (and
    gpt-4o-mini 48,169: below)."""
    managers: dict[str, orroute.AIModelManager] = {}

    def plan(model: str, part: dict) -> dict:
        m = managers.setdefault(model, orroute.AIModelManager(
            api_key="sk-or-test", base_url="http://127.0.0.1:9", fallbacks=[model], budget=100))
        return m.plan(Task(messages=[{"role": "user", "content": [part]}], max_tokens=5))

    gpt = "openai/gpt-4o"
    claimed_tiny = plan(gpt, _image(width=1, height=1))
    assert claimed_tiny == plan(gpt, _image()) == plan(gpt, _image(width=768, height=2048))
    low = plan(gpt, _image(detail="low"))
    price = Decimal(str(orroute.Catalog.bundled().get(gpt).pricing.prompt))
    # OpenAI honours "low"
    assert Decimal(str(claimed_tiny["estimate"])) - Decimal(str(low["estimate"])) == (1445 - 85) * price
    # other families: one bound whatever the detail or the size claimed (only OpenAI honours them)
    claude = "anthropic/claude-3.5-sonnet"
    assert (plan(claude, _image(detail="low"))["estimate"] == plan(claude, _image(width=1, height=1))["estimate"]
            == plan(claude, _image())["estimate"])


def test_an_image_on_gpt_4o_mini_is_reserved_what_gpt_4o_mini_may_bill_for_it() -> None:
    """gpt-4o-mini bills an image 2,833 tokens and 5,667 a tile, up to 48,169 (8 tiles); its
    reservation held gpt-4o's 1,445 (the figure of its tokenizer's family): one image call could
    overrun its reservation by 46,724 prompt tokens. A model with no documented rule for images
    reserves its window."""
    def estimate(model: str, *parts: dict) -> Decimal:
        m = orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9",
                                   fallbacks=[model], budget=100)
        task = Task(messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                                            *parts]}], max_tokens=5)
        return Decimal(str(m.plan(task)["estimate"]))

    mini = orroute.Catalog.bundled().get("openai/gpt-4o-mini")
    price = Decimal(str(mini.pricing.prompt))
    assert estimate(mini.id, _image()) - estimate(mini.id) == 48_169 * price
    assert estimate(mini.id, _image(detail="low")) - estimate(mini.id) == 2_833 * price
    assert estimate(mini.id, _image(), _image()) - estimate(mini.id) == 2 * 48_169 * price
    llama = orroute.Catalog.bundled().get("meta-llama/llama-4-maverick")
    assert estimate(llama.id, _image()) >= llama.context_length * Decimal(str(llama.pricing.prompt))


def test_n_completions_through_the_manager_are_reserved_n_outputs() -> None:
    """params={"n": 10} is sent as given: the upstream writes (and bills) ten completions, so the
    reservation holds ten outputs (it held one)."""
    m = orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9",
                               fallbacks=["openai/gpt-4o-mini"], budget=100)

    def estimate(**params) -> Decimal:
        return Decimal(str(m.plan(Task(messages="hi", max_tokens=1000, params=params))["estimate"]))

    one, ten = estimate(), estimate(n=10)
    output = estimate(n=2) - one  # one more completion's worth
    assert output > 0 and ten == one + 9 * output


def test_a_pdf_by_url_is_reserved_the_whole_context_window() -> None:
    """The upstream extracts the PDF's text: a part of a few bytes may bring a context window of
    tokens, so the prompt is reserved at the model's window (it was reserved a dozen tokens)."""
    m = orroute.AIModelManager(api_key="sk-or-test", base_url="http://127.0.0.1:9",
                               fallbacks=["openai/gpt-4o-mini"], budget=100)
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}

    def estimate(part: dict) -> Decimal:
        task = Task(messages=[{"role": "user", "content": [part]}], max_tokens=10)
        return Decimal(str(m.plan(task)["estimate"]))

    info = orroute.Catalog.bundled().get("openai/gpt-4o-mini")
    window, prompt_price = info.context_length, Decimal(str(info.pricing.prompt))
    assert estimate(pdf) >= window * prompt_price > 100 * estimate({"type": "text", "text": "hi"})


def test_a_failed_call_is_recorded_at_no_cost(fake, tmp_path: Path) -> None:
    """Every call is recorded with its outcome: one that failed with an error status (nothing
    billed) had no ledger row, only the manager's metrics(). It is written at cost 0, shown by
    usage_history, to_dataframe and report, and counts as no spend."""
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget(1)
    m = manager(fake, ledger=tracker, fallbacks=["test/a", "test/b"])
    fake.fail("test/a", Fault.server_error(), times=1)
    r = m.execute_task_sync(Task(messages="Say hello", max_tokens=20, id="t1"))
    assert [a.error for a in r.attempts] == ["server", None]  # retried, then answered
    rows = sorted(tracker.usage_history(), key=lambda row: row.id)
    assert [(row.model, row.outcome, row.error_class) for row in rows] == [
        ("test/a", "error", "server"),
        ("test/a", "ok", ""),
    ]
    failed, ok = rows
    assert (failed.cost, failed.task_id, failed.project) == (0, "t1", "")
    assert failed.latency_s is not None and failed.latency_s > 0
    assert (tracker.total_cost(), tracker.budget_status().spent) == (ok.cost, ok.cost)
    assert tracker.budget_status().reserved == 0
    frame = tracker.to_dataframe()
    assert sorted(frame["outcome"]) == ["error", "ok"]
    (total,) = tracker.report("all", by=None)
    assert (total.calls, total.errors, total.cost) == (2, 1, ok.cost)


def test_a_failed_calls_row_leaves_the_estimates_accuracy_alone(fake, tmp_path: Path) -> None:
    """A failed call's row is at cost 0 because nothing was billed, not because its estimate
    was wrong: it carries no estimate, so the report's estimate error is the answered calls'.
    With the reservation as its estimate, three failed attempts before an exact estimate read
    as estimates 300% too high."""
    tracker = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    tracker.set_budget(1)
    m = manager(fake, ledger=tracker, fallbacks=["test/a", "test/b"])
    fake.fail("test/a", Fault.server_error(), times=3)
    r = m.execute_task_sync(Task(messages="Say hello", max_tokens=20, id="t1"))
    assert [a.error for a in r.attempts] == ["server", "server", "server", None]
    rows = tracker.usage_history()
    assert sorted(row.outcome for row in rows) == ["error", "error", "error", "ok"]
    assert all(row.estimated_cost is None for row in rows if row.outcome == "error")
    (ok,) = [row for row in rows if row.outcome == "ok"]
    (total,) = tracker.report("all", by=None)
    assert (total.calls, total.errors) == (4, 3)
    assert total.estimated == ok.estimated_cost
    assert total.estimate_error == pytest.approx(float((ok.estimated_cost - ok.cost) / ok.cost))


def test_awaited_calls_cancelled_and_dropped_leave_nothing_reserved(fake, tmp_path: Path) -> None:
    """Awaited calls, some cancelled, the tasks of half of them dropped and collected while
    their calls are in flight: once every call ended and the manager gave its leases back, the
    budget holds nothing, as the reservations table (empty) says."""
    import gc
    import sqlite3

    path = tmp_path / "ledger.sqlite3"
    tracker = orroute.CostTracker(path)
    tracker.set_budget(100)
    m = manager(fake, ledger=tracker, fallbacks=["test/a", "test/b"], timeout=2)
    fake.fail("test/a", Fault.hang(), times=5)
    rng = random.Random(3)

    async def run() -> None:
        tasks = [asyncio.ensure_future(m.execute_task(Task(messages=f"hi {i}", max_tokens=8)))
                 for i in range(40)]
        await asyncio.sleep(0.012)
        for task in tasks:
            if rng.random() < 0.3:
                task.cancel()
        del tasks[:20]
        gc.collect()
        await asyncio.gather(*tasks, return_exceptions=True)
        m.close()  # the dropped calls still in flight keep what their lease holds for them
        await asyncio.sleep(3)  # the dropped ones end too (test/a hangs until the timeout)

    asyncio.run(run())
    m.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM reservations").fetchone() == (0,)
    assert tracker.budget_status().reserved == 0
