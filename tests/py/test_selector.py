"""orroute.ModelSelector: the plan's API, strategies, constraints, errors, priors and metrics."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute.selector import STRATEGIES, task_types

PLAN_TASK_TYPES = [
    "coding",
    "reasoning",
    "planning",
    "verification",
    "general",
    "computer_use",
    "large_context",
    "bulk_processing",
]


@pytest.fixture(scope="module")
def selector() -> orroute.ModelSelector:
    return orroute.ModelSelector()


def test_models_maps_ids_to_plan_specs(selector: orroute.ModelSelector) -> None:
    spec = selector.models["anthropic/claude-sonnet-4.5"]
    assert "coding" in spec["capabilities"] and "tools" in spec.capabilities
    # (3 x 0.000003 + 0.000015) / 4 x 1000
    assert spec["cost_per_1k"] == Decimal("0.006")
    assert spec["context_window"] == 1_000_000
    assert spec.tier == "flagship"  # $6/M blended
    assert selector.models["openai/gpt-4o-mini"].tier == "standard"  # $0.2625/M


@pytest.mark.parametrize("task_type", PLAN_TASK_TYPES)
def test_select_model_honours_capability_context_and_budget(
    selector: orroute.ModelSelector, task_type: str
) -> None:
    budget = Decimal("0.05")
    model_id = selector.select_model(task_type, 20_000, budget)
    spec = selector.models[model_id]
    assert task_type in spec["capabilities"]
    assert spec["context_window"] >= 20_000
    best = selector.rank(task_type, 20_000, budget, limit=1)[0]
    assert best.model == model_id
    assert best.estimated_cost <= budget
    assert best.reasons and any("estimated cost" in r for r in best.reasons)


def test_every_plan_task_type_is_known() -> None:
    known = task_types()
    for t in PLAN_TASK_TYPES:
        assert known.get(t)


def test_rank_is_sorted_and_strategies_differ(selector: orroute.ModelSelector) -> None:
    ranked = selector.rank("coding", 2000)
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    cheap = selector.rank("coding", 2000, strategy="cost_optimized", limit=1)[0]
    best = selector.rank("coding", 2000, strategy="quality_first", limit=1)[0]
    assert cheap.estimated_cost < best.estimated_cost
    assert best.quality > cheap.quality
    for s in STRATEGIES:
        assert selector.rank("general", 100, strategy=s, limit=1)
    with pytest.raises(orroute.InvalidArgumentError, match="known strategies"):
        selector.rank("general", 100, strategy="yolo")


def test_constraints(selector: orroute.ModelSelector) -> None:
    ranked = selector.rank(
        "general",
        1000,
        allowed_providers=["openai", "anthropic"],
        capabilities=["vision"],
        max_price_per_mtok=5,
        tiers=["standard", "premium"],
        explain=False,
    )
    assert ranked
    for r in ranked:
        spec = selector.models[r.model]
        assert selector.catalog[r.model].provider in {"openai", "anthropic"}
        assert "vision" in spec.capabilities
        assert spec.cost_per_1k * 1000 <= 5
        assert r.tier in {"standard", "premium"}
    free = selector.rank("general", 100, free_only=True, explain=False)
    assert free and all(selector.catalog[r.model].is_free for r in free)
    paid = selector.rank("general", 100, explain=False)
    assert not any(selector.catalog[r.model].is_free for r in paid)
    with pytest.raises(orroute.InvalidArgumentError, match="unknown constraint"):
        selector.rank("general", 100, colour="blue")


def test_no_model_available_names_the_last_constraint(selector: orroute.ModelSelector) -> None:
    with pytest.raises(orroute.NoModelAvailableError, match="budget \\$0.0000001 removed the last"):
        selector.select_model("coding", 50_000, Decimal("0.0000001"))
    with pytest.raises(orroute.NoModelAvailableError, match="context window"):
        selector.select_model("coding", 50_000_000)
    with pytest.raises(orroute.NoModelAvailableError, match="allowed/blocked providers"):
        selector.select_model("general", 10, allowed_providers=["nobody"])


def test_unknown_task_type_lists_the_known_ones(selector: orroute.ModelSelector) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="known task types: general, coding"):
        selector.select_model("dancing", 10)


def test_user_priors_override_the_bundled_table(tmp_path: Path) -> None:
    target = "mistralai/mistral-small-3.2-24b-instruct"
    base = orroute.ModelSelector()
    if target not in base.models:
        target = next(m for m, s in base.models.items() if "coding" in s.capabilities)
    boosted = orroute.ModelSelector(
        priors={target: {"overall": 1.0, "coding": 1.0, "hard_prompts": 1.0, "source": "mine"}}
    )
    assert boosted.models[target].quality == 1.0
    assert boosted.models[target].quality_source == "mine"
    path = tmp_path / "priors.json"
    path.write_text(json.dumps({"models": {target: {"overall": 0.01}}}))
    assert orroute.ModelSelector(priors=path).models[target].quality == 0.01


def test_metrics_and_predictions_feed_the_ranking() -> None:
    sel = orroute.ModelSelector(strategy="quality_first")
    top = sel.select_model("coding", 2000)
    sel.set_metrics(top, available=False)
    assert sel.select_model("coding", 2000) != top
    sel.clear_metrics()
    assert sel.select_model("coding", 2000) == top
    runner_up = sel.rank("coding", 2000, limit=2)[1].model
    predicted = {top: 0.1, runner_up: 1.0}
    assert sel.rank("coding", 2000, predicted_quality=predicted, limit=1)[0].model == runner_up
    with pytest.raises(orroute.NotFoundInCatalogError):
        sel.set_metrics("nope/none", success_rate=0.5)


def test_a_learned_router_plugs_in_as_quality_predictor() -> None:
    from orroute.routing import LearnedRouter

    sel = orroute.ModelSelector(strategy="quality_first")
    top, second = (r.model for r in sel.rank("coding", 2000, limit=2))
    prompts = [f"easy question number {i}" for i in range(40)]
    router = LearnedRouter.fit(prompts, scores={"a": [0.0] * 40, "b": [1.0] * 40})
    sel.set_quality_predictor(router.as_quality_predictor({"a": top, "b": second}))
    assert sel.select_model("coding", 2000) == top  # no prompt: priors only
    ranked = [r.model for r in sel.rank("coding", 2000, prompt="easy question number 7")]
    assert ranked.index(second) < ranked.index(top)  # the prediction reorders the two
    assert sel.select_model("coding", 2000, prompt="easy question number 7") != top
    explained = sel.rank("coding", 2000, prompt="easy question number 7")
    assert any("learned prediction" in r for c in explained if c.model == second for r in c.reasons)
    sel.set_quality_predictor(None)
    assert sel.select_model("coding", 2000, prompt="easy question number 7") == top


def _catalog(models: list[dict]) -> orroute.Catalog:
    base = {
        "context_length": 200_000,
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "supported_parameters": ["tools", "max_tokens"],
    }
    return orroute.Catalog.from_json(json.dumps({"data": [{**base, **m} for m in models]}))


def test_rank_limit_is_the_head_of_the_full_ranking_even_among_ties() -> None:
    # Eight copies of four price points: many exact ties in score and cost, broken by id.
    prices = [("0.000001", "0.000002"), ("0.000002", "0.000004"), ("0.0000005", "0.000001"),
              ("0.000003", "0.000015")]
    models = [
        {"id": f"p{k}/model-{i}", "pricing": {"prompt": p, "completion": c}}
        for i in range(8)
        for k, (p, c) in enumerate(prices)
    ]
    sel = orroute.ModelSelector(_catalog(models))
    full = [r.model for r in sel.rank("general", 1000, explain=False)]
    assert len(full) == len(models)
    for k in (1, 2, 5, 17, len(models), len(models) + 3):
        assert [r.model for r in sel.rank("general", 1000, explain=False, limit=k)] == full[:k]
    assert sel.select_model("general", 1000) == full[0]
    # equal scores and costs come out in id order
    tied = [m for m in full if m.startswith("p2/")]
    assert tied == sorted(tied)


def test_budget_equal_to_the_estimate_keeps_the_model_one_nano_less_drops_it() -> None:
    sel = orroute.ModelSelector(
        _catalog([{"id": "a/only", "pricing": {"prompt": "0.0000001", "completion": "0.0000003"}}]),
        expected_output_tokens=1000,
    )
    est = sel.rank("general", 3333, explain=False)[0].estimated_cost
    assert est == Decimal("0.0000001") * 3333 + Decimal("0.0000003") * 1000
    assert sel.select_model("general", 3333, budget=est) == "a/only"
    with pytest.raises(orroute.NoModelAvailableError, match="budget"):
        sel.select_model("general", 3333, budget=est - Decimal("0.000000001"))


def test_long_prompts_are_priced_at_the_tier_that_applies_to_them() -> None:
    # a/tiered is cheapest below 128k prompt tokens and dearest above (its override doubles it).
    sel = orroute.ModelSelector(
        _catalog([
            {"id": "a/tiered", "pricing": {"prompt": "0.0000005", "completion": "0.000003",
                                           "overrides": [{"min_prompt_tokens": 128000,
                                                          "prompt": "0.000004",
                                                          "completion": "0.00002"}]}},
            {"id": "b/flat", "pricing": {"prompt": "0.000001", "completion": "0.000006"}},
        ]),
        strategy="cost_optimized",
    )
    assert sel.select_model("general", 1000) == "a/tiered"
    assert sel.select_model("general", 150_000) == "b/flat"
    long = {r.model: r.estimated_cost for r in sel.rank("general", 150_000, explain=False)}
    out = sel.rank("general", 0, explain=False)[0]  # the task type's expected output tokens
    per_out = out.estimated_cost / Decimal("0.000003")
    assert long["a/tiered"] == Decimal("0.000004") * 150_000 + Decimal("0.00002") * per_out


def test_a_model_marked_unavailable_is_skipped_until_cleared() -> None:
    sel = orroute.ModelSelector(
        _catalog([
            {"id": "a/cheap", "pricing": {"prompt": "0.0000001", "completion": "0.0000002"}},
            {"id": "b/dear", "pricing": {"prompt": "0.00001", "completion": "0.00002"}},
        ]),
        strategy="cost_optimized",
    )
    assert sel.select_model("general", 100) == "a/cheap"
    sel.set_metrics("a/cheap", available=False)
    assert sel.select_model("general", 100) == "b/dear"
    sel.clear_metrics()
    assert sel.select_model("general", 100) == "a/cheap"
