"""Added latency of the code verifier's sandbox: wall ms per ``orroute.verify.run_python`` call
on a trivial answer, this tree against a baseline tree (default /work/wt-base, the pre-sandbox
build), alternated round by round in fresh processes, median and range of the round medians.

    PYTHONPATH=python python3 bench/verify_sandbox.py [--base /work/wt-base] [--rounds 7] [--calls 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
import orroute.verify as v
v.run_python("pass")  # warm: the supervisor source is read once
times = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    r = v.run_python("assert sum(range(10)) == 45")
    times.append((time.perf_counter() - t) * 1e3)
    assert r.outcome == "pass", r.reason
print(json.dumps(times))
"""


def round_median(tree: Path, calls: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(calls)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return statistics.median(json.loads(out.splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=Path("/work/wt-base"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args()
    trees = {"baseline": a.base, "sandbox": HERE.parent}
    res: dict[str, list[float]] = {k: [] for k in trees}
    for _ in range(a.rounds):
        for name, tree in trees.items():
            res[name].append(round_median(tree, a.calls))
    for name, ms in res.items():
        print(f"{name:9s} run_python median {statistics.median(ms):6.1f} ms "
              f"(round medians {min(ms):.1f}-{max(ms):.1f}, {a.rounds} rounds x {a.calls} calls)")
    print(f"added per run: {statistics.median(res['sandbox']) - statistics.median(res['baseline']):.1f} ms"
          f" (ratio {statistics.median(res['sandbox']) / statistics.median(res['baseline']):.2f})")


if __name__ == "__main__":
    main()
