"""How long ``os.fork()`` waits while a ledger call of another thread waits for another process's
write lock (docs/cost.md, "Fork"): the fork gate lets no fork happen while a thread is inside
SQLite for a ledger, and a call waiting for a lock is inside for up to the ledger's busy_timeout.

    PYTHONPATH=python python3 bench/fork_wait.py [--hold 2.0] [--busy-timeout 5] [--rounds 3]

Another process holds the ledger file's write lock for ``--hold`` seconds; a thread of this
process calls ``set_budget`` (a write: it waits for the lock); the main thread forks 0.2 s later.
Prints the fork's duration per round: about ``min(hold, busy_timeout) - 0.2`` s, and the thread's
outcome (done once the lock was given back, or "database is locked" after busy_timeout).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orroute

HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.rollback()
"""


def one_round(path: Path, hold: float, busy_timeout: float) -> tuple[float, str]:
    tracker = orroute.CostTracker(path, busy_timeout=busy_timeout, leases=False)
    tracker.total_cost()  # opened and migrated before the lock is taken
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(hold)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    outcome: list[str] = []

    def write() -> None:
        try:
            tracker.set_budget(1)
            outcome.append("done")
        except orroute.OrRouteError as e:
            outcome.append(f"error: {e}")

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.2)  # the thread waits for the lock, inside the gate
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    waited = time.perf_counter() - started
    os.waitpid(pid, 0)
    thread.join()
    holder.wait()
    holder.stdout.close()
    tracker.close()
    return waited, outcome[0] if outcome else "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--busy-timeout", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.rounds):
            waited, outcome = one_round(Path(d) / f"l{i}.sqlite3", a.hold, a.busy_timeout)
            print(f"round {i}: hold {a.hold:.1f} s, busy_timeout {a.busy_timeout:.1f} s: "
                  f"fork() took {waited:.3f} s; the waiting call: {outcome}")


if __name__ == "__main__":
    main()
