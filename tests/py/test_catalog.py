"""orroute.Catalog: the bundled snapshot, lookup, filtering and exact pricing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import orroute

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def catalog() -> orroute.Catalog:
    return orroute.Catalog.bundled()


def test_bundled_catalog_is_loaded_once_and_complete(catalog: orroute.Catalog) -> None:
    assert orroute.Catalog.bundled() is catalog
    assert len(catalog) == 414
    assert catalog.warnings == []
    ids = [m.id for m in catalog]
    assert len(ids) == len(set(ids)) == 414
    assert "openai/gpt-4o-mini" in catalog
    assert "openai/none" not in catalog


def test_lookup_by_id(catalog: orroute.Catalog) -> None:
    m = catalog["anthropic/claude-sonnet-4.5"]
    assert m.id == "anthropic/claude-sonnet-4.5"
    assert m.provider == "anthropic"
    assert m.context_length == 1_000_000
    assert m.max_completion_tokens == 64000
    assert m.pricing.prompt == Decimal("0.000003")
    assert m.pricing.base.input_cache_write_1h == Decimal("0.000006")
    assert m.pricing.tiers[0].min_prompt_tokens == 200000
    assert "tools" in m.capabilities
    assert catalog.get("nope/none") is None
    with pytest.raises(orroute.NotFoundInCatalogError, match="unknown model 'nope/none'"):
        catalog["nope/none"]
    with pytest.raises(KeyError):
        catalog["nope/none"]


@pytest.mark.parametrize(
    ("model", "kwargs", "expected"),
    [
        ("openai/gpt-4o-mini", {"prompt_tokens": 1000, "completion_tokens": 500}, "0.00045"),
        (
            "openai/gpt-4o-mini",
            {"prompt_tokens": 1000, "completion_tokens": 500, "cached_tokens": 400},
            "0.00042",
        ),
        ("qwen/qwen3-max", {"prompt_tokens": 31999, "completion_tokens": 1000}, "0.02885922"),
        ("qwen/qwen3-max", {"prompt_tokens": 32000, "completion_tokens": 1000}, "0.05772"),
        ("qwen/qwen3-max", {"prompt_tokens": 128000, "completion_tokens": 1000}, "0.25935"),
        (
            "anthropic/claude-sonnet-4.5",
            {
                "prompt_tokens": 10000,
                "completion_tokens": 1000,
                "cached_tokens": 6000,
                "cache_write_tokens": 2000,
                "web_searches": 2,
            },
            "0.0503",
        ),
        (
            "perplexity/sonar-deep-research",
            {
                "prompt_tokens": 1000,
                "completion_tokens": 5000,
                "reasoning_tokens": 4000,
                "web_searches": 3,
            },
            "0.037",
        ),
        ("liquid/lfm-2.5-2.6b:free", {"prompt_tokens": 10**6, "completion_tokens": 10**4}, "0"),
        (
            "deepseek/deepseek-v4-pro",
            {"prompt_tokens": 1000, "completion_tokens": 1000, "utc_hhmm": 200},
            "0.00528",
        ),
    ],
    ids=[
        "plain",
        "cache-read",
        "below-tier",
        "tier-32k",
        "tier-128k",
        "cache-write-and-search",
        "internal-reasoning",
        "free",
        "time-window",
    ],
)
def test_cost_matches_hand_computed_values(
    catalog: orroute.Catalog, model: str, kwargs: dict[str, int], expected: str
) -> None:
    cost = catalog.cost(model, **kwargs)
    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected)


def test_audio_and_image_tokens_are_billed_at_their_prices(catalog: orroute.Catalog) -> None:
    # 400 x 0.0000025 + 600 x 0.000032 (audio) + 100 x 0.00001 + 400 x 0.000064 (audio_output)
    assert catalog.cost(
        "openai/gpt-audio",
        prompt_tokens=1000,
        completion_tokens=500,
        audio_tokens=600,
        audio_output_tokens=400,
    ) == Decimal("0.0468")
    with pytest.raises(orroute.InvalidArgumentError, match="part of the completion tokens"):
        catalog.cost("openai/gpt-audio", prompt_tokens=1, completion_tokens=1, image_output_tokens=2)


def test_usage_cost_reads_every_breakdown_of_a_usage_object(catalog: orroute.Catalog) -> None:
    from orroute.types import CompletionUsage

    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 1500,
        "total_tokens": 3500,
        "cost": 0.0399,
        "prompt_tokens_details": {"cached_tokens": 500, "cache_write_tokens": 0,
                                  "audio_tokens": 300, "video_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 200, "image_tokens": 1290,
                                      "audio_tokens": 0},
        "server_tool_use_details": {"web_search_requests": 1},
    }
    # 1200 x 0.0000003 + 500 x 0.00000003 + 300 x 0.000001 + 10 x 0.0000025 + 200 x 0.0000025
    # + 1290 x 0.00003 + 1 search x 0.014
    expected = Decimal("0.0539")
    assert catalog.usage_cost("google/gemini-2.5-flash-image", usage) == expected
    assert catalog.usage_cost("google/gemini-2.5-flash-image", CompletionUsage(usage)) == expected
    plain = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": None}
    assert catalog.usage_cost("openai/gpt-4o-mini", plain) == Decimal("0.00045")


def test_router_with_dynamic_price_cannot_be_priced(catalog: orroute.Catalog) -> None:
    assert catalog["openrouter/auto"].pricing.dynamic
    with pytest.raises(orroute.InvalidArgumentError, match="dynamic price"):
        catalog.cost("openrouter/auto", prompt_tokens=10, completion_tokens=10)


def test_inconsistent_counts_are_rejected(catalog: orroute.Catalog) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="part of the completion tokens"):
        catalog.cost("openai/gpt-4o-mini", prompt_tokens=1, completion_tokens=1, reasoning_tokens=2)
    with pytest.raises(orroute.InvalidArgumentError, match="prompt_tokens must be >= 0"):
        catalog.cost("openai/gpt-4o-mini", prompt_tokens=-1, completion_tokens=1)
    with pytest.raises(orroute.NotFoundInCatalogError):
        catalog.cost("nope/none", prompt_tokens=1, completion_tokens=1)


def test_worst_case_cost_for_reservations(catalog: orroute.Catalog) -> None:
    # 1000 x 0.00000015 + 16384 (the model's output cap) x 0.0000006
    assert catalog.worst_case_cost("openai/gpt-4o-mini", prompt_tokens=1000) == Decimal("0.0099804")
    assert catalog.worst_case_cost(
        "openai/gpt-4o-mini", prompt_tokens=1000, max_output_tokens=100
    ) == Decimal("0.00021")


def test_filter(catalog: orroute.Catalog) -> None:
    found = catalog.filter(
        capability=["tools", "vision"],
        max_prompt_price=Decimal(1),
        min_context=100_000,
        provider="openai",
        free=False,
    )
    assert found
    for m in found:
        assert m.provider == "openai"
        assert m.pricing.prompt * 1_000_000 <= 1
        assert m.context_length >= 100_000
        assert {"tools", "vision"} <= set(m.capabilities)
        assert not m.is_free
    free = catalog.filter(free=True)
    assert free and all(m.is_free for m in free)
    assert any(m.id.endswith(":free") for m in free)
    with pytest.raises(orroute.InvalidArgumentError, match="unknown capability 'telepathy'"):
        catalog.filter(capability="telepathy")


def test_all_modalities_and_bad_entries_load_with_warnings() -> None:
    cat = orroute.Catalog.load(DATA / "models_all_modalities.json")
    assert len(cat) == 7
    assert cat["acme/image-gen"].context_length == 0
    assert cat["acme/embed-small"].context_length == 0
    assert "embeddings" in cat["acme/embed-small"].capabilities
    assert "audio_output" in cat["acme/voice"].capabilities
    assert cat["acme/chat-1"].max_completion_tokens is None
    warnings = "\n".join(cat.warnings)
    assert "model 'acme/bad-price': pricing.prompt: not a decimal string ('cheap')" in warnings
    assert "model 'acme/bad-context': context_length" in warnings
    assert "entry #10: id: missing" in warnings
    # per-request and per-image fees
    assert cat.cost("acme/chat-1", prompt_tokens=1000, completion_tokens=100, images=2) == Decimal(
        "0.0032"
    )


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"models": []}', '{"error": {"code": 401, "message": "no"}}', "[1, 2"],
    ids=["invalid-json", "no-data", "error-response", "truncated"],
)
def test_not_a_models_response_is_a_parse_error(text: str) -> None:
    with pytest.raises(orroute.ParseError, match="not a models response"):
        orroute.Catalog.from_json(text)


def test_from_json_and_load_agree(tmp_path: Path) -> None:
    doc = {
        "data": [
            {
                "id": "x/y",
                "context_length": 1000,
                "pricing": {"prompt": "0.000001", "completion": "0.000002"},
            }
        ]
    }
    text = json.dumps(doc)
    (tmp_path / "m.json").write_text(text)
    a = orroute.Catalog.from_json(text)
    b = orroute.Catalog.load(tmp_path / "m.json")
    assert [m.id for m in a] == [m.id for m in b] == ["x/y"]
    with pytest.raises(FileNotFoundError):
        orroute.Catalog.load(tmp_path / "missing.json")


@pytest.mark.parametrize("price", ["99999999999999999999", "170141183460469231731", "1000001"])
def test_a_price_too_large_to_multiply_skips_its_entry(price: str) -> None:
    """A hostile catalog's huge price (USD per unit) made worst cases overflow the money type
    (a call of 100 tokens reserved $0): such an entry is skipped, as a negative price is."""
    entry = {"id": "x/huge", "name": "huge", "context_length": 8192,
             "architecture": {"input_modalities": ["text"], "output_modalities": ["text"],
                              "tokenizer": "GPT"},
             "pricing": {"prompt": price, "completion": price}}
    fine = {**entry, "id": "x/fine", "pricing": {"prompt": "1000000", "completion": "0.000002"}}
    c = orroute.Catalog.from_json(json.dumps({"data": [entry, fine]}))
    assert c.get("x/huge") is None
    assert c.worst_case_cost("x/fine", prompt_tokens=100, max_output_tokens=1) == Decimal("100000000.000002")
