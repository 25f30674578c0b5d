"""`orroute ask` through AIModelManager, against FakeOpenRouter."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from orroute.cli import cli
from orroute.testing import FakeOpenRouter, Fault

KEY = "sk-or-v1-cli-ask-0123456789abcdef"

# `ask` runs on the router; these run as soon as orroute.AIModelManager is part of the package
pytest.importorskip("orroute.manager", reason="the router (AIModelManager) is not merged yet")


@pytest.fixture
def fake():
    with FakeOpenRouter() as f:
        f.set_reply("*", "HTTP 429 means too many requests: wait and retry.")
        yield f


def run(fake, tmp_path: Path, *args: str, input: str | None = None):
    env = {"OPENROUTER_BASE_URL": fake.base_url, "OPENROUTER_API_KEY": KEY}
    return CliRunner().invoke(cli, ["--ledger", str(tmp_path / "l.sqlite3"), "ask", *args],
                              env=env, input=input)


def chat_requests(fake) -> list:
    return [r for r in fake.requests if r.endpoint == "/chat/completions"]


def test_answers_and_books_the_call(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "What does HTTP 429 mean?")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "HTTP 429 means too many requests: wait and retry."
    import orroute

    rows = orroute.CostTracker(tmp_path / "l.sqlite3").usage_history()
    assert len(rows) == 1 and rows[0].cost > 0


def test_show_models_explains_the_choice_and_cost(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "Prove that there are infinitely many primes.", "--type",
            "reasoning", "--show-models")
    assert r.exit_code == 0, r.output
    served = chat_requests(fake)[-1].served_model
    assert served in r.stderr
    assert "why" in r.stderr and "cost" in r.stderr and "candidates" in r.stderr


def test_json_has_model_cost_and_attempts(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "hi", "--json")
    data = json.loads(r.stdout)
    assert data["content"].startswith("HTTP 429")
    assert data["model"] == chat_requests(fake)[-1].served_model
    assert Decimal(data["cost"]) > 0
    assert data["attempts"] and data["reasons"]


def test_stream_prints_the_answer(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "hi", "--stream", "--show-models")
    assert r.exit_code == 0, r.output
    assert "HTTP 429 means too many requests" in r.stdout
    assert chat_requests(fake)[-1].stream
    assert "cost" in r.stderr


def test_prompt_from_stdin(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "-", input="What is 2+2?")
    assert r.exit_code == 0, r.output
    assert "What is 2+2?" in json.dumps(chat_requests(fake)[-1].messages)


def test_failing_preferred_model_falls_back(fake, tmp_path: Path) -> None:
    fake.fail("openai/gpt-4o-mini", Fault.server_error(503))
    r = run(fake, tmp_path, "hi", "--model", "openai/gpt-4o-mini", "--show-models")
    assert r.exit_code == 0, r.output
    assert "failed" in r.stderr and "openai/gpt-4o-mini" in r.stderr
    assert chat_requests(fake)[-1].served_model != "openai/gpt-4o-mini"


def test_no_fallback_means_the_error_is_exit_4(fake, tmp_path: Path) -> None:
    fake.fail("openai/gpt-4o-mini", Fault.server_error(503))
    r = run(fake, tmp_path, "hi", "--model", "openai/gpt-4o-mini", "--no-fallback")
    assert r.exit_code == 4
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output


def test_budget_too_small_is_exit_3_before_any_call(fake, tmp_path: Path) -> None:
    r = run(fake, tmp_path, "Write a long essay.", "--budget", "0.0000000001")
    assert r.exit_code == 3, r.output
    assert r.stderr.count("\n") == 1
    assert chat_requests(fake) == []


def test_unknown_model_is_exit_5_before_any_call(tmp_path: Path) -> None:
    # against OpenRouter itself (no request is made: the id is checked against the catalog first)
    r = CliRunner().invoke(cli, ["ask", "hi", "--model", "openai/gpt-4o-mimi"],
                           env={"OPENROUTER_API_KEY": KEY})
    assert r.exit_code == 5 and "did you mean" in r.stderr


def test_empty_prompt_is_a_usage_error(fake, tmp_path: Path) -> None:
    assert run(fake, tmp_path, "   ").exit_code == 2
