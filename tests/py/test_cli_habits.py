"""CLI habits: examples in every --help, TSV when piped, negative numbers parsed as values, and
the documented exit code (with one line on stderr) on every error path."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import orroute
from orroute.cli import cli


def _commands(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, ctx, (*prefix, name))


ALL = [" ".join(path) for path, _ in _commands(cli, click.Context(cli))]


def test_every_command_is_found() -> None:
    assert {"models list", "analytics forecast", "budget set", "serve", "keys create",
            "routing fit"} <= set(ALL)


@pytest.mark.parametrize("path", ["", *ALL])
def test_every_help_ends_with_examples(path: str) -> None:
    r = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert r.exit_code == 0, r.output
    examples = r.output.split("Examples:")
    assert len(examples) == 2, f"no examples in `orroute {path} --help`"
    lines = [ln.strip() for ln in examples[1].splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("orroute", "echo")) for ln in lines)
    assert any(f"orroute {path}" in ln for ln in lines) or not path


def test_piped_models_list_is_plain_tsv() -> None:
    r = CliRunner().invoke(cli, ["models", "list"])  # CliRunner's stdout is not a terminal
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["model", "context", "prompt $/M", "output $/M",
                                    "capabilities"]
    assert all(len(ln.split("\t")) == 5 for ln in lines)
    assert not any(ch in r.stdout for ch in "┃━│─┏")
    assert len(r.stdout) < 60_000  # the box-drawn table was 117 KB
    assert lines[1].split("\t")[1].isdigit()  # numbers without thousands separators
    table = CliRunner().invoke(cli, ["models", "list", "--limit", "3"],
                               env={"ORROUTE_OUTPUT": "table"}).stdout
    assert "┃" in table or "│" in table
    assert json.loads(CliRunner().invoke(cli, ["models", "list", "--limit", "2", "--json"]).stdout)


def test_negative_numbers_are_values_with_a_clear_error(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite3")
    r = CliRunner().invoke(cli, ["--ledger", ledger, "budget", "set", "-5"])
    assert r.exit_code == 2
    assert "must be a finite amount of USD >= 0, got '-5'" in r.stderr
    assert "No such option" not in r.stderr
    r = CliRunner().invoke(cli, ["--ledger", ledger, "budget", "set", "-5", "--period", "daily"])
    assert r.exit_code == 2 and "must be a finite amount of USD" in r.stderr


@pytest.mark.parametrize("amount", ["nan", "NaN", "inf", "-Infinity", "1e", "five", "-0.01"])
@pytest.mark.parametrize("command", [["budget", "set", "{}"], ["keys", "create", "-p", "p", "--budget", "{}"],
                                     ["ask", "hi", "--budget", "{}"], ["demo", "--budget", "{}"],
                                     ["models", "recommend", "--task", "chat", "--budget", "{}"]],
                         ids=lambda c: " ".join(c[:2]))
def test_an_amount_of_usd_is_a_finite_number_or_a_usage_error(tmp_path: Path, command: list[str],
                                                              amount: str) -> None:
    """Every command that takes USD reads it one way: NaN made `keys create` fail with
    "InvalidOperation: [<class 'decimal.InvalidOperation'>]", and the others took NaN as a float."""
    args = [a.format(amount) for a in command]
    r = CliRunner().invoke(cli, ["--ledger", str(tmp_path / "l.sqlite3"), *args],
                           env={"ORROUTE_HOME": str(tmp_path), "OPENROUTER_API_KEY": None})
    assert r.exit_code == 2, r.output
    assert "Invalid value" in r.stderr and "USD" in r.stderr


def test_a_budget_set_on_the_command_line_is_stored_exactly(tmp_path: Path) -> None:
    """No float between the command line and the ledger (it was read with click.FloatRange)."""
    ledger = str(tmp_path / "l.sqlite3")
    r = CliRunner().invoke(cli, ["--ledger", ledger, "budget", "set", "0.123456789012345678", "--json"])
    assert r.exit_code == 0, r.output
    assert orroute.CostTracker(ledger).budget_status().limit == Decimal("0.123456789012345678")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["models", "show", "openai/gpt-4o-typo"], 5, "did you mean"),
    (["models", "list", "--sort", "colour"], 2, "Invalid value for '--sort'"),
    (["models", "rate", "openai/gpt-4o-mini", "1.5"], 2, "not in the range"),
    (["models", "rate", "no/such-model", "0.5"], 5, "unknown model"),
    (["models", "recommend", "--task", "no-such-type"], 2, "unknown task type"),
    (["budget", "remove", "--project", "nope"], 5, "no such budget"),
    (["budget", "set", "5", "--tag", "novalue"], 2, "KEY=VALUE"),
    (["analytics", "cost", "--by", "colour"], 2, "tag:KEY"),
    (["analytics", "forecast", "--budget", "project:nope/daily"], 5, "no budget named"),
    (["analytics", "savings", "--baseline", "no/such-model"], 5, "unknown model"),
    (["analytics", "savings"], 2, "Missing option '--baseline'"),
    (["analytics", "trends", "--bucket", "fortnight"], 2, "Invalid value"),
    (["ask", "hello"], 4, "no API key"),
    (["models", "test", "openai/gpt-4o-mini"], 4, "no API key"),
    (["simulate", "missing.jsonl"], 2, "does not exist"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_error_paths_have_their_documented_exit_code(tmp_path: Path, args: list[str], code: int,
                                                     message: str) -> None:
    env: dict[str, str | None] = {k: None for k in os.environ
                                  if k.startswith(("OPENROUTER_", "ORROUTE_", "LOG_LEVEL"))}
    env["ORROUTE_HOME"] = str(tmp_path)
    (tmp_path / "empty.env").write_text("")
    r = CliRunner().invoke(cli, ["--env-file", str(tmp_path / "empty.env"),
                                 "--ledger", str(tmp_path / "l.sqlite3"), *args], env=env)
    assert r.exit_code == code, r.output
    assert message in r.stderr
    assert "Traceback" not in r.output
    if code != 2:  # click's usage errors also print a usage line
        assert len(r.stderr.strip().splitlines()) == 1
