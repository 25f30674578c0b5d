"""Learned routing: the public API of orroute.routing (fit/predict/route/update/save/load) and a
held-out check on the bundled RouterBench outcomes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import orroute
from orroute.routing import LearnedRouter, load_outcomes, prompt_features, prompt_stats


def _toy() -> tuple[list[str], dict[str, list[float | None]], dict[str, list[float | None]]]:
    prompts, cheap, strong = [], [], []
    for i in range(60):
        easy = i % 2 == 0
        prompts.append(
            f"What is {i} plus {i + 1}?"
            if easy
            else f"Write a detailed essay comparing philosopher {i} with Kant, step by step."
        )
        cheap.append(1.0 if easy else 0.0)
        strong.append(1.0)
    scores = {"cheap": cheap, "strong": strong}
    costs = {"cheap": [0.0001] * 60, "strong": [0.002] * 60}
    return prompts, scores, costs


@pytest.fixture(scope="module")
def toy_router() -> LearnedRouter:
    prompts, scores, costs = _toy()
    return LearnedRouter.fit(prompts, scores, costs, hash_bits=14, epochs=10, learning_rate=0.5)


def test_predict_gives_a_probability_per_model(toy_router: LearnedRouter) -> None:
    p = toy_router.predict("What is 3 plus 4?")
    assert set(p) == {"cheap", "strong"}
    assert all(0.0 < v < 1.0 for v in p.values())
    hard = toy_router.predict("Write a detailed essay comparing Hume with Kant, step by step.")
    assert p["cheap"] > hard["cheap"] + 0.2


def test_route_trades_success_for_cost(toy_router: LearnedRouter) -> None:
    easy, hard = "What is 3 plus 4?", "Write a detailed essay comparing Hume with Kant, step by step."
    assert toy_router.route(easy, cost_weight=100.0) == "cheap"
    assert toy_router.route(hard, cost_weight=100.0) == "strong"
    assert toy_router.route(hard, cost_weight=0.0) == "strong"
    assert toy_router.route_threshold(easy, 0.5) == "cheap"
    with pytest.raises(orroute.InvalidArgumentError):
        toy_router.route(easy, cost_weight=-1.0)


def test_update_moves_predictions_without_refit() -> None:
    prompts, scores, costs = _toy()
    router = LearnedRouter.fit(prompts, scores, costs, hash_bits=14, learning_rate=0.5)
    prompt = "Summarise this legal contract in plain words."
    before = router.predict(prompt)["cheap"]
    for _ in range(30):
        router.update(prompt, "cheap", 0.0)
    assert router.predict(prompt)["cheap"] < before - 0.1
    assert router.row_counts()["cheap"] == 90
    with pytest.raises(orroute.NotFoundInCatalogError):
        router.update(prompt, "unknown-model", 1.0)
    with pytest.raises(orroute.InvalidArgumentError):
        router.update(prompt, "cheap", 1.5)


def test_save_and_load_round_trip(toy_router: LearnedRouter, tmp_path: Path) -> None:
    path = tmp_path / "router.bin"
    toy_router.save(path)
    back = LearnedRouter.load(path)
    assert back.models == toy_router.models
    for prompt in ["What is 1 plus 1?", "Write an essay.", ""]:
        assert back.predict(prompt) == pytest.approx(toy_router.predict(prompt), abs=1e-12)
    (tmp_path / "bad.bin").write_bytes(b"definitely not a router")
    with pytest.raises(orroute.ParseError):
        LearnedRouter.load(tmp_path / "bad.bin")
    (tmp_path / "cut.bin").write_bytes(path.read_bytes()[:100])
    with pytest.raises(orroute.ParseError, match="truncated"):
        LearnedRouter.load(tmp_path / "cut.bin")


def test_version_1_files_still_load_with_their_features() -> None:
    # Written by the version-1 router (no word window: word features read the whole prompt).
    path = Path(__file__).resolve().parents[1] / "data" / "learned_router_v1.bin"
    router = LearnedRouter.load(path)
    assert router.models == ["small", "big"]
    assert router.predict("What is 7+1?") == pytest.approx(
        {"small": 0.977102487813761, "big": 0.9910417533336794}, abs=1e-6)
    long_prompt = "Prove that 2 is prime. " + "x " * 800
    assert router.predict(long_prompt) == pytest.approx(
        {"small": 0.3974203866071808, "big": 0.7567756611553174}, abs=1e-6)


def test_word_window_ignores_few_shot_preambles() -> None:
    question = "Which gas do plants absorb from the air?"
    a = prompt_features("Example: the sky is blue.\n\n" + question, word_window=len(question),
                        char_ngram_min=0, structure=False)
    b = prompt_features("Unrelated words about rivers.\n\n" + question,
                        word_window=len(question), char_ngram_min=0, structure=False)
    assert a == b
    whole = prompt_features("Unrelated words about rivers.\n\n" + question, word_window=0,
                            char_ngram_min=0, structure=False)
    assert whole != b


def test_fit_validates_its_table() -> None:
    prompts, scores, costs = _toy()
    with pytest.raises(orroute.InvalidArgumentError):
        LearnedRouter.fit(prompts, {"a": [1.0]}, None)
    with pytest.raises(orroute.InvalidArgumentError):
        LearnedRouter.fit(prompts, {"a": [2.0] * 60}, None)
    with pytest.raises(orroute.InvalidArgumentError):
        LearnedRouter.fit(prompts, scores, {"other": [0.1] * 60})
    with pytest.raises(orroute.InvalidArgumentError):
        LearnedRouter.fit(prompts, scores, costs, no_such_option=1)


def test_missing_scores_and_costs_are_allowed() -> None:
    prompts, scores, _ = _toy()
    scores["partial"] = [None if i % 3 else 1.0 for i in range(60)]
    router = LearnedRouter.fit(prompts, scores, {"cheap": [0.001] * 60}, hash_bits=12)
    assert router.row_counts()["partial"] == 20
    costs = router.expected_costs("x")
    assert costs["cheap"] == pytest.approx(0.001)
    assert costs["strong"] != costs["strong"]  # NaN: never observed


def test_quality_predictor_maps_router_names_to_catalog_ids(toy_router: LearnedRouter) -> None:
    q = toy_router.as_quality_predictor({"strong": "openai/gpt-4o", "cheap": "mistralai/tiny"})
    assert q.catalog_ids == ["openai/gpt-4o", "mistralai/tiny"]
    assert "openai/gpt-4o" in q
    p = q.predict("What is 3 plus 4?")
    assert p["mistralai/tiny"] == pytest.approx(toy_router.predict("What is 3 plus 4?")["cheap"])
    with pytest.raises(orroute.NotFoundInCatalogError):
        toy_router.as_quality_predictor({"nobody": "a/b"})


def test_features_and_stats_are_deterministic() -> None:
    prompt = "Solve x^2 = 4 step by step and explain why."
    assert prompt_features(prompt) == prompt_features(prompt)
    assert prompt_features(prompt, hash_bits=12) != prompt_features(prompt)
    assert all(i < 2**12 for i, _ in prompt_features(prompt, hash_bits=12))
    s = prompt_stats(prompt)
    assert s.math_cues > 0 and s.multistep_cues > 0
    assert 0.0 <= s.complexity <= 1.0


def test_learned_router_beats_a_random_router_on_held_out_prompts() -> None:
    np = pytest.importorskip("numpy")
    data = load_outcomes("routerbench")
    n = len(data.prompts)
    order = np.random.default_rng(7).permutation(n)
    train, test = order[: int(0.7 * n)], order[int(0.7 * n) :]
    router = LearnedRouter.fit(
        [data.prompts[i] for i in train],
        {m: data.scores[train, j].tolist() for j, m in enumerate(data.models)},
        {m: data.costs[train, j].tolist() for j, m in enumerate(data.models)},
    )
    index = {m: j for j, m in enumerate(data.models)}
    rng = random.Random(7)
    learned_acc = learned_cost = random_acc = random_cost = 0.0
    for i in test:
        j = index[router.route(data.prompts[i], cost_weight=30.0)]
        learned_acc += data.scores[i, j]
        learned_cost += data.costs[i, j]
        k = rng.randrange(len(data.models))
        random_acc += data.scores[i, k]
        random_cost += data.costs[i, k]
    assert learned_acc > random_acc + 0.05 * len(test)
    assert learned_cost < random_cost
