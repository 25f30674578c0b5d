"""Prints the cumulative import time of `orroute` (python -X importtime), median of N runs, next to
peers that are installed (openai, tiktoken, litellm), measured in the same run.

    python3 bench/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys


def import_us(module: str) -> int:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True,
    ).stderr
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no importtime line for {module}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    mine = statistics.median(import_us("orroute") for _ in range(args.runs)) / 1000
    print(f"import orroute      {mine:8.1f} ms  (median of {args.runs}; goal < 50 ms)")
    for peer in ("openai", "tiktoken", "litellm"):
        if importlib.util.find_spec(peer) is None:
            print(f"import {peer:<12} (not installed)")
            continue
        t = statistics.median(import_us(peer) for _ in range(max(3, args.runs // 3))) / 1000
        print(f"import {peer:<12} {t:8.1f} ms  ({t / mine:.1f}x orroute)")


if __name__ == "__main__":
    main()
