"""The Redis ledger (multi-machine budgets): what SQLite cannot show. The shared semantics run over
both backends in test_cost.py and test_budget_concurrency.py (the `ledger_location` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute.testing import FakeOpenRouter

PYTHON_DIR = str(Path(orroute.__file__).resolve().parent.parent)
ATTO = Decimal("1e-18")
TWO_53 = Decimal(2**53) * ATTO  # 0.009007199254740992 USD: where doubles stop being exact


def test_money_is_exact_beyond_two_to_the_53_attodollars(redis_url: str) -> None:
    t = orroute.CostTracker(redis_url)
    t.set_budget(TWO_53 + ATTO)
    big = t.reserve(TWO_53)
    t.reserve(ATTO)  # a double would round 2^53 + 1 down and refuse or double-count here
    with pytest.raises(orroute.BudgetExceededError):
        t.reserve(ATTO)
    big.settle(TWO_53 - ATTO, model="m")
    status = t.budget_status()
    assert status.spent == TWO_53 - ATTO
    assert status.reserved == ATTO
    assert status.limit == TWO_53 + ATTO


def test_sums_of_many_tiny_amounts_are_exact(redis_url: str) -> None:
    t = orroute.CostTracker(redis_url)
    t.set_budget(1000)
    price = Decimal("0.000000020833333333")
    expected = Decimal(0)
    for i in range(1, 301):
        last = t.record_call(cost=price * i * 7919, model="m")
        expected += price * i * 7919
    t.record_refund(Decimal("7e-18"), call_id=last)  # a refund below a nano-dollar
    expected += Decimal("-7e-18")
    assert t.total_cost() == expected
    assert t.budget_status().spent == expected


def test_alerts_a_reclaim_crosses_fire_on_the_hooks_of_the_process_that_reclaimed(
    redis_url: str,
) -> None:
    """Redis's reclaim books an expired reservation as spent in Lua, and checked no threshold:
    an alert it crossed fired with a later settle that found it crossed (any process's), or
    never. It fires from reclaim() on this tracker's hooks, once."""
    now = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    mine = orroute.CostTracker(redis_url, clock=lambda: now[0])
    mine.set_budget(1, project="p", thresholds=(50, 90))
    mine.reserve("0.60", project="p", ttl=60)
    now[0] += timedelta(minutes=5)
    other = orroute.CostTracker(redis_url, clock=lambda: now[0])
    fired: list[int] = []
    other.on_alert(lambda event: fired.append(event.threshold_pct))
    assert other.reclaim() == 1
    assert fired == [50]
    other.reserve("0.01", project="p").settle("0.01", model="m")
    assert fired == [50]  # once
    assert [a.threshold_pct for a in other.alerts] == [50]


def test_huge_budget_keeps_every_digit(redis_url: str) -> None:
    t = orroute.CostTracker(redis_url)
    limit = Decimal("123456789012345.678901234567890123")  # 33 digits: beyond Decimal's 28
    t.set_budget(limit)
    t.reserve(Decimal("123456789012345.678901234567890122"))
    t.reserve(ATTO)
    with pytest.raises(orroute.BudgetExceededError):
        t.reserve(ATTO)
    assert t.live_reservations() == (2, limit)


def test_reconnects_after_the_server_kills_its_connections(redis_server, redis_url: str) -> None:
    t = orroute.CostTracker(redis_url)
    t.set_budget(1)
    r = t.reserve("0.4")
    assert redis_server.command("CLIENT", "KILL", "TYPE", "normal") >= 1
    r.settle("0.3", model="m")
    redis_server.command("CLIENT", "KILL", "TYPE", "normal")
    t.reserve("0.7")
    redis_server.command("CLIENT", "KILL", "TYPE", "normal")
    status = t.budget_status()
    assert (status.spent, status.reserved) == (Decimal("0.3"), Decimal("0.7"))
    assert len(t.usage_history()) == 1  # the settle was not applied twice


def test_password_never_appears_in_reprs_paths_or_errors(
    redis_server, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_server.command("ACL", "SETUSER", "orr", "on", ">pw-right-4711", "~*", "+@all")
    try:
        host = redis_url.removeprefix("redis://")
        t = orroute.CostTracker(f"redis://orr:pw-right-4711@{host}")
        t.set_budget(1)
        shown = [repr(t), t.path, str(t), repr(t.budget_status())]
        assert all("pw-right-4711" not in s for s in shown)
        assert "orr:***@" in t.path and t.backend == "redis"
        with pytest.raises(orroute.OrRouteError) as err:
            orroute.CostTracker(f"redis://orr:pw-wrong-0815@{host}")
        assert "pw-wrong-0815" not in str(err.value) and "authentication" in str(err.value)
        with pytest.raises(orroute.OrRouteError) as err:
            orroute.CostTracker("redis://:pw-down-42@127.0.0.1:1/0")
        assert "pw-down-42" not in str(err.value)
        # Through the settings (ORROUTE_LEDGER): the full URL connects, displays hide it.
        from orroute.config import load_settings

        monkeypatch.setenv("ORROUTE_LEDGER", f"redis://orr:pw-right-4711@{host}")
        s = load_settings()
        assert str(s.ledger_path) == f"redis://orr:pw-right-4711@{host}"
        assert "pw-right-4711" not in f"{s.ledger_path} {s!r} {s.as_dict()}"
        assert orroute.CostTracker(str(s.ledger_path)).budget_status().limit == 1
    finally:
        redis_server.command("ACL", "DELUSER", "orr")


def test_bad_urls_are_refused_clearly() -> None:
    with pytest.raises(orroute.InvalidArgumentError):
        orroute.CostTracker("redis://127.0.0.1:notaport/0")
    with pytest.raises(orroute.InvalidArgumentError):
        orroute.CostTracker("rediss://127.0.0.1:6379/0")  # TLS is not supported


def test_a_manager_and_a_tracker_in_another_process_share_a_redis_budget(redis_url: str) -> None:
    t = orroute.CostTracker(redis_url)
    t.set_budget("0.001", project="p")
    with FakeOpenRouter(models=["test/a"]) as fake:
        m = orroute.AIModelManager(
            api_key="sk-or-test", base_url=fake.base_url, fallbacks=["test/a"],
            ledger=t, project="p",
        )
        r = m.execute_task_sync(orroute.Task(messages="Say hello", max_tokens=20))
        assert r.cost > 0
    assert t.total_cost(project="p") == r.cost
    assert t.budget_status(project="p").spent == r.cost
    # A separate process sees the manager's spend and the budget.
    child = (
        "import orroute, sys\n"
        f"t = orroute.CostTracker({redis_url!r})\n"
        "print(t.budget_status(project='p').spent)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", child],
        env={**os.environ, "PYTHONPATH": PYTHON_DIR},
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert Decimal(out.stdout.strip()) == r.cost


def test_managers_share_breakers_and_rate_limits_through_redis(redis_server) -> None:
    from orroute.testing import Fault

    state = redis_server.url("rs-" + os.urandom(6).hex() + ":")
    with FakeOpenRouter(models=["test/a", "test/b"]) as fake:

        def manager() -> orroute.AIModelManager:
            return orroute.AIModelManager(
                api_key="sk-or-test", base_url=fake.base_url, fallbacks=["test/a", "test/b"],
                max_retries=0, retry_base_delay=0.001, router_state=state,
                breaker={"failures": 3, "cooldown": 60},
                limits={"test/b": {"limit_requests": 4, "window": 60}}, max_admission_wait=0,
            )

        first, second = manager(), manager()
        fake.fail("test/a", Fault.server_error())
        for _ in range(3):
            assert first.execute_task_sync(orroute.Task(messages="hi")).model == "test/b"
        seen = len(fake.requests_for("test/a"))
        # The other manager (as another process or machine would) sees the open circuit...
        r = second.execute_task_sync(orroute.Task(messages="hi"))
        assert r.model == "test/b" and r.attempts[0].error == "skipped:circuit_open"
        assert len(fake.requests_for("test/a")) == seen
        assert second.health()["models"]["test/a"]["state"] == "circuit_open"
        # ... and the requests the first one made count against the shared limit of test/b.
        with pytest.raises(orroute.OrRouteError):
            second.execute_task_sync(orroute.Task(messages="hi"))
        assert len(fake.requests_for("test/b")) == 4


def test_gateway_books_to_a_redis_ledger(redis_url: str) -> None:
    import json
    import urllib.request

    from orroute.gateway import Gateway, GatewaySettings

    with FakeOpenRouter(api_key="sk-or-upstream") as fake:
        settings = GatewaySettings(
            base_url=fake.base_url, api_key="sk-or-upstream", ledger=redis_url, port=0
        )
        with Gateway(settings) as gw:
            key = gw.keys.create("gw-redis")[0]
            req = urllib.request.Request(
                f"{gw.base_url}/chat/completions",
                data=json.dumps(
                    {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
                ).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 200
    # The spend is in Redis, where any machine's tracker sees it.
    assert orroute.CostTracker(redis_url).total_cost(project="gw-redis") > 0


def test_router_state_setting_is_a_redis_url_shown_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orroute.config import ConfigError, load_settings

    monkeypatch.setenv("ORROUTE_ROUTER_STATE", "redis://:pw-state-99@10.0.0.5:6379/2")
    s = load_settings()
    assert str(s.router_state) == "redis://:pw-state-99@10.0.0.5:6379/2"
    assert s.sources["router_state"] == "env"
    assert "pw-state-99" not in f"{s.router_state} {s!r} {s.as_dict()}"
    assert s.as_dict()["router_state"] == "redis://:***@10.0.0.5:6379/2"
    monkeypatch.setenv("ORROUTE_ROUTER_STATE", "http://10.0.0.5")
    with pytest.raises(ConfigError):
        load_settings()
