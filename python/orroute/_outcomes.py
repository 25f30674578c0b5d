"""The bundled outcome tables of the learned router's data (prompts x models: scores, costs,
answers): what ``orroute.routing.load_outcomes`` reads, for tests, notebooks and the research
code in ``orroute.research`` alike."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Outcomes", "load_outcomes"]


@dataclass
class Outcomes:
    """An outcome table: prompts x models. ``scores``/``costs`` are numpy arrays [prompt, model]
    (``costs`` is None when the data has none)."""

    name: str
    prompts: list[str]
    tasks: list[str]
    models: list[str]
    scores: Any
    costs: Any
    answers: Any = None  # [prompt][model] answer key or None (RouterBench only; cascade router)


def load_outcomes(name: str = "routerbench") -> Outcomes:
    import numpy as np

    files = {"routerbench": "routerbench.csv.gz", "mmlu": "mmlu.csv.gz"}
    if name not in files:
        raise ValueError(f"unknown outcome table {name!r}; known: {sorted(files)}")
    raw = (resources.files("orroute") / "data" / "routing" / files[name]).read_bytes()
    reader = csv.reader(io.StringIO(gzip.decompress(raw).decode()))
    header = next(reader)
    rows = list(reader)
    score_cols = [i for i, h in enumerate(header) if h.startswith("score:")]
    cost_cols = [i for i, h in enumerate(header) if h.startswith("cost:")]
    models = [header[i].removeprefix("score:") for i in score_cols]
    scores = np.array([[float(r[i]) for i in score_cols] for r in rows])
    costs = np.array([[float(r[i]) for i in cost_cols] for r in rows]) if cost_cols else None
    # A handful of RouterBench rows lack a score for some model: the metrics need complete rows.
    keep = ~np.isnan(scores).any(axis=1)
    if costs is not None:
        keep &= ~np.isnan(costs).any(axis=1)
    idx = np.nonzero(keep)[0]
    answers = None
    ans_file = resources.files("orroute") / "data" / "routing" / f"{name}_answers.csv.gz"
    if ans_file.is_file():
        ar = list(csv.reader(io.StringIO(gzip.decompress(ans_file.read_bytes()).decode())))
        a_cols = [ar[0].index(f"answer:{m}") for m in models]
        if len(ar) - 1 != len(rows) or any(ar[i + 1][0] != rows[i][0] for i in range(len(rows))):
            raise ValueError(f"{ans_file} does not match the outcome table's rows")
        answers = [[ar[i + 1][j] or None for j in a_cols] for i in idx]
    return Outcomes(name, [rows[i][2] for i in idx], [rows[i][1] for i in idx], models,
                    scores[idx], None if costs is None else costs[idx], answers)
