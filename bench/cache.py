"""Benchmark of the response cache. Prints figures; asserts nothing.

In one run against FakeOpenRouter (in its own process): the latency of a cache hit against a
miss (the same manager, ledger and request shape; a miss goes through reservation, the upstream
and settlement, then stores the answer; a hit is looked up before any of that), p50 and p99 and
their ratio, for the SQLite store (next to a SQLite ledger) and, with --redis URL, the Redis one.
`--latency` gives the fake upstream a per-request delay (default 0: the miss is only local work,
so the ratio is the smallest it can be; a real upstream answers in 0.3-3 s).

Usage: PYTHONPATH=python python3 bench/cache.py [--requests 300] [--latency 0] [--redis URL]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "m/a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    code = ("from orroute.testing import serve_forever; "
            f"serve_forever(port={port}, models=['m/a'], record=False, latency={latency})")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "python"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    assert p.stdout is not None
    line = p.stdout.readline()
    return p, line.split(" on ")[1].split()[0]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(base_url: str, ledger: str, n: int) -> tuple[list[float], list[float]]:
    """Per-call latencies (µs) of n misses (distinct questions) and n hits (the same ones)."""
    import orroute
    from orroute import Task

    m = orroute.AIModelManager(api_key="sk-or-bench", base_url=base_url, fallbacks=[MODEL],
                               ledger=ledger, cache=True, refresh_catalog=False,
                               unpriced_model_price=1)
    m.cache.clear()
    tasks = [Task(messages=[{"role": "user", "content": f"question {i}: what is {i}+{i}?"}],
                  max_tokens=32) for i in range(n)]
    m.execute_task_sync(Task(messages="warm up", max_tokens=8, cache=False))
    misses, hits = [], []
    for t in tasks:
        t0 = time.perf_counter()
        m.execute_task_sync(t)
        misses.append((time.perf_counter() - t0) * 1e6)
    for t in tasks:
        t0 = time.perf_counter()
        r = m.execute_task_sync(t)
        hits.append((time.perf_counter() - t0) * 1e6)
        assert r.cost_source == "cache"
    return misses, hits


def report(name: str, misses: list[float], hits: list[float]) -> None:
    print(f"{name}:")
    for label, xs in (("miss", misses), ("hit", hits)):
        print(f"  {label:4}  p50 {pct(xs, 0.5):9.0f} µs   p99 {pct(xs, 0.99):9.0f} µs   "
              f"mean {statistics.fmean(xs):9.0f} µs")
    print(f"  hit / miss latency (p50): {pct(hits, 0.5) / pct(misses, 0.5):.3f}  "
          f"(a hit takes {pct(hits, 0.5) / pct(misses, 0.5):.1%} of a miss's time; "
          f"{pct(misses, 0.5) / pct(hits, 0.5):.1f}x faster)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--latency", type=float, default=0.0, help="fake upstream delay (s)")
    ap.add_argument("--redis", default=None, help="also measure the Redis store at this URL")
    a = ap.parse_args()
    server, base_url = start_server(a.latency)
    try:
        with tempfile.TemporaryDirectory() as d:
            misses, hits = run(base_url, str(Path(d) / "ledger.sqlite3"), a.requests)
            report(f"SQLite ledger + cache, {a.requests} requests, upstream latency "
                   f"{a.latency * 1000:.0f} ms", misses, hits)
        if a.redis:
            misses, hits = run(base_url, a.redis, a.requests)
            report(f"Redis ledger + cache ({a.redis})", misses, hits)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
