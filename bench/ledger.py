"""Ledger throughput and latency: settled calls per second and reserve+settle latency.

Prints, for one process against a budgeted file ledger (WAL, synchronous=NORMAL, two budgets per
call): reserve+settle latency (one thread, median and p99) and settled calls per second with 1 and
8 threads, through the bindings (`_core`, the objects the engine uses, no Python wrappers per
call) with budget leases on (the default) and off (one exact database reservation per call, as
before leases); then through `CostTracker.reserve().settle()`; then the C++ engine's own path
without Python if `orroute_ledger_bench` was built (build/dev, ORROUTE_BUILD_TESTS); and, as a peer
measured in the same run, Python's sqlite3 doing one bare INSERT+COMMIT per call on the same kind
of file.

    PYTHONPATH=python python3 bench/ledger.py [--calls 20000] [--backend sqlite|redis|both]
                                              [--processes 1,2,4,8]

Then, with `orroute_ledger_bench` built, the curve over processes: 1, 2, 4, 8 single-threaded
processes reserving and settling against the same two budgets on one ledger (one SQLite file,
leases on and off, and leases with write-behind settles; one Redis server), total settled
calls/s and its ratio to one process, and whether the budgets came out exact (spent = calls x
cost, nothing left reserved). bench/ledger_curve.py prints the same curve for two trees, alternated.

With `--backend redis` (or `both`) it measures the Redis ledger the same way (a private
redis-server on a loopback port, or `--redis-url`): reserve+settle latency and settled calls/s
with 1 and 8 threads through the bindings, and as peers measured in the same run, a bare INCRBY
per round trip over a raw socket from Python (the floor for one command per round trip; a
reserve+settle is two scripts) and `redis-benchmark -t incr` (C client, 1 and 8 connections).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import orroute

REPO = Path(__file__).resolve().parent.parent


def _tracker(location: Path | str, **kw: object) -> orroute.CostTracker:
    t = orroute.CostTracker(location, **kw)  # type: ignore[arg-type]
    t.set_budget(10**9, project="bench", period="daily")
    t.set_budget(10**9)
    return t


def latency(location: Path | str, n: int, **tracker_options: object) -> tuple[float, float]:
    """Median and p99 µs of one reserve + settle on the ledger at ``location`` (a SQLite path or a
    redis:// URL)."""
    core = _tracker(location, **tracker_options)._core
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


def process_curve(location: str, n: int, procs: list[int], leases: bool | str, label: str) -> None:
    """Settled calls/s of 1 thread in each of ``procs`` processes sharing ``location`` (a directory
    for a fresh SQLite file, or a redis:// URL), through orroute_ledger_bench. ``leases``: on, off,
    or ``"2"`` (leases with write-behind settles)."""
    exe = REPO / "build" / "dev" / "orroute_ledger_bench"
    if not exe.exists():
        print(f"{label}: build orroute_ledger_bench (scripts/dev-build.sh) to see it")
        return
    cells, base = [], None
    for p in procs:
        out = subprocess.run(
            [str(exe), location, "1", str(n), leases if isinstance(leases, str) else
             "1" if leases else "0", str(p)],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        rate, p99, exact = float(out[0]), float(out[2]), out[3] == "1"
        base = base or rate
        cells.append(
            f"{p}: {rate:,.0f}/s ({rate / base:.2f}x, p99 {p99:,.0f} us{'' if exact else ', NOT EXACT'})"
        )
    print(f"{label}: " + "; ".join(cells))


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


# ---- Redis ------------------------------------------------------------------------------------


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server not found (scripts/system-deps.sh --with-test-services)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.01)
    return proc, port


def peer_incr(port: int, n: int) -> float:
    """One INCRBY per round trip over a raw socket: what one command costs from Python."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    cmd = b"*3\r\n$6\r\nINCRBY\r\n$4\r\npeer\r\n$9\r\n123456789\r\n"
    t0 = time.perf_counter()
    for _ in range(n):
        sock.sendall(cmd)
        f.readline()
    rate = n / (time.perf_counter() - t0)
    sock.close()
    return rate


def peer_redis_benchmark(port: int, n: int, clients: int) -> float | None:
    exe = shutil.which("redis-benchmark")
    if not exe:
        return None
    out = subprocess.run(
        [exe, "-p", str(port), "-t", "incr", "-n", str(n), "-c", str(clients), "-q", "-P", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    # "INCR: 98039.22 requests per second, p50=0.031 msec"
    for part in out.replace("\r", "\n").split("\n"):
        if part.startswith("INCR:") and "requests per second" in part:
            return float(part.split()[1])
    return None


def bench_redis(tmp: Path, n: int, url: str | None, procs: list[int]) -> None:
    proc = None
    if url is None:
        proc, port = _start_redis(tmp)
        url = f"redis://127.0.0.1:{port}/0?prefix=bench:"
    else:
        port = int(url.split("://", 1)[1].split("@")[-1].split("/")[0].split(":")[1])
    try:
        nr = min(n, 5000)
        med, p99 = latency(url + "lat:" if "?prefix=" in url else url, nr)
        one = throughput(url + "t1:" if "?prefix=" in url else url, nr, 1, False)  # type: ignore[arg-type]
        eight = throughput(url + "t8:" if "?prefix=" in url else url, nr, 8, False)  # type: ignore[arg-type]
        print(
            f"redis ledger        : reserve+settle latency (1 thread) median {med:.1f} us, "
            f"p99 {p99:.0f} us; settled calls/s 1 thread {one:,.0f}, 8 threads {eight:,.0f} "
            f"(redis-server on loopback, {os.cpu_count()} cores shared)"
        )
        incr = peer_incr(port, nr * 2)
        print(
            f"peer: bare INCRBY per round trip from Python: {incr:,.0f}/s = {1e6 / incr:.1f} us "
            f"(reserve+settle = 2 round trips: ledger latency {med / (2e6 / incr):.2f}x of 2 "
            f"INCRBYs; 1-thread calls/s {one / (incr / 2):.2f}x of INCRBY pairs/s)"
        )
        for clients in (1, 8):
            rb = peer_redis_benchmark(port, nr * 4, clients)
            if rb is not None:
                print(f"peer: redis-benchmark INCR, {clients} connection(s): {rb:,.0f} requests/s")
        process_curve(url + "procs:" if "?prefix=" in url else url, nr, procs, False,
                      "redis ledger, processes x 1 thread (C++)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--backend", choices=["sqlite", "redis", "both"], default="sqlite")
    ap.add_argument("--redis-url", default=None, help="an existing server (default: start one)")
    ap.add_argument("--processes", default="1,2,4,8", help="process counts of the scaling curve")
    args = ap.parse_args()
    n = args.calls
    procs = [int(p) for p in args.processes.split(",")]
    if args.backend in ("redis", "both"):
        with tempfile.TemporaryDirectory() as d:
            bench_redis(Path(d), n, args.redis_url, procs)
        if args.backend == "redis":
            return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows: dict[bool, tuple[float, float, float, float]] = {}
        for leases in (True, False):
            med, p99 = latency(tmp / f"lat{leases}.sqlite3", min(n, 5000), leases=leases)
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
        for leases in (True, False):
            process_curve(str(tmp), n, procs, leases,
                          f"sqlite ledger, processes x 1 thread (C++), leases {'on ' if leases else 'off'}")
        process_curve(str(tmp), n, procs, "2",
                      "sqlite ledger, processes x 1 thread (C++), write-behind settles (10 ms / 64)")
        peer = peer_sqlite(tmp / "peer.sqlite3", n)
        print(
            f"peer: Python sqlite3 bare INSERT+COMMIT per call: {peer:,.0f}/s "
            f"(ledger 1-thread reserve+settle = {on[2] / peer:.2f}x of it with leases, "
            f"{off[2] / peer:.2f}x without)"
        )


if __name__ == "__main__":
    main()
