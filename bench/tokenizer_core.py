"""The tokenizer's C++ core, two builds side by side: same-run ratio of MB per CPU-second.

Writes the distinct documents of bench/tokenizer.py's corpus (the first `--mb` MB) to a temporary
NUL-separated file, then runs `orroute_tokenizer_core` (built with ORROUTE_BUILD_TESTS) of each
build in alternation, `--runs` times; each run splits the corpus into 3 parts of fresh text and
reports their mean. Prints each build's median and the median of the per-run ratios (B / A).

`--short` writes the short texts of bench/tokenizer.py's short modes instead (distinct lines of
1..256 bytes, `--mb` of them), for the fixed cost of one call: `--mode count` (count_ordinary) or
`--mode chat` (each text one user message, counted as the engine's plan() counts a request).

Usage: python3 bench/tokenizer_core.py A_BINARY B_BINARY [--encoding o200k_base]
       [--mode count|encode|pretok|batch1|batch2|flat2|chat] [--runs 7] [--mb 12] [--short]
e.g.   python3 bench/tokenizer_core.py /work/wt-base/build/dev/orroute_tokenizer_core \\
           build/dev/orroute_tokenizer_core --mode count
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tokenizer as corpus  # the sibling bench's corpus reader


def mean_rate(binary: str, path: str, encoding: str, mode: str) -> float:
    out = subprocess.run(
        [binary, path, encoding, mode], capture_output=True, text=True, check=True
    ).stdout
    rates = [float(x) for x in re.findall(r"([0-9.]+) MB/CPU-s", out)]
    return sum(rates) / len(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--mode", default="count")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--mb", type=float, default=12.0)
    ap.add_argument("--short", action="store_true", help="short texts instead of documents")
    args = ap.parse_args()
    texts = (corpus.short_texts if args.short else corpus.documents)(corpus.DATA)
    docs = corpus.slices(texts, args.mb, 1)[0]
    with tempfile.NamedTemporaryFile(suffix=".corpus") as f:
        f.write(b"\0".join(d.encode("utf-8", "replace") for d in docs))
        f.flush()
        pairs = [
            (
                mean_rate(args.a, f.name, args.encoding, args.mode),
                mean_rate(args.b, f.name, args.encoding, args.mode),
            )
            for _ in range(args.runs)
        ]
    a = statistics.median(p[0] for p in pairs)
    b = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[1] / p[0] for p in pairs)
    print(
        f"{args.encoding} {args.mode}: A {a:.1f} MB/CPU-s, B {b:.1f} MB/CPU-s, "
        f"B/A {ratio:.2f}x (median of {args.runs} alternated runs)"
    )


if __name__ == "__main__":
    main()
