"""Instructions of the per-call "is anything watching?" check (``Observer._watched``) while
nothing watches: no callback, no OpenTelemetry, the ``orroute`` logger at WARNING with logging's
cache filled. Every manager and client call asks it once.

Each tree's check runs under valgrind's callgrind twice, with 0 and with ``--checks`` checks after
the same set-up; (I(checks) - I(0)) / checks is the check's count alone (the interpreter's start
and the set-up cancel out). Counts repeat to a few instructions whatever the load. Asserts
nothing.

Usage: python3 bench/observe_check.py [--checks 100000] [--trees /work/wt-base,.]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import logging, sys
from orroute.observe import Observer
log = logging.getLogger("orroute")
log.setLevel(logging.WARNING)
watched = Observer("manager")._watched
assert not watched()  # fills logging's cache
for _ in range(int(sys.argv[1])):
    watched()
"""


def instructions(tree: Path, checks: int) -> int:
    """Every instruction callgrind counts in a process making `checks` checks on `tree`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        env = dict(os.environ, PYTHONPATH=str(tree / "python"))
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, "-c", CHILD, str(checks)],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for line in out.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no summary")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checks", type=int, default=100_000)
    ap.add_argument("--trees", default="/work/wt-base,.")
    args = ap.parse_args()
    for name in args.trees.split(","):
        tree = Path(name).resolve()
        per_check = (instructions(tree, args.checks) - instructions(tree, 0)) / args.checks
        print(f"{tree}: {per_check:,.0f} instructions a check")


if __name__ == "__main__":
    main()
