"""What a budget adds to a manager call at concurrency 1, in paired blocks. Prints figures;
asserts nothing.

The manager with no ledger, with a budget on its in-memory ledger and with a budget on a file
ledger run in turn, `--calls` sequential calls a block, `--blocks` rounds, all in one process
against one FakeOpenRouter (another process). Each block measures this thread's CPU per call
(`time.thread_time`), the p50 latency, and this thread's voluntary and involuntary context
switches per call (`RUSAGE_THREAD`); the other threads' CPU per call is printed too (at
concurrency 1 the network loop runs on the calling thread, and a settle is written inline).
The added figures are medians of the per-round differences to the no-ledger manager of the
same round, so a change of the machine's load between rounds cancels. Run it under
`chrt -f 10` to keep other processes from preempting the calls (docs/performance.md).

Usage: PYTHONPATH=python [chrt -f 10] python3 bench/budget_cost.py [--calls 500] [--blocks 10]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router import MODEL, MSGS, run_against_server  # the same server and workload


async def run(url: str, calls: int, blocks: int, ledger_dir: str) -> None:
    import orroute
    from orroute import Task

    kw = {"api_key": "sk-or-bench", "base_url": url, "fallbacks": [MODEL, "m/b"]}
    managers = {
        "manager, no ledger": orroute.AIModelManager(**kw),
        "manager, memory ledger": orroute.AIModelManager(**kw, budget=1_000_000),
        "manager, file ledger": orroute.AIModelManager(
            **kw, budget=1_000_000, ledger=str(Path(ledger_dir) / "ledger.sqlite")),
    }
    for m in managers.values():
        for _ in range(200):
            await m.execute_task(Task(messages=MSGS, max_tokens=16))
    fields = ("cpu", "other", "p50", "vcsw", "ivcsw")
    res: dict[str, dict[str, list[float]]] = {k: {f: [] for f in fields} for k in managers}
    for _ in range(blocks):
        for name, m in managers.items():
            lat = []
            p0, t0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
            c0 = time.thread_time()
            for _ in range(calls):
                a = time.perf_counter()
                await m.execute_task(Task(messages=MSGS, max_tokens=16))
                lat.append(time.perf_counter() - a)
            c1 = time.thread_time()
            p1, t1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_THREAD)
            proc = p1.ru_utime + p1.ru_stime - p0.ru_utime - p0.ru_stime
            r = res[name]
            r["cpu"].append((c1 - c0) / calls * 1e6)
            r["other"].append(max(0.0, proc - (c1 - c0)) / calls * 1e6)
            r["p50"].append(statistics.median(lat) * 1e6)
            r["vcsw"].append((t1.ru_nvcsw - t0.ru_nvcsw) / calls)
            r["ivcsw"].append((t1.ru_nivcsw - t0.ru_nivcsw) / calls)
    base = res["manager, no ledger"]
    print(f"concurrency 1, {calls} calls x {blocks} alternated blocks (medians; added = paired "
          "difference to the no-ledger manager)")
    print(f"  {'':<24}{'CPU µs':>8}{'added':>8}{'other µs':>10}{'p50 µs':>8}{'added':>8}"
          f"{'vcsw':>7}{'ivcsw':>7}")
    for name, r in res.items():
        med = {f: statistics.median(r[f]) for f in fields}
        d_cpu = statistics.median(a - b for a, b in zip(r["cpu"], base["cpu"]))
        d_p50 = statistics.median(a - b for a, b in zip(r["p50"], base["p50"]))
        print(f"  {name:<24}{med['cpu']:>8.1f}{d_cpu:>+8.1f}{med['other']:>10.1f}{med['p50']:>8.1f}"
              f"{d_p50:>+8.1f}{med['vcsw']:>7.2f}{med['ivcsw']:>7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--blocks", type=int, default=10)
    a = ap.parse_args()
    run_against_server(lambda url, levels, d: run(url, a.calls, a.blocks, d), "1",
                       "orroute-budget-cost-")


if __name__ == "__main__":
    main()
