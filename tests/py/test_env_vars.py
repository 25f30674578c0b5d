"""Every documented setting variable (README's and docs/cli.md's tables) has its effect where a
user meets it: the client, the manager, ``CostTracker`` or the command line. Each test runs the
same thing with and without the variable, so it fails when the variable stops mattering.
``config.py`` reads them all; nothing else looks at the environment for orroute's settings."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import orroute
from orroute import Task
from orroute.cli import cli
from orroute.testing import FakeOpenRouter, Fault

KEY = "sk-or-v1-env-vars-0123456789abcdef"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No orroute variable from the outside, no ./.env or ./orroute.toml, a private home; the
    ``orroute`` logger restored afterwards."""
    for k in list(os.environ):
        if k.startswith(("OPENROUTER_", "ORROUTE_")) or k == "LOG_LEVEL":
            monkeypatch.delenv(k)
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    log = logging.getLogger("orroute")
    level, handlers = log.level, list(log.handlers)
    yield
    log.setLevel(level)
    log.handlers[:] = handlers


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as f:
        yield f


def _chats(fake: FakeOpenRouter) -> list:
    return [r for r in fake.requests if r.endpoint == "/chat/completions"]


def _manager(**kw) -> orroute.AIModelManager:
    kw.setdefault("refresh_catalog", False)
    return orroute.AIModelManager(**kw)


# --- OPENROUTER_API_KEY ------------------------------------------------------------------------


def test_api_key_list_rotates_for_the_client_and_the_manager(monkeypatch) -> None:
    """``OPENROUTER_API_KEY="k1,k2"``: a key the server rejects is set aside and the next one used,
    by the manager as by the client."""
    with FakeOpenRouter(api_key="sk-or-v1-second-key-000000") as fake:
        kw = {"base_url": fake.base_url}
        with pytest.raises(orroute.AuthenticationError):  # no variable: no key
            orroute.OpenRouter(**kw, max_retries=0).chat.completions.create(
                model="openai/gpt-4o-mini", messages=MSGS)
        monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-first-key-1111111,sk-or-v1-second-key-000000")
        client = orroute.OpenRouter(**kw)
        assert client.chat.completions.create(model="openai/gpt-4o-mini", messages=MSGS).choices
        manager = _manager(**kw, fallbacks=["openai/gpt-4o-mini"])
        assert manager.execute_task_sync(Task(messages="hi", max_tokens=5)).content
        used = {r.api_key.reveal() for r in _chats(fake) if r.api_key is not None}
        assert used == {"sk-or-v1-first-key-1111111", "sk-or-v1-second-key-000000"}


# --- OPENROUTER_BASE_URL -----------------------------------------------------------------------


def test_base_url_points_the_client_and_the_manager_at_the_endpoint(fake, monkeypatch) -> None:
    from orroute.client import DEFAULT_BASE_URL

    assert orroute.OpenRouter(api_key=KEY).base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake.base_url)
    assert orroute.OpenRouter(api_key=KEY).chat.completions.create(
        model="openai/gpt-4o-mini", messages=MSGS).choices
    _manager(api_key=KEY, fallbacks=["openai/gpt-4o-mini"]).execute_task_sync(
        Task(messages="hi", max_tokens=5))
    assert len(_chats(fake)) == 2


# --- OPENROUTER_APP_NAME / OPENROUTER_APP_URL ---------------------------------------------------


def _attribution(fake: FakeOpenRouter) -> list[tuple[str | None, str | None]]:
    return [(r.headers.get("x-title"), r.headers.get("http-referer")) for r in _chats(fake)]


def test_app_name_and_url_attribute_the_client_and_the_manager(fake, monkeypatch) -> None:
    def both() -> None:
        orroute.OpenRouter(api_key=KEY, base_url=fake.base_url).chat.completions.create(
            model="openai/gpt-4o-mini", messages=MSGS)
        _manager(api_key=KEY, base_url=fake.base_url, fallbacks=["openai/gpt-4o-mini"]
                 ).execute_task_sync(Task(messages="hi", max_tokens=5))

    both()
    assert _attribution(fake) == [(None, None)] * 2
    monkeypatch.setenv("OPENROUTER_APP_NAME", "Env App")
    monkeypatch.setenv("OPENROUTER_APP_URL", "https://env.example")
    both()
    assert _attribution(fake)[2:] == [("Env App", "https://env.example")] * 2


# --- strategy: OPENROUTER_COST_OPTIMIZATION, ORROUTE_STRATEGY -----------------------------------


def test_cost_optimization_selects_the_cost_optimized_strategy(monkeypatch) -> None:
    task = Task(messages="Write a haiku about routers.", max_tokens=64)
    assert _manager(api_key=KEY).selector.strategy == "balanced"
    monkeypatch.setenv("OPENROUTER_COST_OPTIMIZATION", "true")
    m = _manager(api_key=KEY)
    assert m.selector.strategy == "cost_optimized"
    assert m.plan(task)["candidates"] == _manager(api_key=KEY, strategy="cost_optimized"
                                                  ).plan(task)["candidates"]
    monkeypatch.setenv("ORROUTE_STRATEGY", "performance")  # an explicit strategy wins
    assert _manager(api_key=KEY).selector.strategy == "performance"
    assert _manager(api_key=KEY, strategy="quality_first").selector.strategy == "quality_first"


def test_strategy_variable_sets_the_managers_strategy(monkeypatch) -> None:
    task = Task(messages="Prove that sqrt(2) is irrational, step by step.", max_tokens=256)
    monkeypatch.setenv("ORROUTE_STRATEGY", "quality_first")
    m = _manager(api_key=KEY)
    assert m.selector.strategy == "quality_first"
    assert m.plan(task)["candidates"] == _manager(api_key=KEY, strategy="quality_first"
                                                  ).plan(task)["candidates"]


# --- LOG_LEVEL -----------------------------------------------------------------------------------


def _child_log(env: dict[str, str]) -> str:
    """stderr of a fresh Python (no logging set up) that builds a client, then logs a DEBUG and
    an INFO record on an orroute logger."""
    code = ("import logging, orroute; orroute.OpenRouter(api_key='sk-or-v1-x'); "
            "logging.getLogger('orroute.probe').debug('debug record'); "
            "logging.getLogger('orroute.probe').info('info record')")
    root = str(Path(orroute.__file__).resolve().parents[1])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "PYTHONPATH": root}).stderr


def test_log_level_shows_orroute_records_without_any_logging_setup(tmp_path) -> None:
    env = {"ORROUTE_HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    assert "record" not in _child_log(env)
    shown = _child_log({**env, "LOG_LEVEL": "DEBUG"})
    assert "DEBUG orroute.probe: debug record" in shown and "info record" in shown
    info = _child_log({**env, "LOG_LEVEL": "INFO"})
    assert "info record" in info and "debug record" not in info


def test_log_level_leaves_an_applications_handlers_alone(monkeypatch) -> None:
    """Under a configured root logger (pytest's), the level is set and no handler is added."""
    before = list(logging.getLogger("orroute").handlers)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    orroute.OpenRouter(api_key=KEY)
    assert logging.getLogger("orroute").level == logging.DEBUG
    assert logging.getLogger("orroute").handlers == before


def test_log_level_applies_when_a_manager_is_built(monkeypatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    _manager(api_key=KEY)
    assert logging.getLogger("orroute").level == logging.ERROR


# --- ORROUTE_HOME ----------------------------------------------------------------------------------


def test_home_holds_the_default_ledger_and_the_model_cache(fake, monkeypatch, tmp_path) -> None:
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("ORROUTE_HOME", str(home))
    assert Path(orroute.CostTracker().path) == home / "ledger.sqlite3"
    orroute.OpenRouter(api_key=KEY, base_url=fake.base_url).models.list(refresh=True)
    assert list((home / "cache").glob("models-*.json"))
    monkeypatch.delenv("ORROUTE_HOME")
    assert Path(orroute.CostTracker(":memory:").path) != home / "ledger.sqlite3"
    assert orroute.config.default_ledger_path().parent != home


# --- the command line: ORROUTE_LEDGER, ORROUTE_PROJECT, OPENROUTER_PREFERRED_MODEL,
#     OPENROUTER_FALLBACK_ENABLED, ORROUTE_FALLBACKS, ORROUTE_CONFIG, ORROUTE_ENV_FILE -------------


def _ask(fake: FakeOpenRouter, **env: str) -> object:
    full = {"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": KEY, **env}
    return CliRunner().invoke(cli, ["ask", "hello there", "--json"], env=full)


def test_ledger_and_project_variables_book_the_call(fake, tmp_path) -> None:
    ledger = tmp_path / "from-env.sqlite3"
    r = _ask(fake, ORROUTE_LEDGER=str(ledger), ORROUTE_PROJECT="env-project")
    assert r.exit_code == 0, r.output
    rows = orroute.CostTracker(ledger).usage_history()
    assert [row.project for row in rows] == ["env-project"]
    r = _ask(fake)
    assert r.exit_code == 0, r.output
    assert len(orroute.CostTracker(ledger).usage_history()) == 1  # elsewhere without them


def test_preferred_model_is_tried_first(fake) -> None:
    assert _ask(fake).exit_code == 0
    chosen = _chats(fake)[-1].model
    other = "anthropic/claude-3-haiku" if chosen != "anthropic/claude-3-haiku" else "openai/gpt-4o"
    r = _ask(fake, OPENROUTER_PREFERRED_MODEL=other)
    assert r.exit_code == 0, r.output
    assert _chats(fake)[-1].model == other


def test_fallbacks_and_fallback_enabled(fake) -> None:
    fake.fail("openai/gpt-4o-mini", Fault.status_error(404, "No endpoints found."))
    env = {"OPENROUTER_PREFERRED_MODEL": "openai/gpt-4o-mini",
           "ORROUTE_FALLBACKS": "anthropic/claude-3-haiku,meta-llama/llama-3.1-8b-instruct"}
    r = _ask(fake, **env)
    assert r.exit_code == 0, r.output
    assert [c.model for c in _chats(fake)] == ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]
    r = _ask(fake, **env, OPENROUTER_FALLBACK_ENABLED="false")
    assert r.exit_code != 0
    assert [c.model for c in _chats(fake)][2:] == ["openai/gpt-4o-mini"]


def test_config_and_env_file_variables_name_the_files(fake, tmp_path) -> None:
    toml = tmp_path / "conf.toml"
    toml.write_text('strategy = "performance"\n')
    dotenv = tmp_path / "conf.env"
    dotenv.write_text("OPENROUTER_APP_NAME=From Env File\n")
    os.environ["ORROUTE_CONFIG"] = str(toml)
    os.environ["ORROUTE_ENV_FILE"] = str(dotenv)
    try:
        m = _manager(api_key=KEY, base_url=fake.base_url, fallbacks=["openai/gpt-4o-mini"])
        m.execute_task_sync(Task(messages="hi", max_tokens=5))
    finally:
        del os.environ["ORROUTE_CONFIG"], os.environ["ORROUTE_ENV_FILE"]
    assert m.selector.strategy == "performance"
    assert _chats(fake)[-1].headers.get("x-title") == "From Env File"
    assert _manager(api_key=KEY).selector.strategy == "balanced"


def test_router_state_variable_reaches_the_manager(fake) -> None:
    """``ORROUTE_ROUTER_STATE`` hands the breakers to Redis: an unreachable server is an error
    when the router is built (never silently per-process)."""
    if not orroute._core.redis_available():
        pytest.skip("built without hiredis")
    r = _ask(fake, ORROUTE_ROUTER_STATE="redis://127.0.0.1:9/0")
    assert r.exit_code != 0 and "redis" in r.output.lower()
    assert _ask(fake).exit_code == 0


# --- the command line's own: ORROUTE_OUTPUT, ORROUTE_DEBUG -------------------------------------


def test_output_variable_forces_the_table_form() -> None:
    """Under CliRunner stdout is not a terminal: TSV, unless ``ORROUTE_OUTPUT=table``."""
    args = ["models", "list", "--limit", "3"]
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 0, plain.output
    assert "\t" in plain.stdout.splitlines()[0]
    table = CliRunner().invoke(cli, args, env={"ORROUTE_OUTPUT": "table"})
    assert table.exit_code == 0, table.output
    assert "\t" not in table.stdout and table.stdout != plain.stdout


def test_debug_variable_raises_instead_of_one_line_errors(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text("strategy = 'sideways'\n")
    args = ["--config", str(tmp_path / "bad.toml"), "config", "show"]
    quiet = CliRunner().invoke(cli, args)
    loud = CliRunner().invoke(cli, args, env={"ORROUTE_DEBUG": "1"})
    assert quiet.exit_code != 0 and "sideways" in quiet.output  # one line, exit code
    assert isinstance(quiet.exception, SystemExit)
    assert isinstance(loud.exception, orroute.config.ConfigError)  # raised: the traceback


# --- ORROUTE_VOCAB_DIR (docs/tokenizer.md): searched before the bundled vocabularies -------------


def test_vocab_dir_is_searched_first(tmp_path) -> None:
    """A (broken) ``cl100k_base.bin`` in ``$ORROUTE_VOCAB_DIR`` is the one loaded: counting fails
    with it and works without the variable."""
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "cl100k_base.bin").write_bytes(b"not a vocabulary")
    code = "import orroute; print(orroute.get_encoding('cl100k_base').n_vocab)"
    root = str(Path(orroute.__file__).resolve().parents[1])
    env = {"PYTHONPATH": root, "PATH": os.environ.get("PATH", "")}
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                        check=False)
    assert ok.returncode == 0 and ok.stdout.strip() == "100277", ok.stderr
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={**env, "ORROUTE_VOCAB_DIR": str(vocab)})
    assert bad.returncode != 0 and "cl100k_base" in bad.stderr


# --- one reader --------------------------------------------------------------------------------

# Not settings: the handshake between `orroute serve --workers N` and its worker processes, and
# the research code's data directory (orroute.research, outside the library's import path).
NOT_SETTINGS = {("gateway/cli.py", "ORROUTE_GATEWAY_REUSE_PORT"),
                ("research/verify_eval.py", "ORROUTE_SHARED_DATA")}


def _environ_reads(path: Path) -> set[str]:
    """Names of orroute variables ``path`` reads from ``os.environ`` / ``os.getenv``."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = ast.unparse(node.func)
            if f in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                target = node.args[0].value
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ",
                                                                               "environ"):
            if isinstance(node.slice, ast.Constant):
                target = node.slice.value
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and any(
                ast.unparse(c) in ("os.environ", "environ") for c in node.comparators):
            target = node.left.value
        if isinstance(target, str) and target.startswith(("OPENROUTER_", "ORROUTE_", "LOG_LEVEL")):
            out.add(target)
    return out


def test_only_config_reads_orroute_settings_from_the_environment() -> None:
    package = Path(orroute.__file__).resolve().parent
    found = {(str(p.relative_to(package)), v)
             for p in package.rglob("*.py") if p.name != "config.py"
             for v in _environ_reads(p)}
    assert found <= NOT_SETTINGS, sorted(found - NOT_SETTINGS)
    # the check sees a read when there is one
    assert _environ_reads(package / "gateway" / "cli.py") == {"ORROUTE_GATEWAY_REUSE_PORT"}
