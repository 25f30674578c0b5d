"""Benchmark of the router (AIModelManager). Prints figures; asserts nothing.

In one run against FakeOpenRouter (in its own process, zero model latency):
  1. added latency of the router over a bare client call (orroute.AsyncOpenRouter, same server):
     p50 and p99 per task at concurrency 1 and 64. The router does more per call (token count,
     complexity, selection, ledger reservation + settlement in SQLite, rate-limit admission,
     breakers, metrics), so "added" = router latency - bare client latency.
  2. the same workload through LiteLLM's Router (when `litellm` is installed) and the ratio of its
     added latency to ours.
  3. N concurrent streaming tasks (default 10,000) through one manager: wall time, tasks/s, peak
     RSS growth, in a fresh process.

Usage: PYTHONPATH=python python3 bench/router.py [--requests 2000] [--streams 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL = "m/a"
MSGS = [{"role": "user", "content": "Say hi"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "from orroute.testing import serve_forever; "
        f"serve_forever(port={port}, models=['m/a', 'm/b'], record=False)"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "python"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()
    return p, line.split(" on ")[1].split()[0]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def measure(call, n: int, conc: int) -> list[float]:
    """Runs `call()` n times with `conc` in flight; per-call latencies in µs."""
    lat: list[float] = []
    sem = asyncio.Semaphore(conc)

    async def one() -> None:
        async with sem:
            t = time.perf_counter()
            await call()
            lat.append((time.perf_counter() - t) * 1e6)

    for _ in range(min(50, n)):  # warm up connections and caches
        await call()
    await asyncio.gather(*(one() for _ in range(n)))
    return lat


def row(name: str, lat: list[float], base: list[float] | None) -> str:
    p50, p99 = pct(lat, 0.5), pct(lat, 0.99)
    s = f"  {name:<28} p50 {p50:8.0f} µs   p99 {p99:8.0f} µs"
    if base is not None:
        s += f"   added p50 {p50 - pct(base, 0.5):+8.0f} µs   p99 {p99 - pct(base, 0.99):+8.0f} µs"
    return s


async def latency_section(url: str, n: int) -> None:
    import orroute
    from orroute import Task

    client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)
    manager = orroute.AIModelManager(api_key="sk-or-bench", base_url=url, fallbacks=[MODEL, "m/b"])
    budgeted = orroute.AIModelManager(
        api_key="sk-or-bench", base_url=url, fallbacks=[MODEL, "m/b"], budget=1_000_000
    )

    async def with_budget() -> None:
        await budgeted.execute_task(Task(messages=MSGS, max_tokens=16))

    async def bare() -> None:
        await client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)

    async def routed() -> None:
        await manager.execute_task(Task(messages=MSGS, max_tokens=16))

    litellm_router = None
    try:
        import litellm
        from litellm import Router

        litellm.suppress_debug_info = True
        litellm_router = Router(
            model_list=[
                {
                    "model_name": "bench",
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": url,
                        "api_key": "sk-or-bench",
                    },
                }
            ],
            num_retries=2,
        )
    except Exception as e:  # noqa: BLE001  (not installed, or an incompatible version)
        print(f"  (LiteLLM Router not measured: {type(e).__name__}: {e})")

    async def via_litellm() -> None:
        await litellm_router.acompletion(model="bench", messages=MSGS, max_tokens=16)

    for conc in (1, 64):
        print(f"concurrency {conc}, {n} tasks:")
        base = await measure(bare, n, conc)
        ours = await measure(routed, n, conc)
        print(row("bare AsyncOpenRouter", base, None))
        print(row("AIModelManager", ours, base))
        ledgered = await measure(with_budget, n, conc)
        print(row("AIModelManager + budget", ledgered, base))
        if litellm_router is not None:
            theirs = await measure(via_litellm, n, conc)
            print(row("LiteLLM Router", theirs, base))
            ours_added = pct(ours, 0.5) - pct(base, 0.5)
            their_added = pct(theirs, 0.5) - pct(base, 0.5)
            if ours_added > 0:
                print(f"  LiteLLM added / orroute added (p50): {their_added / ours_added:.1f}x")
            else:
                print("  orroute adds nothing measurable over the bare client at this concurrency")
            print(f"  LiteLLM p50 / orroute p50: {pct(theirs, 0.5) / pct(ours, 0.5):.1f}x")
    await client.close() if hasattr(client, "close") else None


def stream_child(url: str, n: int) -> None:
    import orroute
    from orroute import Task

    manager = orroute.AIModelManager(
        api_key="sk-or-bench", base_url=url, fallbacks=[MODEL], budget=1_000_000
    )
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def one(i: int) -> int:
        chunks = 0
        async for _ in manager.stream_task(Task(messages=f"stream {i}", max_tokens=16)):
            chunks += 1
        return chunks

    async def main() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(n)))

    t = time.perf_counter()
    chunks = asyncio.run(main())
    wall = time.perf_counter() - t
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    rss = cpu.ru_maxrss
    print(
        json.dumps(
            {
                "n": n,
                "wall": wall,
                "chunks": sum(chunks),
                "cpu": cpu.ru_utime + cpu.ru_stime,
                "rss_growth_kb": rss - rss0,
                "rss_peak_kb": rss,
            }
        )
    )


def stream_section(url: str, n: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "python"))
    out = subprocess.run(
        [sys.executable, __file__, "--child-streams", str(n), "--url", url],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        print(f"  streaming run failed: {out.stderr.strip()[-400:]}")
        return
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{r['n']} concurrent streaming tasks: {r['wall']:.2f} s wall, {r['n'] / r['wall']:.0f} tasks/s, "
        f"{r['chunks']} chunks, CPU {r['cpu'] / r['n'] * 1e6:.0f} µs/task, "
        f"peak RSS {r['rss_peak_kb'] / 1024:.0f} MiB (+{r['rss_growth_kb'] / 1024:.1f} MiB over the "
        f"peak before the tasks, {r['rss_growth_kb'] / r['n']:.1f} KiB/task)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--child-streams", type=int, default=0)
    ap.add_argument("--url", default="")
    a = ap.parse_args()
    if a.child_streams:
        stream_child(a.url, a.child_streams)
        return
    server, url = start_server()
    try:
        print(f"FakeOpenRouter at {url} (separate process, zero model latency)")
        asyncio.run(latency_section(url, a.requests))
        if a.streams:
            stream_section(url, a.streams)
    finally:
        server.terminate()
        server.wait()
    _ = statistics  # (kept for quick ad-hoc analysis)


if __name__ == "__main__":
    main()
