"""Instructions per call, counted by valgrind's callgrind: the bare async client against the
manager (no ledger, a file ledger), each thread of the client process apart, after a warm-up.

Why count instructions: on a shared 2-core VM the wall clock and CPU time of one tree move 2-3x
between runs, so a change of a few percent to a call's work cannot be seen in them. Instruction
counts repeat to within ~0.1% run to run whatever the load, so two trees (or a tree and its
peer, the bare client) compare in one run. They are not time: a cache miss or a syscall costs
no instructions here (the kernel is not counted), so read them next to `bench/manager_cpu.py`;
`--cache-sim` adds the misses of a simulated first-level cache (instruction and data), which
show how much code and data a call touches.

`memory` is the manager with a budget on its in-memory ledger (bench/router.py's "manager +
budget, memory ledger"): the ledger's logic without a file.

Each set-up runs in its own process under `valgrind --tool=callgrind` (50-100x slower than
native: keep --requests small) against one FakeOpenRouter process (not counted). Prints, per tree,
instructions per call in total and per thread (the calling thread first), and the ratio of each
set-up to the bare client of the same tree. Asserts nothing.

Usage: PYTHONPATH=python python3 bench/instructions.py [--requests 1000] [--concurrency 8]
       [--trees .,/work/wt-base] [--setups bare,sync,await,manager,mawait,memory,file,mmemory,mfile]
       [--cache-sim] [--raw]
       [--keep DIR]

`sync` is the sync `OpenRouter` client (calls one after another, whatever --concurrency says);
`await` the async client awaited call after call by one task (as an agent calls it; `bare` goes
through the harness's `gather` and semaphore, whose wake-ups decide where each reply is read);
`mawait` the manager so (its peer is `await`: bench/router.py's workers call both so at
concurrency 1); `mmemory` and `mfile` the manager with a budget so (their peer is `mawait`: what a
budget adds, without the gather's wake-ups, which move `memory` and `file` by tens of k a call).
`--raw` also counts bench/raw_curl.cpp (the same POST with bare libcurl, one at a time, as
bench/client.py's "raw libcurl" row): what the client adds over libcurl, in instructions.
`--keep DIR` keeps each run's callgrind files (DIR/<tree>-<set-up>/cg.<pid>.1-<thread>, the
measured calls of one thread each) for `callgrind_annotate --inclusive=yes` or a script that
reads a function's cost per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from router import MODEL, MSGS, start_server  # the same server and workload

SETUPS = {"bare": "bare AsyncOpenRouter", "sync": "sync OpenRouter",
          "await": "AsyncOpenRouter, one task awaiting", "manager": "manager, no ledger",
          "mawait": "manager, no ledger, one task awaiting",
          "memory": "manager + budget, memory ledger", "file": "manager, file ledger",
          "mmemory": "manager + budget, memory ledger, one task awaiting",
          "mfile": "manager, file ledger, one task awaiting"}
AWAITED = {"mawait": "manager", "mmemory": "memory", "mfile": "file"}  # awaited -> gathered twin
WARM_UP = 200


def _callgrind(command: str) -> None:
    """Asks the callgrind running this process to zero (-z) or dump (-d) its counts; returns once
    it has."""
    subprocess.run(["callgrind_control", command, str(os.getpid())], check=True,
                   stdout=subprocess.DEVNULL)


def _sync_child(url: str, n: int) -> None:
    """The sync client, one call after another (its concurrency is the caller's threads)."""
    import orroute

    client = orroute.OpenRouter(api_key="sk-or-bench", base_url=url)
    for i in range(WARM_UP + n):
        if i == WARM_UP:
            _callgrind("-z")
        client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
    _callgrind("-d")


async def _await_child(url: str, n: int) -> None:
    """The async client as an agent calls it: one task awaiting one call after another (no
    gather, no semaphore: nothing else on the event loop)."""
    import orroute

    client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)
    for i in range(WARM_UP + n):
        if i == WARM_UP:
            _callgrind("-z")
        await client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
    _callgrind("-d")


def _manager(setup: str, url: str, ledger: str) -> object:
    """The manager of a set-up: no ledger (`manager`), a budget on its in-memory ledger
    (`memory`), or a budget on a file ledger (`file`)."""
    import orroute

    kw: dict[str, object] = {}
    if setup in ("memory", "file"):
        kw["budget"] = 1_000_000
    if setup == "file":
        kw["ledger"] = ledger
    return orroute.AIModelManager(api_key="sk-or-bench", base_url=url,
                                  fallbacks=[MODEL, "m/b"], **kw)


async def _mawait_child(setup: str, url: str, n: int, ledger: str) -> None:
    """The manager as an agent calls it: one task awaiting one ``execute_task`` after another,
    as `await` does with the client (bench/router.py's workers at concurrency 1 call it so);
    `setup` is its gathered twin's (`manager`, `memory`, `file`): no wake-ups of a gather and a
    semaphore between the calls, so a budget's cost is read without theirs."""
    from orroute import Task

    manager: Any = _manager(setup, url, ledger)
    for i in range(WARM_UP + n):
        if i == WARM_UP:
            _callgrind("-z")
        await manager.execute_task(Task(messages=MSGS, max_tokens=16))
    _callgrind("-d")


async def _child(setup: str, url: str, n: int, conc: int, ledger: str) -> None:
    import orroute
    from orroute import Task

    if setup == "bare":
        client = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)

        async def call() -> object:
            return await client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
    else:
        manager: Any = _manager(setup, url, ledger)

        async def call() -> object:
            return await manager.execute_task(Task(messages=MSGS, max_tokens=16))

    for _ in range(WARM_UP):
        await call()
    gate = asyncio.Semaphore(conc)

    async def one() -> None:
        async with gate:
            await call()

    _callgrind("-z")
    await asyncio.gather(*(one() for _ in range(n)))
    _callgrind("-d")


def _summary(callgrind_out: Path) -> dict[str, int]:
    """The totals line of a callgrind out file, by event."""
    events: list[str] = []
    for line in callgrind_out.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(events, (int(v) for v in line.split()[1:])))
    return {}


def count(tree: Path, setup: str, url: str, n: int, conc: int,
          cache_sim: bool, keep: Path | None = None) -> list[dict[str, int]]:
    """Events per call (Ir: instructions; with `cache_sim` also I1mr, D1mr, D1mw: first-level
    cache misses of a simulated cache) of each thread of one set-up's process, in the order the
    threads started (the calling thread, then the network loop, then any other)."""
    with tempfile.TemporaryDirectory(prefix="orroute-instr-") as d:
        env = dict(os.environ, PYTHONPATH=str(tree / "python"))
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
               f"--cache-sim={'yes' if cache_sim else 'no'}",
               f"--callgrind-out-file={d}/cg.%p", sys.executable, __file__, "--child", setup,
               "--url", url, "--requests", str(n), "--concurrency", str(conc),
               "--ledger", f"{d}/ledger.sqlite"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{setup} in {tree} failed:\n{done.stderr[-3000:]}")
        per_thread = []
        dumps = Path(d).glob("cg.*.1-*")  # the dump taken after the measured calls, per thread
        for f in sorted(dumps, key=lambda p: int(p.name.rsplit("-", 1)[1])):
            per_thread.append({event: v // n for event, v in _summary(f).items()})
        if keep is not None:
            kept = keep / f"{tree.name}-{setup}"
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir(parents=True)
            for f in Path(d).glob("cg.*.1-*"):
                shutil.copy(f, kept / f.name)
        # threads that did next to nothing in the measured calls (idle helpers) are left out
        return [t for t in per_thread if t.get("Ir", 0) > 100]


def count_raw(url: str, n: int) -> int:
    """Instructions per call of bench/raw_curl.cpp, the same chat POST with bare libcurl (one
    connection, one call at a time). It has no threads to tell apart nor a dump to ask for: its
    process runs twice under callgrind, with WARM_UP and WARM_UP + n calls, and the difference
    over n leaves its start-up out."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        sys.exit("--raw needs a C++ compiler")
    with tempfile.TemporaryDirectory(prefix="orroute-instr-raw-") as d:
        exe = f"{d}/raw_curl"
        subprocess.run([cxx, "-O2", "-o", exe, str(HERE / "raw_curl.cpp"), "-lcurl"], check=True)
        body = Path(d) / "body.json"
        body.write_text(json.dumps({"model": MODEL, "messages": MSGS, "max_tokens": 16}))
        totals = []
        for calls in (WARM_UP, WARM_UP + n):
            out = Path(d) / f"cg.{calls}"
            subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", exe,
                            url + "/chat/completions", str(body), str(calls), "1"],
                           check=True, capture_output=True)
            totals.append(_summary(out)["Ir"])
        return (totals[1] - totals[0]) // n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="measured calls per set-up")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--trees", default=".",
                    help="comma-separated source trees with a built extension (python/orroute)")
    ap.add_argument("--setups", default="bare,manager,file")
    ap.add_argument("--cache-sim", action="store_true",
                    help="also count first-level cache misses (simulated; ~2x slower)")
    ap.add_argument("--raw", action="store_true",
                    help="also count bench/raw_curl.cpp: the same call with bare libcurl")
    ap.add_argument("--keep", type=Path, help="keep the callgrind files of each run under KEEP")
    ap.add_argument("--child", choices=list(SETUPS), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--ledger", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "sync":
        _sync_child(args.url, args.requests)
        return
    if args.child == "await":
        asyncio.run(_await_child(args.url, args.requests))
        return
    if args.child in AWAITED:
        asyncio.run(_mawait_child(AWAITED[args.child], args.url, args.requests, args.ledger))
        return
    if args.child:
        asyncio.run(_child(args.child, args.url, args.requests, args.concurrency, args.ledger))
        return
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("needs valgrind (apt-get install valgrind)")
    setups = [s for s in args.setups.split(",") if s]
    unknown = [s for s in setups if s not in SETUPS]
    if unknown:
        sys.exit(f"unknown set-up(s) {unknown}; choose from {list(SETUPS)}")
    trees = [Path(t).resolve() for t in args.trees.split(",") if t]
    server, url = start_server()
    try:
        print(f"{args.requests} calls at concurrency {args.concurrency} after {WARM_UP} warm-up "
              "calls; instructions per call (callgrind), the calling thread first")
        if args.raw:
            print(f"\nraw libcurl (bench/raw_curl.cpp, one call at a time): "
                  f"{count_raw(url, args.requests):,d} instructions per call")
        for tree in trees:
            print(f"\n{tree}")
            bare: dict[str, int] = {}
            for setup in setups:
                threads = count(tree, setup, url, args.requests, args.concurrency, args.cache_sim,
                                args.keep)
                print(f"  {SETUPS[setup]}")
                for kind, keys in (("instructions", ("Ir",)), ("I1 misses", ("I1mr",)),
                                   ("D1 misses", ("D1mr", "D1mw"))):
                    if keys[0] not in threads[0]:
                        continue
                    each = [sum(t[k] for k in keys) for t in threads]
                    total = sum(each)
                    if setup == "bare":
                        bare[kind] = total
                    ratio = f"{total / bare[kind]:5.3f}x bare" if bare.get(kind) else ""
                    print(f"    {kind:13} {total:9,d}  ({' + '.join(f'{x:,d}' for x in each)})"
                          f"  {ratio}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
