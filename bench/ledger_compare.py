"""Same-session comparison of bench/ledger.py between two checkouts (e.g. main and a branch), each
run with its own build: alternates the trees N times and prints the medians and their ratio.

    python3 bench/ledger_compare.py 5 /work/main /work/wt-money
"""
import argparse
import os
import re
import statistics
import subprocess

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("runs", nargs="?", type=int, default=3, help="alternations of the two trees")
ap.add_argument("base", nargs="?", default="/work/main", help="the baseline checkout")
ap.add_argument("branch", nargs="?", default=".", help="the checkout compared with it")
args = ap.parse_args()
runs, base, branch = args.runs, args.base, args.branch
trees = {"base": base, "branch": branch}
res = {k: {"lat": [], "t1": [], "t8": [], "cpp1": [], "cpp8": [], "peer": []} for k in trees}
for i in range(runs):
    for name, root in trees.items():
        out = subprocess.run(["timeout", "900", "python3", "bench/ledger.py", "--calls", "20000"], cwd=root,
                             env={**os.environ, "PYTHONPATH": root + "/python"},
                             capture_output=True, text=True, check=False).stdout
        m = re.search(r"leases on \(default\) : reserve\+settle latency \(1 thread\) median ([\d.]+) us.*1 thread ([\d,]+), 8 threads ([\d,]+)", out)
        c = re.search(r"C\+\+ engine path, leases on : 1 thread ([\d,]+)/s \(median [\d.]+ us\), 8 threads ([\d,]+)/s", out)
        p = re.search(r"INSERT\+COMMIT per call: ([\d,]+)/s", out)
        if not m:
            print(name, "parse failed", out[-500:]); continue
        def f(s: str) -> float:
            return float(s.replace(",", ""))

        res[name]["lat"].append(f(m[1])); res[name]["t1"].append(f(m[2])); res[name]["t8"].append(f(m[3]))
        if c: res[name]["cpp1"].append(f(c[1])); res[name]["cpp8"].append(f(c[2]))
        if p: res[name]["peer"].append(f(p[1]))
        print(i, name, m[1], m[2], m[3], c and c[1], c and c[2], p and p[1], flush=True)
for k in ("lat", "t1", "t8", "cpp1", "cpp8", "peer"):
    a, b = statistics.median(res["base"][k]), statistics.median(res["branch"][k])
    print(f"{k:5s} base {a:10.1f}  branch {b:10.1f}  branch/base {b / a:.3f}")
