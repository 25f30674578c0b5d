"""The SQLite ledger's reads over a large file, two trees on copies of one file: a ledger of
`--rows` calls over a year (written as the base tree's schema makes it: the base tree opens the
file first, then the rows go in through SQL), each tree opening its own copy (a newer schema
migrates it: the open's time is its migration's) and timing the reports, totals, the newest
calls and the completion quantile, then the quantile again after 1,000 more recorded calls.
Prints the median of `--repeat` runs of each read, in ms, per tree, and the branch/base ratio.
Asserts that both trees read the same figures.

    python3 bench/ledger_queries.py --base /work/wt-base --branch . [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY_US = 86_400 * 1_000_000
TYPES = ["chat", "coding", "analysis", "creative", "general"]
MODELS = [f"vendor{i % 4}/model-{i}" for i in range(10)]

# Run in each tree's interpreter (its own orroute on sys.path): opens FILE, times the reads,
# prints one JSON object.
CHILD = r"""
import json, statistics, sys, time
from decimal import Decimal
from orroute import _core
path, repeat, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
day = 86_400 * 1_000_000
t0 = time.perf_counter()
ledger = _core.SqliteLedger(path)
out = {"open": (time.perf_counter() - t0) * 1e3, "values": {}}
def query(**kw):
    q = _core.CallQuery()
    for k, v in kw.items():
        setattr(q, k, v)
    return q
def timed(name, f):
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = f()
        times.append((time.perf_counter() - t) * 1e3)
    out[name] = statistics.median(times)
    out["values"][name] = value
def rows(r):
    return [(x.period, x.key, x.calls, str(x.cost)) for x in r]
timed("quantile (first read)", lambda: ledger.completion_quantile("coding", "vendor1/model-1", 0.9, 1000))
timed("report: a year, by model", lambda: rows(ledger.report(query(), "total", "model")))
timed("report: last 7 days by day and model",
      lambda: rows(ledger.report(query(start=now - 7 * day), "day", "model")))
timed("report: a past month by day and project",
      lambda: rows(ledger.report(query(start=now - 200 * day, end=now - 170 * day), "day", "project")))
timed("total: a project, last 30 days",
      lambda: str(ledger.total_cost(query(start=now - 30 * day, project="p3"))))
timed("calls: the newest 100", lambda: [c.id for c in ledger.calls(query(limit=100))])
timed("quantile", lambda: ledger.completion_quantile("coding", "vendor1/model-1", 0.9, 1000))
for i in range(1000):
    c = _core.CallRecord()
    c.model_used = c.model_requested = "vendor1/model-1"
    c.task_type = "coding"
    c.completion_tokens = 5000 + i
    c.cost = Decimal("0.001")
    ledger.record(c)
t = time.perf_counter()
v = ledger.completion_quantile("coding", "vendor1/model-1", 0.9, 1000)
out["quantile after 1,000 calls"] = (time.perf_counter() - t) * 1e3
out["values"]["quantile after 1,000 calls"] = v
print(json.dumps(out))
"""


def make_ledger(base: Path, path: str, rows: int, now: int) -> None:
    """A ledger file of `rows` calls over the year before `now`, in the base tree's schema."""
    env = dict(os.environ, PYTHONPATH=str(base / "python"))
    subprocess.run([sys.executable, "-c", f"from orroute import _core; _core.SqliteLedger({path!r})"],
                   env=env, check=True)
    db = sqlite3.connect(path)
    start = now - 365 * DAY_US
    step = 365 * DAY_US // rows
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO calls(ts, project, task_type, model_requested, model_used, provider, "
        "prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, "
        "est_nanos, est_attos, cost_nanos, cost_attos, latency_us, outcome, attempts, cost_source) "
        "VALUES (?, ?, ?, ?, ?, 'vendor', ?, ?, 0, 0, 0, ?, 0, ?, 0, ?, ?, 1, 'upstream')",
        (
            # ts mostly in id order, a call now and then settled up to a minute late
            (start + i * step - (i % 97) * 600_000, f"p{i % 20}", TYPES[i % 5], MODELS[i % 10],
             MODELS[i % 10], 100 + i % 900, (i * 37) % 1200, 20_000 + i % 1000, 15_000 + i % 777,
             200_000 + i % 50_000, "ok" if i % 20 else "error")
            for i in range(rows)
        ),
    )
    db.commit()
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", type=Path, default=Path("/work/wt-base"))
    ap.add_argument("--branch", type=Path, default=Path("."))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    now = int(time.time() * 1e6)
    with tempfile.TemporaryDirectory() as tmp:
        original = f"{tmp}/original.sqlite3"
        t = time.perf_counter()
        make_ledger(args.base.resolve(), original, args.rows, now)
        print(f"{args.rows:,} calls written in {time.perf_counter() - t:.1f} s")
        results = {}
        for name, tree in (("base", args.base), ("branch", args.branch)):
            copy = f"{tmp}/{name}.sqlite3"
            shutil.copy(original, copy)
            env = dict(os.environ, PYTHONPATH=str(tree.resolve() / "python"))
            out = subprocess.run([sys.executable, "-c", CHILD, copy, str(args.repeat), str(now)],
                                 env=env, check=True, capture_output=True, text=True)
            results[name] = json.loads(out.stdout)
    base, branch = results["base"], results["branch"]
    print(f"{'ms (median of ' + str(args.repeat) + ')':<44} {'base':>10} {'branch':>10} {'ratio':>7}")
    for key in base:
        if key == "values":
            continue
        print(f"{key:<44} {base[key]:>10.2f} {branch[key]:>10.2f} {branch[key] / base[key]:>7.2f}")
    same = base["values"] == branch["values"]
    print("same figures in both trees:", same)
    if not same:
        for key, value in base["values"].items():
            if branch["values"][key] != value:
                print(f"  {key}: base {str(value)[:200]} branch {str(branch['values'][key])[:200]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
