"""A call the upstream received and that was then cut is booked, not released (docs/cost.md,
"Cut calls"). OpenRouter bills a cancelled stream up to where it stopped on providers that support
cancellation, and the whole answer on the others and on every non-streamed call; releasing those
reservations let real spend bypass the budget."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter, Fault

CHEAP_STOPS = "openai/cut-test"  # served as "OpenAI": stops billing when a stream is cut
CHEAP_RUNS_ON = "test/a"  # served as "Test": not on OpenRouter's list, bills the whole answer
PROMPT = "tell me a long story about budgets"


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=["test/a", "test/b"]) as f:
        f.add_model(CHEAP_STOPS, prompt_price="0.000001", completion_price="0.000002")
        yield f


@pytest.fixture
def tracker(tmp_path: Path) -> orroute.CostTracker:
    t = orroute.CostTracker(tmp_path / "ledger.sqlite3")
    t.set_budget(1)
    return t


def manager(
    fake: FakeOpenRouter, tracker: orroute.CostTracker, model: str, **kw
) -> orroute.AIModelManager:
    kw.setdefault("retry_base_delay", 0.001)
    return orroute.AIModelManager(
        api_key="sk-or-test", base_url=fake.base_url, ledger=tracker, fallbacks=[model], **kw
    )


def stop_after_first_chunk(m: orroute.AIModelManager, task: Task) -> int:
    """Streams ``task`` and leaves the loop after the first content chunk; returns the chunks seen."""

    async def main() -> int:
        seen = 0
        stream = m.stream_task(task)
        async for chunk in stream:
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices", [])):
                seen += 1
                break
        await stream.aclose()
        return seen

    return asyncio.run(main())


def settled(tracker: orroute.CostTracker, fake: FakeOpenRouter) -> list[orroute.UsageRecord]:
    assert fake.wait_until(lambda: tracker.live_reservations() == (0, Decimal(0)), timeout=5)
    return tracker.usage_history()


def test_a_stream_cut_on_a_provider_that_stops_billing_books_what_arrived(fake, tracker):
    fake.fail(CHEAP_STOPS, Fault.slow_drip(0.02, chunk_size=48))
    m = manager(fake, tracker, CHEAP_STOPS)
    task = Task(messages=PROMPT, max_tokens=400)

    assert stop_after_first_chunk(m, task) == 1
    worst = m.plan(task)["estimate"]
    [row] = settled(tracker, fake)
    assert row.outcome == "cancelled" and row.error_class == "cancelled"
    assert row.cost_source.startswith("metered: cancelled after")
    assert "OpenAI stops billing" in row.cost_source
    assert row.completion_tokens >= 1 and row.prompt_tokens > 0
    # the prompt plus what arrived, at the catalog's prices: far below the 400-token worst case
    expected = Decimal(row.prompt_tokens) * Decimal("0.000001") + Decimal(
        row.completion_tokens
    ) * Decimal("0.000002")
    assert row.cost == expected
    assert 0 < row.cost < worst
    assert tracker.total_cost() == row.cost


def test_a_stream_cut_on_a_provider_that_runs_on_books_the_worst_case(fake, tracker):
    fake.fail(CHEAP_RUNS_ON, Fault.slow_drip(0.02, chunk_size=48))
    m = manager(fake, tracker, CHEAP_RUNS_ON)
    task = Task(messages=PROMPT, max_tokens=400)

    stop_after_first_chunk(m, task)
    worst = m.plan(task)["estimate"]
    [row] = settled(tracker, fake)
    assert row.outcome == "cancelled"
    assert row.cost_source.startswith("reservation: cancelled after")
    assert "may bill the whole answer" in row.cost_source
    assert row.cost == worst


def test_a_cancelled_plain_call_the_upstream_received_books_the_worst_case(fake, tracker):
    fake.fail(CHEAP_STOPS, Fault.hang())
    m = manager(fake, tracker, CHEAP_STOPS)
    task = Task(messages=PROMPT, max_tokens=50)

    async def main() -> None:
        t = asyncio.create_task(m.execute_task(task))
        assert await asyncio.to_thread(fake.wait_until, lambda: fake.requests_for(CHEAP_STOPS), 5)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    worst = m.plan(task)["estimate"]
    [row] = settled(tracker, fake)
    assert row.outcome == "cancelled"
    assert (
        row.cost_source
        == "reservation: cut before the answer arrived; a non-streamed call is billed in full"
    )
    assert row.cost == worst == m.spent()


def test_an_upstream_that_fails_mid_stream_books_what_it_generated(fake, tracker):
    fake.fail(CHEAP_RUNS_ON, Fault.stream_error(after_tokens=3))
    m = manager(fake, tracker, CHEAP_RUNS_ON)
    task = Task(messages=PROMPT, max_tokens=400)

    async def main() -> int:
        seen = 0
        with pytest.raises(orroute.StreamError):
            async for _ in m.stream_task(task):
                seen += 1
        return seen

    assert asyncio.run(main()) >= 3
    [row] = settled(tracker, fake)
    assert row.outcome == "error" and row.error_class == "stream_broken"
    assert row.cost_source.startswith("metered: the upstream failed after")
    assert 0 < row.cost < m.plan(task)["estimate"]


def test_error_replies_and_upstream_resets_are_not_booked(fake, tracker):
    """Nothing billed: each failed attempt's row is at cost 0 (recorded, not booked)."""
    fake.script("test/a", [Fault.server_error(), Fault.reset()])
    m = manager(fake, tracker, "test/a", max_retries=2)
    result = m.execute_task_sync(Task(messages=PROMPT, max_tokens=20))
    rows = sorted(settled(tracker, fake), key=lambda r: r.id)
    assert [(r.outcome, r.error_class, r.cost) for r in rows] == [
        ("error", a.error, 0) if a.error else ("ok", "", result.cost) for a in result.attempts
    ]
    assert len(rows) >= 2  # the server error at least (a reset may be retried by the transport)
    assert result.cost == tracker.total_cost() == tracker.budget_status().spent


def test_a_timed_out_plain_call_is_booked_and_the_retry_too(fake, tracker):
    fake.script(CHEAP_STOPS, [Fault.hang()])
    m = manager(fake, tracker, CHEAP_STOPS, max_retries=1, timeout=0.3)
    task = Task(messages=PROMPT, max_tokens=50)
    result = m.execute_task_sync(task)  # the second attempt is answered
    worst = m.plan(task)["estimate"]
    rows = settled(tracker, fake)
    assert [r.outcome for r in rows] == ["error", "ok"]
    assert rows[0].error_class == "timeout" and rows[0].cost == worst
    assert tracker.total_cost() == worst + result.cost


@pytest.mark.parametrize("reply", [Fault.malformed_json(),
                                   # an escape rapidjson refuses (a lone surrogate's escape
                                   # is repaired before the parse since Session 23)
                                   Fault.raw(b'{"id":"x","choices":[{"message":{"content":'
                                             b'"bad \\uZZZZ escape"}}]}')],
                         ids=["truncated", "unparseable-escape"])
def test_a_paid_plain_reply_that_cannot_be_read_books_the_worst_case(fake, tracker, reply):
    """A 200 whose body we cannot read was answered and billed in full: it is booked at the
    reservation (as a reply we refused), not released as if nothing had been spent."""
    fake.fail(CHEAP_RUNS_ON, reply)
    m = manager(fake, tracker, CHEAP_RUNS_ON, max_retries=0)
    task = Task(messages=PROMPT, max_tokens=50)
    with pytest.raises(orroute.OrRouteError, match="not JSON"):
        m.execute_task_sync(task)
    worst = m.plan(task)["estimate"]
    [row] = settled(tracker, fake)
    assert row.outcome == "error"
    assert row.cost == worst == m.spent() > 0


def test_with_several_providers_a_cut_stream_at_openrouter_books_what_arrived(fake, tracker):
    """With providers configured (here Anthropic first, OpenRouter for the rest), a model served
    at OpenRouter is the engine's own endpoint, whose cut streams are booked as without them: the
    whole reservation was charged for a stream cut on a provider that stops billing."""
    from orroute.provider_config import parse_providers

    env = {"OPENROUTER_API_KEY": "sk-or-test", "ANTHROPIC_API_KEY": "sk-ant-api03-unused-0123",
           "OPENROUTER_BASE_URL": fake.base_url, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    providers = parse_providers({"providers": {"anthropic": {"priority": 0},
                                               "openrouter": {"priority": 1}}}, env)
    fake.fail(CHEAP_STOPS, Fault.slow_drip(0.02, chunk_size=48))
    m = manager(fake, tracker, CHEAP_STOPS, providers=providers)
    task = Task(messages=PROMPT, max_tokens=400)

    assert stop_after_first_chunk(m, task) == 1
    [row] = settled(tracker, fake)
    assert row.outcome == "cancelled"
    assert row.cost_source.startswith("metered: cancelled after"), row.cost_source
    assert 0 < row.cost < Decimal(m.plan(task)["estimate"])
