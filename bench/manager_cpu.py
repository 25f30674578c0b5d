"""CPU and context switches per call: the bare async client against the manager (no ledger, an
in-memory ledger, a file ledger), split into the calling thread (Python, asyncio, plan and
submit) and the other threads (the network loop, the settle worker). Prints medians over
alternated rounds and each set-up's ratio to the bare client of the same round. Asserts nothing.

The throughput of a busy process is bounded by its busiest thread: at high concurrency the
calling thread's CPU per call is what caps the manager (see docs/performance.md).

Usage: PYTHONPATH=python python3 bench/manager_cpu.py [--requests 3000] [--concurrency 1,64]
       [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router import MODEL, MSGS, run_against_server  # the same server and workload

SETUPS = ("bare", "manager, no ledger", "manager, memory ledger", "manager, file ledger")


async def measure(call: Callable[[], Awaitable[object]], n: int, conc: int) -> dict[str, float]:
    """Runs `call()` n times from `conc` workers: per-call µs of CPU (this thread, the others;
    of the whole process's, the part spent in the kernel), voluntary context switches per call,
    calls/s."""
    for _ in range(min(50, n)):
        await call()
    per = max(1, n // conc)

    async def worker() -> None:
        for _ in range(per):
            await call()

    r0, m0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall, main = time.perf_counter() - t0, time.thread_time() - m0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    calls = per * conc
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    kernel = r1.ru_stime - r0.ru_stime
    return {"main": main / calls * 1e6, "other": (cpu - main) / calls * 1e6,
            "sys": kernel / calls * 1e6, "vcsw": (r1.ru_nvcsw - r0.ru_nvcsw) / calls, "calls/s": calls / wall}


async def run(url: str, n: int, levels: list[int], rounds: int, ledger_dir: str) -> None:
    import orroute
    from orroute import Task

    client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)
    kw = {"api_key": "sk-or-bench", "base_url": url, "fallbacks": [MODEL, "m/b"]}
    managers = [
        orroute.AIModelManager(**kw),
        orroute.AIModelManager(**kw, budget=1_000_000),
        orroute.AIModelManager(**kw, budget=1_000_000,
                               ledger=str(Path(ledger_dir) / "ledger.sqlite")),
    ]
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)]
    for m in managers:
        calls.append(lambda m=m: m.execute_task(Task(messages=MSGS, max_tokens=16)))
    for conc in levels:
        runs: list[list[dict[str, float]]] = [[] for _ in SETUPS]
        for _ in range(rounds):
            for i, call in enumerate(calls):
                runs[i].append(await measure(call, n, conc))
        print(f"\nconcurrency {conc}, {n} calls x {rounds} alternated rounds (medians):")
        print(f"  {'':<26}{'main µs':>9}{'other µs':>9}{'sys µs':>8}{'vcsw':>7}{'calls/s':>9}"
              f"{'main/bare':>11}{'thru/bare':>11}")
        for name, rs in zip(SETUPS, runs):
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            main_ratio = statistics.median(r["main"] / b["main"] for r, b in zip(rs, runs[0]))
            thru_ratio = statistics.median(
                r["calls/s"] / b["calls/s"] for r, b in zip(rs, runs[0]))
            print(f"  {name:<26}{med['main']:>9.0f}{med['other']:>9.0f}{med['sys']:>8.0f}"
                  f"{med['vcsw']:>7.2f}"
                  f"{med['calls/s']:>9.0f}{main_ratio:>10.2f}x{100 * thru_ratio:>10.0f}%")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    run_against_server(lambda url, levels, d: run(url, a.requests, levels, a.rounds, d),
                       a.concurrency, "orroute-manager-cpu-")


if __name__ == "__main__":
    main()
