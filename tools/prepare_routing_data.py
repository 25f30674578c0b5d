#!/usr/bin/env python3
"""Derives the compact routing outcome tables bundled in python/orroute/data/routing/ from the raw
data sets in ../shared/data/routing (RouterBench subset, RouteLLM MMLU).

Kept: the prompt text, the task (benchmark or MMLU subject), each model's 0/1 score and (RouterBench)
the USD cost of its answer. Model responses are reduced to answer keys
(routerbench_answers.csv.gz, for the cascade router). Output: gzip'd CSV (mtime 0, so re-running it
gives identical bytes).

Usage: python3 tools/prepare_routing_data.py [--src ../shared/data/routing] [--out python/orroute/data/routing]
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RB_FILES = {"arc_challenge": "arc_challenge_train.csv", "mbpp": "mbpp_train.csv",
            "winogrande": "winograde_train.csv"}


def _prompt_text(raw: str) -> str:
    value = ast.literal_eval(raw)
    return "\n\n".join(value) if isinstance(value, list) else str(value)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(buf.getvalue().encode())
    print(f"wrote {path} ({len(rows)} rows, {path.stat().st_size / 1e6:.2f} MB)")


def routerbench(src: Path, out: Path) -> None:
    import pandas as pd

    frames = []
    for task, name in RB_FILES.items():
        d = pd.read_csv(src / "routerbench" / name)
        d["task"] = task
        frames.append(d)
    d = pd.concat(frames, ignore_index=True)
    models = sorted(c.split("|")[0] for c in d.columns if c.endswith("|total_cost"))
    header = ["sample_id", "task", "prompt"] + [f"score:{m}" for m in models] + [
        f"cost:{m}" for m in models]
    rows = []
    for _, r in d.iterrows():
        rows.append([r["sample_id"], r["task"], _prompt_text(r["prompt"])]
                    + [f"{float(r[m]):g}" for m in models]
                    + [repr(float(r[f"{m}|total_cost"])) for m in models])
    _write(out / "routerbench.csv.gz", header, rows)
    routerbench_answers(d, models, out)


def routerbench_answers(d, models: list[str], out: Path) -> None:
    """Per prompt and model the answer key of the response (``orroute._cascade.extract_answer``:
    option letter, code hash or short text), for the cascade router; same rows as routerbench.csv."""
    import sys

    sys.path.insert(0, str(ROOT / "python"))
    from orroute._cascade import extract_answer  # pure Python, no compiled core needed

    def text(raw: object) -> str | None:
        if not isinstance(raw, str):
            return None
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        return str(value[0]) if isinstance(value, list) and value else str(value)

    rows = []
    for _, r in d.iterrows():
        rows.append([r["sample_id"], r["task"]]
                    + [extract_answer(text(r[f"{m}|model_response"])) or "" for m in models])
    _write(out / "routerbench_answers.csv.gz", ["sample_id", "task"] + [f"answer:{m}" for m in models],
           rows)


def mmlu(src: Path, out: Path) -> None:
    import pandas as pd

    rows = []
    models = ["gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"]
    for f in sorted((src / "routellm_mmlu").glob("mmlu_*.csv")):
        d = pd.read_csv(f)
        subject = f.stem.removeprefix("mmlu_")
        for i, r in d.iterrows():
            rows.append([f"{subject}.{i}", subject, r["prompt"]]
                        + [str(int(bool(r[m]))) for m in models])
    _write(out / "mmlu.csv.gz", ["sample_id", "task", "prompt"] + [f"score:{m}" for m in models],
           rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT.parent.parent / "shared" / "data" / "routing")
    ap.add_argument("--out", type=Path, default=ROOT / "python" / "orroute" / "data" / "routing")
    args = ap.parse_args()
    if not args.src.exists():
        args.src = Path("/work/shared/data/routing")
    routerbench(args.src, args.out)
    mmlu(args.src, args.out)


if __name__ == "__main__":
    main()
