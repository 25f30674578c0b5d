"""``--realtime``: run a benchmark (and the servers it starts) under SCHED_FIFO.

On a shared machine other processes' bursts (builds, tests) move wall-clock figures 2-3x and
pollute the caches between calls; a real-time policy makes the benchmark's threads run whenever
they are runnable, so the figures are the code's, not the neighbours'. Children inherit the
policy (start servers after :func:`apply`). The kernel's real-time throttling
(``/proc/sys/kernel/sched_rt_runtime_us``, 95% by default) keeps the machine usable; a spinning
benchmark cannot lock it up. It also means that a set-up saturating every core is paused for
~50 ms once its real-time threads have used 95% of a second: a short run either meets that pause
or not (at concurrency 64 a 3,000-call set-up showed a 118 ms p99 and half its throughput), so
compare throughputs from runs of several seconds (`--requests` 10,000 or more), where each set-up
loses the same ~5%. Needs root or CAP_SYS_NICE; without them the run goes on under the normal
policy and says so.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

PRIORITY = 10  # above every normal process, below the kernel's own real-time threads

# Untimed, before every block of an interleaved bench (bench/router.py, bench/client.py): the last
# block's leftovers are not the next set-up's to pay for. A full collection of the bench process (a
# set-up's block must not meet the collection that the objects of all the set-ups before it made
# due), then a pause: the previous set-up's background work (a file ledger's settle worker) ends,
# and under --realtime the kernel's real-time budget (950 ms a second) refills, so its ~50 ms
# throttle does not fall on one set-up's block once a second (session 20: +50 ms for every call
# in flight, each time).
BLOCK_PAUSE_S = 0.05


def between_blocks() -> None:
    """The untimed step before a block, for a bench whose blocks run outside an event loop."""
    gc.collect()
    time.sleep(BLOCK_PAUSE_S)


def add_flag(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--realtime", action="store_true",
                    help="run under SCHED_FIFO (root): figures shielded from other processes' load")


def apply(enabled: bool) -> str:
    """Switches this process to SCHED_FIFO when ``enabled``; returns a line for the report."""
    if not enabled:
        return "Scheduling: normal (other processes' load moves the figures; --realtime shields them)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except (PermissionError, OSError) as e:
        print(f"--realtime refused ({e}); running under the normal policy", file=sys.stderr)
        return "Scheduling: normal (--realtime refused)"
    return f"Scheduling: SCHED_FIFO priority {PRIORITY} (this process and the servers it starts)"
