"""The SQLite ledger's scaling curve over processes, two trees alternated in one session.

Runs each tree's own `build/dev/orroute_ledger_bench` (1 thread in each of 1/2/4/8 processes,
reserve + settle against two budgets on one fresh file) in turn, `--rounds` times, and prints the
median settled calls/s per tree and mode, each point's ratio to that row's one-process figure, and
the branch/base ratio of the medians; then the median CPU per settled call (user + system of every
process of the run, from `RUSAGE_CHILDREN`), steadier than calls/s on a shared machine, where a
run's rate mostly says how much CPU it was given. Modes: `leases` (default options) and, where the tree has it,
`write-behind` (LEASES=2: settle_delay_us 10 ms, settle_batch 64). A run whose budgets did not come
out exact is reported (and counted as a failure).

    python3 bench/ledger_curve.py --base /work/wt-base --branch . [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

MODES = {"leases": "1", "write-behind": "2"}


def run(tree: Path, tmp: str, calls: int, mode: str, procs: int) -> tuple[float, float] | None:
    """Calls/s and µs of CPU per call of one run, or None if it failed."""
    exe = tree / "build" / "dev" / "orroute_ledger_bench"
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [str(exe), tmp, "1", str(calls), MODES[mode], str(procs)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) < 4:
        return None
    if fields[3] != "1":
        print(f"NOT EXACT: {tree} {mode} {procs} processes")
        return None
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return float(fields[0]), cpu / calls * 1e6


def supports_write_behind(tree: Path) -> bool:
    src = tree / "bench" / "ledger_bench.cpp"
    return src.exists() and "LEASES(0|1|2)" in src.read_text()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="/work/wt-base")
    ap.add_argument("--branch", default=".")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--processes", default="1,2,4,8")
    args = ap.parse_args()
    procs = [int(p) for p in args.processes.split(",")]
    trees = {"base": Path(args.base).resolve(), "branch": Path(args.branch).resolve()}
    rows = [
        (t, m) for t in trees for m in MODES if m == "leases" or supports_write_behind(trees[t])
    ]
    res: dict[tuple[str, str, int], list[float]] = {}
    cpu: dict[tuple[str, str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for p in procs:
                for tree, mode in rows:
                    got = run(trees[tree], tmp, args.calls, mode, p)
                    if got is not None:
                        res.setdefault((tree, mode, p), []).append(got[0])
                        cpu.setdefault((tree, mode, p), []).append(got[1])
                    print(
                        f"round {i} {tree:6} {mode:12} {p} processes: "
                        + ("failed" if got is None else f"{got[0]:,.0f}/s, {got[1]:.1f} µs CPU/call"),
                        flush=True,
                    )
    med = {k: statistics.median(v) for k, v in res.items()}
    print(
        f"\nmedians of {args.rounds} alternated rounds, {args.calls} calls per run "
        "(settled calls/s; x = ratio to the row's 1-process median)"
    )
    for tree, mode in rows:
        one = med.get((tree, mode, procs[0]))
        cells = []
        for p in procs:
            v = med.get((tree, mode, p))
            cells.append("n/a" if v is None or one is None else f"{p}: {v:,.0f} ({v / one:.2f}x)")
        print(f"{tree:6} {mode:12} " + "; ".join(cells))
    for mode in MODES:
        if ("base", "leases", procs[0]) not in med:
            break
        cells = []
        for p in procs:
            a, b = med.get(("base", "leases", p)), med.get(("branch", mode, p))
            if a and b:
                cells.append(f"{p}: {b / a:.2f}x")
        if cells:
            print(f"branch {mode} / base leases: " + "; ".join(cells))
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    print("\nCPU per settled call (µs, user + system of all processes; medians)")
    for tree, mode in rows:
        cells = [f"{p}: {cmed[(tree, mode, p)]:.1f}" if (tree, mode, p) in cmed else f"{p}: n/a"
                 for p in procs]
        print(f"{tree:6} {mode:12} " + "; ".join(cells))
    for mode in MODES:
        cells = []
        for p in procs:
            a, b = cmed.get(("base", mode, p)), cmed.get(("branch", mode, p))
            if a and b:
                cells.append(f"{p}: {b / a:.2f}x")
        if cells:
            print(f"branch / base CPU per call, {mode}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
