"""Benchmark of the network client. Prints figures; asserts nothing.

Measured in one run against FakeOpenRouter (in its own process, zero model latency):
  1. latency per chat completion (p50, p99) at concurrency 1 and 64 for: a raw libcurl call from
     C++ (bench/raw_curl.cpp, compiled on the fly), orroute, the `openai` package, `openai` on
     orroute's in-process transport (`orroute.openai_client`, through the router), and the
     official `openrouter` package when installed; "added" = the client's latency minus raw
     libcurl's.
  2. N concurrent streams (1,000 and 10,000) through one AsyncOpenRouter: peak RSS and CPU time
     per stream, in a fresh process per N.

Usage: PYTHONPATH=python python3 bench/client.py [--requests 2000] [--streams 1000,10000]
       [--realtime]
       (--streams 0 skips the streams table; --realtime: SCHED_FIFO, root, figures shielded from
       other processes' load)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _realtime  # bench/ is this script's directory

MSGS = [{"role": "user", "content": "Say hi"}]
MODEL = "m/a"


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


def run_concurrent(fn, n: int, conc: int) -> list[float]:
    """Runs fn() n times from `conc` threads; returns per-call latencies in µs."""
    lat: list[float] = []
    lock = threading.Lock()
    per = n // conc

    def worker() -> None:
        mine = []
        for _ in range(per):
            t0 = time.perf_counter()
            fn()
            mine.append((time.perf_counter() - t0) * 1e6)
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat


async def run_async(make, n: int, conc: int) -> list[float]:
    lat: list[float] = []
    per = n // conc

    async def worker() -> None:
        for _ in range(per):
            t0 = time.perf_counter()
            await make()
            lat.append((time.perf_counter() - t0) * 1e6)

    await asyncio.gather(*(worker() for _ in range(conc)))
    return lat


def raw_curl(url: str, n: int, conc: int) -> list[float] | None:
    exe = Path(tempfile.gettempdir()) / "orroute_bench_raw_curl"
    if not exe.exists():
        cxx = shutil.which("g++") or shutil.which("c++")
        if cxx is None:
            return None
        subprocess.run(
            [cxx, "-O2", "-o", str(exe), str(HERE / "raw_curl.cpp"), "-lcurl"], check=True
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"model": MODEL, "messages": MSGS}, f)
    out = subprocess.run(
        [str(exe), url + "/chat/completions", f.name, str(n), str(conc)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    return [float(x) for x in out.split()]


def latency_rows(url: str, conc: int, count: int) -> list[tuple[str, int, list[float]]]:
    """Measures every client at one concurrency level; returns (client, conc, latencies µs) rows."""
    import orroute

    rows: list[tuple[str, int, list[float]]] = []
    raw = raw_curl(url, count, conc)
    if raw:
        rows.append(("raw libcurl (C++)", conc, raw))

    client = orroute.OpenRouter(api_key="sk-or-v1-bench-not-a-real-key", base_url=url)

    def call() -> object:
        return client.chat.completions.create(model=MODEL, messages=MSGS)

    run_concurrent(call, 50, 1)  # warm up
    if conc == 1:
        rows.append(("orroute (sync)", conc, run_concurrent(call, count, 1)))
    aclient = orroute.AsyncOpenRouter(api_key="sk-or-v1-bench-not-a-real-key", base_url=url)
    rows.append(
        (
            "orroute (async)",
            conc,
            asyncio.run(
                run_async(
                    lambda: aclient.chat.completions.create(model=MODEL, messages=MSGS),
                    count,
                    conc,
                )
            ),
        )
    )

    try:
        import openai

        oc = openai.OpenAI(api_key="x", base_url=url)

        def ocall() -> object:
            return oc.chat.completions.create(model=MODEL, messages=MSGS)

        run_concurrent(ocall, 50, 1)
        if conc == 1:
            rows.append(("openai (sync)", conc, run_concurrent(ocall, count, 1)))

        async def openai_async() -> list[float]:
            # closed inside the loop: left to the garbage collector, its httpx client would try
            # to close after asyncio.run() and print "Event loop is closed"
            async with openai.AsyncOpenAI(api_key="x", base_url=url, max_retries=0) as ac:
                return await run_async(
                    lambda: ac.chat.completions.create(model=MODEL, messages=MSGS), count, conc
                )

        rows.append(("openai (async)", conc, asyncio.run(openai_async())))
        rows += transport_rows(url, conc, count)
    except ImportError:
        print("  (openai not installed)")
    try:
        from openrouter import OpenRouter as ORSDK

        sdk = ORSDK(api_key="x", server_url=url)

        def scall() -> object:
            return sdk.chat.send(model=MODEL, messages=MSGS)

        scall()
        if conc == 1:
            rows.append(("openrouter SDK (sync)", conc, run_concurrent(scall, min(count, 100), 1)))

        async def sdk_async() -> list[float]:
            # the SDK is ~100x slower: fewer requests keep the run short
            return await run_async(
                lambda: sdk.chat.send_async(model=MODEL, messages=MSGS), min(count, 4 * conc), conc
            )

        rows.append(("openrouter SDK (async)", conc, asyncio.run(sdk_async())))
    except ImportError:
        print("  (openrouter SDK not installed: pip install openrouter)")
    except Exception as e:  # noqa: BLE001
        print(f"  (openrouter SDK failed: {type(e).__name__}: {e})")
    return rows


def transport_rows(url: str, conc: int, count: int) -> list[tuple[str, int, list[float]]]:
    """openai's own client on ``orroute.openai_client``: the in-process drop-in for frameworks
    (openai -> httpx -> orroute.Transport -> the router's engine -> libcurl). Its added latency
    over "openai" is the router's work (selection, ledger-free settle) plus the transport's."""
    import orroute

    manager = orroute.AIModelManager(api_key="sk-or-v1-bench-not-a-real-key", base_url=url)
    rows: list[tuple[str, int, list[float]]] = []
    oc = orroute.openai_client(manager)

    def tcall() -> object:
        return oc.chat.completions.create(model=MODEL, messages=MSGS)

    run_concurrent(tcall, 50, 1)
    if conc == 1:
        rows.append(("openai+Transport (sync)", conc, run_concurrent(tcall, count, 1)))

    async def transport_async() -> list[float]:
        async with orroute.async_openai_client(manager) as ac:
            return await run_async(
                lambda: ac.chat.completions.create(model=MODEL, messages=MSGS), count, conc
            )

    rows.append(("openai+Transport (async)", conc, asyncio.run(transport_async())))
    oc.close()
    return rows


def latency_table(url: str, n: int) -> None:
    rows: list[tuple[str, int, list[float]]] = []
    for conc in (1, 64):
        rows += latency_rows(url, conc, n if conc == 1 else n * 4)

    print("\n1. Latency per chat completion against a zero-latency loopback FakeOpenRouter (µs)")
    print(f"{'client':<26}{'conc':>5}{'p50':>10}{'p99':>10}{'added p50':>11}{'added p99':>11}")
    base = {c: (pct(l, 0.5), pct(l, 0.99)) for name, c, l in rows if name.startswith("raw")}
    for name, conc, lat in rows:
        b50, b99 = base.get(conc, (0.0, 0.0))
        print(
            f"{name:<26}{conc:>5}{pct(lat, 0.5):>10.0f}{pct(lat, 0.99):>10.0f}"
            f"{pct(lat, 0.5) - b50:>11.0f}{pct(lat, 0.99) - b99:>11.0f}"
        )
    for conc in (1, 64):
        p50 = {n: pct(lat, 0.5) for n, c, lat in rows if c == conc}
        raw = p50.get("raw libcurl (C++)", 0.0)
        o = p50.get("orroute (async)")
        for peer in ("openai (async)", "openrouter SDK (async)"):
            if o and peer in p50:
                added_o = max(o - raw, 1.0)
                print(
                    f"  concurrency {conc}: p50 {peer} / orroute async = {p50[peer] / o:.1f}x; "
                    f"added over raw libcurl: {peer} {p50[peer] - raw:.0f} µs vs orroute {o - raw:.0f} µs "
                    f"({(p50[peer] - raw) / added_o:.0f}x)"
                )


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
    _realtime.add_flag(ap)
    args = ap.parse_args()
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2
    )
    print(_realtime.apply(args.realtime))
    server, url = start_server()
    try:
        latency_table(url, args.requests)
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
