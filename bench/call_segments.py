"""Where one call's wall time goes between the threads, at concurrency 1: the bare async client
against the manager (no ledger), each in its own process under `perf record` (syscall and
scheduler tracepoints: needs perf and root or perf_event_paranoid <= 1). Prints, per set-up, the
median of each segment of a call's cycle. Asserts nothing.

  A  caller: woken by the result -> its wake-up of the network thread for the next call
     (Python after the result, the next call's Python, plan and submit)
  B  network thread: woken -> running
  C  network thread: running -> the request written to the server
  D  request written -> reply read (the server's work and the wake-ups around it)
  E  network thread: reply read -> the caller's eventfd written (parse, attempt loop, result)
  F  caller: eventfd written -> running

"same CPU" is the share of calls whose network thread woke on the caller's CPU: then the
threads and often the server run one after another on one core, and a call's latency is close
to the sum of their CPU time.

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

SEGMENTS = ("A caller: woken -> wakes net", "B net: woken -> running", "C net: running -> send",
            "D send -> reply read", "E net: reply read -> notify", "F caller: notified -> running")


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


_EVENT = re.compile(r"\s*\S+\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)")
_NR = re.compile(r"NR (\d+)")
SENDTO, RECVFROM, WRITE, POLL, EPOLL_WAIT = 44, 45, 1, 7, 232


def segments(script: str, pid: int) -> tuple[dict[str, list[float]], float]:
    """The segments of each call from `perf script` output (the process `pid`)."""
    events = []
    per_thread: collections.Counter[int] = collections.Counter()
    for line in script.splitlines():
        m = _EVENT.match(line)
        if not m or int(m.group(1)) != pid:
            continue
        tid, cpu, t, name, rest = int(m.group(2)), int(m.group(3)), float(m.group(4)) * 1e6, m.group(5), m.group(6)
        nr = _NR.match(rest)
        events.append((tid, cpu, t, name, int(nr.group(1)) if nr else -1, rest))
        per_thread[tid] += 1
    caller = pid
    net = max((t for t in per_thread if t != pid), key=lambda t: per_thread[t])
    out: dict[str, list[float]] = collections.defaultdict(list)
    state, marks, cpus, same, woken = "notify", {}, {}, 0, 0
    for tid, cpu, t, name, nr, rest in events:
        cpus[tid] = cpu
        enter, exit_ = name == "raw_syscalls:sys_enter", name == "raw_syscalls:sys_exit"
        if tid == net and enter and nr == WRITE and ", 8," in rest:  # the eventfd: 8 bytes
            if "recv" in marks:
                out[SEGMENTS[4]].append(t - marks.pop("recv"))
            marks["notify"], state = t, "wake"
        elif state == "wake" and tid == caller and exit_ and nr == EPOLL_WAIT:
            out[SEGMENTS[5]].append(t - marks["notify"])
            marks["woken"], state = t, "submit"
        elif state == "submit" and tid == caller and enter and nr == SENDTO and ", 1, " in rest:
            out[SEGMENTS[0]].append(t - marks["woken"])  # curl_multi_wakeup: one byte
            marks["submit"], state = t, "netwake"
        elif state == "netwake" and tid == net and exit_ and nr == POLL:
            out[SEGMENTS[1]].append(t - marks["submit"])
            same += cpus.get(caller) == cpu
            woken += 1
            marks["running"], state = t, "send"
        elif state == "send" and tid == net and enter and nr == SENDTO:
            out[SEGMENTS[2]].append(t - marks["running"])
            marks["send"], state = t, "recv"
        elif state == "recv" and tid == net and exit_ and nr == RECVFROM and not rest.endswith("-11"):
            out[SEGMENTS[3]].append(t - marks["send"])
            marks["recv"], state = t, "notify"
    return out, same / max(1, woken)


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
        print(f"  {'same CPU (share of calls)':<32}{got['bare'][1]:>8.2f}{got['manager'][1]:>9.2f}")


if __name__ == "__main__":
    main()
