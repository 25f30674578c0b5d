"""Benchmark of the network client. Prints figures; asserts nothing.

Measured in one run against FakeOpenRouter (in its own process, zero model latency):
  1. latency per chat completion (p50, p99) at concurrency 1 and 64 for: a raw libcurl call from
     C++ (bench/raw_curl.cpp, compiled on the fly, one process kept for the run), orroute (sync,
     and AsyncOpenRouter awaited by one task a worker), the `openai` package, `openai` on
     orroute's in-process transport (`orroute.openai_client`, through the router), and the
     official `openrouter` package when installed (after the others, 100 calls); "added" = the
     client's latency minus raw libcurl's. The set-ups' calls run in blocks (``--blocks``,
     default 10), a block of each in turn in a rotated order, so a burst of other load lands on
     every set-up alike; the figures pool each set-up's blocks, and a line per level gives the
     rounds' spread of orroute's added p50 (median and range): the target is shown met, or not,
     when the whole range is. Before each block, untimed, a full collection and a 50 ms pause
     (``_realtime.between_blocks``): a block pays for its own set-up's work only.
  2. N concurrent streams (1,000 and 10,000) through one AsyncOpenRouter: peak RSS and CPU time
     per stream, in a fresh process per N.

Usage: PYTHONPATH=python python3 bench/client.py [--requests 2000] [--streams 1000,10000]
       [--concurrency 1,64] [--blocks 10] [--no-peers] [--realtime]
       (--streams 0 skips the streams table; --no-peers skips the openai and openrouter rows;
       --blocks 1 runs each set-up's calls after the other's; --realtime: SCHED_FIFO, root,
       figures shielded from other processes' load)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _realtime  # bench/ is this script's directory

MSGS = [{"role": "user", "content": "Say hi"}]
MODEL = "m/a"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(**opts: object) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "import sys; from orroute.testing import serve_forever; "
        f"serve_forever(port={port}, models=['m/a'], record=False, use_uvloop=False, **{opts!r})"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "python"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()  # "FakeOpenRouter listening on URL"
    return p, line.split(" on ")[1].split()[0]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_sync(fn: Callable[[], object], n: int) -> list[float]:
    """Runs fn() n times one after another; returns per-call latencies in µs."""
    lat: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t0) * 1e6)
    return lat


async def run_async(make: Callable[[], Awaitable[object]], n: int, conc: int) -> list[float]:
    """`conc` tasks each awaiting `make()` calls one at a time, n in all; latencies in µs."""
    lat: list[float] = []
    per = max(1, n // conc)

    async def worker() -> None:
        for _ in range(per):
            t0 = time.perf_counter()
            await make()
            lat.append((time.perf_counter() - t0) * 1e6)

    await asyncio.gather(*(worker() for _ in range(conc)))
    return lat


class RawCurl:
    """bench/raw_curl.cpp in its own process, kept for the whole run (its connections stay warm):
    each block is a count written to its stdin, answered by that many latencies."""

    def __init__(self, url: str, conc: int) -> None:
        src = HERE / "raw_curl.cpp"
        # named by the source's hash: a binary left by an older raw_curl.cpp is not reused
        tag = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
        exe = Path(tempfile.gettempdir()) / f"orroute_bench_raw_curl_{tag}"
        if not exe.exists():
            cxx = shutil.which("g++") or shutil.which("c++")
            if cxx is None:
                raise FileNotFoundError("no C++ compiler for bench/raw_curl.cpp")
            tmp = exe.with_suffix(f".{os.getpid()}")
            subprocess.run([cxx, "-O2", "-o", str(tmp), str(src), "-lcurl"], check=True)
            tmp.replace(exe)
        fd, self._body = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"model": MODEL, "messages": MSGS}, f)
        self._proc = subprocess.Popen(
            [str(exe), url + "/chat/completions", self._body, "-", str(conc)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def block(self, n: int) -> list[float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{n}\n")
        self._proc.stdin.flush()
        lat: list[float] = []
        for line in self._proc.stdout:
            if line.strip() == "end":
                return lat
            lat.append(float(line))
        raise RuntimeError(f"raw_curl exited with status {self._proc.wait()}")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait()
        os.unlink(self._body)


RAW = "raw libcurl (C++)"
SYNC = "orroute (sync)"
ASYNC = "orroute (async, awaited)"
Block = Callable[[int], list[float]]  # runs n calls of one set-up, returns their latencies (µs)


def setups(url: str, conc: int, loop: asyncio.AbstractEventLoop, peers: bool,
           closers: list[Callable[[], None]]) -> dict[str, Block]:
    """Every client measured at one concurrency level, each as a function running a block of n
    calls (async ones on ``loop``); what must be closed at the end goes to ``closers``."""
    import orroute

    out: dict[str, Block] = {}
    try:
        raw = RawCurl(url, conc)
        closers.append(raw.close)
        out[RAW] = raw.block
    except (FileNotFoundError, subprocess.CalledProcessError) as e:
        print(f"  (raw libcurl not measured: {e})")
    key = "sk-or-v1-bench-not-a-real-key"
    if conc == 1:
        client = orroute.OpenRouter(api_key=key, base_url=url)
        out[SYNC] = lambda n: run_sync(
            lambda: client.chat.completions.create(model=MODEL, messages=MSGS), n)
    aclient = orroute.AsyncOpenRouter(api_key=key, base_url=url)
    out[ASYNC] = lambda n: loop.run_until_complete(run_async(
        lambda: aclient.chat.completions.create(model=MODEL, messages=MSGS), n, conc))
    if not peers:
        return out
    try:
        import openai
    except ImportError:
        print("  (openai not installed)")
        return out
    if conc == 1:
        oc = openai.OpenAI(api_key="x", base_url=url)
        closers.append(oc.close)
        out["openai (sync)"] = lambda n: run_sync(
            lambda: oc.chat.completions.create(model=MODEL, messages=MSGS), n)
    # made inside the loop and closed in it: left to the garbage collector, its httpx client
    # would try to close after the loop is gone and print "Event loop is closed"
    oa = loop.run_until_complete(_in_loop(lambda: openai.AsyncOpenAI(
        api_key="x", base_url=url, max_retries=0)))
    closers.append(lambda: loop.run_until_complete(oa.close()))
    out["openai (async)"] = lambda n: loop.run_until_complete(run_async(
        lambda: oa.chat.completions.create(model=MODEL, messages=MSGS), n, conc))
    # openai's own client on ``orroute.openai_client``: the in-process drop-in for frameworks
    # (openai -> httpx -> orroute.Transport -> the router's engine -> libcurl). Its added latency
    # over "openai" is the router's work (selection, ledger-free settle) plus the transport's.
    manager = orroute.AIModelManager(api_key=key, base_url=url)
    if conc == 1:
        tc = orroute.openai_client(manager)
        closers.append(tc.close)
        out["openai+Transport (sync)"] = lambda n: run_sync(
            lambda: tc.chat.completions.create(model=MODEL, messages=MSGS), n)
    ta = loop.run_until_complete(_in_loop(lambda: orroute.async_openai_client(manager)))
    closers.append(lambda: loop.run_until_complete(ta.close()))
    out["openai+Transport (async)"] = lambda n: loop.run_until_complete(run_async(
        lambda: ta.chat.completions.create(model=MODEL, messages=MSGS), n, conc))
    return out


async def _in_loop(make: Callable[[], T]) -> T:
    return make()


def interleaved(blocks_of: dict[str, Block], per_block: int, blocks: int
                ) -> tuple[dict[str, list[float]], list[dict[str, list[float]]]]:
    """Runs every set-up in ``blocks`` blocks of ``per_block`` calls, a block of each in turn and
    the order rotated every round, so a burst of other load or a change in the machine's state
    lands on every set-up alike instead of on whichever ran then (bench/router.py does the same).
    Returns each set-up's latencies pooled over its blocks, and each round's blocks."""
    names = list(blocks_of)
    for name in names:
        blocks_of[name](50)  # warm up: connections, caches, the code's first runs
    pooled: dict[str, list[float]] = {name: [] for name in names}
    rounds: list[dict[str, list[float]]] = []
    for b in range(blocks):
        k = b % len(names)
        this = {}
        for name in names[k:] + names[:k]:
            _realtime.between_blocks()
            this[name] = blocks_of[name](per_block)
            pooled[name] += this[name]
        rounds.append(this)
    return pooled, rounds


TARGET_US = 50.0  # issue #21: the client adds at most this p50 over raw libcurl at concurrency 1


def spread_line(rounds: list[dict[str, list[float]]], name: str, target: float | None) -> str:
    """How far the rounds agree: the set-up's added p50 over raw libcurl in each round (median
    and range). A target is shown met (or not) only when the whole range is on one side of it."""
    added = sorted(pct(r[name], 0.5) - pct(r[RAW], 0.5) for r in rounds)
    line = (f"    {name}: added p50 over raw libcurl, {len(rounds)} rounds: median "
            f"{statistics.median(added):+.0f} µs (range {added[0]:+.0f} .. {added[-1]:+.0f})")
    if target is None:
        return line
    if added[-1] <= target:
        return f"{line}: <= {target:.0f} µs in every round (met)"
    if added[0] > target:
        return f"{line}: > {target:.0f} µs in every round (not met)"
    return f"{line}: the rounds lie on both sides of {target:.0f} µs (not shown either way)"


def latency_table(url: str, n: int, levels: list[int], blocks: int, peers: bool) -> None:
    print("\n1. Latency per chat completion against a zero-latency loopback FakeOpenRouter (µs);")
    print(f"   each set-up's calls in {blocks} blocks, a block of each in turn (rotated order)")
    summary: list[str] = []
    loop = asyncio.new_event_loop()
    closers: list[Callable[[], None]] = []
    try:
        for conc in levels:
            count = n if conc == 1 else n * 4
            per_block = max(conc, count // blocks)
            pooled, rounds = interleaved(setups(url, conc, loop, peers, closers), per_block, blocks)
            print(f"\nconcurrency {conc}, {per_block * blocks} calls per set-up")
            print(f"{'client':<28}{'p50':>10}{'p99':>10}{'added p50':>11}{'added p99':>11}")
            b50, b99 = (pct(pooled[RAW], 0.5), pct(pooled[RAW], 0.99)) if RAW in pooled else (0, 0)
            for name, lat in pooled.items():
                print(f"{name:<28}{pct(lat, 0.5):>10.0f}{pct(lat, 0.99):>10.0f}"
                      f"{pct(lat, 0.5) - b50:>11.0f}{pct(lat, 0.99) - b99:>11.0f}")
            if RAW not in pooled:
                continue
            summary.append(f"  concurrency {conc}:")
            target = TARGET_US if conc == 1 else None
            summary += [spread_line(rounds, name, target) for name in (SYNC, ASYNC) if name in pooled]
            o = pct(pooled[ASYNC], 0.5)
            for peer in ("openai (async)",):
                if peer in pooled:
                    p = pct(pooled[peer], 0.5)
                    summary.append(
                        f"    p50 {peer} / orroute async = {p / o:.1f}x; added over raw libcurl: "
                        f"{peer} {p - b50:.0f} µs vs orroute {o - b50:.0f} µs "
                        f"({(p - b50) / max(o - b50, 1.0):.0f}x)")
        if peers:
            sdk_rows(url, loop)
    finally:
        for close in reversed(closers):
            close()
        loop.close()
    print("\nTarget (issue #21): orroute adds <= 50 µs p50 over raw libcurl at concurrency 1 "
          "(sync and async), shown met or not only when every round's figure agrees")
    print("\n".join(summary))


def sdk_rows(url: str, loop: asyncio.AbstractEventLoop) -> None:
    """The official `openrouter` package, not interleaved: ~100x slower, a few calls only."""
    try:
        from openrouter import OpenRouter as ORSDK
    except ImportError:
        print("  (openrouter SDK not installed: pip install openrouter)")
        return
    try:
        sdk = ORSDK(api_key="x", server_url=url)
        sdk.chat.send(model=MODEL, messages=MSGS)
        lat = run_sync(lambda: sdk.chat.send(model=MODEL, messages=MSGS), 100)
        alat = loop.run_until_complete(run_async(
            lambda: sdk.chat.send_async(model=MODEL, messages=MSGS), 100, 1))
    except Exception as e:  # noqa: BLE001
        print(f"  (openrouter SDK failed: {type(e).__name__}: {e})")
        return
    for name, xs in (("openrouter SDK (sync)", lat), ("openrouter SDK (async)", alat)):
        print(f"{name:<28}{pct(xs, 0.5):>10.0f}{pct(xs, 0.99):>10.0f}   (100 calls, after the rest)")


def proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def stream_child(url: str, n: int) -> None:
    """Runs in a fresh process: opens n streams at once, reads them all, prints a JSON line."""
    import orroute

    rss0 = proc_kb("VmRSS")  # after imports; VmHWM is this process's own peak (ru_maxrss is not: it
    cpu0 = time.process_time()  # keeps the parent's peak across fork+exec)

    async def main() -> tuple[int, int]:
        client = orroute.AsyncOpenRouter(base_url=url, timeout=120, max_retries=0)
        ok = chunks = 0

        async def one() -> None:
            nonlocal ok, chunks
            s = await client.chat.completions.create(model=MODEL, messages=MSGS, stream=True)
            async for _ in s:
                chunks += 1
            ok += 1

        res = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        errors = [r for r in res if isinstance(r, BaseException)]
        if errors:
            print(f"  {len(errors)} streams failed, e.g. {errors[0]!r}", file=sys.stderr)
        return ok, chunks

    t0 = time.perf_counter()
    ok, chunks = asyncio.run(main())
    wall = time.perf_counter() - t0
    rss = proc_kb("VmHWM")
    print(
        json.dumps(
            {
                "n": n,
                "ok": ok,
                "chunks": chunks,
                "wall": wall,
                "cpu": time.process_time() - cpu0,
                "rss_kb": rss,
                "rss0_kb": rss0,
            }
        )
    )


def streams_table(url: str, ns: list[int]) -> None:
    print(
        "\n2. Concurrent streams through one AsyncOpenRouter (each stream ~2 s, fresh process per N)"
    )
    print(
        f"{'streams':>8}{'ok':>8}{'chunks':>9}{'wall s':>8}{'peak RSS MB':>13}{'KB/stream':>11}{'CPU ms/stream':>15}"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "python"))
    for n in ns:
        out = subprocess.run(
            [sys.executable, __file__, "--stream-child", url, str(n)],
            capture_output=True,
            text=True,
            env=env,
            check=False,  # a failed N is reported in the table, the others still run
        )
        if out.returncode != 0 or not out.stdout.strip():
            print(f"{n:>8}  failed: {out.stderr.strip()[-300:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if out.stderr.strip():
            print(out.stderr.strip()[-300:])
        print(
            f"{n:>8}{r['ok']:>8}{r['chunks']:>9}{r['wall']:>8.1f}{r['rss_kb'] / 1024:>13.0f}"
            f"{(r['rss_kb'] - r['rss0_kb']) / n:>11.1f}{r['cpu'] * 1000 / n:>15.2f}"
        )


def parse_counts(text: str) -> list[int]:
    """"1000,10000" -> [1000, 10000]; "0" or "" -> [] (skip the streams table). A count below zero or
    a word that is not a number ends the run with a usage message instead of a traceback."""
    counts: list[int] = []
    for word in filter(None, (w.strip() for w in text.split(","))):
        try:
            n = int(word)
        except ValueError:
            raise SystemExit(f"--streams: {word!r} is not a number (e.g. --streams 1000,10000)") from None
        if n < 0:
            raise SystemExit(f"--streams: {n} is negative")
        if n:
            counts.append(n)
    return counts


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--stream-child":
        stream_child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--streams", default="1000,10000")
    ap.add_argument("--concurrency", default="1,64", help="levels, e.g. 1 or 1,64")
    ap.add_argument("--blocks", type=int, default=10,
                    help="each set-up's calls in this many blocks, interleaved with the others' "
                         "(1: one set-up's calls after the other's)")
    ap.add_argument("--no-peers", action="store_true",
                    help="skip the openai SDK, openai+Transport and openrouter SDK rows (slow)")
    _realtime.add_flag(ap)
    args = ap.parse_args()
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2
    )
    print(_realtime.apply(args.realtime))
    server, url = start_server()
    try:
        levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
        latency_table(url, args.requests, levels, max(1, args.blocks), not args.no_peers)
    finally:
        server.terminate()
        server.wait()
    stream_counts = parse_counts(args.streams)
    if stream_counts:
        # Streams last ~2 s each (20 tokens/s after a short first-token wait): all N are open together.
        server, url = start_server(tokens_per_second=20.0, ttft=0.2)
        try:
            streams_table(url, stream_counts)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
