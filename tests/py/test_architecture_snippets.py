"""The architecture document's snippets ("Basic API Manager Usage", "Using the Router System")
run as written, adapted only for names: ``src.api_integrations`` / ``src.api_router`` are
``orroute``, the models are ones the catalog prices, and each provider's ``base_url`` points at an
offline fake (a FakeOpenRouter for OpenRouter, another one speaking chat completions for OpenAI,
FakeAnthropic for Anthropic). Everything runs on the one engine: failover between providers,
exact per-provider cost, the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from orroute import APIConfig, APIManager, APIRouter, ProviderType
from orroute.testing import FakeAnthropic, FakeOpenRouter, Fault

OR_KEY = "sk-or-v1-snippets-0123456789abcdef0123456789abcdef"
OAI_KEY = "sk-proj-snippets-0123456789abcdef0123456789"
ANT_KEY = "sk-ant-api03-snippets-0123456789abcdef"


@pytest.fixture(name="fakes")
def fakes_fixture() -> Iterator[dict[str, Any]]:
    with FakeOpenRouter(api_key=OR_KEY) as orf, FakeOpenRouter(["gpt-4o-mini"], api_key=OAI_KEY) as oai, \
            FakeAnthropic(api_key=ANT_KEY) as ant:
        yield {"openrouter": orf, "openai": oai, "anthropic": ant}


def test_basic_api_manager_usage(fakes: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> Any:
        # Create API manager
        api_manager = APIManager()

        # Configure OpenRouter
        openrouter_config = APIConfig(
            provider=ProviderType.OPENROUTER,
            api_key=OR_KEY,
            model="openai/gpt-4o-mini",
            temperature=0.7,
            max_tokens=500,
            base_url=fakes["openrouter"].base_url,
        )

        # Register the provider
        api_manager.register_provider(openrouter_config)

        # Make a request
        messages = [
            {"role": "user", "content": "Hello, world!"}
        ]

        response = await api_manager.chat_completion(messages)
        if response.success:
            content = response.data.get("choices", [{}])[0].get("message", {}).get("content")
            print(f"Response: {content}")
            print(f"Cost: ${response.cost:.6f}")
            print(f"Tokens used: {response.tokens_used}")
        return api_manager, response

    api_manager, response = asyncio.run(main())
    out = capsys.readouterr().out
    assert response.success and "Response: " in out and "Tokens used: " in out
    sent = fakes["openrouter"].last_request.json
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 500  # the config's settings
    assert response.tokens_used == response.data["usage"]["total_tokens"] > 0
    assert response.cost == api_manager.manager.spent() > 0  # the engine's ledger settled it
    assert f"Cost: ${response.cost:.6f}" in out
    assert response.data["routing_info"]["provider_used"] == "openrouter"
    assert repr(openrouter_config := APIConfig(provider="openrouter", api_key=OR_KEY)).count(OR_KEY) == 0
    assert openrouter_config.provider is ProviderType.OPENROUTER


def _router(fakes: dict[str, Any], **kw: Any) -> APIRouter:
    # Create router
    router = APIRouter(**kw)

    # Register providers
    router.register_provider(APIConfig(
        provider=ProviderType.OPENROUTER,
        api_key=OR_KEY,
        model="openai/gpt-4o-mini",
        base_url=fakes["openrouter"].base_url,
    ))

    router.register_provider(APIConfig(
        provider=ProviderType.OPENAI,
        api_key=OAI_KEY,
        model="gpt-4o-mini",
        base_url=fakes["openai"].base_url,
    ))
    return router


def test_using_the_router_system(fakes: dict[str, Any], capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path) -> None:
    router = _router(fakes, ledger=str(tmp_path / "ledger.sqlite3"))

    async def main() -> Any:
        # Route a request intelligently
        messages = [{"role": "user", "content": "Write a poem about AI"}]
        response = await router.route_request(messages)

        print(f"Provider used: {response.data['routing_info']['provider_used']}")
        print(f"Response: {response.data['choices'][0]['message']['content']}")
        return response

    first = asyncio.run(main())
    assert "Provider used: openrouter" in capsys.readouterr().out
    # OpenRouter goes down: the same model answers from OpenAI, priced at OpenAI's own prices
    fakes["openrouter"].fail("*", Fault.server_error(503))
    second = asyncio.run(main())
    assert "Provider used: openai" in capsys.readouterr().out
    assert second.success and second.data["routing_info"]["model_used"] == "openai/gpt-4o-mini"
    assert second.data["routing_info"]["provider_model"] == "gpt-4o-mini"
    sent = fakes["openai"].last_request
    assert sent.json["model"] == "gpt-4o-mini" and sent.headers["authorization"] == f"Bearer {OAI_KEY}"
    answered = [r for r in router.manager.cost_tracker.usage_history() if r.outcome == "ok"]
    rows = sorted(answered, key=lambda r: r.id)[-2:]  # OpenRouter's 503s are rows at cost 0
    assert [r.tags["provider"] for r in rows] == ["openrouter", "openai"]
    assert [r.cost for r in rows] == [first.cost, second.cost]
    u = second.data["usage"]
    # gpt-4o-mini at OpenAI: $0.15 / $0.60 per million tokens (the bundled LiteLLM prices)
    assert second.cost == (Decimal("0.15") * u["prompt_tokens"]
                           + Decimal("0.60") * u["completion_tokens"]) / 1_000_000


def test_a_failed_request_is_an_unsuccessful_response(fakes: dict[str, Any]) -> None:
    router = _router(fakes)
    for f in (fakes["openrouter"], fakes["openai"]):
        f.fail("*", Fault.status_error(400, "bad request"))
    response = asyncio.run(router.route_request("hi"))
    assert not response.success and response.error and response.data == {}
    assert OR_KEY not in response.error and OAI_KEY not in response.error


def test_router_strategy_balances_the_providers_serving_one_model(fakes: dict[str, Any]) -> None:
    router = _router(fakes, strategy="round_robin")
    used = [asyncio.run(router.route_request("hi")).data["routing_info"]["provider_used"]
            for _ in range(10)]
    assert used.count("openrouter") == 5 and used.count("openai") == 5


def test_anthropic_registered_next_to_openrouter(fakes: dict[str, Any]) -> None:
    manager = APIManager()
    manager.register_provider(APIConfig(provider=ProviderType.OPENROUTER, api_key=OR_KEY,
                                        model="anthropic/claude-sonnet-4.5", max_tokens=50,
                                        base_url=fakes["openrouter"].base_url))
    manager.register_provider(APIConfig(provider=ProviderType.ANTHROPIC, api_key=ANT_KEY,
                                        model="claude-sonnet-4-5",
                                        base_url=fakes["anthropic"].base_url))
    fakes["openrouter"].fail("*", Fault.server_error(503))
    response = asyncio.run(manager.chat_completion("Hello"))
    assert response.success and response.provider == "anthropic"
    assert fakes["anthropic"].last_request.headers["x-api-key"] == ANT_KEY
