"""`orroute routing fit` and `orroute routing eval` on small tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from orroute.cli import cli
from orroute.routing import LearnedRouter


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def _table(path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "score:cheap", "score:strong", "cost:cheap", "cost:strong"])
        for i in range(40):
            easy = i % 2 == 0
            prompt = (f"What is {i} plus {i + 1}?" if easy
                      else f"Write a detailed essay on philosopher {i}, step by step.")
            # one missing score and one missing cost: empty cells
            strong = "" if i == 5 else "1"
            w.writerow([prompt, "1" if easy else "0", strong, "0.0001", "" if i == 7 else "0.002"])


def test_fit_trains_and_saves_a_router(tmp_path: Path) -> None:
    table = tmp_path / "outcomes.csv"
    _table(table)
    out = tmp_path / "router.bin"
    r = run("routing", "fit", str(table), "-o", str(out), "--option", "epochs=10",
            "--option", "learning_rate=0.5", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["prompts"] == 40
    assert summary["rows"] == {"cheap": 40, "strong": 39}
    router = LearnedRouter.load(out)
    assert router.models == ["cheap", "strong"]
    p_easy = router.predict("What is 3 plus 9?")["cheap"]
    p_hard = router.predict("Write a detailed essay on Kant, step by step.")["cheap"]
    assert p_easy > p_hard
    assert router.route("What is 3 plus 9?", cost_weight=100.0) == "cheap"


def test_fit_reports_bad_tables_and_options(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,score:a\nhello,abc\n")
    r = run("routing", "fit", str(bad), "-o", str(tmp_path / "x.bin"))
    assert r.exit_code == 1
    assert "'abc' is not a number" in r.output
    bad.write_text("text,score:a\nhello,1\n")
    assert run("routing", "fit", str(bad), "-o", str(tmp_path / "x.bin")).exit_code == 1
    table = tmp_path / "ok.csv"
    _table(table)
    r = run("routing", "fit", str(table), "-o", str(tmp_path / "x.bin"), "--option", "nope=1")
    assert r.exit_code == 2  # unknown router option: a usage error
    assert "unknown router option" in r.output
    r = run("routing", "fit", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.bin"))
    assert r.exit_code == 1


def test_eval_prints_held_out_figures_as_json() -> None:
    # A small real run: RouterBench, 2 folds, no plots, no speed section.
    r = run("routing", "eval", "--datasets", "routerbench", "--folds", "2", "--no-speed", "--json")
    assert r.exit_code == 0, r.output
    rb = json.loads(r.output)["routerbench"]
    assert rb["prompts"] == 2205
    assert rb["best_model"]["name"] == "gpt-4-1106-preview"
    # held-out: the learned router beats random mixes of single models and random routing
    assert rb["aiq"]["learned"] > rb["aiq"]["random mixes"] + 0.01
    assert rb["pgr"]["learned"]["APGR"] > rb["pgr"]["random"]["APGR"] + 0.03
    assert "speed" not in rb
    r = run("routing", "eval", "--datasets", "nope")
    assert r.exit_code == 2
