"""Commands that call the API (`credits`, `models test`, `models benchmark`, `health`), against
FakeOpenRouter; and what happens without a key."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from orroute.cli import cli
from orroute.testing import FakeOpenRouter, Fault

KEY = "sk-or-v1-cli-test-0123456789abcdef"


@pytest.fixture
def fake():
    with FakeOpenRouter(credits=25, api_key=KEY) as f:
        yield f


def run(fake, *args: str, key: str | None = KEY):
    env = {"OPENROUTER_BASE_URL": fake.base_url}
    if key is not None:
        env["OPENROUTER_API_KEY"] = key
    return CliRunner().invoke(cli, list(args), env=env)


def test_credits(fake) -> None:
    r = run(fake, "credits", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert Decimal(data["total_credits"]) == 25
    assert Decimal(data["remaining"]) == 25
    assert KEY not in r.output
    assert "$25" in run(fake, "credits").stdout


def test_wrong_key_is_exit_4_in_one_line(fake) -> None:
    r = run(fake, "credits", key="sk-or-v1-wrong-key-000000000000")
    assert r.exit_code == 4
    assert r.stderr.count("\n") == 1 and "401" in r.stderr
    assert "wrong-key" not in r.stderr


def test_no_key_for_openrouter_is_exit_4() -> None:
    r = CliRunner().invoke(cli, ["credits"])
    assert r.exit_code == 4
    assert "no API key" in r.stderr and r.stderr.count("\n") == 1


def test_models_test_reports_latency_ttft_and_exact_cost(fake) -> None:
    r = run(fake, "models", "test", "openai/gpt-4o-mini", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["model"] == "openai/gpt-4o-mini"
    assert data["content"] and data["completion_tokens"] > 0
    assert data["latency"] >= data["ttft"] > 0
    expected = (Decimal("0.00000015") * data["prompt_tokens"]
                + Decimal("0.0000006") * data["completion_tokens"])
    assert Decimal(data["cost"]) == pytest.approx(expected, rel=Decimal("1e-6"))
    table = run(fake, "models", "test", "openai/gpt-4o-mini")
    assert "TTFT" in table.stderr and "cost $" in table.stderr


def test_models_test_unknown_model_is_exit_5_before_any_call(fake) -> None:
    before = fake.request_count
    r = CliRunner().invoke(cli, ["models", "test", "openai/gpt-4o-mimi"],
                           env={"OPENROUTER_API_KEY": KEY})
    assert r.exit_code == 5
    assert fake.request_count == before


def test_benchmark_compares_models_and_reports_failures(fake) -> None:
    fake.fail("openai/gpt-4o", Fault.server_error(503))
    r = run(fake, "models", "benchmark", "openai/gpt-4o-mini", "google/gemini-2.5-flash",
            "openai/gpt-4o", "--runs", "2", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["model"]: row for row in json.loads(r.stdout)}
    assert rows["openai/gpt-4o-mini"]["ok"] == 2
    assert rows["openai/gpt-4o-mini"]["latency_p50"] > 0
    assert Decimal(rows["google/gemini-2.5-flash"]["cost_per_call"]) > 0
    assert rows["openai/gpt-4o"]["ok"] == 0 and rows["openai/gpt-4o"]["errors"]


def test_health_checks_api_credits_and_ledger(fake) -> None:
    r = run(fake, "health", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["ok"] is True
    assert {c["check"].split()[0] for c in data["checks"]} >= {"api", "credits", "ledger", "router"}
    assert data["router"]["overall"] == "ok" and data["router"]["breakers"] == []
    fake.fail("/credits", Fault.server_error(500))
    r = run(fake, "health")
    assert r.exit_code == 4 and "FAIL" in r.stdout


def test_health_probe_flags_a_failing_model(fake) -> None:
    fake.fail("openai/gpt-4o", Fault.server_error(503))
    env = {"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": KEY,
           "ORROUTE_FALLBACKS": "openai/gpt-4o-mini,openai/gpt-4o"}
    r = CliRunner().invoke(cli, ["health", "--probe", "--json"], env=env)
    assert r.exit_code == 4
    data = json.loads(r.stdout)
    assert data["models"] == {"openai/gpt-4o-mini": "ok", "openai/gpt-4o": "failing"}


def test_models_list_live_reads_the_endpoint_catalog(fake) -> None:
    fake.add_model("acme/live-only-1", prompt_price="0.000002", completion_price="0.000008")
    r = run(fake, "models", "list", "--live", "--json", "--search", "live-only")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["id"] for row in rows] == ["acme/live-only-1"]
    shown = run(fake, "models", "show", "acme/live-only-1", "--live", "--json")
    assert shown.exit_code == 0, shown.output
    assert "acme/live-only-1" in shown.stdout and KEY not in shown.output
    # The bundled snapshot does not know it: without --live it is an unknown model.
    assert run(fake, "models", "show", "acme/live-only-1").exit_code == 5


def test_models_list_live_unreachable_is_one_line_error() -> None:
    env = {"OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1", "OPENROUTER_API_KEY": KEY}
    r = CliRunner().invoke(cli, ["models", "list", "--live"], env=env)
    assert r.exit_code == 4
    assert "cannot fetch the live catalog" in r.output
    assert "Traceback" not in r.output and KEY not in r.output


def test_health_router_line_names_every_open_breaker() -> None:
    from orroute._cli.account import _router_line

    h = {"overall": "degraded", "models": {}, "breakers": [
        {"key": "provider:Together", "kind": "provider", "name": "Together", "state": "open",
         "retry_in": 12.4, "consecutive_failures": 5, "times_opened": 1},
        {"key": "model:test/a", "kind": "model", "name": "test/a", "state": "half_open",
         "retry_in": 0.0, "consecutive_failures": 0, "times_opened": 1}]}
    assert _router_line(h) == "degraded: provider:Together open (12s), model:test/a half_open"
    assert _router_line({"overall": "ok", "breakers": []}) == "ok"
