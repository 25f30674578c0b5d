"""Added latency of the code verifier's sandbox: wall ms per ``orroute.verify.run_python`` call
on a trivial answer, this tree against a baseline tree (default /work/wt-base, an untouched
build of main), two long-lived workers alternated call by call (order flipped each call), median
and range of the round medians.

    PYTHONPATH=python python3 bench/verify_sandbox.py [--base /work/wt-base] [--rounds 7] [--calls 15]

``--base-disable mounts`` (layers, comma-separated) makes the baseline this tree with those
layers switched off: the cost of the layers themselves, without the two trees' other changes
(with ``mounts`` off the baseline bounds the disk with the ``diskwatch`` poll instead).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import sys, time
import orroute.verify as v
disable = tuple(filter(None, sys.argv[1].split(",")))
v.run_python("pass", disable=disable)  # warm: the supervisor source is read once
for _ in sys.stdin:  # one timed call per line, so the two trees alternate call by call
    t = time.perf_counter()
    r = v.run_python("assert sum(range(10)) == 45", disable=disable)
    assert r.outcome == "pass", r.reason
    print((time.perf_counter() - t) * 1e3, flush=True)
"""


def worker(tree: Path, disable: str = "") -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    return subprocess.Popen([sys.executable, "-c", CHILD, disable], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


def timed(p: subprocess.Popen[str]) -> float:
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("go\n")
    p.stdin.flush()
    return float(p.stdout.readline())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=Path("/work/wt-base"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--base-disable", default="",
                    help="baseline = this tree with these sandbox layers off (e.g. mounts)")
    a = ap.parse_args()
    base = worker(HERE.parent, a.base_disable) if a.base_disable else worker(a.base)
    procs = {"baseline": base, "sandbox": worker(HERE.parent)}
    medians: dict[str, list[float]] = {k: [] for k in procs}
    diffs = []
    for r in range(a.rounds):
        times: dict[str, list[float]] = {k: [] for k in procs}
        for i in range(a.calls):
            order = list(procs) if (r + i) % 2 == 0 else list(reversed(procs))
            for name in order:
                times[name].append(timed(procs[name]))
        for name in procs:
            medians[name].append(statistics.median(times[name]))
        diffs.append(medians["sandbox"][-1] - medians["baseline"][-1])
    for p in procs.values():
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    for name, ms in medians.items():
        print(f"{name:9s} run_python median {statistics.median(ms):6.1f} ms "
              f"(round medians {min(ms):.1f}-{max(ms):.1f}, {a.rounds} rounds x {a.calls} calls)")
    print(f"added per run (median of per-round differences): {statistics.median(diffs):.1f} ms "
          f"(range {min(diffs):.1f} to {max(diffs):.1f}); ratio "
          f"{statistics.median(medians['sandbox']) / statistics.median(medians['baseline']):.2f}")


if __name__ == "__main__":
    main()
