"""Ledger throughput and latency: settled calls per second and reserve+settle latency.

Prints, for one process: reserve+settle latency (one thread, median and p99), settled calls per
second with 1 and 8 threads against a budgeted file ledger (WAL, synchronous=NORMAL), the same
with durable fsync (synchronous=FULL), and, as a peer measured in the same run, Python's sqlite3
doing a bare INSERT+COMMIT per call on the same kind of file.

    PYTHONPATH=python python3 bench/ledger.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orroute


def _tracker(path: Path, **kw: object) -> orroute.CostTracker:
    t = orroute.CostTracker(path, **kw)  # type: ignore[arg-type]
    t.set_budget(10**9, project="bench", period="daily")
    t.set_budget(10**9)
    return t


def latency(path: Path, n: int) -> tuple[float, float]:
    core = _tracker(path)._core  # the engine's path: no Python wrapper objects per call
    from orroute import _core

    scope = _core.SpendScope("bench", "", [])
    row = _core.CallRecord()
    row.model_used = "m/a"
    row.cost = "0.000123456789"
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        r = core.reserve(scope, "0.001")
        core.settle(r.reservation_id, row)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def throughput(path: Path, n: int, threads: int, **kw: object) -> float:
    tracker = _tracker(path, **kw)
    from orroute import _core

    core = tracker._core
    scope = _core.SpendScope("bench", "", [])
    per = n // threads

    def work() -> None:
        row = _core.CallRecord()
        row.model_used = "m/a"
        row.cost = "0.000123456789"
        for _ in range(per):
            r = core.reserve(scope, "0.001")
            core.settle(r.reservation_id, row)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def python_api(path: Path, n: int) -> float:
    tracker = _tracker(path)
    t0 = time.perf_counter()
    for _ in range(n):
        tracker.reserve("0.001", project="bench").settle("0.000123456789", model="m/a")
    return n / (time.perf_counter() - t0)


def peer_sqlite(path: Path, n: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE calls(id INTEGER PRIMARY KEY, ts INTEGER, model TEXT, cost INTEGER)")
    t0 = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO calls(ts, model, cost) VALUES (?, ?, ?)", (i, "m/a", 123456789))
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    n = ap.parse_args().calls
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        med, p99 = latency(tmp / "lat.sqlite3", min(n, 5000))
        print(
            f"reserve+settle latency (1 thread, 2 budgets): median {med:.1f} us, p99 {p99:.1f} us"
        )
        one = throughput(tmp / "t1.sqlite3", n, 1)
        eight = throughput(tmp / "t8.sqlite3", n, 8)
        print(f"settled calls/s, 1 thread : {one:,.0f}")
        print(f"settled calls/s, 8 threads: {eight:,.0f}")
        full = throughput(tmp / "full.sqlite3", min(n, 2000), 8, busy_timeout=30.0)
        print(f"settled calls/s, 8 threads, via CostTracker default options: {full:,.0f}")
        py = python_api(tmp / "py.sqlite3", min(n, 5000))
        print(f"settled calls/s through CostTracker.reserve().settle(): {py:,.0f}")
        peer = peer_sqlite(tmp / "peer.sqlite3", n)
        print(
            f"peer: Python sqlite3 bare INSERT+COMMIT per call: {peer:,.0f}/s "
            f"(ledger 1-thread reserve+settle = {one / peer:.2f}x of it)"
        )


if __name__ == "__main__":
    main()
