"""Bad input gets a clear error before anything is sent (issue #17 item 5)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute.testing import FakeOpenRouter

KEY = "sk-or-v1-bad-input-test-not-a-real-key"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake() -> FakeOpenRouter:
    with FakeOpenRouter(api_key=KEY) as f:
        yield f


@pytest.mark.parametrize("budget", ["five", {"limit": "ten dollars"}])
def test_budget_that_is_not_an_amount(budget: object) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match="amount in USD"):
        orroute.AIModelManager(api_key=KEY, budget=budget, refresh_catalog=False)


@pytest.mark.parametrize(("typo", "meant"), [("codng", "coding"), ("reasonin", "reasoning"),
                                             ("sumarization", "summarization")])
def test_task_type_typo_names_the_type_meant(typo: str, meant: str) -> None:
    with pytest.raises(orroute.InvalidArgumentError, match=f"did you mean '{meant}'"):
        orroute.Task(type=typo, messages="hi")


@pytest.mark.parametrize("own", ["coding", "my_pipeline_step", "qa"])
def test_known_and_own_task_types_are_accepted(own: str) -> None:
    assert orroute.Task(type=own, messages="hi").type == own


@pytest.mark.parametrize(("field", "value", "match"), [
    ("max_tokens", -1, "'max_tokens' must be a whole number from 1"),
    ("temperature", 3, "'temperature' must be a number between 0 and 2"),
    ("temperature", -0.5, "'temperature' must be a number between 0 and 2"),
    ("top_p", 1.2, "'top_p' must be a number between 0 and 1"),
])
def test_sampling_and_output_bounds(fake: FakeOpenRouter, field: str, value: float,
                                    match: str) -> None:
    fake.reset()
    client = orroute.OpenRouter(api_key=KEY, base_url=fake.base_url)
    with pytest.raises(orroute.InvalidArgumentError, match=match):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, **{field: value})
    assert fake.request_count == 0


def test_unknown_model_in_selector_suggests_ids() -> None:
    with pytest.raises(orroute.NotFoundInCatalogError, match="did you mean: openai/gpt-4o-mini"):
        orroute.ModelSelector().models["openai/gpt-4o-mni"]


def test_no_key_for_openrouter_names_the_variable_and_sim(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./.env
    client = orroute.OpenRouter()
    with pytest.raises(orroute.AuthenticationError) as info:
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
    assert "OPENROUTER_API_KEY" in str(info.value) and "orroute sim" in str(info.value)
    assert info.value.status_code is None  # nothing was sent


def test_no_key_is_fine_for_a_server_of_your_own(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with FakeOpenRouter() as open_fake:  # accepts any or no key
        client = orroute.OpenRouter(base_url=open_fake.base_url)
        assert client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI).choices


@pytest.mark.parametrize("kind", ["task budget", "downgrade budget"])
def test_budget_too_small_for_any_model_names_the_cheapest(fake: FakeOpenRouter,
                                                           kind: str) -> None:
    fake.reset()
    if kind == "task budget":
        manager = orroute.AIModelManager(api_key=KEY, base_url=fake.base_url,
                                         refresh_catalog=False)
        task = orroute.Task(messages="hello", budget="0.00000001")
    else:
        manager = orroute.AIModelManager(
            api_key=KEY, base_url=fake.base_url, refresh_catalog=False,
            budget={"limit": "0.0000001", "policy": "downgrade"})
        task = orroute.Task(messages="hello")
    with pytest.raises(orroute.BudgetExceededError) as info:
        manager.execute_task_sync(task)
    message = str(info.value)
    assert "the budget is too small for every candidate model" in message
    cheapest = re.search(r"the cheapest, (\S+), may cost up to \$([0-9.]+)", message)
    assert cheapest is not None and Decimal(cheapest.group(2)) > 0
    # it is the cheapest of the catalog's estimates for this request among those tried
    assert manager.cost_tracker.estimate_cost(task, model=cheapest.group(1)) <= Decimal(
        cheapest.group(2))
    assert fake.request_count == 0
