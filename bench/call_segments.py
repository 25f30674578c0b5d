"""Where one call's wall time goes at concurrency 1: the bare async client against the manager (no
ledger), each in its own process under `perf record` of its syscalls (needs perf and root or
perf_event_paranoid <= 1). The loop marks each result's arrival in the caller with a
`getppid()` (a syscall of ~0.1 µs); the request's write (`sendto`) and the reply's read
(`recvfrom`) mark the rest. Prints, per set-up, the median of each segment. Asserts nothing.

  A  result in the caller's hands -> the next request written (the caller's Python after the
     result, the next call's Python, plan, submit and libcurl's send)
  D  request written -> reply read (the server's work and the wake-ups around it)
  E  reply read -> result in the caller's hands (parse, pricing, the attempt loop, the result
     and its Python)

"on the caller's thread" is the share of calls whose request was written and reply read by the
calling (asyncio) thread: with the network loop lent to an idle event loop, a call at
concurrency 1 never leaves that thread.

Usage: PYTHONPATH=python python3 bench/call_segments.py [--requests 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from router import MODEL, MSGS, start_server  # the same server and workload

SEGMENTS = ("A result -> next request written", "D request written -> reply read",
            "E reply read -> result")


async def calls(url: str, setup: str, n: int) -> None:
    import orroute
    from orroute import Task

    if setup == "bare":
        c = orroute.AsyncOpenRouter(api_key="sk-or-bench", base_url=url)

        async def one() -> object:
            return await c.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
    else:
        m = orroute.AIModelManager(api_key="sk-or-bench", base_url=url, fallbacks=[MODEL, "m/b"])

        async def one() -> object:
            return await m.execute_task(Task(messages=MSGS, max_tokens=16))
    for _ in range(n):
        await one()
        os.getppid()  # the mark: this call's result is in the caller's hands


_EVENT = re.compile(r"\s*\S+\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)")
_NR = re.compile(r"NR (\d+)")
_FAILED = re.compile(r"= ?-\d+$")  # a syscall's exit with an error (-11: nothing to read yet)
SENDTO, RECVFROM, GETPPID = 44, 45, 110


def segments(script: str, pid: int) -> tuple[dict[str, list[float]], float]:
    """The segments of each call from `perf script` output (the process `pid`), and the share of
    calls written and read by the calling thread."""
    out: dict[str, list[float]] = collections.defaultdict(list)
    state, mark, on_caller, calls = "", 0.0, 0, 0  # nothing is measured before the first mark
    sender = 0
    for line in script.splitlines():
        m = _EVENT.match(line)
        if not m or int(m.group(1)) != pid:
            continue
        tid, t, name, rest = int(m.group(2)), float(m.group(4)) * 1e6, m.group(5), m.group(6)
        nr_match = _NR.match(rest)
        nr = int(nr_match.group(1)) if nr_match else -1
        enter, exit_ = name == "raw_syscalls:sys_enter", name == "raw_syscalls:sys_exit"
        if enter and nr == GETPPID:
            if state == "read":
                out[SEGMENTS[2]].append(t - mark)
            mark, state = t, "result"
        elif state == "result" and enter and nr == SENDTO:
            out[SEGMENTS[0]].append(t - mark)
            mark, state, sender = t, "sent", tid
        elif state == "sent" and exit_ and nr == RECVFROM and not _FAILED.search(rest):
            out[SEGMENTS[1]].append(t - mark)
            calls += 1
            on_caller += sender == pid and tid == pid
            mark, state = t, "read"
    return out, on_caller / max(1, calls)


def traced(setup: str, n: int) -> tuple[dict[str, list[float]], float]:
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="orroute-segments-") as d:
            data = os.path.join(d, "perf.data")
            code = (f"import asyncio, sys; sys.path.insert(0, {str(HERE)!r}); "
                    f"from call_segments import calls; asyncio.run(calls({url!r}, {setup!r}, {n}))")
            child = subprocess.Popen(
                ["perf", "record", "-q", "-o", data, "-e",
                 "raw_syscalls:sys_enter,raw_syscalls:sys_exit", "--", sys.executable, "-c", code])
            child.wait()
            script = subprocess.run(["perf", "script", "-i", data, "-F",
                                     "comm,pid,tid,cpu,time,event,trace"],
                                    check=True, capture_output=True, text=True).stdout
            first = re.search(r"\s(\d+)/\1\s", script)  # the traced process's main thread
            if first is None:
                raise SystemExit("perf recorded no events (root, or perf_event_paranoid <= 1?)")
            return segments(script, int(first.group(1)))
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("needs perf (linux-perf)")
    for r in range(a.rounds):
        print(f"\nround {r + 1}: medians (µs) of {a.requests} calls, the first 10% left out")
        print(f"  {'':<32}{'bare':>8}{'manager':>9}")
        got = {s: traced(s, a.requests) for s in ("bare", "manager")}
        for seg in SEGMENTS:
            cols = []
            for s in ("bare", "manager"):
                xs = got[s][0].get(seg, [])[a.requests // 10:]
                cols.append(statistics.median(xs) if xs else float("nan"))
            print(f"  {seg:<32}{cols[0]:>8.1f}{cols[1]:>9.1f}")
        print(f"  {'on the caller thread (share)':<32}{got['bare'][1]:>8.2f}{got['manager'][1]:>9.2f}")


if __name__ == "__main__":
    main()
