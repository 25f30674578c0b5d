"""Provider settings from TOML, the environment and .env (orroute.provider_config)."""

from __future__ import annotations

import textwrap

import pytest

from orroute.config import ConfigError, load_settings
from orroute.provider_config import load_providers, parse_providers

ANT = "sk-ant-api03-0123456789abcdefghij"
OR = "sk-or-v1-test-key-not-real-mnop"  # shaped like an OpenRouter key, plainly fake

TOML = textwrap.dedent(
    """
    strategy = "balanced"

    [providers.openrouter]
    priority = 0

    [providers.anthropic]
    priority = 1
    default_max_tokens = 2048
    headers = { "anthropic-beta" = "prompt-caching-2024-07-31" }

    [providers.azure-eu]
    kind = "azure"
    base_url = "https://my-resource.openai.azure.com"
    api_version = "2024-10-21"
    api_key_env = "AZURE_EU_KEY"
    priority = 2

    [providers.local]
    kind = "ollama"
    priority = 3

    [model_map."anthropic/claude-sonnet-4.5"]
    anthropic = "claude-sonnet-4-5-20250929"

    [model_groups."openai/gpt-4o"]
    strategy = "weighted"
    failover = "gradual"
    ramp_seconds = 120
    deployments = [{ provider = "openrouter", weight = 3 }, { provider = "azure-eu", weight = 1 }]
    """
)


def test_toml_providers_with_keys_from_env_and_dotenv(tmp_path):
    (tmp_path / "orroute.toml").write_text(TOML)
    (tmp_path / ".env").write_text(
        f"ANTHROPIC_API_KEY={ANT}\nAZURE_EU_KEY=k1,k2-0123456789abcdef\n"
    )
    env = {"OPENROUTER_API_KEY": OR, "ANTHROPIC_API_KEY": "sk-ant-from-the-environment-wins"}
    settings = load_settings(
        config_file=tmp_path / "orroute.toml", env_file=tmp_path / ".env", env=env
    )
    assert settings.strategy == "balanced"  # load_settings accepts the provider tables
    cfg = load_providers(settings, env=env)
    assert [p.name for p in cfg.providers] == ["openrouter", "anthropic", "azure-eu", "local"]
    ant = cfg.provider("anthropic")
    assert ant.kind == "anthropic" and ant.api_keys == ("sk-ant-from-the-environment-wins",)
    assert ant.headers == (("anthropic-beta", "prompt-caching-2024-07-31"),)
    assert ant.default_max_tokens == 2048
    azure = cfg.provider("azure-eu")
    assert azure.api_keys == ("k1", "k2-0123456789abcdef") and azure.key_source == "AZURE_EU_KEY"
    assert cfg.provider("local").api_keys == ()
    assert cfg.model_map["anthropic/claude-sonnet-4.5"]["anthropic"] == "claude-sonnet-4-5-20250929"
    (group,) = cfg.groups
    assert (group.strategy, group.failover, group.ramp_seconds) == ("weighted", "gradual", 120.0)
    assert group.deployments == (("openrouter", 3), ("azure-eu", 1))
    assert ANT not in repr(cfg) and "sk-ant-from" not in repr(cfg)
    assert ant.to_core().kind == "anthropic"


def test_environment_only_providers():
    cfg = parse_providers(
        {},
        {
            "ORROUTE_PROVIDERS": "openrouter, anthropic",
            "OPENROUTER_API_KEY": OR,
            "ANTHROPIC_API_KEY": ANT,
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/v1",
        },
    )
    assert [p.name for p in cfg.providers] == ["openrouter", "anthropic"]
    assert cfg.provider("anthropic").base_url == "http://127.0.0.1:9/v1"
    assert cfg.provider("openrouter").masked_keys == ["sk-or-v1-...mnop"]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ({"providers": {"x": {"kind": "bedrock"}}}, "unknown provider kind"),
        ({"providers": {"anthropic": {"api_key": ANT}}}, "api_key_env"),
        ({"providers": {"azure": {}}}, "base_url is required"),
        ({"providers": {"anthropic": {"base_url": "ftp://x"}}}, "http"),
        ({"providers": {"anthropic": {"headers": {"X": "a\nb"}}}}, "header"),
        ({"providers": {"anthropic": {"weight": "3"}}}, "weight must be an integer"),
        ({"providers": {"anthropic": {}}, "model_map": {"m": {"nope": "x"}}}, "unknown provider"),
        (
            {
                "providers": {"anthropic": {}},
                "model_groups": {
                    "m": {"strategy": "random", "deployments": [{"provider": "anthropic"}]}
                },
            },
            "random",
        ),
    ],
    ids=["kind", "key-in-toml", "azure-url", "scheme", "header", "weight", "map", "strategy"],
)
def test_invalid_provider_settings_name_the_table(toml, needle):
    with pytest.raises(ConfigError) as info:
        parse_providers(toml, {"ANTHROPIC_API_KEY": ANT})
    assert needle in str(info.value)
    assert ANT not in str(info.value)
