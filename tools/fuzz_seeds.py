"""Writes the string-literal seeds of a fuzz driver (its ``kSeeds`` / ``kCorpus`` / ``seeds``
array) as the files of a libFuzzer corpus, one file per seed named by its SHA-1.

    python3 tools/fuzz_seeds.py tests/fuzz/fuzz_reply.cpp DIR      (run by scripts/libfuzzer.sh)

Reads C++ string literals as the compiler joins them: adjacent literals concatenated, raw
``R"(...)"`` literals as they are, escapes (``\\n``, ``\\xC3``, octal) decoded to bytes.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
_HEX = "0123456789abcdefABCDEF"


def _unescape(body: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        n = body[i + 1]
        if n == "x":
            j = i + 2
            while j < len(body) and body[j] in _HEX:
                j += 1
            out.append(int(body[i + 2:j], 16) & 0xFF)
            i = j
        elif n in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out += _ESCAPES.get(n, n.encode())
            i += 2
    return bytes(out)


def seeds(source: str) -> list[bytes]:
    """The seeds of the first seed array in ``source`` (a driver's text); [] when it has none."""
    m = re.search(r"(kSeeds\[\]|kCorpus\[\]|seeds)\s*=\s*\{", source)
    if not m:
        return []
    items: list[bytes] = []
    cur, have, depth, i = b"", False, 1, m.end()
    while i < len(source) and depth:
        if source.startswith('R"(', i):
            end = source.index(')"', i + 3)
            cur += source[i + 3:end].encode("utf-8", "surrogateescape")
            have, i = True, end + 2
            continue
        c = source[i]
        if c == '"':
            j = i + 1
            while source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            cur += _unescape(source[i + 1:j])
            have, i = True, j + 1
            continue
        if source.startswith("//", i):
            i = source.index("\n", i)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 1:
            if have:
                items.append(cur)
            cur, have = b"", False
        i += 1
    if have:
        items.append(cur)
    return items


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    found = seeds(src.read_text(encoding="utf-8", errors="surrogateescape"))
    for s in found:
        (out / hashlib.sha1(s).hexdigest()).write_bytes(s)
    print(f"{src}: {len(found)} seeds")


if __name__ == "__main__":
    main()
