"""The schema 4 -> 5 migration of a large ledger file (calls_blocks, the calls' indexes dropped)
and what another writer sees while it runs: a ledger of `--calls` calls in schema 4 (the rows as
bench/ledger_queries.py writes them, put in through SQL), copied for each tree, opened by the
tree's orroute (the open's time is the migration's) while a thread of this process writes a
call every few milliseconds to the same file as an older orroute would (BEGIN IMMEDIATE, one
row, COMMIT), polling the write lock every millisecond. Prints, per tree, the open's time, the
writes made meanwhile and the longest wait for the lock: the longest the migration held it (to
the millisecond). A wait past the busy timeout (30 s) is a write that failed.

    python3 bench/ledger_migration.py --trees /work/wt-base,. [--calls 20000000] [--file F]

--file keeps the schema 4 file (made once, reused by later runs with the same --calls).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DAY_US = 86_400 * 1_000_000
BUSY_TIMEOUT_S = 30.0

# Takes a file of the tree's schema (6) back to schema 4, as tests/cpp/test_ledger.cpp does.
UNDO_SCHEMA_5 = """
DROP TABLE abandoned; DELETE FROM schema_version WHERE version = 6;
DROP TABLE ok_completions; ALTER TABLE state DROP COLUMN completions_through;
DROP VIEW calls_spans; DROP TABLE calls_blocks; CREATE INDEX calls_ts ON calls(ts);
CREATE INDEX calls_type_model ON calls(task_type, model_used, id);
DELETE FROM schema_version WHERE version = 5;
"""

# bench/ledger_queries.py's rows, made by SQLite: ts mostly in id order, a call now and then
# settled up to a minute late; 20 projects, 5 task types, 10 models; one call in 20 an error
CALLS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :calls)
INSERT INTO calls(ts, project, task_type, model_requested, model_used, provider,
  prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
  est_nanos, est_attos, cost_nanos, cost_attos, latency_us, outcome, attempts, cost_source)
SELECT :start + i * :step - (i % 97) * 600000, 'p' || (i % 20),
  CASE i % 5 WHEN 0 THEN 'chat' WHEN 1 THEN 'coding' WHEN 2 THEN 'analysis'
    WHEN 3 THEN 'creative' ELSE 'general' END,
  'vendor' || (i % 10 % 4) || '/model-' || (i % 10), 'vendor' || (i % 10 % 4) || '/model-' || (i % 10),
  'vendor', 100 + i % 900, (i * 37) % 1200, 0, 0, 0, 20000 + i % 1000, 0, 15000 + i % 777, 0,
  200000 + i % 50000, CASE WHEN i % 20 THEN 'ok' ELSE 'error' END, 1, 'upstream'
FROM n
"""

# An older orroute's settle, as far as the lock goes: one row in a write transaction.
OLD_SETTLE = """
INSERT INTO calls(ts, model_used, prompt_tokens, completion_tokens, cached_tokens,
  cache_write_tokens, reasoning_tokens, cost_nanos, cost_attos, outcome, attempts)
VALUES (?, 'vendor1/model-1', 10, 10, 0, 0, 0, 1000, 0, 'ok', 1)
"""

OPEN = """
import sys, time
from orroute import _core
t = time.perf_counter()
ledger = _core.SqliteLedger(sys.argv[1])
print(time.perf_counter() - t, ledger.schema_version())
"""


def make_schema_4(tree: Path, path: str, calls: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    subprocess.run([sys.executable, "-c", f"from orroute import _core; _core.SqliteLedger({path!r})"],
                   env=env, check=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(UNDO_SCHEMA_5)
    db.execute("PRAGMA journal_mode=OFF")  # the rows straight into the file: no WAL of GiBs
    db.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1e6)
    db.execute(CALLS, {"calls": calls, "start": now - 365 * DAY_US, "step": 365 * DAY_US // calls})
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


class OldWriter(threading.Thread):
    """Writes a call every `every` s until stopped; records each wait for the write lock."""

    def __init__(self, path: str, every: float) -> None:
        super().__init__(daemon=True)
        self.path, self.every = path, every
        self.waits: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        while not self.stop.wait(self.every):
            t = time.perf_counter()
            while True:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    time.sleep(0.001)
            self.waits.append(time.perf_counter() - t)
            db.execute(OLD_SETTLE, (int(time.time() * 1e6),))
            db.execute("COMMIT")
        db.close()


def migrate(tree: Path, path: str) -> tuple[float, int, OldWriter]:
    writer = OldWriter(path, 0.005)
    writer.start()
    time.sleep(0.5)  # the writer's first calls, before the migration
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    out = subprocess.run([sys.executable, "-c", OPEN, path], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    return float(out[0]), int(out[1]), writer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", default="/work/wt-base,.")
    ap.add_argument("--calls", type=int, default=20_000_000)
    ap.add_argument("--file", help="the schema 4 file, kept (made if missing)")
    args = ap.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(args.file) if args.file else None) as tmp:
        original = args.file or f"{tmp}/schema4.sqlite3"
        if not os.path.exists(original):
            t = time.perf_counter()
            make_schema_4(trees[-1], original, args.calls)
            print(f"{args.calls:,} calls written in schema 4 in {time.perf_counter() - t:.0f} s "
                  f"({os.path.getsize(original) / 2**30:.1f} GiB)")
        print(f"{'tree':<24} {'open (s)':>9} {'schema':>6} {'writes':>7} {'longest wait (s)':>17} "
              f"{'failed (> 30 s)':>15}  load")
        for tree in trees:
            copy = f"{tmp}/copy.sqlite3"
            shutil.copy(original, copy)
            os.sync()  # else the migration's first checkpoint flushes the copy's GiBs
            seconds, version, writer = migrate(tree, copy)
            failed = sum(w > BUSY_TIMEOUT_S for w in writer.waits)
            print(f"{str(tree)[-24:]:<24} {seconds:>9.2f} {version:>6} {len(writer.waits):>7} "
                  f"{max(writer.waits):>17.3f} {failed:>15}  {os.getloadavg()[0]:.1f}")
            for suffix in ("", "-wal", "-shm", "-orroute"):
                Path(copy + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
