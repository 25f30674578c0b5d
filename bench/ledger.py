"""Ledger throughput and latency: settled calls per second and reserve+settle latency.

Prints, for one process against a budgeted file ledger (WAL, synchronous=NORMAL, two budgets per
call): reserve+settle latency (one thread, median and p99) and settled calls per second with 1 and
8 threads, through the bindings (`_core`, the objects the engine uses, no Python wrappers per
call) with budget leases on (the default) and off (one exact database reservation per call, as
before leases); then through `CostTracker.reserve().settle()`; then the C++ engine's own path
without Python if `orroute_ledger_bench` was built (build/dev, ORROUTE_BUILD_TESTS); and, as a peer
measured in the same run, Python's sqlite3 doing one bare INSERT+COMMIT per call on the same kind
of file.

    PYTHONPATH=python python3 bench/ledger.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import orroute

REPO = Path(__file__).resolve().parent.parent


def _tracker(path: Path, **kw: object) -> orroute.CostTracker:
    t = orroute.CostTracker(path, **kw)  # type: ignore[arg-type]
    t.set_budget(10**9, project="bench", period="daily")
    t.set_budget(10**9)
    return t


def latency(path: Path, n: int, leases: bool) -> tuple[float, float]:
    core = _tracker(path, leases=leases)._core
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


def throughput(path: Path, n: int, threads: int, leases: bool) -> float:
    tracker = _tracker(path, leases=leases)
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
    rate = per * threads / (time.perf_counter() - t0)
    status = tracker.budget_status(project="bench", period="daily")
    assert status.reserved == 0 and status.spent == tracker.total_cost(project="bench")
    return rate


def python_api(path: Path, n: int) -> float:
    tracker = _tracker(path)
    t0 = time.perf_counter()
    for _ in range(n):
        tracker.reserve("0.001", project="bench").settle("0.000123456789", model="m/a")
    return n / (time.perf_counter() - t0)


def cpp_engine(tmp: Path, n: int, threads: int, leases: bool) -> tuple[float, float] | None:
    exe = REPO / "build" / "dev" / "orroute_ledger_bench"
    if not exe.exists():
        return None
    out = subprocess.run(
        [str(exe), str(tmp), str(threads), str(n), "1" if leases else "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


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
        rows: dict[bool, tuple[float, float, float, float]] = {}
        for leases in (True, False):
            med, p99 = latency(tmp / f"lat{leases}.sqlite3", min(n, 5000), leases)
            one = throughput(tmp / f"t1{leases}.sqlite3", n, 1, leases)
            eight = throughput(tmp / f"t8{leases}.sqlite3", n, 8, leases)
            rows[leases] = (med, p99, one, eight)
        for leases, label in ((True, "leases on (default)"), (False, "leases off")):
            med, p99, one, eight = rows[leases]
            print(
                f"{label:20}: reserve+settle latency (1 thread) median {med:.1f} us, "
                f"p99 {p99:.0f} us; settled calls/s 1 thread {one:,.0f}, 8 threads {eight:,.0f}"
            )
        on, off = rows[True], rows[False]
        print(
            f"gain from leases: latency {off[0] / on[0]:.2f}x, 1 thread {on[2] / off[2]:.2f}x, "
            f"8 threads {on[3] / off[3]:.2f}x"
        )
        py = python_api(tmp / "py.sqlite3", min(n, 5000))
        print(f"settled calls/s through CostTracker.reserve().settle(): {py:,.0f}")
        for leases in (True, False):
            one_c = cpp_engine(tmp, n, 1, leases)
            eight_c = cpp_engine(tmp, n, 8, leases)
            if one_c is None or eight_c is None:
                print(
                    "C++ engine path: build orroute_ledger_bench (scripts/dev-build.sh) to see it"
                )
                break
            print(
                f"C++ engine path, leases {'on ' if leases else 'off'}: 1 thread "
                f"{one_c[0]:,.0f}/s (median {one_c[1]:.1f} us), 8 threads {eight_c[0]:,.0f}/s"
            )
        peer = peer_sqlite(tmp / "peer.sqlite3", n)
        print(
            f"peer: Python sqlite3 bare INSERT+COMMIT per call: {peer:,.0f}/s "
            f"(ledger 1-thread reserve+settle = {on[2] / peer:.2f}x of it with leases, "
            f"{off[2] / peer:.2f}x without)"
        )


if __name__ == "__main__":
    main()
