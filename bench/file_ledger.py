"""The manager with a file ledger (what the gateway runs) against the bare async client and the
manager with no ledger, at high concurrency, in alternated rounds. Prints figures; asserts nothing.

bench/router.py measures each set-up once per level, one after the other, so a burst of load on
the shared machine lands on one row; here every round measures the three set-ups at each level
in a rotated order and the summary is the median over rounds of each round's ratios to the bare
client of that round (issue #21: added p50 <= 10% of bare, throughput >= 90% of bare).

Usage: PYTHONPATH=python python3 bench/file_ledger.py [--requests 3000] [--concurrency 64,256]
       [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router import (  # same server, workload, timing
    MODEL,
    Messages,
    Run,
    measure,
    run_against_server,
)

SETUPS = ("bare", "manager, no ledger", "manager, file ledger")


async def run(url: str, n: int, levels: list[int], rounds: int, ledger_dir: str) -> None:
    import orroute
    from orroute import Task

    client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)
    kw = {"api_key": "sk-or-bench", "base_url": url, "fallbacks": [MODEL, "m/b"]}
    no_ledger = orroute.AIModelManager(**kw)
    filed = orroute.AIModelManager(**kw, budget=1_000_000, ledger=str(Path(ledger_dir) / "l.sqlite"))

    async def bare(msgs: Messages) -> None:
        await client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16)

    def routed(m: orroute.AIModelManager) -> Callable[[Messages], Awaitable[object]]:
        return lambda msgs: m.execute_task(Task(messages=msgs, max_tokens=16))

    calls = dict(zip(SETUPS, (bare, routed(no_ledger), routed(filed))))
    # ratios[conc][setup] = [(p50 / bare p50, calls/s / bare calls/s) per round]
    ratios: dict[int, dict[str, list[tuple[float, float]]]] = {c: {} for c in levels}
    for r in range(rounds):
        for conc in levels:
            count = max(n, 4 * conc)
            order = SETUPS[r % 3:] + SETUPS[:r % 3]  # each set-up goes first in turn
            runs: dict[str, Run] = {}
            for name in order:
                runs[name] = await measure(calls[name], count, conc)
            base = runs["bare"]
            line = f"round {r + 1}, concurrency {conc}:"
            for name in SETUPS:
                x = runs[name]
                line += f"  {name} p50 {x.p50:.0f} µs, {x.calls_per_s:.0f}/s"
                if name != "bare":
                    ratios[conc].setdefault(name, []).append(
                        (x.p50 / base.p50, x.calls_per_s / base.calls_per_s))
            print(line, flush=True)
    print("\nmedians over rounds of each round's ratio to the bare client "
          "(target: added p50 <= +10%, throughput >= 90%)")
    for conc in levels:
        for name, rs in ratios[conc].items():
            p = statistics.median(a for a, _ in rs)
            t = statistics.median(b for _, b in rs)
            each = ", ".join(f"{100 * (a - 1):+.0f}%/{100 * b:.0f}%" for a, b in rs)
            print(f"  conc {conc:>3} {name:<22} added p50 {100 * (p - 1):+4.0f}%  "
                  f"throughput {100 * t:4.0f}%   (rounds: {each})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", default="64,256")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print("FakeOpenRouter in a separate process, zero model latency")
    run_against_server(lambda url, levels, d: run(url, a.requests, levels, a.rounds, d),
                       a.concurrency, "orroute-file-ledger-bench-")

if __name__ == "__main__":
    main()
