"""The `orroute` command line (click's CliRunner; no network)."""

from __future__ import annotations

from click.testing import CliRunner

import orroute
from orroute.cli import cli


def _selected(output: str) -> str:
    line = next(x for x in output.splitlines() if x.startswith("selected: "))
    return line.removeprefix("selected: ").strip()


def test_demo_selects_a_model_and_explains_it() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    model_id = _selected(result.output)
    assert model_id in orroute.Catalog.bundled()
    assert "coding" in orroute.ModelSelector().models[model_id].capabilities
    assert "estimated cost $" in result.output
    assert "score " in result.output
    for strategy in ("cost_optimized", "performance", "quality_first"):
        assert strategy in result.output


def test_demo_options_change_the_selection() -> None:
    runner = CliRunner()
    cheap = runner.invoke(cli, ["demo", "-s", "cost_optimized", "--budget", "none", "--top", "1"])
    best = runner.invoke(cli, ["demo", "-s", "quality_first", "--budget", "none", "--top", "1"])
    assert cheap.exit_code == 0 and best.exit_code == 0
    pick = [_selected(r.output) for r in (cheap, best)]
    assert pick[0] != pick[1]


def test_demo_reports_why_nothing_fits() -> None:
    result = CliRunner().invoke(cli, ["demo", "--budget", "0.0000001"])
    assert result.exit_code == 1
    assert "budget $0.0000001 removed the last" in result.output


def test_demo_rejects_bad_input() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", "--budget", "lots"]).exit_code == 2
    unknown = runner.invoke(cli, ["demo", "-t", "dancing"])
    assert unknown.exit_code == 1
    assert "known task types" in unknown.output
