"""A caller's seconds that are not an ordinary number: NaN and negative timeouts are refused with
InvalidArgumentError before anything is sent; +inf and absurdly large ones mean "no limit". Every
place that turns seconds into an integer count goes through cpp/orroute/seconds.h (a NaN or an
infinity cast to int64 is undefined behaviour: on x86-64 it gave INT64_MIN, a limit that was
quietly none, or a wait already over)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

import orroute
from orroute import _core
from orroute.provider_config import parse_providers
from orroute.testing import FakeOpenRouter

MSGS = [{"role": "user", "content": "Say hello"}]
KEY = "sk-or-v1-" + "t" * 56 + "0123"
BAD = [math.nan, -1.0, -math.inf]
BAD_IDS = ["nan", "negative", "-inf"]
UNLIMITED = [math.inf, 1e300, 1e9]
UNLIMITED_IDS = ["inf", "1e300", "1e9"]


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=["m/a"], use_uvloop=False) as f:
        yield f


def client_of(fake: FakeOpenRouter, **kw: object) -> orroute.OpenRouter:
    return orroute.OpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", BAD, ids=BAD_IDS)
def test_a_call_with_a_nan_or_negative_timeout_is_refused_before_it_is_sent(
        fake: FakeOpenRouter, seconds: float) -> None:
    client = client_of(fake)
    with pytest.raises(orroute.InvalidArgumentError, match="timeout"):
        client.chat.completions.create(model="m/a", messages=MSGS, timeout=seconds)
    with pytest.raises(orroute.InvalidArgumentError, match="timeout"):
        client.chat.completions.create(model="m/a", messages=MSGS,
                                       timeout=orroute.Timeout(total=seconds))
    with pytest.raises(orroute.InvalidArgumentError, match="timeout"):
        client.chat.completions.create(model="m/a", messages=MSGS, stream=True,
                                       timeout=orroute.Timeout(idle=seconds))
    assert fake.request_count == 0


@pytest.mark.parametrize("seconds", UNLIMITED, ids=UNLIMITED_IDS)
def test_an_infinite_or_huge_timeout_is_no_limit(fake: FakeOpenRouter, seconds: float) -> None:
    client = client_of(fake)
    reply = client.chat.completions.create(model="m/a", messages=MSGS, timeout=seconds)
    assert reply.choices[0].message.content
    t = orroute.Timeout(connect=seconds, first_byte=seconds, idle=seconds, total=seconds)
    with client.chat.completions.create(model="m/a", messages=MSGS, stream=True, timeout=t) as s:
        assert "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert client_of(fake, timeout=seconds).chat.completions.create(model="m/a", messages=MSGS)


@pytest.mark.parametrize("seconds", BAD, ids=BAD_IDS)
def test_a_manager_with_a_nan_or_negative_timeout_is_refused(fake: FakeOpenRouter,
                                                             seconds: float) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="timeout"):
        manager = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, budget=1,
                                         timeout=seconds)
        manager.execute_task_sync(orroute.Task(messages="hi", max_tokens=5), model="m/a")
    assert fake.request_count == 0


@pytest.mark.parametrize("seconds", UNLIMITED, ids=UNLIMITED_IDS)
def test_a_manager_with_an_infinite_or_huge_timeout_has_no_limit(fake: FakeOpenRouter,
                                                                 seconds: float) -> None:
    manager = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url, budget=1,
                                     timeout=seconds)
    result = manager.execute_task_sync(orroute.Task(messages="hi", max_tokens=5), model="m/a")
    assert result.content


@pytest.mark.parametrize("seconds", [math.nan, math.inf, 1e300], ids=["nan", "inf", "1e300"])
def test_durations_of_the_core_are_never_undefined(seconds: float) -> None:
    # The engine's delays and windows: NaN is refused, +inf and huge values saturate (~31.7
    # years); before, the cast gave INT64_MIN nanoseconds, a negative delay or window.
    cfg = _core.EngineConfig()
    if math.isnan(seconds):
        for name in ("retry_base_delay", "max_server_wait", "breaker_cooldown", "timeout"):
            with pytest.raises(orroute.InvalidArgumentError):
                setattr(cfg, name, seconds)
        return
    for name in ("retry_base_delay", "retry_max_delay", "max_server_wait", "max_admission_wait",
                 "breaker_window", "breaker_cooldown", "metrics_window"):
        setattr(cfg, name, seconds)
        assert getattr(cfg, name) == pytest.approx(1e9), name
    cfg.timeout = seconds
    assert cfg.timeout == 0  # the core's "no limit"


@pytest.mark.parametrize(("seconds", "ok"), [(math.nan, False), (-1.0, False), (math.inf, True)],
                         ids=["nan", "negative", "inf"])
def test_a_providers_timeout_in_the_config_file(seconds: float, ok: bool) -> None:
    table = {"providers": {"anthropic": {"timeout": seconds}}}
    env = {"ANTHROPIC_API_KEY": "sk-ant-api03-0123456789abcdefghij"}
    if not ok:
        with pytest.raises(orroute.config.ConfigError, match="timeout"):
            parse_providers(table, env)
        return
    core = parse_providers(table, env).provider("anthropic").to_core()
    assert core.timeout == 0  # no limit


@pytest.mark.parametrize("when", [math.inf, 1e300, math.nan], ids=["inf", "1e300", "nan"])
def test_an_awaited_call_with_an_event_loop_timer_far_away(fake: FakeOpenRouter,
                                                           when: float) -> None:
    # An awaited plain call on an idle event loop is served on the loop's thread until the
    # loop's next timer (serve_lent): a timer at +inf or 1e300 s is no limit, one at NaN is not
    # served there (the call is awaited the loop's way).
    client = orroute.AsyncOpenRouter(api_key=KEY, base_url=fake.base_url, max_retries=0)

    async def main() -> str:
        handle = asyncio.get_running_loop().call_later(when, lambda: None)
        try:
            reply = await client.chat.completions.create(model="m/a", messages=MSGS)
        finally:
            handle.cancel()
        return reply.choices[0].message.content or ""

    assert asyncio.run(main())


@pytest.mark.parametrize("ttl", [math.inf, 1e300, 1e15], ids=["inf", "1e300", "1e15"])
def test_a_response_cache_with_an_endless_ttl_keeps_its_entries(tmp_path, ttl: float) -> None:
    # An entry's expiry was now + ttl * 1e6 in int64: past ~9.2e12 s it overflowed (undefined: a
    # wrapped expiry, in the past for some ttls); +inf raised OverflowError, 1e300 a TypeError.
    # Now a ttl of ~31.7 years and beyond is that (cache_expiry).
    from orroute.cache import ResponseCache

    cache = ResponseCache(tmp_path / "c.sqlite3", ttl=ttl)
    key = cache.key({"model": "m/a", "messages": MSGS}, "s")
    assert key is not None
    assert cache.put(key, {"choices": [{"message": {"role": "assistant", "content": "hi"}}]},
                     model="m/a")
    assert cache.get(key) is not None
    with pytest.raises(orroute.InvalidArgumentError):
        ResponseCache(tmp_path / "d.sqlite3", ttl=math.nan)


@pytest.mark.parametrize("seconds", BAD, ids=BAD_IDS)
def test_a_cost_tracker_with_a_nan_or_negative_busy_timeout_is_refused(tmp_path, seconds: float) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="busy_timeout"):
        orroute.CostTracker(ledger=tmp_path / "l.sqlite3", busy_timeout=seconds)


@pytest.mark.parametrize("seconds", UNLIMITED, ids=UNLIMITED_IDS)
def test_a_cost_tracker_with_an_endless_busy_timeout_records(tmp_path, seconds: float) -> None:
    # SQLite's busy timeout is an int of milliseconds: an endless wait is its longest one
    t = orroute.CostTracker(ledger=tmp_path / "l.sqlite3", busy_timeout=seconds)
    t.track_usage("t1", "openai/gpt-4o-mini", 100, 0.001)
    assert t.total_cost() > 0
