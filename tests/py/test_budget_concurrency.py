"""Budgets hold under several processes x threads, and survive a worker killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import orroute

PYTHON_DIR = str(Path(orroute.__file__).resolve().parent.parent)

WORKER = r"""
import json, sys, threading
import orroute
path, threads, iters, amount, actual = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
t = orroute.CostTracker(path)
counts = {"settled": 0, "refused": 0}
lock = threading.Lock()
def work():
    for _ in range(iters):
        try:
            r = t.reserve(amount, project="shared", model="m")
        except orroute.BudgetExceededError:
            with lock: counts["refused"] += 1
            continue
        r.settle(actual, model="m", completion_tokens=10)
        with lock: counts["settled"] += 1
ts = [threading.Thread(target=work) for _ in range(threads)]
for x in ts: x.start()
for x in ts: x.join()
print(json.dumps(counts))
"""

HOLDER = r"""
import sys, time
import orroute
t = orroute.CostTracker(sys.argv[1])
t.reserve(sys.argv[2], project="shared")
print("held", flush=True)
if sys.argv[3] == "spin":
    while True:
        t.reserve("0.0001", project="other").settle("0.0001", model="m", prompt_tokens=1)
time.sleep(600)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": PYTHON_DIR}


def test_processes_and_threads_never_overspend(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, path, "4", "40", "0.01", "0.007"],
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    settled = sum(r["settled"] for r in results)
    assert sum(r["refused"] for r in results) > 0  # the budget did bind
    status = t.budget_status(project="shared")
    assert status.spent <= Decimal("1.00")
    assert status.spent == Decimal("0.007") * settled
    assert status.reserved == 0
    assert t.live_reservations() == (0, 0)
    assert len(t.usage_history(project="shared")) == settled
    assert t.total_cost(project="shared") == status.spent


def _start_holder(path: str, amount: str, mode: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path, amount, mode],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def _kill(p: subprocess.Popen[str]) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.stdout is not None
    p.stdout.close()


def test_reservation_of_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    holder = _start_holder(path, "0.70", "sleep")
    try:
        assert t.budget_status(project="shared").reserved == Decimal("0.70")
        # While the holder lives its reservation stands.
        try:
            t.reserve("0.50", project="shared")
            raise AssertionError("reservation of a live process was not honoured")
        except orroute.BudgetExceededError as e:
            assert e.reserved == Decimal("0.70")
    finally:
        _kill(holder)
    # Its process is gone: reserve reclaims the room before refusing.
    t.reserve("0.50", project="shared").settle("0.5", model="m")
    status = t.budget_status(project="shared")
    assert (status.spent, status.reserved) == (Decimal("0.5"), 0)


def test_sigkill_mid_write_leaves_no_torn_row(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    holder = _start_holder(path, "0.25", "spin")
    time.sleep(1.0)  # let it write a few hundred rows
    _kill(holder)
    assert t.reclaim() >= 1
    assert t.live_reservations() == (0, 0)
    assert t.budget_status(project="shared").reserved == 0
    rows = t.usage_history(project="other")
    assert rows and all(r.cost == Decimal("0.0001") and r.prompt_tokens == 1 for r in rows)
    assert t.total_cost(project="other") == Decimal("0.0001") * len(rows)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Every row is complete: its tag-less columns were written in one transaction.
        assert db.execute("SELECT COUNT(*) FROM calls WHERE model_used IS NULL").fetchone() == (0,)
