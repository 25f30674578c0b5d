"""The code-check verifier on RouterBench's MBPP answers (``bench/routing_eval.py --datasets
routerbench-verified``).

RouterBench's MBPP prompts are the problem statements of *sanitized* MBPP without its tests, so
the models named their functions freely. The check joins each prompt to sanitized MBPP (by its
text; the file is read from ``--mbpp`` or the shared data, not bundled: CC-BY-4.0), takes the
**first** of its three tests, the example a user would hand over with the task, and runs every
model's answer against it with ``orroute.verify.code``'s sandbox (subprocess, CPU/memory/output
limits, timeout). The test's function is bound to the answer's closest top-level function when the
answer used another name (the only adaptation; the test itself is unchanged). RouterBench's own
0/1 label stays the ground truth the cascade is scored on; the check only decides escalation.

Results are cached on disk by a hash of (code, test), so re-running the evaluation costs no
subprocess.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TIMEOUT_S = 5.0
MEMORY_MB = 512


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def default_mbpp_path() -> str:
    """``<shared data>/routing/mbpp/sanitized-mbpp.json`` (``verify_eval.shared_data_dir``)."""
    from .verify_eval import shared_data_dir

    return os.path.join(shared_data_dir(), "routing", "mbpp", "sanitized-mbpp.json")


def load_mbpp_tests(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Normalised problem text -> {"tests": [...], "imports": [...]} from sanitized MBPP's JSON
    (``prompt``, ``test_list``, ``test_imports``)."""
    with open(path or default_mbpp_path(), encoding="utf-8") as f:
        rows = json.load(f)
    return {_norm(r["prompt"]): {"tests": list(r["test_list"]),
                                 "imports": list(r.get("test_imports") or [])} for r in rows}


def test_suite(answer_code: str | None, tests: Sequence[str], imports: Sequence[str]) -> str:
    """The statements appended to the answer's code: imports, the name binding
    (``orroute.verify.bind_entry_point``), the tests."""
    from ..verify import bind_entry_point

    body = "\n".join(tests)
    bind = bind_entry_point(answer_code, body) if answer_code else ""
    return "\n".join([*imports, bind, *tests]) + "\n"


class RunCache:
    """(code, tests) -> passed, persisted as JSON (written once per ``save``)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.data: dict[str, bool] = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = {str(k): bool(v) for k, v in json.load(f).items()}

    @staticmethod
    def key(code: str, suite: str) -> str:
        return hashlib.sha256(f"{code}\0{suite}".encode()).hexdigest()[:32]

    def save(self) -> None:
        if not self.path:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)


def check_answers(answers: Sequence[str | None], suites: Sequence[str], cache: RunCache,
                  workers: int = 2) -> list[bool]:
    """Whether each answer's first Python block passes its suite (``orroute.verify.run_python``
    limits; no code block, an error, a timeout: False). Cached runs are not repeated."""
    from ..verify import extract_code, run_python

    out: list[bool | None] = [None] * len(answers)
    todo: list[tuple[int, str, str]] = []
    for i, (answer, suite) in enumerate(zip(answers, suites, strict=True)):
        code = extract_code(answer or "")
        if code is None:
            out[i] = False
            continue
        k = cache.key(code, suite)
        if k in cache.data:
            out[i] = cache.data[k]
        else:
            todo.append((i, code, suite))

    def run(item: tuple[int, str, str]) -> tuple[int, str, bool]:
        i, code, suite = item
        v = run_python(code + "\n\n" + suite, timeout=TIMEOUT_S, memory_mb=MEMORY_MB)
        return i, cache.key(code, suite), v.outcome == "pass"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, k, ok in pool.map(run, todo):
            out[i] = ok
            cache.data[k] = ok
    if todo:
        cache.save()
    return [bool(x) for x in out]


def routerbench_mbpp_checks(prompts: Sequence[str], models: Sequence[str],
                            mbpp_path: str | None = None, responses_path: str | None = None,
                            cache_path: str | None = None, which: str = "first") -> Any:
    """[prompt, model] 0/1 array: the model's MBPP answer passes the problem's first test
    (``which="first"``) or all of them (``"all"``, for comparison with RouterBench's labels).
    ``prompts``: RouterBench MBPP problem texts (the bundled table's); the answers are read from
    the shared RouterBench CSV (``<shared data>/routing/routerbench/mbpp_train.csv``)."""
    import csv

    import numpy as np

    from ..verify import extract_code
    from .verify_eval import shared_data_dir

    tests = load_mbpp_tests(mbpp_path)
    path = responses_path or os.path.join(shared_data_dir(), "routing", "routerbench",
                                          "mbpp_train.csv")
    csv.field_size_limit(1 << 26)
    with open(path, newline="", encoding="utf-8") as f:
        rows = {_norm(_first(r["prompt"])): r for r in csv.DictReader(f)}
    cache = RunCache(cache_path)
    out = np.zeros((len(prompts), len(models)))
    for j, model in enumerate(models):
        answers, suites = [], []
        for p in prompts:
            t = tests.get(_norm(p))
            row = rows.get(_norm(p))
            if t is None or row is None:
                raise ValueError(f"MBPP problem not found in the test file or answers: {p[:80]!r}")
            cell = row.get(f"{model}|model_response")
            if cell is None:
                raise ValueError(f"no responses of {model!r} in {path}")
            answer = _first(cell)
            use = t["tests"][:1] if which == "first" else t["tests"]
            answers.append(answer)
            suites.append(test_suite(extract_code(answer), use, t["imports"]))
        out[:, j] = check_answers(answers, suites, cache)
    return out


def _first(cell: str) -> str:
    """RouterBench stores prompts and responses as a Python list repr: its first element."""
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return cell
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    return str(value)
