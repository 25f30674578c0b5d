"""`orroute models list|show`: the bundled catalog, filtered and sorted, as tables and JSON."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

import orroute
from orroute.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_list_shows_the_whole_catalog_by_default() -> None:
    r = run("models", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == len(orroute.Catalog.bundled())
    assert len(rows) > 300
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids)


def test_list_filters_combine() -> None:
    rows = json.loads(run("models", "list", "--json", "-c", "tools", "--max-price", "1",
                          "--min-context", "100000", "-p", "openai").stdout)
    assert rows
    for row in rows:
        assert row["provider"] == "openai"
        assert "tools" in row["capabilities"]
        assert Decimal(row["prompt_per_mtok"]) <= 1
        assert row["context_length"] >= 100_000


def test_free_and_paid_partition_the_priced_models() -> None:
    free = json.loads(run("models", "list", "--json", "--free").stdout)
    paid = json.loads(run("models", "list", "--json", "--paid").stdout)
    assert free and paid
    assert all(Decimal(r["prompt_per_mtok"]) == 0 for r in free)
    assert not {r["id"] for r in free} & {r["id"] for r in paid}


def test_sort_by_price_and_context() -> None:
    by_price = json.loads(run("models", "list", "--json", "--paid", "--sort", "price",
                              "-n", "20").stdout)
    totals = [Decimal(r["prompt_per_mtok"]) + Decimal(r["completion_per_mtok"])
              for r in by_price]
    assert totals == sorted(totals)
    by_ctx = json.loads(run("models", "list", "--json", "--sort", "context", "-n", "5").stdout)
    ctx = [r["context_length"] for r in by_ctx]
    assert ctx == sorted(ctx, reverse=True) and len(ctx) == 5


def test_table_output_names_models_and_prices() -> None:
    r = run("models", "list", "--search", "gpt-4o-mini", "--provider", "openai")
    assert r.exit_code == 0
    assert "openai/gpt-4o-mini" in r.stdout
    assert "$0.15" in r.stdout  # $0.15 per million prompt tokens


def test_show_prices_per_million_and_capabilities() -> None:
    r = run("models", "show", "openai/gpt-4o")
    assert r.exit_code == 0, r.output
    assert "$2.5" in r.stdout and "$10" in r.stdout
    data = json.loads(run("models", "show", "openai/gpt-4o", "--json").stdout)
    assert data["id"] == "openai/gpt-4o"
    assert Decimal(data["prices_per_token"]["prompt"]) == Decimal("0.0000025")
    assert "tools" in data["capabilities"]


@pytest.mark.parametrize("args", [["models", "show", "openai/gpt-4o-mimi"],
                                  ["models", "show", "gpt4o-mini"]])
def test_unknown_model_is_one_line_exit_5_with_suggestions(args) -> None:
    r = run(*args)
    assert r.exit_code == 5
    assert r.stderr.count("\n") == 1
    assert "unknown model" in r.stderr and "did you mean" in r.stderr


def test_recommend_ranks_with_reasons_and_other_strategies() -> None:
    r = run("models", "recommend", "--task", "code-analysis", "--budget", "0.01", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["task_type"] == "coding"  # the reference system's name maps to the selector's
    ranked = data["ranked"]
    assert 1 <= len(ranked) <= 5
    assert all(Decimal(x["estimated_cost"]) <= Decimal("0.01") for x in ranked)
    assert [x["score"] for x in ranked] == sorted((x["score"] for x in ranked), reverse=True)
    assert ranked[0]["reasons"]
    assert set(data["other_strategies"]) == {"cost_optimized", "performance", "quality_first"}
    best = orroute.ModelSelector().select_model("coding", 1000, "0.01")
    assert ranked[0]["model"] == best


def test_recommend_table_explains_the_choice() -> None:
    r = run("models", "recommend", "--task", "reasoning", "--strategy", "quality_first", "-n", "3")
    assert r.exit_code == 0
    assert "why " in r.stdout and "score" in r.stdout
    assert "cost_optimized:" in r.stdout


def test_recommend_errors_are_one_line() -> None:
    r = run("models", "recommend", "--task", "dancing")
    assert r.exit_code == 2 and "task type" in r.stderr and r.stderr.count("\n") == 1
    r = run("models", "recommend", "--task", "coding", "--budget", "0.0000000001")
    assert r.exit_code == 1 and "budget" in r.stderr and r.stderr.count("\n") == 1


def test_sort_by_quality_uses_the_selectors_priors() -> None:
    rows = json.loads(run("models", "list", "--json", "--paid", "--sort", "quality",
                          "-n", "10").stdout)
    q = [r["quality"] for r in rows]
    assert q == sorted(q, reverse=True) and q[0] > 0.5
