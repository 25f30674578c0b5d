"""What a refund costs on a big file ledger, against a call's record on the same file.

A refund names its call (docs/cost.md, "A refund names its call"): it reads the call's row by
its id and the refunds booked for it (table `refunds`, keyed by the call) before its row is
written. This fills a ledger file with `--calls` rows (SQL, a block at a time: what a million
recorded calls leave), then alternates blocks of `record_call` and of `record_refund` (each of a
different old call) on it, one global budget, and prints the median per-operation time of each
and their ratio (same run, alternated: the ratio is what to read on a loaded machine).

    PYTHONPATH=python python3 bench/refund_cost.py [--calls 1000000] [--ops 2000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import orroute


def fill(path: str, calls: int) -> None:
    """`calls` rows of 0.001 each, their blocks of 64 ids for the time filters."""
    orroute.CostTracker(path).close()  # the schema
    with sqlite3.connect(path) as db:
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO calls(id, ts, project, model_used, model_requested, prompt_tokens, "
            "completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, "
            "cost_attos, outcome, attempts) SELECT i, 1700000000000000 + i, 'p', 'm', 'm', 1, 1, "
            "0, 0, 0, 1000000, 0, 'ok', 1 FROM n", (calls,))
        db.execute("INSERT INTO calls_blocks SELECT id >> 6, MIN(id), MIN(ts), MAX(ts) FROM calls "
                   "GROUP BY id >> 6 HAVING COUNT(*) = 64")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--ops", type=int, default=2000, help="operations per block")
    ap.add_argument("--blocks", type=int, default=10, help="blocks of each, alternated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ledger.sqlite3")
        fill(path, args.calls)
        t = orroute.CostTracker(path)
        t.set_budget(10**9)
        times: dict[str, list[float]] = {"record_call": [], "record_refund": []}
        refunded = 1
        for _ in range(args.blocks):
            start = time.perf_counter()
            for _ in range(args.ops):
                t.record_call(cost="0.001", model="m", project="p")
            times["record_call"].append((time.perf_counter() - start) / args.ops)
            start = time.perf_counter()
            for _ in range(args.ops):
                t.record_refund("0.0005", call_id=refunded)
                refunded += 1
            times["record_refund"].append((time.perf_counter() - start) / args.ops)
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.calls:,} calls in the file, {args.blocks} x {args.ops} of each, alternated")
        for k, v in median.items():
            print(f"  {k:14} {v * 1e6:8.1f} µs median per operation")
        print(f"  refund / record {median['record_refund'] / median['record_call']:.2f}")


if __name__ == "__main__":
    main()
