"""Benchmark of the router (AIModelManager). Prints figures; asserts nothing.

In one run against FakeOpenRouter (in its own process, zero model latency), at concurrency
1, 8, 64 and 256 (a curve, not a point):
  1. the bare client (orroute.AsyncOpenRouter) and the manager in three ledger set-ups: none (no
     budget: no reservations), an in-memory SQLite ledger (budget only), and a file ledger (budget
     and ``ledger=<file>``, what the gateway runs); per set-up p50/p99 latency, throughput (calls/s)
     and CPU per call (this process, both threads; the server's CPU is not counted). "added" =
     manager - bare client at the same concurrency, and the issue's targets as same-run ratios:
     added p50 at concurrency 1, added p50 / bare p50 at 64 and 256, manager calls/s / bare calls/s.
     The set-ups' calls run in blocks (``--blocks``, default 10; each worker makes at least 16
     calls a block, so a level's calls are at least blocks x 16 x concurrency), a block of each
     in turn in a rotated order, so a change in the shared machine's state lands on every set-up alike; the
     figures pool each set-up's blocks, and a line per level gives the rounds' spread (median and
     range of each round's added p50 and throughput): a target is shown met when its range is.
     Before each block, untimed, a full garbage collection of this process and a 50 ms pause: a
     block pays for its own set-up's work only, not for a collection the others' objects made
     due, their background work, or (--realtime) the kernel's real-time throttle.
  2. LiteLLM's Router (when ``litellm`` is installed) compared like with like: it sends through the
     ``openai`` SDK, so its added latency is LiteLLM - bare ``openai.AsyncOpenAI`` (the SDK's own
     ~5 ms is not LiteLLM's overhead), set against orroute's added latency over its own client.
  3. N concurrent streaming tasks (default 10,000) through one manager: wall time, tasks/s, peak
     RSS growth, in a fresh process.

The prompt of every call (one mode per run):
  default          one short user message ("Say hi"): the fixed cost of a call;
  --prompt-kb K    the same K KiB user message on every call: the router's work on one big prompt
                   (counts, complexity, JSON), as a caller resending one document would see it;
  --conversation N an agent: each call sends a fixed system prompt (4 KiB), every earlier turn
                   (user message and a synthetic assistant reply) and one NEW user message never
                   sent before, growing to ~N KiB, then a new conversation starts. Every set-up
                   (the bare client too) sends the same sequence of message sizes, with texts of
                   its own (the fake server counts each prompt for its usage and remembers long
                   texts as orroute does: a set-up must not find its texts counted by another).

Usage: PYTHONPATH=python python3 bench/router.py [--requests 2000] [--concurrency 1,8,64,256]
       [--streams 10000]   (--streams 0 skips section 3)   [--prompt-kb 20 | --conversation 40]
       [--blocks 10]   (1: each set-up's calls one after the other's, as before)   [--no-litellm]
       [--realtime]   (SCHED_FIFO, root: figures shielded from other processes' load)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import itertools
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import _realtime  # bench/ is this script's directory

HERE = Path(__file__).resolve().parent
MODEL = "m/a"
Messages = list[dict[str, str]]


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


def run_against_server(
    body: Callable[[str, list[int], str], Awaitable[None]], concurrency: str, prefix: str
) -> None:
    """Runs ``body(url, levels, tmp_dir)`` against a fresh FakeOpenRouter process, with the
    levels parsed from "64,256" and a temporary directory for ledger files (removed after)."""
    server, url = start_server()
    try:
        levels = [int(x) for x in concurrency.split(",") if x.strip()]
        with tempfile.TemporaryDirectory(prefix=prefix) as d:
            asyncio.run(body(url, levels, d))
    finally:
        server.terminate()
        server.wait()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


@dataclass
class Run:
    """One set-up at one concurrency: latencies (µs), and the wall and CPU seconds they took
    (this process, all threads); blocks of one set-up add up with ``+``."""

    lat: list[float]
    wall: float
    cpu: float

    def __add__(self, other: Run) -> Run:
        return Run(self.lat + other.lat, self.wall + other.wall, self.cpu + other.cpu)

    @property
    def calls_per_s(self) -> float:
        return len(self.lat) / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / len(self.lat) * 1e6

    @property
    def p50(self) -> float:
        return pct(self.lat, 0.5)

    @property
    def p99(self) -> float:
        return pct(self.lat, 0.99)

    @property
    def mean(self) -> float:
        return sum(self.lat) / len(self.lat)


async def warm_up(call: Callable[[Messages], Awaitable[object]], prompts: Callable[[], Messages]) -> None:
    """50 calls first: connections, caches and the code's first runs are not measured."""
    for _ in range(50):
        await call(prompts())


async def measure(
    call: Callable[[Messages], Awaitable[object]],
    n: int,
    conc: int,
    prompts: Callable[[], Messages] | None = None,
) -> Run:
    """Runs `call(messages)` n times from `conc` workers (each awaits one call at a time), the
    messages of each call from ``prompts`` (a set-up's own source, kept across its blocks); with
    none, a fresh PROMPTS() warmed up first (so every set-up sends the same sequence)."""
    if prompts is None:
        prompts = PROMPTS()
        await warm_up(call, prompts)
    lat: list[float] = []
    per = max(1, n // conc)

    async def worker() -> None:
        for _ in range(per):
            msgs = prompts()
            t = time.perf_counter()
            await call(msgs)
            lat.append((time.perf_counter() - t) * 1e6)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return Run(lat, time.perf_counter() - t0, time.process_time() - cpu0)


def row(name: str, r: Run, base: Run | None) -> str:
    s = (
        f"  {name:<34}{r.p50:>9.0f}{r.mean:>9.0f}{r.p99:>9.0f}{r.calls_per_s:>9.0f}{r.cpu_us:>9.0f}"
    )
    if base is not None:
        s += (
            f"{r.p50 - base.p50:>+10.0f}{r.p99 - base.p99:>+10.0f}"
            f"{100 * (r.p50 - base.p50) / base.p50:>+8.0f}%{100 * r.calls_per_s / base.calls_per_s:>8.0f}%"
        )
    return s


MIN_PER_WORKER = 16  # calls a worker makes in each block, at least

async def between_blocks() -> None:
    """_realtime.between_blocks, without stopping the event loop during the pause."""
    gc.collect()
    await asyncio.sleep(_realtime.BLOCK_PAUSE_S)

HEADER = (
    f"  {'':<34}{'p50 µs':>9}{'mean µs':>9}{'p99 µs':>9}{'calls/s':>9}{'CPU µs':>9}"
    f"{'added p50':>10}{'added p99':>10}{'p50 +%':>9}{'thru %':>8}"
)


BARE = "bare AsyncOpenRouter"


async def interleaved(
    calls: dict[str, Callable[[Messages], Awaitable[object]]], per_block: int, conc: int, blocks: int
) -> tuple[dict[str, Run], list[dict[str, Run]]]:
    """Measures every set-up in ``blocks`` blocks of ``per_block`` calls, a block of each in turn
    and the order rotated every round, so a change in the machine's state (other processes'
    load, frequency, a neighbour's cache) lands on all set-ups alike instead of on whichever ran
    then. Returns each set-up's blocks added up, and each round's blocks."""
    names = list(calls)
    prompts = {name: PROMPTS() for name in names}  # each set-up's own sequence, across blocks
    for name in names:
        await warm_up(calls[name], prompts[name])
    total = {name: Run([], 0.0, 0.0) for name in names}
    rounds: list[dict[str, Run]] = []
    for b in range(blocks):
        k = b % len(names)
        this: dict[str, Run] = {}
        for name in names[k:] + names[:k]:
            await between_blocks()
            this[name] = await measure(calls[name], per_block, conc, prompts[name])
            total[name] = total[name] + this[name]
        rounds.append(this)
    return total, rounds


def spread_line(rounds: list[dict[str, Run]], name: str, conc: int) -> str:
    """How far the rounds agree: the set-up's added p50 over the bare client in each round
    (median and range), beside the pooled figure. A target is shown met only when the range is."""
    added = sorted(r[name].p50 - r[BARE].p50 for r in rounds)
    share = sorted(100 * (r[name].p50 - r[BARE].p50) / r[BARE].p50 for r in rounds)
    thru = sorted(100 * r[name].calls_per_s / r[BARE].calls_per_s for r in rounds)
    return (f"           {len(rounds)} rounds, {name} - bare: added p50 median "
            f"{statistics.median(added):+.0f} µs (range {added[0]:+.0f} .. {added[-1]:+.0f}), "
            f"{statistics.median(share):+.0f}% (range {share[0]:+.0f} .. {share[-1]:+.0f}%); "
            f"throughput median {statistics.median(thru):.0f}% "
            f"(range {thru[0]:.0f} .. {thru[-1]:.0f}%)")


async def latency_section(
    url: str, n: int, levels: list[int], ledger_dir: str, blocks: int, with_litellm: bool = True
) -> None:
    import orroute
    from orroute import Task

    client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)
    managers = {
        "manager, no ledger": orroute.AIModelManager(
            api_key="sk-or-bench", base_url=url, fallbacks=[MODEL, "m/b"]
        ),
        "manager + budget, memory ledger": orroute.AIModelManager(
            api_key="sk-or-bench", base_url=url, fallbacks=[MODEL, "m/b"], budget=1_000_000
        ),
        "manager + budget, file ledger": orroute.AIModelManager(
            api_key="sk-or-bench",
            base_url=url,
            fallbacks=[MODEL, "m/b"],
            budget=1_000_000,
            ledger=os.path.join(ledger_dir, "ledger.sqlite"),
        ),
    }

    async def bare(msgs: Messages) -> None:
        await client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16)

    def routed(m: orroute.AIModelManager) -> Callable[[Messages], Awaitable[object]]:
        return lambda msgs: m.execute_task(Task(messages=msgs, max_tokens=16))

    litellm_router = openai_client = None
    try:
        if not with_litellm:
            raise RuntimeError("--no-litellm")
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
        import litellm
        import openai
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
        openai_client = openai.AsyncOpenAI(api_key="sk-or-bench", base_url=url, max_retries=0)
    except Exception as e:  # noqa: BLE001  (not installed, or an incompatible version)
        print(f"  (LiteLLM Router not measured: {type(e).__name__}: {e})")

    async def sdk(msgs: Messages) -> None:
        assert openai_client is not None
        await openai_client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16)

    async def via_litellm(msgs: Messages) -> None:
        assert litellm_router is not None
        await litellm_router.acompletion(model="bench", messages=msgs, max_tokens=16)

    calls: dict[str, Callable[[Messages], Awaitable[object]]] = {
        BARE: bare, **{name: routed(m) for name, m in managers.items()}
    }
    summary: list[str] = []
    for conc in levels:
        # each worker makes at least MIN_PER_WORKER calls a block: a block starts with every worker
        # calling at once and ends with the last ones alone, and with few calls a worker (1,000-call
        # blocks at 256: ~4) that ramp, not the steady state, sets the p50 (session 19: the
        # manager +24..+34% over the bare client's p50 at equal throughput and equal mean latency)
        per_block = max(MIN_PER_WORKER * conc, n // blocks)
        print(f"\nconcurrency {conc}, {per_block * blocks} calls per set-up in {blocks} blocks "
              f"of {per_block}, the set-ups' blocks interleaved (rotated order):")
        print(HEADER)
        runs, rounds = await interleaved(calls, per_block, conc, blocks)
        base = runs[BARE]
        for name, r in runs.items():
            print(row(name, r, None if name == BARE else base))
        ours = runs["manager, no ledger"]
        filed = runs["manager + budget, file ledger"]
        summary.append(
            f"  conc {conc:>3}: manager added p50 {ours.p50 - base.p50:+.0f} µs "
            f"({100 * (ours.p50 - base.p50) / base.p50:+.0f}% of bare), throughput "
            f"{100 * ours.calls_per_s / base.calls_per_s:.0f}% of bare; with a file ledger "
            f"{filed.p50 - base.p50:+.0f} µs ({100 * (filed.p50 - base.p50) / base.p50:+.0f}%), "
            f"{100 * filed.calls_per_s / base.calls_per_s:.0f}%"
        )
        if blocks > 1:
            summary.append(spread_line(rounds, "manager, no ledger", conc))
        if litellm_router is not None and openai_client is not None:
            them, _ = await interleaved(
                {"sdk": sdk, "litellm": via_litellm}, per_block, conc, blocks)
            sdk_run, theirs = them["sdk"], them["litellm"]
            print(row("bare openai.AsyncOpenAI", sdk_run, None))
            print(row("LiteLLM Router (over openai SDK)", theirs, sdk_run))
            ours_added = max(ours.p50 - base.p50, 1.0)
            their_added = theirs.p50 - sdk_run.p50
            summary.append(
                f"           LiteLLM Router added p50 {their_added:+.0f} µs over the openai SDK it "
                f"calls vs orroute manager {ours.p50 - base.p50:+.0f} µs over its client "
                f"({their_added / ours_added:.1f}x); end to end LiteLLM p50 / manager p50 "
                f"{theirs.p50 / ours.p50:.1f}x"
            )
    print("\nTargets (issue #21): added p50 <= 30 µs at conc 1; <= 10% of bare p50 at 64 and 256; "
          "throughput >= 90% of bare")
    print("\n".join(summary))
    if openai_client is not None:
        await openai_client.close()


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


def docs_text(kb: int = 0) -> str:
    """This repository's docs (prose, tables and code), repeated to at least ``kb`` KiB."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((HERE.parent / "docs").glob("*.md")))
    while len(text.encode()) < kb * 1024:
        text += text
    return text


def prompt_of(kb: int) -> Messages:
    """One user message of ``kb`` KiB of real text, for what the router's own work on a prompt
    (count, complexity, JSON) adds at agent sizes; the default "Say hi" measures the fixed cost of
    a call."""
    return [{"role": "user", "content": docs_text(kb).encode()[: kb * 1024].decode(errors="ignore")}]


class FixedPrompt:
    """The same messages on every call."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    def __call__(self) -> Messages:
        return self.messages


class Conversation:
    """An agent's calls: each returns the system prompt, every earlier turn and one new user
    message (never sent before: it names its conversation and turn, and is cut from the docs at an
    offset that moves on every call); once a call's messages reach ``max_kb`` KiB the next call
    starts a new conversation. Each turn also leaves a synthetic assistant reply in the history,
    so every call sends the same sequence of sizes whoever answers it; the tags name the source
    (one per measured set-up), so no two set-ups send one text."""

    SYSTEM_KB, USER_BYTES, REPLY_BYTES = 4, 1024, 512
    sources = itertools.count(1)

    def __init__(self, max_kb: int) -> None:
        self.text = docs_text()
        self.system = {"role": "system", "content": self.text[: self.SYSTEM_KB * 1024]}
        self.max_bytes = max_kb * 1024
        self.offset = self.SYSTEM_KB * 1024
        self.conversation = 0
        self.history: Messages = []
        self.size = 0
        self.source = next(Conversation.sources)

    def slice(self, tag: str, n: int) -> str:
        if self.offset + n > len(self.text):
            self.offset = self.SYSTEM_KB * 1024
        piece = self.text[self.offset : self.offset + n]
        self.offset += n
        return f"[{tag}] {piece}"

    def __call__(self) -> Messages:
        if not self.history or self.size >= self.max_bytes:
            self.conversation += 1
            self.history = [self.system]
            self.size = len(self.system["content"])
        turn = len(self.history) // 2 + 1
        tag = f"source {self.source}, conversation {self.conversation}, turn {turn}"
        user = {"role": "user", "content": self.slice(tag, self.USER_BYTES)}
        messages = [*self.history, user]
        reply = {"role": "assistant", "content": self.slice(tag + ", reply", self.REPLY_BYTES)}
        self.history = [*messages, reply]
        self.size += len(user["content"]) + len(reply["content"])
        return messages


# Makes the prompt source of one measured set-up (main() sets it from the mode).
# The default workload: one short user message, the fixed cost of a call (the other benches'
# workload too: manager_cpu.py, file_ledger.py, call_segments.py).
MSGS: Messages = [{"role": "user", "content": "Say hi"}]
PROMPTS: Callable[[], Callable[[], Messages]] = functools.partial(FixedPrompt, MSGS)


def main() -> None:
    global PROMPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--prompt-kb", type=int, default=0,
                      help="the same prompt of this many KiB of real text on every call")
    mode.add_argument("--conversation", type=int, default=0, metavar="KB",
                      help="an agent's growing conversation, restarted at ~KB KiB")
    ap.add_argument("--concurrency", default="1,8,64,256")
    ap.add_argument("--no-litellm", action="store_true",
                    help="skip LiteLLM's Router and the openai SDK (~5 ms a call: most of a run)")
    ap.add_argument("--blocks", type=int, default=10,
                    help="each set-up's calls in this many blocks, interleaved with the others' "
                         "(1: one set-up after another)")
    ap.add_argument("--streams", type=int, default=10_000)
    ap.add_argument("--child-streams", type=int, default=0)
    ap.add_argument("--url", default="")
    _realtime.add_flag(ap)
    a = ap.parse_args()
    if a.child_streams:
        stream_child(a.url, a.child_streams)
        return
    if a.prompt_kb:
        PROMPTS = functools.partial(FixedPrompt, prompt_of(a.prompt_kb))
        what = f"the same {a.prompt_kb} KiB user message on every call"
    elif a.conversation:
        PROMPTS = functools.partial(Conversation, a.conversation)
        what = (f"an agent's conversation: a {Conversation.SYSTEM_KB} KiB system prompt, the earlier "
                f"turns and one new user message per call, restarted at ~{a.conversation} KiB")
    else:
        what = "one short user message ('Say hi'): the fixed cost of a call"
    policy = _realtime.apply(a.realtime)
    server, url = start_server()
    try:
        print(f"FakeOpenRouter at {url} (separate process, zero model latency)")
        print(f"Prompt: {what}")
        print(policy)
        levels = [int(x) for x in a.concurrency.split(",") if x.strip()]
        with tempfile.TemporaryDirectory(prefix="orroute-router-bench-") as ledger_dir:
            asyncio.run(latency_section(url, a.requests, levels, ledger_dir, a.blocks, not a.no_litellm))
        if a.streams:
            stream_section(url, a.streams)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
