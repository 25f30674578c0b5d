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

import pytest

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


def test_processes_and_threads_never_overspend(ledger_location: str) -> None:
    path = ledger_location  # a SQLite file, or a Redis URL
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
    # Its process is gone and the ledger cannot tell whether it sent the call: the reservation
    # is booked as spent (fail closed), so 0.30 is left, not 1.00.
    with pytest.raises(orroute.BudgetExceededError):
        t.reserve("0.50", project="shared")
    status = t.budget_status(project="shared")
    assert (status.spent, status.reserved) == (Decimal("0.70"), 0)
    (row,) = t.usage_history(project="shared")
    assert (row.outcome, row.cost) == ("abandoned", Decimal("0.70"))
    assert row.cost_source.startswith("reservation: ") and "process" in row.cost_source
    t.reserve("0.30", project="shared").settle("0.3", model="m")


def test_sigkill_mid_write_leaves_no_torn_row(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    t.set_budget(1000, project="other")  # the spinning holder reserves from a lease
    holder = _start_holder(path, "0.25", "spin")
    time.sleep(1.0)  # let it write a few hundred rows
    _kill(holder)
    assert t.reclaim() >= 2  # its reservation on "shared" and its lease on "other"
    assert t.live_reservations() == (0, 0)
    assert t.budget_status(project="shared").reserved == 0
    rows = t.usage_history(project="other")
    settled = [r for r in rows if r.outcome == "ok"]
    assert settled and all(r.cost == Decimal("0.0001") and r.prompt_tokens == 1 for r in settled)
    # At most its one call in flight when killed, booked as spent.
    assert [r.cost for r in rows if r.outcome != "ok"] in ([], [Decimal("0.0001")])
    assert t.total_cost(project="other") == Decimal("0.0001") * len(rows)
    other = t.budget_status(project="other")  # counters agree with the rows, nothing held
    assert (other.spent, other.reserved) == (Decimal("0.0001") * len(rows), 0)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Every row is complete: its tag-less columns were written in one transaction (a call
        # in flight booked from a lease names no model: the lease served any).
        torn = "SELECT COUNT(*) FROM calls WHERE model_used IS NULL AND outcome = 'ok'"
        assert db.execute(torn).fetchone() == (0,)


LEASE_WORKER = r"""
import sys
import orroute
t = orroute.CostTracker(sys.argv[1])
t.reserve("0.01", project="shared").settle("0.01", model="m")  # now holds a lease with money free
print("ready", flush=True)
for line in sys.stdin:
    try:
        t.reserve("0.01", project="shared").settle("0.01", model="m")
        print("ok", flush=True)
    except orroute.EmergencyCutoffError:
        print("cutoff", flush=True)
    except orroute.BudgetExceededError as e:
        print(f"exceeded {e.limit}", flush=True)
"""


def test_cutoff_and_lower_limit_reach_a_process_holding_a_lease(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget(100, project="shared")
    p = subprocess.Popen(
        [sys.executable, "-c", LEASE_WORKER, path],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdin is not None and p.stdout is not None
    try:
        assert p.stdout.readline().strip() == "ready"
        # Its lease holds more than its settled call: others see the unused part as reserved.
        assert t.budget_status(project="shared").reserved > 0

        def ask() -> str:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.write("go\n")
            p.stdin.flush()
            return p.stdout.readline().strip()

        assert ask() == "ok"
        t.cutoff("stop now")
        assert ask() == "cutoff"
        t.resume()
        assert ask() == "ok"
        t.set_budget("0.035", project="shared")  # 0.03 spent: one more 0.01 call does not fit
        assert ask() == "exceeded 0.035"
        status = t.budget_status(project="shared")
        assert (status.spent, status.reserved) == (Decimal("0.03"), 0)  # free part given back
    finally:
        p.stdin.close()
        p.wait(timeout=60)
        p.stdout.close()
    assert t.live_reservations() == (0, 0)


LEASE_HOLDER = r"""
import sys, time
import orroute
t = orroute.CostTracker(sys.argv[1])
with t.reserve("0.01", project="shared"):
    pass
t.reserve("0.02", project="shared")  # held when killed
print("held", flush=True)
time.sleep(600)
"""


def test_lease_of_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    p = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, path], env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    # The holder's whole lease (1/8 of the budget) is set aside, not only its 0.02 in flight.
    assert t.budget_status(project="shared").reserved == Decimal("0.125")
    assert t.live_reservations() == (1, Decimal("0.125"))
    _kill(p)
    assert t.reclaim() == 1
    # Its call in flight (0.02) is booked as spent; the rest of its lease is free again.
    status = t.budget_status(project="shared")
    assert (status.spent, status.reserved) == (Decimal("0.02"), 0)
    with pytest.raises(orroute.BudgetExceededError):
        t.reserve("1.00", project="shared")
    t.reserve("0.98", project="shared").settle("0.98", model="m")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_leases_off_books_each_reservation_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    exact = orroute.CostTracker(path, leases=False)
    other = orroute.CostTracker(path)
    assert not exact.leases and other.leases
    exact.set_budget("1.00", project="shared")
    r = exact.reserve("0.01", project="shared")
    assert r.id > 0
    assert other.budget_status(project="shared").reserved == Decimal("0.01")
    r.settle("0.004", model="m")
    assert other.budget_status(project="shared").spent == Decimal("0.004")
    assert other.live_reservations() == (0, 0)


MANAGER_EXITS = r"""
import sys, threading, time
import orroute
from orroute import Task
base_url, path, close = sys.argv[1], sys.argv[2], sys.argv[3] == "close"
m = orroute.AIModelManager(api_key="sk-or-test", base_url=base_url, ledger=path,
                           fallbacks=["test/a"], budget="1")
m.execute_task_sync(Task(messages="hi", max_tokens=20))
if close:
    m.close()
# A thread still running at exit holds the manager: its engine is never destroyed.
threading.Thread(target=lambda held=m: time.sleep(60), daemon=True).start()
print(m.spent(), flush=True)
"""


def test_an_engines_budget_leases_go_back_when_its_process_exits(tmp_path: Path) -> None:
    """A manager's engine takes a lease of the budget from the ledger file; other processes saw
    it as spent until it expired when the engine was not destroyed at exit (a thread held it).
    Unused lease money now goes back at exit, and at close()."""
    from orroute.testing import FakeOpenRouter

    path = str(tmp_path / "ledger.sqlite3")
    with FakeOpenRouter(models=["test/a"]) as fake:
        for close in ("exit", "close"):
            out = subprocess.run([sys.executable, "-c", MANAGER_EXITS, fake.base_url, path, close],
                                 env=_env(), capture_output=True,
                                 text=True, timeout=60, check=True)
            assert Decimal(out.stdout.split()[-1]) > 0
    tracker = orroute.CostTracker(path)
    assert tracker.headroom() == Decimal(1) - tracker.total_cost()


ENGINE_CALLER = r"""
import sys
import orroute
from orroute import Task
m = orroute.AIModelManager(api_key="sk-or-test", base_url=sys.argv[1], ledger=sys.argv[2],
                           fallbacks=["test/a"])
task = Task(messages=[{"role": "user", "content": "hello"}], max_tokens=64)
print(m.plan(task)["estimate"], flush=True)
m.execute_task_sync(task)  # the upstream holds its reply: killed while it waits
"""


def test_an_engine_call_in_flight_when_its_process_is_killed_is_booked(tmp_path: Path) -> None:
    """The upstream received the call (and bills it): the killed process will never settle it,
    so the reclaim books its reservation as spent instead of handing it back."""
    from orroute.testing import FakeOpenRouter, Fault

    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget(10)
    with FakeOpenRouter(models=["test/a"]) as fake:
        fake.fail("test/a", Fault.hang())
        p = subprocess.Popen(
            [sys.executable, "-c", ENGINE_CALLER, fake.base_url, path],
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None
        try:
            reserved = Decimal(p.stdout.readline().strip())
            deadline = time.monotonic() + 60
            def sent() -> bool:
                return any(r.endpoint == "/chat/completions" for r in fake.requests)

            while not sent() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sent(), "the call never reached the upstream"
            lease = t.budget_status().reserved  # the caller's lease, set aside whole
        finally:
            _kill(p)
    assert t.reclaim() == 1
    status = t.budget_status()
    assert 0 < reserved < lease
    assert (status.spent, status.reserved) == (reserved, 0)
    (row,) = t.usage_history()
    assert (row.outcome, row.cost, row.project) == ("abandoned", reserved, "")


def _expire_on_another_host(path: str) -> None:
    """Makes every reservation row look like another host's, expired: the reclaim cannot check
    its process, which may still be running its call (a call slower than its ttl)."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE reservations SET host = 'elsewhere', expires_at = 1")


def test_an_idle_lease_of_another_host_is_not_booked_as_spent(tmp_path: Path) -> None:
    """A process on another host settled its calls and went idle past its lease's hold: its lease
    holds no call in flight (every reservation from it was settled), only money set aside. The
    reclaim of that lease must give the money back, not book it as spent."""
    path = str(tmp_path / "ledger.sqlite3")
    mine = orroute.CostTracker(path)
    mine.set_budget(10, project="p")
    mine.reserve("1.00", project="p").settle("0.10", model="m")
    with sqlite3.connect(path) as db:  # the lease, settled from and kept
        assert db.execute("SELECT lease FROM reservations").fetchall() == [(1,)]
    _expire_on_another_host(path)
    other = orroute.CostTracker(path)
    assert other.reclaim() == 1
    status = other.budget_status(project="p")
    assert (status.spent, status.reserved) == (Decimal("0.10"), 0)
    assert [r.outcome for r in other.usage_history(project="p")] == ["ok"]


@pytest.mark.parametrize("leases", [False, True])
def test_a_late_settle_after_another_hosts_reclaim_is_not_booked_twice(
    tmp_path: Path, leases: bool
) -> None:
    """The reclaim books an expired reservation of another host as abandoned (its process
    cannot be checked); the process lived (a call slower than its hold) and settles: its call
    replaces that booking, in the same row."""
    path = str(tmp_path / "ledger.sqlite3")
    mine = orroute.CostTracker(path, leases=leases)
    mine.set_budget(10, project="p")
    r = mine.reserve("1.00", project="p")  # a long call, past its hold
    _expire_on_another_host(path)
    other = orroute.CostTracker(path, leases=leases)
    assert other.reclaim() == 1
    assert other.budget_status(project="p").spent == Decimal("1.00")  # booked, failing closed
    r.settle("0.10", model="m")  # the call ends: its real cost
    # The call was made once: whatever the reclaim booked, it is counted once.
    assert mine.total_cost(project="p") == Decimal("0.10")
    status = other.budget_status(project="p")
    assert (status.spent, status.reserved) == (Decimal("0.10"), 0)
    (row,) = other.usage_history(project="p")
    assert (row.outcome, row.cost, row.model) == ("ok", Decimal("0.10"), "m")


@pytest.mark.parametrize("how", ["reclaim", "settle"])
def test_alerts_a_reclaim_crosses_are_delivered_once(tmp_path: Path, how: str) -> None:
    """The reclaim books another host's expired reservation as spent: the thresholds it crosses
    fire on this process's hooks, from reclaim() or else from its next settle, once."""
    path = str(tmp_path / "ledger.sqlite3")
    mine = orroute.CostTracker(path, leases=False)
    mine.set_budget(1, project="p", thresholds=(50, 90))
    mine.reserve("0.60", project="p")
    _expire_on_another_host(path)
    other = orroute.CostTracker(path, leases=False)
    fired: list[int] = []
    other.on_alert(lambda event: fired.append(event.threshold_pct))
    if how == "reclaim":
        assert other.reclaim() == 1
    else:  # the reclaim a refused reserve runs, then a settle
        with pytest.raises(orroute.BudgetExceededError):
            other.reserve("0.50", project="p")
        assert fired == []
        other.reserve("0.10", project="p").settle("0.10", model="m")
    assert fired == [50]
    other.reserve("0.01", project="p").settle("0.01", model="m")
    other.flush()
    assert fired == [50]  # once
    assert [a.threshold_pct for a in other.alerts] == [50]


def test_a_late_settle_replaces_only_its_share_of_a_leases_booking(tmp_path: Path) -> None:
    """A lease reclaimed with two calls in flight is booked for both; the first to settle late
    takes its share off the booking (its own row), the second takes the row over."""
    path = str(tmp_path / "ledger.sqlite3")
    mine = orroute.CostTracker(path)
    mine.set_budget(10, project="p")
    first = mine.reserve("1.00", project="p")
    second = mine.reserve("0.50", project="p")
    _expire_on_another_host(path)
    other = orroute.CostTracker(path)
    assert other.reclaim() == 1
    assert other.budget_status(project="p").spent == Decimal("1.50")
    first.settle("0.10", model="m")
    assert other.budget_status(project="p").spent == Decimal("0.60")  # 0.50 booked + 0.10
    second.settle("0.20", model="m")
    status = other.budget_status(project="p")
    assert (status.spent, status.reserved) == (Decimal("0.30"), 0)
    rows = sorted((r.outcome, r.cost) for r in other.usage_history(project="p"))
    assert rows == [("ok", Decimal("0.10")), ("ok", Decimal("0.20"))]


FIRST_CALL_HOLDER = r"""
import sys, time
import orroute
t = orroute.CostTracker(sys.argv[1])
t.reserve("0.02", project="shared")  # its lease's first reservation, held when killed
print("held", flush=True)
time.sleep(600)
"""


def test_the_first_call_of_a_lease_in_flight_when_killed_is_booked(tmp_path: Path) -> None:
    """The reservation that made the lease was held before the lease took its slot in the
    sidecar: the slot must count it too, or its process's death books nothing for it."""
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path)
    t.set_budget("1.00", project="shared")
    p = subprocess.Popen(
        [sys.executable, "-c", FIRST_CALL_HOLDER, path],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    _kill(p)
    assert t.reclaim() == 1
    status = t.budget_status(project="shared")
    assert (status.spent, status.reserved) == (Decimal("0.02"), 0)


@pytest.mark.parametrize("leases", [False, True])
def test_a_live_process_in_another_pid_namespace_is_not_reclaimed(
    tmp_path: Path, leases: bool
) -> None:
    """A container sharing the ledger's volume and the host's name (docker --network host) has
    pids of its own: its pid here names nothing, or another process. Its reservation must stand
    while it lives, not be booked as abandoned (its call's settle would then count it twice)."""
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"],
                                         capture_output=True, check=False).returncode != 0:
        pytest.skip("no PID namespace can be made here (unshare needs CAP_SYS_ADMIN)")
    path = str(tmp_path / "ledger.sqlite3")
    t = orroute.CostTracker(path, leases=leases)
    t.set_budget("1.00", project="shared")
    holder = subprocess.Popen(
        [unshare, "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-c",
         HOLDER, path, "0.70", "sleep"],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t.reclaim()
        with pytest.raises(orroute.BudgetExceededError):
            t.reserve("0.50", project="shared")
        status = t.budget_status(project="shared")
        assert status.spent == 0 and status.reserved >= Decimal("0.70")
        assert t.usage_history(project="shared") == []
    finally:
        _kill(holder)


def test_a_late_settle_after_a_redis_reclaim_is_not_booked_twice(ledger_location: str) -> None:
    if not ledger_location.startswith("redis"):
        pytest.skip("SQLite releases an expired reservation of a live process of this host")
    t = orroute.CostTracker(ledger_location)
    t.set_budget(10, project="p")
    r = t.reserve("1.00", project="p", ttl=0.05)  # a call slower than its ttl
    time.sleep(0.2)
    assert t.reclaim() == 1
    assert t.budget_status(project="p").spent == Decimal("1.00")  # booked, failing closed
    r.settle("0.10", model="m")
    assert t.total_cost(project="p") == Decimal("0.10")
    status = t.budget_status(project="p")
    assert (status.spent, status.reserved) == (Decimal("0.10"), 0)
    (row,) = t.usage_history(project="p")
    assert (row.outcome, row.cost, row.model) == ("ok", Decimal("0.10"), "m")
