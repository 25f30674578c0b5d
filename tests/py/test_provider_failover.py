"""Several providers in the engine: the OpenRouter fake goes down mid-run and the same model
answers from the Anthropic fake (Messages API) with no failed task, each call priced exactly at
the prices of the provider that served it and recorded with that provider in the ledger; and the
balancing strategies across two deployments of one model, with the split measured."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import orroute
from orroute import AIModelManager, Task, _core
from orroute._providers_engine import _bundled_prices
from orroute.provider_config import parse_providers
from orroute.testing import FakeAnthropic, FakeOpenRouter, Fault

OR_KEY = "sk-or-v1-failover-0123456789abcdef0123456789abcdef"
ANT_KEY = "sk-ant-api03-failover-0123456789abcdef"
MODEL = "anthropic/claude-sonnet-4.5"
NATIVE = "claude-sonnet-4-5"


@pytest.fixture(name="fakes")
def fakes_fixture() -> Iterator[tuple[FakeOpenRouter, FakeAnthropic]]:
    with FakeOpenRouter(api_key=OR_KEY) as orf, FakeAnthropic(api_key=ANT_KEY) as ant:
        yield orf, ant


def _manager(orf: FakeOpenRouter, ant: FakeAnthropic, tmp_path: Path, toml: dict[str, Any],
             **kw: Any) -> AIModelManager:
    env = {"OPENROUTER_API_KEY": OR_KEY, "ANTHROPIC_API_KEY": ANT_KEY,
           "OPENROUTER_BASE_URL": orf.base_url, "ANTHROPIC_BASE_URL": ant.base_url}
    providers = parse_providers(toml, env)
    return AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                          ledger=str(tmp_path / "ledger.sqlite3"), budget=5, providers=providers,
                          refresh_catalog=False, retry_base_delay=0.01, max_retries=1, **kw)


TWO = {"providers": {"openrouter": {"priority": 0}, "anthropic": {"priority": 1}}}


def test_openrouter_down_mid_run_the_same_model_answers_from_anthropic(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    mgr = _manager(orf, ant, tmp_path, TWO)
    results = []
    for i in range(12):
        if i == 4:
            orf.fail("*", Fault.server_error(503))  # OpenRouter is down from here on
        results.append(mgr.execute_task_sync(Task(messages=f"Question {i}: say something.",
                                                  max_tokens=40)))
    assert all(r.content for r in results)  # no failed task
    assert [r.provider for r in results] == ["openrouter"] * 4 + ["anthropic"] * 8
    assert {r.model for r in results} == {MODEL}  # the same model, wherever it ran
    assert all(r.provider_model == NATIVE for r in results[4:])
    assert len(ant.requests) == 8
    # one user agent, the client's, at every upstream the engine calls
    agent = f"orroute/{orroute.__version__} python/"
    assert all(r.headers["user-agent"].startswith(agent) for r in [*orf.requests, *ant.requests])

    every = sorted(mgr.cost_tracker.usage_history(limit=100), key=lambda r: r.id)
    rows = [r for r in every if r.outcome == "ok"]  # OpenRouter's failed attempts: rows at cost 0
    assert all(r.cost == 0 and r.tags.get("provider") == "openrouter" for r in every if r not in rows)
    assert [r.tags.get("provider") for r in rows] == ["openrouter"] * 4 + ["anthropic"] * 8
    assert all(r.model_requested == MODEL for r in rows)
    prices = _core.ProviderPrices.from_litellm_json(_bundled_prices(), "anthropic")
    for row, res in zip(rows, results, strict=True):
        assert row.cost == res.cost
        if row.tags["provider"] == "anthropic":
            assert row.model == NATIVE and row.cost_source == "provider:anthropic"
            exact = prices.cost(NATIVE, row.prompt_tokens, row.completion_tokens,
                                row.cached_tokens, row.cache_write_tokens)
            assert row.cost == exact > 0  # Anthropic's own price, not OpenRouter's
        else:
            assert row.cost_source == "upstream" and row.cost > 0
    per_provider: dict[str, Decimal] = {}
    for r in rows:
        per_provider[r.tags["provider"]] = per_provider.get(r.tags["provider"], Decimal(0)) + r.cost
    assert sum(per_provider.values()) == mgr.spent()
    assert mgr.reserved()[0] == 0  # every reservation settled or released


def test_a_provider_without_a_price_is_never_sent_to_under_a_budget(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    mgr = _manager(orf, ant, tmp_path, TWO, provider_prices="{}")  # no Anthropic prices
    orf.fail("*", Fault.server_error(503))
    with pytest.raises(Exception):  # noqa: B017 - whichever error: the point is nothing was sent
        mgr.execute_task_sync(Task(messages="hi", max_tokens=20))
    assert ant.requests == []


def test_the_anthropic_stream_is_relayed_as_chat_chunks(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    mgr = _manager(orf, ant, tmp_path, {"providers": {"openrouter": {"priority": 1},
                                                      "anthropic": {"priority": 0}}})

    async def run() -> list[dict[str, Any]]:
        return [c async for c in mgr.stream_task(Task(messages="Tell me a story.", max_tokens=60))]

    chunks = asyncio.run(run())
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    plain = mgr.execute_task_sync(Task(messages="Tell me a story.", max_tokens=60))
    assert text == plain.content != ""  # the fake answers deterministically: stream == plain
    assert [c for c in chunks if c.get("usage")][-1]["usage"]["completion_tokens"] > 0
    assert len(ant.requests) == 2 and orf.requests == []
    rows = mgr.cost_tracker.usage_history(limit=2)
    assert [r.tags["provider"] for r in rows] == ["anthropic"] * 2
    assert rows[0].cost == rows[1].cost > 0


@pytest.mark.parametrize(("strategy", "weights", "expected"), [
    ("round_robin", (1, 1), {"openrouter": 20, "anthropic": 20}),
    ("weighted", (3, 1), {"openrouter": 30, "anthropic": 10}),
])
def test_balancing_splits_calls_between_the_deployments(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path, strategy: str,
        weights: tuple[int, int], expected: dict[str, int]) -> None:
    orf, ant = fakes
    toml = {**TWO, "model_groups": {MODEL: {"strategy": strategy, "deployments": [
        {"provider": "openrouter", "weight": weights[0]},
        {"provider": "anthropic", "weight": weights[1]}]}}}
    mgr = _manager(orf, ant, tmp_path, toml)
    served = Counter(mgr.execute_task_sync(Task(messages="hi", max_tokens=10)).provider
                     for _ in range(40))
    assert dict(served) == expected
    assert len(orf.requests) == expected["openrouter"] and len(ant.requests) == expected["anthropic"]


def _group(strategy: str) -> dict[str, Any]:
    return {**TWO, "model_groups": {MODEL: {"strategy": strategy, "deployments": [
        {"provider": "openrouter"}, {"provider": "anthropic"}]}}}


def test_lowest_latency_sends_most_calls_to_the_faster_deployment(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    orf.fail("*", Fault.delay(0.1))  # OpenRouter answers 100 ms later than Anthropic
    mgr = _manager(orf, ant, tmp_path, _group("lowest_latency"))
    served = Counter(mgr.execute_task_sync(Task(messages="hi", max_tokens=10)).provider
                     for _ in range(40))
    # each measured once, then the faster one; every 20th pick re-measures the other
    assert served["anthropic"] >= 36 and served["openrouter"] >= 1


def test_least_busy_spreads_concurrent_calls_by_calls_in_flight(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    orf.fail("*", Fault.delay(1.5))  # OpenRouter's calls stay in flight longer
    ant.fail("*", Fault.delay(0.05))
    mgr = _manager(orf, ant, tmp_path, _group("least_busy"))

    async def wave(n: int) -> list[str]:
        return [r.provider for r in await asyncio.gather(
            *(mgr.execute_task(Task(messages="hi", max_tokens=10)) for _ in range(n)))]

    async def run() -> tuple[list[str], list[str]]:
        first = asyncio.ensure_future(wave(10))  # 10 calls at once: 5 and 5 in flight
        await asyncio.sleep(0.6)  # Anthropic's 5 are done, OpenRouter's 5 still in flight
        second = await wave(5)  # so all 5 go where nothing is in flight
        return await first, second

    first, second = asyncio.run(run())
    assert Counter(first) == {"openrouter": 5, "anthropic": 5}
    assert Counter(second) == {"anthropic": 5}


def test_the_plan_estimates_the_dearest_provider_the_first_model_may_use(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    task = Task(messages="How much?", max_tokens=1000)
    alone = AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                           refresh_catalog=False).plan(task)["estimate"]
    dear = ('{"claude-sonnet-4-5": {"litellm_provider": "anthropic", "mode": "chat", '
            '"input_cost_per_token": "6e-06", "output_cost_per_token": "3e-05"}}')
    both = _manager(orf, ant, tmp_path, TWO, provider_prices=dear).plan(task)["estimate"]
    # Anthropic here at twice OpenRouter's prices: the estimate is Anthropic's worst case
    assert alone > 0 and both > alone
    assert both >= Decimal("0.03")  # 1,000 output tokens at $30/M
    # the request's shape binds the other provider's estimate too: a PDF's prompt is the window
    # (1M tokens) at Anthropic's $20/M here (the catalog's dearest tier is $12/M), not the few
    # tokens counted (dearest_elsewhere priced them unshaped: the catalog's $12.02 stood)
    pdf = Task(messages=[{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}]}],
        max_tokens=1000)
    window = orroute.Catalog.bundled().get(MODEL).context_length
    dearer = dear.replace('"6e-06"', '"2e-05"')
    both_pdf = _manager(orf, ant, tmp_path, TWO, provider_prices=dearer).plan(pdf)["estimate"]
    assert both_pdf == window * Decimal("2e-05") + 1000 * Decimal("3e-05")
    # an image at Anthropic: the most Claude Sonnet 4.5 bills for one (~1,600 tokens and 85 for
    # its padding to 28-pixel multiples) at Anthropic's price, on top of the text (it counted
    # 1,600 x the family factor 1.15 within the text's count, as if Claude's tokenizer sized images)
    def image(*parts: dict[str, Any]) -> Task:
        return Task(messages=[{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                                            *parts]}], max_tokens=1000)

    picture = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    mgr = _manager(orf, ant, tmp_path, TWO, provider_prices=dearer)
    with_image = Decimal(str(mgr.plan(image(picture))["estimate"]))
    assert with_image - Decimal(str(mgr.plan(image())["estimate"])) == 1685 * Decimal("2e-05")


def test_balancing_skips_a_deployment_whose_breaker_is_open(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    orf, ant = fakes
    mgr = _manager(orf, ant, tmp_path, _group("round_robin"),
                   breaker={"failures": 2, "cooldown": 60})
    orf.fail("*", Fault.server_error(503))
    results = [mgr.execute_task_sync(Task(messages="hi", max_tokens=10)) for _ in range(10)]
    assert [r.provider for r in results] == ["anthropic"] * 10  # no task failed
    # OpenRouter took calls until its breaker opened; after that the balancer no longer picks it
    # first (round-robin would have, every other call, only for the loop to skip it)
    assert len(orf.requests) <= 4
    late = [a.model for r in results[5:] for a in r.attempts]
    assert late == [f"{MODEL}@anthropic"] * 5


def test_a_provider_key_it_rejects_is_set_aside_for_its_next_key(tmp_path: Path) -> None:
    good, bad = ANT_KEY, "sk-ant-api03-revoked-0123456789abcdef"
    with FakeOpenRouter(api_key=OR_KEY) as orf, FakeAnthropic(api_key=good) as ant:
        env = {"OPENROUTER_API_KEY": OR_KEY, "OPENROUTER_BASE_URL": orf.base_url,
               "ANTHROPIC_API_KEY": f"{bad},{good}", "ANTHROPIC_BASE_URL": ant.base_url}
        providers = parse_providers({"providers": {"anthropic": {"priority": 0},
                                                   "openrouter": {"priority": 1}}}, env)
        mgr = AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                             providers=providers, refresh_catalog=False)
        results = [mgr.execute_task_sync(Task(messages="hi", max_tokens=10)) for _ in range(3)]
        assert [r.provider for r in results] == ["anthropic"] * 3
        keys = [r.headers.get("x-api-key") for r in ant.requests]
        assert keys[0] == bad and set(keys[1:]) == {good}  # rejected once, then never sent again
        assert orf.requests == []


def test_a_provider_without_a_price_is_never_sent_to_without_a_ledger_either(
        fakes: tuple[FakeOpenRouter, FakeAnthropic]) -> None:
    # No ledger, no budget: a provider's reply carries no cost of its own, so a call it cannot
    # price would be paid for and reported as $0. It is refused like under a budget.
    orf, ant = fakes
    env = {"OPENROUTER_API_KEY": OR_KEY, "ANTHROPIC_API_KEY": ANT_KEY,
           "OPENROUTER_BASE_URL": orf.base_url, "ANTHROPIC_BASE_URL": ant.base_url}
    toml = {**TWO, "model_map": {MODEL: {"anthropic": NATIVE}}}  # served, but no price for it
    mgr = AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                         providers=parse_providers(toml, env), provider_prices="{}",
                         refresh_catalog=False, max_retries=0)
    orf.fail("*", Fault.server_error(503))
    with pytest.raises(Exception):  # noqa: B017 - whichever error: the point is nothing was sent
        mgr.execute_task_sync(Task(messages="hi", max_tokens=20))
    assert ant.requests == []
    orf.fail("*", None)
    priced = AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                            providers=parse_providers({"providers": {"anthropic": {"priority": 0},
                                                                     "openrouter": {"priority": 1}}},
                                                      env),
                            refresh_catalog=False, max_retries=0)
    r = priced.execute_task_sync(Task(messages="hi", max_tokens=20))  # priced: sent and charged
    assert r.provider == "anthropic" and r.cost > 0 and r.cost_source == "provider:anthropic"


def test_the_requests_shape_binds_at_a_direct_provider_too(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    """A PDF's tokens are known only upstream: with Anthropic answering, the call is still bounded
    by the model's context window (200k tokens at $3/M: over this $0.10 budget), so nothing is
    sent and nothing stays reserved (the plan's estimate and the provider's reservation follow
    one rule: shaped_worst_case)."""
    orf, ant = fakes
    env = {"OPENROUTER_API_KEY": OR_KEY, "ANTHROPIC_API_KEY": ANT_KEY,
           "OPENROUTER_BASE_URL": orf.base_url, "ANTHROPIC_BASE_URL": ant.base_url}
    providers = parse_providers({"providers": {"openrouter": {"priority": 1},
                                               "anthropic": {"priority": 0}}}, env)
    orf.fail("*", Fault.server_error(503))  # only Anthropic answers
    mgr = AIModelManager(api_key=OR_KEY, base_url=orf.base_url, fallbacks=[MODEL],
                         ledger=str(tmp_path / "ledger.sqlite3"), budget=0.10, providers=providers,
                         refresh_catalog=False, retry_base_delay=0.01, max_retries=1)
    assert mgr.execute_task_sync(Task(messages="hi", max_tokens=20)).provider == "anthropic"
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}
    with pytest.raises(Exception):  # noqa: B017 - refused by the budget: nothing may be sent
        mgr.execute_task_sync(Task(messages=[{"role": "user", "content": [pdf]}], max_tokens=20))
    assert len(ant.requests) == 1
    assert mgr.reserved()[0] == 0


def test_a_provider_whose_connections_fail_opens_its_own_endpoint_breaker(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    # Each provider's endpoint has a breaker named for its own host (the engine's endpoint_of,
    # set once at its construction), not the OpenRouter base URL's every call would otherwise name.
    orf, ant = fakes
    ant_first = {"providers": {"anthropic": {"priority": 0}, "openrouter": {"priority": 1}}}
    mgr = _manager(orf, ant, tmp_path, ant_first, breaker={"failures": 2, "cooldown": 600})
    ant.fail("*", Fault.reset())  # the connection dropped: no reply, the endpoint is to blame
    results = [mgr.execute_task_sync(Task(messages="hi", max_tokens=10)) for _ in range(3)]
    assert [r.provider for r in results] == ["openrouter"] * 3  # no task failed
    opened = {b["key"]: b["state"] for b in mgr.health()["breakers"]}
    ant_host, or_host = ant.base_url.split("//")[1].split("/")[0], orf.base_url.split("//")[1].split("/")[0]
    assert ant_host != or_host
    assert opened.get(f"endpoint:{ant_host}") == "open"
    assert f"endpoint:{or_host}" not in opened


def test_a_truncated_anthropic_stream_fails_its_attempt_with_the_translators_error(
        fakes: tuple[FakeOpenRouter, FakeAnthropic], tmp_path: Path) -> None:
    # The sink's direct-provider state (its adapter's refusal of the reply) on the failure path:
    # a stream that ends cleanly before message_stop is a 502 of that attempt, said by the
    # translator, and the provider's breaker takes it.
    orf, ant = fakes
    mgr = _manager(orf, ant, tmp_path, {"providers": {"anthropic": {"priority": 0}}})
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    ant.fail("*", Fault.raw(ping, content_type="text/event-stream"))
    orf.fail("*", Fault.server_error(503))

    async def run() -> list[dict[str, Any]]:
        return [c async for c in mgr.stream_task(Task(messages="hi", max_tokens=10))]

    with pytest.raises(orroute.StreamError) as failed:
        asyncio.run(run())
    at_anthropic = [a for a in failed.value.attempts if a.model == f"{MODEL}@anthropic"]
    assert [(a.error, a.status) for a in at_anthropic] == [("server", 502)] * 2  # tried, retried
    assert {a.message for a in at_anthropic} == {"the Anthropic stream ended before message_stop (truncated reply)"}
