"""A fork while other threads are inside the ledger: the child neither hangs nor reads a
half-written file. fork() waits for the ledger calls in flight (docs/cost.md, "Fork"); a file
ledger is opened again in the child, an in-memory one starts as a copy of the parent's, a Redis
ledger connects again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

import orroute
from orroute import Task
from orroute.testing import FakeOpenRouter

MSGS = [{"role": "user", "content": "Say hi"}]
FORKS = 24


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(models=["m/a"]) as f:
        yield f


def hammered(trackers: list[orroute.CostTracker]) -> Callable[[], int]:
    """Starts a thread per tracker that reserves and settles in a loop; returns a function that
    stops them and says how many calls they made."""
    stop = threading.Event()
    done = [0] * len(trackers)

    def hammer(i: int, tracker: orroute.CostTracker) -> None:
        while not stop.is_set():
            with tracker.reserve("0.001", model="m/a") as r:
                r.settle("0.0005", model="m/a", prompt_tokens=3)
            done[i] += 1

    threads = [threading.Thread(target=hammer, args=(i, t)) for i, t in enumerate(trackers)]
    for t in threads:
        t.start()

    def stop_them() -> int:
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        return sum(done)

    return stop_them


def fork_child(child: Callable[[], None], seconds: int = 15) -> int:
    """Runs ``child`` in a forked child, killed after ``seconds`` (a hang fails the test, not the
    run); the child's pid (its exit status, by exit_status: 0 when ``child`` returned)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's outcome is its exit status)
        code = 1
        try:
            signal.alarm(seconds)
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


def exit_status(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def fork_and_wait(child: Callable[[], None]) -> int:
    """Runs ``child`` in a forked child (fork_child) and waits: its exit status."""
    return exit_status(fork_child(child))


@pytest.mark.parametrize("leases", [True, False], ids=["leases", "no-leases"])
def test_forks_while_threads_reserve_and_settle_in_a_file_ledger(
        fake: FakeOpenRouter, tmp_path: Path, leases: bool) -> None:
    path = str(tmp_path / "ledger.sqlite3")
    tracker = orroute.CostTracker(path, leases=leases)
    tracker.set_budget(1_000_000, period="daily")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url, ledger=path,
                                     fallbacks=["m/a"])
    other = orroute.CostTracker(path, leases=leases)
    stop = hammered([tracker, other])

    def ledger_call() -> None:
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > 0

    def manager_call() -> None:
        assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    children = [ledger_call, manager_call, lambda: None]
    statuses = [fork_and_wait(children[i % 3]) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    assert calls > 0
    manager.close()
    tracker.close()
    other.close()
    check = orroute.CostTracker(path)
    assert len(check.usage_history(limit=None)) == calls + FORKS // 3 * 2
    check.reclaim()  # the leases of the children, which exited without giving them back
    assert check.live_reservations() == (0, 0)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_forks_while_threads_reserve_and_settle_in_an_in_memory_ledger() -> None:
    tracker = orroute.CostTracker(":memory:")
    tracker.set_budget(1_000_000, period="daily")
    stop = hammered([tracker, tracker])

    def ledger_call() -> None:
        spent = tracker.total_cost()
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > spent > 0  # the parent's calls, copied at the fork

    statuses = [fork_and_wait(ledger_call if i % 2 else lambda: None) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    assert len(tracker.usage_history(limit=None)) == calls  # the children's are their own


def test_an_in_memory_budget_holds_in_a_forked_child(fake: FakeOpenRouter) -> None:
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     fallbacks=["m/a"], budget=1e-9)
    tracker = orroute.CostTracker(":memory:")
    tracker.set_budget(1e-9)
    with pytest.raises(orroute.BudgetExceededError):
        manager.execute_task_sync(Task(messages=MSGS, max_tokens=8))

    def child() -> None:
        with pytest.raises(orroute.BudgetExceededError):
            manager.execute_task_sync(Task(messages=MSGS, max_tokens=8))
        with pytest.raises(orroute.BudgetExceededError):
            tracker.reserve("0.01")

    assert fork_and_wait(child) == 0


def test_forks_while_threads_reserve_and_settle_in_a_redis_ledger(
        fake: FakeOpenRouter, redis_url: str) -> None:
    # The child connects again (PerProcess): the parent's sockets, and the lock of a connection
    # a parent's thread was using, are never touched there.
    tracker = orroute.CostTracker(redis_url)
    tracker.set_budget(1_000_000, period="daily")
    manager = orroute.AIModelManager(api_key="sk-or-test", base_url=fake.base_url,
                                     ledger=redis_url, fallbacks=["m/a"])
    stop = hammered([tracker, orroute.CostTracker(redis_url)])

    def ledger_call() -> None:
        with tracker.reserve("0.001") as r:
            r.settle("0.0001")
        assert tracker.total_cost() > 0

    def manager_call() -> None:
        assert manager.execute_task_sync(Task(messages=MSGS, max_tokens=8)).content

    children = [ledger_call, manager_call, lambda: None]
    statuses = [fork_and_wait(children[i % 3]) for i in range(FORKS)]
    calls = stop()
    assert statuses == [0] * FORKS
    manager.close()
    assert len(tracker.usage_history(limit=None)) == calls + FORKS // 3 * 2
    assert tracker.live_reservations() == (0, 0)


LOCKER = """
import sqlite3, sys, time
fresh, other = (sqlite3.connect(p, isolation_level=None) for p in sys.argv[1:])
fresh.execute("PRAGMA journal_mode=WAL")
fresh.execute("BEGIN IMMEDIATE")
other.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(1.5)
fresh.rollback()
time.sleep(1.0)
"""


def test_a_fork_while_another_thread_opens_a_ledger_in_a_child(tmp_path: Path) -> None:
    # In a forked child a ledger made before the fork is opened again on its first use, under
    # PerProcess's renew mutex; fork() takes that mutex (an atfork handler) after it has waited
    # for the ledger calls in flight (the fork gate). A thread that took the mutex while such a
    # fork waited then waited at the gate for the fork, and the fork for the mutex: the child's
    # fork() hung for good. Here, in a child: thread W's first use of ledger A holds the mutex and
    # the gate until t=1.5 s (A's file is new and write-locked by another process: the open waits
    # to migrate); thread X's first use of ledger B waits for the mutex; thread V is in a call on
    # ledger C, write-locked until t=2.5 s; the child forks at t=0.6 s, which waits for W and V.
    # At 1.5 s W is done and X takes the mutex; at 2.5 s V is done, and the fork must complete.
    a_path, c_path = tmp_path / "a.sqlite3", tmp_path / "c.sqlite3"
    a = orroute.CostTracker(a_path, busy_timeout=10, leases=False)
    b = orroute.CostTracker(":memory:")
    b.set_budget(1)
    orroute.CostTracker(c_path, leases=False).close()  # C's file, migrated
    for suffix in ("", "-wal", "-shm"):  # A's file anew: the child's open must write (migrate)
        Path(str(a_path) + suffix).unlink(missing_ok=True)
    # Another process holds the write locks (not this one: a child shares this process's SQLite
    # record of a file's locks, and would wait for a lock no thread of its own gives back).
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(a_path), str(c_path)],
                              stdout=subprocess.PIPE, text=True)
    assert locker.stdout is not None and locker.stdout.readline() == "locked\n"

    def child() -> None:
        c = orroute.CostTracker(c_path, busy_timeout=10, leases=False)  # opened in the child
        done: list[object] = []
        v = threading.Thread(target=lambda: done.append(c.set_budget(1)))
        w = threading.Thread(target=lambda: done.append(a.total_cost()))
        v.start()
        w.start()
        time.sleep(0.3)  # W holds the renew mutex, waiting for A's write lock
        x = threading.Thread(target=lambda: done.append(b.total_cost()))
        x.start()
        time.sleep(0.3)  # X waits for the renew mutex
        pid = os.fork()  # waits for W and V, inside the gate
        if pid == 0:  # pragma: no cover
            os._exit(0)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        for t in (v, w, x):
            t.join(15)
        assert len(done) == 3

    try:
        assert fork_and_wait(child) == 0
    finally:
        locker.wait(30)
        locker.stdout.close()


def test_forks_while_a_thread_uses_the_response_cache_and_feedback_store(tmp_path: Path) -> None:
    # SQLite's process-wide mutexes (its allocator's: every sqlite3_malloc) are held by whichever
    # thread is inside any of the core's connections, not the ledger's only: a fork during a
    # response cache lookup left the child's first ledger open waiting for ever (11 of 40 children
    # hung before the cache and the feedback store held the fork gate too).
    from orroute import _core
    from orroute.cache import ResponseCache

    cache = ResponseCache(str(tmp_path / "cache.sqlite3"))
    store = _core.FeedbackStore(str(tmp_path / "feedback.sqlite3"))
    stop = threading.Event()
    used = [0]

    def hammer() -> None:
        while not stop.is_set():
            key = cache.key({"model": "m/a", "messages": MSGS, "n": used[0]}, "s")
            assert key is not None
            cache.get(key)
            store.summary()
            used[0] += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    statuses = []
    try:
        for i in range(40):
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child's outcome is its exit status)
                signal.alarm(5)
                orroute.CostTracker(tmp_path / f"child{i}.sqlite3").total_cost()
                os._exit(0)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            if statuses[-1] != 0:
                break
    finally:
        stop.set()
        thread.join(30)
    assert statuses == [0] * 40
    assert used[0] > 0


def test_an_in_memory_copy_holds_none_of_the_parents_leases() -> None:
    # A lease is one process's money set aside in its ledger; in a child's in-memory copy the
    # parent's leases (and the settled calls still counted in them, "consumed") were another
    # live process's reservations: held for the lease's ttl (15 min and more), a call the budget
    # allowed was refused ("spent $0.004, reserved $0.004"). The parent's calls settle in the
    # parent's copy only, so the child's copy drops its leases; what was spent stays spent.
    tracker = orroute.CostTracker(":memory:")
    assert tracker.leases
    tracker.set_budget("0.01")
    with tracker.reserve("0.004") as r:
        r.settle("0.004")

    def child() -> None:
        assert tracker.live_reservations() == (0, 0)
        assert tracker.total_cost() == Decimal("0.004")
        with tracker.reserve("0.004") as r:
            r.settle("0.004")
        with pytest.raises(orroute.BudgetExceededError):  # 0.012 > 0.01: still fails closed
            tracker.reserve("0.004")

    assert fork_and_wait(child) == 0
    assert tracker.total_cost() == Decimal("0.004")


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()  # until told (or the test's end closes the pipe)
db.rollback()
"""


def test_a_childs_first_reserve_waits_for_a_locked_file_without_the_gil(tmp_path: Path) -> None:
    # A forked child's first reserve opens the ledger file again, which may wait for another
    # process's write lock, up to busy_timeout (here: the file is new, and the open must write
    # its schema). It took the lease fast path with the GIL held: every thread of the child
    # stalled for the whole wait. Here the lock is given back only when another thread of the
    # child asks for it: with the GIL held by the waiting reserve that thread never ran, and the
    # reserve failed after busy_timeout ("database is locked").
    path = tmp_path / "ledger.sqlite3"
    tracker = orroute.CostTracker(path, busy_timeout=5)
    assert tracker.leases
    for suffix in ("", "-wal", "-shm"):  # the file anew: the child's open must write (migrate)
        Path(str(path) + suffix).unlink(missing_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"

    def child() -> None:
        assert holder.stdin is not None

        def give_back() -> None:  # runs only while the GIL is free
            time.sleep(0.3)  # the main thread is in reserve() by then
            holder.stdin.write("go\n")  # type: ignore[union-attr]
            holder.stdin.flush()  # type: ignore[union-attr]

        thread = threading.Thread(target=give_back)
        thread.start()
        with tracker.reserve("0.001", model="m/a") as r:
            r.settle("0.0005", model="m/a", prompt_tokens=3)
        thread.join(15)

    try:
        assert fork_and_wait(child) == 0
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()
    assert orroute.CostTracker(path).total_cost() == Decimal("0.0005")  # the child's, in the file


def _fds_to(path: Path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return n


def test_a_response_cache_and_feedback_store_made_before_fork_reopen_in_the_child(
        tmp_path: Path) -> None:
    # A SQLite connection is not carried across fork(): the child's first use opens the file
    # again (as a file ledger does), and parent and child then use the same file side by side,
    # which stays consistent. Before, the child used the parent's connection (its descriptor,
    # its copy of SQLite's lock and WAL-index state).
    from orroute import _core
    from orroute.cache import ResponseCache

    cache_path, store_path = tmp_path / "cache.sqlite3", tmp_path / "feedback.sqlite3"
    cache = ResponseCache(str(cache_path))
    store = _core.FeedbackStore(str(store_path))
    completion = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}

    def entry(source: str) -> object:
        e = _core.FeedbackEntry()
        e.model, e.score, e.source = "m/a", 0.5, source
        return e

    def use(who: str, rounds: int) -> None:
        for i in range(rounds):
            key = cache.key({"model": "m/a", "messages": MSGS, "n": f"{who}{i % 40}"}, "s")
            assert key is not None
            if cache.get(key) is None:
                assert cache.put(key, completion, model="m/a", prompt_tokens=1)
            store.add(entry(who))
        assert store.summary()

    use("parent", 5)
    before = (_fds_to(cache_path), _fds_to(store_path))
    assert before == (1, 1)

    def child() -> None:
        use("child", 1)
        assert (_fds_to(cache_path), _fds_to(store_path)) == (2, 2)  # its own connections
        use("child", 300)

    pids = [fork_child(child, 30) for _ in range(3)]
    use("parent", 300)  # side by side with the children
    assert [exit_status(p) for p in pids] == [0, 0, 0]
    assert (_fds_to(cache_path), _fds_to(store_path)) == before
    for p in (cache_path, store_path):
        with closing(sqlite3.connect(p)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert sum(s.count for s in store.summary()) == 5 + 300 + 3 * 301
    stats = cache.stats()
    assert stats.entries == 40 * 2 and stats.hits + stats.misses == 5 + 300 + 3 * 301


def test_a_gateway_key_store_made_before_fork_reopens_in_the_child(tmp_path: Path) -> None:
    # The gateway's key store (Python's sqlite3, in the ledger file): a forked worker opens the
    # file again instead of using the parent's connection; parent and children create and verify
    # keys side by side, and every process sees the others' keys.
    from orroute.gateway.keys import KeyStore

    path = tmp_path / "keys.sqlite3"
    store = KeyStore(path)
    parent_key, _ = store.create("parent")
    assert _fds_to(path) == 1
    r, w = os.pipe()

    def child(i: int) -> None:
        assert store.verify(parent_key) is not None
        assert _fds_to(path) == 2  # its own connection; the parent's left alone
        keys = [store.create(f"child{i}")[0] for _ in range(50)]
        assert all(store.verify(k) is not None for k in keys)
        os.write(w, (keys[0] + "\n").encode())

    pids = [fork_child(lambda i=i: child(i), 30) for i in range(3)]
    for _ in range(50):
        store.create("parent")
    assert [exit_status(p) for p in pids] == [0, 0, 0]
    os.close(w)
    with os.fdopen(r) as f:
        child_keys = f.read().split()
    assert len(child_keys) == 3 and all(store.verify(k) is not None for k in child_keys)
    assert len(store.list()) == 1 + 50 + 3 * 50
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
