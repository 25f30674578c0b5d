"""Tokenizer throughput: orroute vs tiktoken, measured in one run on the same text.

Prints MB/s for encode (one thread), count (one thread; tiktoken has no count, so len(encode)),
and batch encode over all cores, with the ratios, plus the cold load time of o200k_base.
The text mixes English prose-like source comments and code (Python's standard library) with
multilingual text; the tiktoken oracle is built offline from the vocabularies bundled in orroute.

Usage: PYTHONPATH=python python3 bench/tokenizer.py [--mb 4] [--encoding o200k_base]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import tiktoken

import orroute

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
MULTILINGUAL = (
    "Съешь же ещё этих мягких французских булок, да выпей чаю. Größenwahn über Äpfel und Straße. "
    "中文字符测试，包括标点符号。日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다. "
    "إن الأمم المتحدة تعمل على تعزيز السلام. हिन्दी भाषा विश्व की प्रमुख भाषाओं में से एक है। "
    "👨‍👩‍👧‍👦 emoji ✨ and numbers 1234567890, 3.14159, 2025-01-01T12:00:00Z.\n"
)


def corpus(megabytes: float) -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    size = 0
    target = int(megabytes * 1e6)
    for i, path in enumerate(sorted(stdlib.glob("*.py"))):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        if i % 4 == 0:
            parts.append(MULTILINGUAL * 20)
        size += len(text.encode())
        if size >= target:
            break
    return "".join(parts)[:target]


def oracle(name: str, data_dir: Path) -> tiktoken.Encoding:
    cache = Path(tempfile.mkdtemp())
    shutil.copy(
        data_dir / f"{name}.tiktoken", cache / hashlib.sha1(URL.format(name).encode()).hexdigest()
    )
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    return tiktoken.get_encoding(name)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=4.0, help="size of the text in MB")
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    data_dir = Path(orroute.__file__).resolve().parent / "data"
    load = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import time, orroute; import orroute._core; "
                "t, c = time.perf_counter(), time.process_time(); "
                f"orroute.get_encoding({args.encoding!r}); "
                "print((time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3)"
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    text = corpus(args.mb)
    mb = len(text.encode()) / 1e6
    docs = [text[i : i + 20_000] for i in range(0, len(text), 20_000)]
    ours, ref = orroute.get_encoding(args.encoding), oracle(args.encoding, data_dir)
    assert ours.encode_ordinary(text) == ref.encode_ordinary(text), "parity broken on bench text"
    cores = os.cpu_count() or 1

    rows = [
        ("encode, 1 thread", lambda: ours.encode_ordinary(text), lambda: ref.encode_ordinary(text)),
        (
            "count, 1 thread",
            lambda: ours.count(text, disallowed_special=()),
            lambda: len(ref.encode_ordinary(text)),
        ),
        (
            f"batch encode, {cores} threads",
            lambda: ours.encode_batch(docs, num_threads=cores, disallowed_special=()),
            lambda: ref.encode_ordinary_batch(docs, num_threads=cores),
        ),
        (
            f"batch count, {cores} threads",
            lambda: ours.count_batch(docs, num_threads=cores, disallowed_special=()),
            lambda: [len(t) for t in ref.encode_ordinary_batch(docs, num_threads=cores)],
        ),
    ]
    print(
        f"{args.encoding}: {mb:.2f} MB of text ({len(docs)} docs for batch), best of {args.repeat}; "
        f"tiktoken {tiktoken.__version__}"
    )
    print(f"{'':28} {'orroute MB/s':>13} {'tiktoken MB/s':>14} {'ratio':>7}")
    for label, mine, theirs in rows:
        a = mb / best(mine, args.repeat)
        b = mb / best(theirs, args.repeat)
        print(f"{label:28} {a:13.1f} {b:14.1f} {a / b:6.2f}x")
    wall, cpu = map(float, load.stdout.split())
    print(f"cold load of {args.encoding} (fresh process): {wall:.1f} ms wall, {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
