"""orroute.config.load_settings: sources, precedence, validation, and the key never shown."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute.config import ConfigError, load_settings, mask_key, parse_env_file

KEY = "sk-or-v1-test-456789abcdef0123456789abcdef"


def test_defaults_without_any_source(tmp_path: Path) -> None:
    s = load_settings(env={"ORROUTE_HOME": str(tmp_path / "h")})
    assert s.api_key is None
    assert s.base_url == "https://openrouter.ai/api/v1"
    # cost optimization is opt-in: true picks the cost_optimized strategy (see test_env_vars.py)
    assert s.fallback_enabled is True and s.cost_optimization is False
    assert s.strategy == "balanced"
    assert s.ledger_path == tmp_path / "h" / "ledger.sqlite3"
    assert s.config_file is None and s.env_file is None
    assert s.sources["api_key"] == "default"


def test_integration_guide_variables_are_read() -> None:
    s = load_settings(env={
        "OPENROUTER_API_KEY": KEY,
        "OPENROUTER_PREFERRED_MODEL": "openai/gpt-4o",
        "OPENROUTER_FALLBACK_ENABLED": "False",
        "OPENROUTER_COST_OPTIMIZATION": "True",
        "OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1/",
        "LOG_LEVEL": "debug",
    }, env_file=False)
    assert s.api_key == KEY
    assert s.preferred_model == "openai/gpt-4o"
    assert s.fallback_enabled is False
    assert s.cost_optimization is True
    assert s.base_url == "http://127.0.0.1:9/api/v1"
    assert s.log_level == "DEBUG"
    assert s.sources["preferred_model"] == "env"
    assert not s.is_openrouter


def test_precedence_override_env_dotenv_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orroute.toml").write_text(
        'strategy = "performance"\nproject = "from-config"\npreferred_model = "a/config"\n'
        'log_level = "ERROR"\n')
    (tmp_path / ".env").write_text(
        "ORROUTE_PROJECT=from-dotenv\nOPENROUTER_PREFERRED_MODEL=a/dotenv\nLOG_LEVEL=INFO\n")
    s = load_settings(env={"OPENROUTER_PREFERRED_MODEL": "a/env", "LOG_LEVEL": "DEBUG"},
                      overrides={"log_level": "CRITICAL"})
    assert s.strategy == "performance"  # config only
    assert s.project == "from-dotenv"  # .env beats the config file
    assert s.preferred_model == "a/env"  # the environment beats .env
    assert s.log_level == "CRITICAL"  # overrides beat everything
    assert s.sources["strategy"].startswith("config (")
    assert s.sources["project"].startswith(".env (")
    assert s.sources["log_level"] == "override"


def test_config_file_budgets_limits_and_fallbacks(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'fallbacks = ["openai/gpt-4o", "openai/gpt-4o-mini"]\npreferred_model = "x/y"\n'
        '[[budgets]]\nlimit = 5.10\nperiod = "daily"\nproject = "p"\npolicy = "downgrade"\n'
        '[[budgets]]\nlimit = "100"\n'
        '[limits."openai/gpt-4o"]\nrequests = 60\noutput_tokens = 1000\n')
    s = load_settings(config_file=cfg, env={}, env_file=False)
    assert [b.limit for b in s.budgets] == [Decimal("5.10"), Decimal(100)]
    assert s.budgets[0].period == "daily" and s.budgets[0].policy == "downgrade"
    assert s.budgets[1].period == "total" and s.budgets[1].project is None
    assert s.limits["openai/gpt-4o"].requests == 60
    assert s.limits["openai/gpt-4o"].input_tokens is None
    assert s.model_order() == ["x/y", "openai/gpt-4o", "openai/gpt-4o-mini"]


def test_fallbacks_disabled_leaves_only_the_preferred_model() -> None:
    s = load_settings(env={"OPENROUTER_PREFERRED_MODEL": "a/b", "ORROUTE_FALLBACKS": "c/d, e/f",
                           "OPENROUTER_FALLBACK_ENABLED": "0"}, env_file=False)
    assert s.fallbacks == ("c/d", "e/f")
    assert s.model_order() == ["a/b"]


def test_orroute_home_from_dotenv_locates_the_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('strategy = "quality_first"\n')
    (tmp_path / ".env").write_text(f"export ORROUTE_HOME='{home}'\n")
    s = load_settings(env={})
    assert s.home == home
    assert s.config_file == home / "config.toml"
    assert s.strategy == "quality_first"


@pytest.mark.parametrize(
    ("env", "config", "message"),
    [
        ({"OPENROUTER_FALLBACK_ENABLED": "maybe"}, "", "OPENROUTER_FALLBACK_ENABLED"),
        ({"ORROUTE_STRATEGY": "fastest"}, "", "expected one of cost_optimized"),
        ({"OPENROUTER_BASE_URL": "openrouter.ai"}, "", "expected an http(s) URL"),
        ({}, "strategy = ", "is not valid TOML"),
        ({}, "stratgey = 'balanced'", "unknown setting 'stratgey'"),
        ({}, "[[budgets]]\nperiod = 'daily'", "missing 'limit'"),
        ({}, "[[budgets]]\nlimit = -1", "expected an amount in USD >= 0"),
        ({}, "[[budgets]]\nlimit = 1\nperiod = 'hourly'", "budgets[0].period"),
        ({}, "[limits.m]\nrpm = 3", "unknown key 'rpm'"),
    ],
    ids=["bool", "strategy", "url", "toml-syntax", "typo", "budget-limit", "budget-negative",
         "budget-period", "limit-key"],
)
def test_bad_values_name_their_source(tmp_path: Path, env, config, message) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env=env, config_file=cfg, env_file=False)


def test_config_error_is_an_orroute_parse_error() -> None:
    assert issubclass(ConfigError, orroute.ParseError)


def test_missing_named_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config_file=tmp_path / "none.toml", env={})
    with pytest.raises(ConfigError, match=".env file not found"):
        load_settings(env_file=tmp_path / "none.env", env={})
    with pytest.raises(ConfigError, match="from ORROUTE_CONFIG"):
        load_settings(env={"ORROUTE_CONFIG": str(tmp_path / "x.toml")}, env_file=False)


def test_env_file_syntax(tmp_path: Path) -> None:
    p = tmp_path / ".env"
    p.write_text(
        "# comment\n\nA=1\nexport B = two words # trailing comment\nC='single # kept'\n"
        'D="line\\nbreak \\"q\\""\nE=\n')
    assert parse_env_file(p) == {"A": "1", "B": "two words", "C": "single # kept",
                                 "D": 'line\nbreak "q"', "E": ""}
    p.write_text("A=1\nnot a pair\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE"):
        parse_env_file(p)


def test_key_is_masked_everywhere_but_the_attribute() -> None:
    s = load_settings(env={"OPENROUTER_API_KEY": KEY}, env_file=False)
    assert s.api_key == KEY
    assert KEY not in repr(s)
    assert KEY not in str(s.as_dict())
    assert s.as_dict()["api_key"] == "sk-or-v1-...cdef"
    assert mask_key("short") == "***"
    assert mask_key(None) is None


def test_settings_mask_keys_with_the_core_rule() -> None:
    """One masking rule (C++): a key that is not OpenRouter's shows the same prefix everywhere."""
    from orroute import _core

    for key in ("sk-proj-0123456789abcdefghij", "sk-or-v1-" + "a" * 40, "x" * 16, "short-key"):
        assert mask_key(key) == _core.mask_key(key)
    assert mask_key("sk-proj-0123456789abcdefghij") == "sk-...ghij"


def test_environment_is_not_modified(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OPENROUTER_API_KEY={KEY}\n")
    import os

    assert load_settings().api_key == KEY
    assert "OPENROUTER_API_KEY" not in os.environ


def test_the_default_base_url_has_one_owner_the_core() -> None:
    from orroute import _core, client, config
    from orroute.gateway import settings as gw_settings

    assert _core.DEFAULT_BASE_URL == "https://openrouter.ai/api/v1"
    for value in (client.DEFAULT_BASE_URL, config.DEFAULT_BASE_URL, gw_settings.DEFAULT_BASE_URL,
                  config.Settings().base_url, gw_settings.GatewaySettings().base_url):
        assert value == _core.DEFAULT_BASE_URL
    src = Path(config.__file__).parent
    literal = "https://" + "openrouter.ai/api/v1"
    holders = [p.name for p in src.rglob("*.py")
               for line in p.read_text().splitlines()
               if f'= "{literal}"' in line and not line.lstrip().startswith("#")]
    assert holders == []  # no module keeps its own copy


def test_the_guide_model_order_is_the_engines_and_exists_in_the_catalog() -> None:
    from orroute import _core, config

    assert list(config.GUIDE_MODEL_ORDER) == _core.default_fallback_order()
    catalog = orroute.Catalog.bundled()
    assert all(catalog.get(m) is not None for m in config.GUIDE_MODEL_ORDER)
