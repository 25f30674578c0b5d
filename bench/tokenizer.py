"""Tokenizer throughput: orroute against tiktoken and the other fast tokenizers on PyPI, in one run.

Peers (each optional; a missing one is skipped): tiktoken (also the exactness oracle), tokie,
bpe-openai (GitHub's rust-gems `bpe`), rs-bpe, fastokens, and HF `tokenizers`. tokie and HF
tokenizers load the same vocabulary converted to a `tokenizer.json` (byte-level BPE with the
encoding's split regex and `ignore_merges`, as transformers' TikTokenConverter); fastokens reads the
`.tiktoken` file; the others bundle the OpenAI vocabularies. Every peer is first checked token for
token against tiktoken on the corpus; an inexact peer is still timed but marked.

Text: real documents from /work/shared/data (RouterBench, RouteLLM MMLU and GSM8K prompts and model
answers, RouterDC questions, the OpenRouter catalog and LiteLLM tables), split into distinct
documents. **No text is ever encoded twice by the same peer**: round k of every measurement uses
its own slice of the corpus, so caches of repeated inputs (tokie, fastokens) cannot help. Rounds
run the peers interleaved, in rotating order; each figure is the median over rounds, and ratios
are medians of per-round ratios against orroute (same round, same text).

Modes: `encode` and `count` call the peer once per document on one thread (`defaults`: the
same with `encode(text)` and tiktoken's default special-token arguments, orroute and tiktoken only); `encode 1 string`
encodes the round's slice as one string; `batch encode` / `batch count` hand all documents to the
peer's parallel API with 2 threads. `batch encode` uses each peer's fastest batch API: a flat
buffer of all tokens for orroute and fastokens (both `encode_batch_flat`), lists for the others;
`batch encode lists` asks every peer for one Python list of ints per document. MB/s is per wall second; MB/CPU-s divides by the process CPU
time the call used (all threads), which is what a loaded server pays. A curve of single-string
encode throughput against input size follows (distinct strings of each size, no reuse).

`--warm MB` has every peer batch-encode that much other text first, so the modes measure caches
as a long-running process has them (fastokens' grow with what it has seen; see
docs/tokenizer.md, seventh pass).

Usage: PYTHONPATH=python python3 bench/tokenizer.py [--encoding o200k_base] [--mb 1] [--rounds 5]
       [--peers orroute,tiktoken,tokie,...] [--threads 2] [--warm 0]
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orroute

DATA = Path(os.environ.get("ORROUTE_SHARED_DATA", "/work/shared/data"))
VOCAB = Path(orroute.__file__).resolve().parent / "data"
URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
SHORT_MAX = 256  # bytes: the short modes' texts are 1..SHORT_MAX bytes


# ---- corpus ---------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _cells_by_file(root: Path) -> list[list[str]]:
    """Every text field of every CSV/JSON/YAML file under `root`, one list per file, sorted by
    path."""
    csv.field_size_limit(1 << 30)
    by_file: list[list[str]] = []
    for path in sorted(root.rglob("*")):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", errors="replace", newline="") as f:
                cells = [c for row in csv.reader(f) for c in row]
        elif path.suffix == ".json":
            cells = list(_strings(json.loads(path.read_text(encoding="utf-8"))))
        elif path.suffix in (".yml", ".yaml", ".md"):
            cells = path.read_text(encoding="utf-8", errors="replace").split("\n\n")
        else:
            continue
        by_file.append(cells)
    return by_file


def _interleaved_distinct(by_file: list[list[str]]) -> list[str]:
    """The distinct strings of every list, taking the i-th of each list in turn, so any slice
    mixes the sources."""
    seen: set[str] = set()
    out: list[str] = []
    for i in range(max(map(len, by_file))):
        for cells in by_file:
            if i < len(cells) and cells[i] not in seen:
                seen.add(cells[i])
                out.append(cells[i])
    return out


def documents(root: Path) -> list[str]:
    """Distinct text fields (>= 40 chars) of every CSV/JSON/YAML file under `root`, in a fixed
    order that interleaves the sources so any slice mixes them."""
    return _interleaved_distinct(
        [[c for c in cells if len(c) >= 40] for cells in _cells_by_file(root)]
    )


def short_texts(root: Path) -> list[str]:
    """Distinct lines of 1..256 UTF-8 bytes of the same text fields, interleaved the same way:
    the size of most chat messages an agent sends (a system prompt's line, a short user turn, a
    tool's short result, a multiple-choice option, a number)."""
    by_file = [
        [line for c in cells for line in c.split("\n") if 1 <= len(line.encode()) <= SHORT_MAX]
        for cells in _cells_by_file(root)
    ]
    return _interleaved_distinct(by_file)


def slices(docs: list[str], megabytes: float, count: int) -> list[list[str]]:
    """`count` disjoint runs of consecutive documents of about `megabytes` each."""
    target = int(megabytes * 1e6)
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for d in docs:
        cur.append(d)
        size += len(d.encode())
        if size >= target:
            out.append(cur)
            cur, size = [], 0
            if len(out) == count:
                return out
    raise SystemExit(f"corpus too small for {count} x {megabytes} MB of distinct text")


# ---- peers ----------------------------------------------------------------------------------


@dataclass
class Peer:
    name: str
    encode: Callable[[str], list[int]]
    count: Callable[[str], int]
    batch_encode: Callable[[list[str]], Any]
    batch_count: Callable[[list[str]], Any]
    version: str = ""
    batch_lists: Callable[[list[str]], Any] | None = None  # None: batch_encode gives lists
    exact: str = "?"
    # tiktoken's `encode(text)` with its default arguments (special-token text is an error):
    # only peers with that API (orroute, tiktoken) run the `defaults` mode
    encode_defaults: Callable[[str], list[int]] | None = None


def tiktoken_oracle(name: str) -> Any:
    import tiktoken
    from tiktoken import registry

    cache = Path(tempfile.mkdtemp(prefix="tiktoken-cache-"))
    stem = "o200k_base" if name.startswith("o200k") else name
    shutil.copy(
        VOCAB / f"{stem}.tiktoken", cache / hashlib.sha1(URL.format(stem).encode()).hexdigest()
    )
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    registry.ENCODINGS.pop(name, None)
    return tiktoken.get_encoding(name)


def hf_tokenizer_json(name: str) -> Path:
    """The encoding as a HF tokenizer.json (cached in the temp dir): byte-level BPE whose merges
    are ranked by the merged token's rank, with the split regex and ignore_merges (whole-piece
    lookup first, as tiktoken)."""
    path = Path(tempfile.gettempdir()) / f"orroute-bench-{name}-tokenizer.json"
    if path.exists():
        return path
    enc = orroute.get_encoding(name)
    ranks: dict[bytes, int] = enc._mergeable_ranks
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    byte_chr = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in byte_chr:
            byte_chr[b] = chr(256 + extra)
            extra += 1

    def text(b: bytes) -> str:
        return "".join(byte_chr[x] for x in b)

    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    doc = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for t, i in sorted(enc._special_tokens.items(), key=lambda kv: kv[1])
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {"Regex": enc._pat_str},
                    "behavior": "Isolated",
                    "invert": False,
                },
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                },
            ],
        },
        "post_processor": None,
        "decoder": {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": False,
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": {text(t): r for t, r in ranks.items()},
            "merges": [[text(m[3]), text(m[4])] for m in merges],
        },
    }
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False))
    tmp.rename(path)
    return path


def make_peers(name: str, wanted: list[str], threads: int) -> list[Peer]:
    from importlib.metadata import version

    peers: list[Peer] = []
    ours = orroute.get_encoding(name)
    peers.append(
        Peer(
            "orroute",
            ours.encode_ordinary,
            lambda t: ours.count(t, disallowed_special=()),
            lambda d: ours.encode_batch_flat(d, num_threads=threads, disallowed_special=()),
            lambda d: ours.count_batch(d, num_threads=threads, disallowed_special=()),
            orroute.__version__,
            lambda d: ours.encode_batch(d, num_threads=threads, disallowed_special=()),
            encode_defaults=ours.encode,
        )
    )
    for peer in wanted:
        try:
            if peer == "tiktoken":
                tk = tiktoken_oracle(name)
                peers.append(
                    Peer(
                        "tiktoken",
                        tk.encode_ordinary,
                        lambda t, tk=tk: len(tk.encode_ordinary(t)),
                        lambda d, tk=tk: tk.encode_ordinary_batch(d, num_threads=threads),
                        lambda d, tk=tk: [
                            len(x) for x in tk.encode_ordinary_batch(d, num_threads=threads)
                        ],
                        version("tiktoken"),
                        encode_defaults=tk.encode,
                    )
                )
            elif peer == "tokie":
                import tokie

                tt = tokie.Tokenizer.from_json(str(hf_tokenizer_json(name)))
                peers.append(
                    Peer(
                        "tokie",
                        lambda t, tt=tt: tt.encode(t, add_special_tokens=False).ids,
                        tt.count_tokens,
                        lambda d, tt=tt: tt.encode_batch(d, add_special_tokens=False),
                        tt.count_tokens_batch,
                        version("tokie"),
                    )
                )
            elif peer == "bpe-openai":
                import bpe_openai

                bo = bpe_openai.get_encoding(name)
                peers.append(
                    Peer(
                        "bpe-openai",
                        bo.encode_ordinary,
                        lambda t, bo=bo: len(bo.encode_ordinary(t)),
                        lambda d, bo=bo: bo.encode_ordinary_batch(d, num_threads=threads),
                        lambda d, bo=bo: [
                            len(x) for x in bo.encode_ordinary_batch(d, num_threads=threads)
                        ],
                        version("bpe-openai"),
                    )
                )
            elif peer == "rs-bpe":
                import rs_bpe

                rb = getattr(rs_bpe.openai, name)()
                opts = rs_bpe.openai.ParallelOptions(1, 16, threads)
                peers.append(
                    Peer(
                        "rs-bpe",
                        rb.encode,
                        rb.count,
                        lambda d, rb=rb, o=opts: rb.encode_batch_parallel(d, o)[0],
                        lambda d, rb=rb, o=opts: [
                            len(x) for x in rb.encode_batch_parallel(d, o)[0]
                        ],
                        version("rs-bpe"),
                    )
                )
            elif peer == "fastokens":
                import fastokens

                ft = fastokens.Tokenizer.from_tiktoken(
                    str(VOCAB / f"{name}.tiktoken"), encoding=name
                )
                peers.append(
                    Peer(
                        "fastokens",
                        lambda t, ft=ft: ft.encode_ordinary(t).ids,
                        lambda t, ft=ft: len(ft.encode_ordinary(t).ids),
                        lambda d, ft=ft: ft.encode_batch_flat(d),
                        lambda d, ft=ft: ft.encode_batch_flat(d)[1],
                        version("fastokens"),
                        lambda d, ft=ft: [e.ids for e in ft.encode_batch(d)],
                    )
                )
            elif peer == "hf-tokenizers":
                import tokenizers

                hf = tokenizers.Tokenizer.from_file(str(hf_tokenizer_json(name)))
                peers.append(
                    Peer(
                        "hf-tokenizers",
                        lambda t, hf=hf: hf.encode(t, add_special_tokens=False).ids,
                        lambda t, hf=hf: len(hf.encode(t, add_special_tokens=False).ids),
                        lambda d, hf=hf: hf.encode_batch(d, add_special_tokens=False),
                        lambda d, hf=hf: [
                            len(e.ids) for e in hf.encode_batch(d, add_special_tokens=False)
                        ],
                        version("tokenizers"),
                    )
                )
        except Exception as e:  # noqa: BLE001 (a peer not installed or unable to load this vocab)
            print(f"  (skipping {peer}: {type(e).__name__}: {e})", file=sys.stderr)
    return peers


# ---- measurement ----------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds of all threads) of one call."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def _round_times(
    names: list[str],
    rounds: list[list[str]],
    call: Callable[[str, list[str]], Callable[[], Any]],
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each named call on each round's texts; each round runs them in a
    rotating order."""
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for k, docs in enumerate(rounds):
        for n in names[k % len(names) :] + names[: k % len(names)]:
            times[n].append(timed(call(n, docs)))
    return times


def run_mode(
    peers: list[Peer],
    label: str,
    rounds: list[list[str]],
    call: Callable[[Peer, list[str]], Callable[[], Any]],
) -> None:
    by_name = {p.name: p for p in peers}
    times = _round_times(list(by_name), rounds, lambda n, d: call(by_name[n], d))
    mbs = [sum(len(d.encode()) for d in docs) / 1e6 for docs in rounds]
    wall = {n: [mb / w for mb, (w, _) in zip(mbs, t)] for n, t in times.items()}
    cpu = {n: [mb / max(c, 1e-9) for mb, (_, c) in zip(mbs, t)] for n, t in times.items()}
    ref_w, ref_c = wall["orroute"], cpu["orroute"]
    print(f"\n{label}")
    print(
        f"  {'peer':16} {'MB/s':>8} {'MB/CPU-s':>9} {'orroute/peer (wall)':>20} {'(CPU)':>7}  exact"
    )
    for p in peers:
        rw = statistics.median(a / b for a, b in zip(ref_w, wall[p.name]))
        rc = statistics.median(a / b for a, b in zip(ref_c, cpu[p.name]))
        print(
            f"  {p.name:16} {statistics.median(wall[p.name]):8.2f} "
            f"{statistics.median(cpu[p.name]):9.2f} {rw:19.2f}x {rc:6.2f}x  {p.exact}"
        )


# ---- short texts: the fixed cost of one call ------------------------------------------------

ENGINE_ROW = "orroute count_tokens"  # the short-count row of the engine's counting path
ENGINE_MODEL = {"o200k_base": "openai/gpt-4o", "cl100k_base": "openai/gpt-4"}


def short_calls(peers: list[Peer], mode: str, encoding: str) -> dict[str, Callable[[str], Any]]:
    """What each row of a short mode calls once per text, as an application would: each peer's
    count (`short-count`) or encode (`short-encode`); `short-count` adds `orroute.count_tokens(text,
    model=...)`, the Python door to the count the engine makes of each chat message."""
    calls: dict[str, Callable[[str], Any]] = {
        p.name: p.count if mode == "short-count" else p.encode for p in peers
    }
    if mode == "short-count" and encoding in ENGINE_MODEL:
        model = ENGINE_MODEL[encoding]
        calls[ENGINE_ROW] = lambda t: orroute.count_tokens(t, model=model)
    return calls


def run_short(
    calls: dict[str, Callable[[str], Any]],
    label: str,
    rounds: list[list[str]],
    instructions: dict[str, float],
) -> None:
    """Prints each row's cost per call (ns of wall and CPU time, medians over rounds), the peers'
    CPU cost over orroute's (medians of per-round ratios: above 1x orroute is cheaper) and, when
    measured, instructions per call."""

    def call(name: str, texts: list[str]) -> Callable[[], Any]:
        # Each row gets its own fresh copies of the round's texts (untimed): the first row to read
        # a str would otherwise pay for all rows its memory's cache misses and, for non-ASCII
        # text, the UTF-8 form Python keeps in the str (~20% of a short call).
        copies = [t.encode().decode() for t in texts]
        return lambda: [calls[name](x) for x in copies]

    times = _round_times(list(calls), rounds, call)
    per_call = {
        n: [(w * 1e9 / len(d), c * 1e9 / len(d)) for (w, c), d in zip(t, rounds)]
        for n, t in times.items()
    }
    ref = [c for _, c in per_call["orroute"]]
    print(f"\n{label}")
    print(f"  {'':22} {'ns/call':>8} {'CPU ns':>7} {'peer/orroute (CPU)':>19} {'instructions':>13}")
    for n, costs in per_call.items():
        ratio = statistics.median(c / r for (_, c), r in zip(costs, ref))
        instr = f"{instructions[n]:13,.0f}" if n in instructions else ""
        print(
            f"  {n:22} {statistics.median(w for w, _ in costs):8.0f} "
            f"{statistics.median(c for _, c in costs):7.0f} {ratio:18.2f}x {instr}"
        )


def callgrind_instructions(
    args: argparse.Namespace, mode: str, texts: list[str]
) -> dict[str, float]:
    """Instructions per call of each row of a short mode, counted by callgrind (repeatable to
    ~0.1% whatever the machine's load): one process per row, which calls it on `texts`' first
    half (warm-up), zeroes the counts, then calls it on the second half."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    rows = list(short_calls(make_peers(args.encoding, [], args.threads), mode, args.encoding))
    rows[1:1] = [p for p in args.peers.split(",") if p]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="orroute-short-") as d:
        Path(d, "texts.json").write_text(json.dumps(texts))
        for row in rows:
            cmd = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.{len(out)}",
                sys.executable, __file__, "--encoding", args.encoding, "--callgrind-child",
                f"{mode}:{row}:{d}/texts.json",
            ]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
            summary = Path(f"{d}/cg.{len(out)}.1").read_text(errors="replace")
            ir = next(int(x.split()[1]) for x in summary.splitlines() if x.startswith("summary:"))
            out[row] = ir / (len(texts) - len(texts) // 2)
    return out


def callgrind_child(encoding: str, spec: str) -> None:
    """Runs one row of a short mode for callgrind_instructions (`spec` = mode:row:texts.json)."""
    mode, row, path = spec.split(":", 2)
    texts = json.loads(Path(path).read_text())
    peer = [] if row.startswith("orroute") else [row]
    call = short_calls(make_peers(encoding, peer, 1), mode, encoding)[row]
    half = len(texts) // 2
    for t in texts[:half]:
        call(t)
    subprocess.run(["callgrind_control", "-z", str(os.getpid())], check=True, capture_output=True)
    for t in texts[half:]:
        call(t)
    subprocess.run(["callgrind_control", "-d", str(os.getpid())], check=True, capture_output=True)


def check_exact(peers: list[Peer], docs: list[str], oracle: Any) -> None:
    expected = [oracle.encode_ordinary(d) for d in docs]
    for p in peers:
        try:
            bad = sum(1 for d, e in zip(docs, expected) if list(p.encode(d)) != e)
            p.exact = "yes" if bad == 0 else f"NO ({bad}/{len(docs)} docs differ)"
        except Exception as e:  # noqa: BLE001 (any failure makes the peer inexact)
            p.exact = f"NO ({type(e).__name__})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoding", default="o200k_base")
    ap.add_argument("--mb", type=float, default=1.0, help="MB of distinct text per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="threads for the batch modes")
    ap.add_argument("--peers", default="tiktoken,tokie,bpe-openai,rs-bpe,fastokens,hf-tokenizers")
    ap.add_argument(
        "--modes",
        default="encode,count,string,batch-encode,batch-encode-lists,batch-count,curve",
    )
    ap.add_argument(
        "--warm",
        type=float,
        default=0.0,
        help="MB of other text every peer batch-encodes before the modes (caches warm, as in a "
        "long-running process)",
    )
    ap.add_argument(
        "--short-n", type=int, default=10_000, help="texts per round of the short modes"
    )
    ap.add_argument(
        "--instructions",
        type=int,
        default=0,
        help="short modes: also count instructions per call with callgrind over this many texts "
        "(0: not)",
    )
    ap.add_argument("--callgrind-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))  # HF tokenizers, tokie, ...
    if args.callgrind_child:
        callgrind_child(args.encoding, args.callgrind_child)
        return

    docs = documents(DATA)
    modes = args.modes.split(",")
    # encode before count, as the document modes: a peer whose count is its encode (fastokens)
    # would otherwise have made its shared ints for its encode in the count mode.
    short_modes = [m for m in ("short-encode", "short-count") if m in modes]
    n_warm = math.ceil(args.warm / args.mb)
    n_rounds = args.rounds * (len(modes) - len(short_modes) + 1) + n_warm
    pool = slices(docs, args.mb, n_rounds)
    peers = make_peers(args.encoding, [p for p in args.peers.split(",") if p], args.threads)
    check_exact(peers, pool[-1], tiktoken_oracle(args.encoding))
    cpus = os.cpu_count()
    load = os.getloadavg()[0]
    print(
        f"{args.encoding}: {len(docs)} distinct documents from {DATA}; {args.rounds} rounds of "
        f"{args.mb} MB per mode, fresh text each round; {cpus} CPUs, load average {load:.1f}"
    )
    print("  " + ", ".join(f"{p.name} {p.version}" for p in peers))

    for warm in pool[-1 - n_warm : -1]:
        for p in peers:
            p.batch_encode(warm)
    fresh = iter(pool[: -1 - n_warm])

    def take() -> list[list[str]]:
        return [next(fresh) for _ in range(args.rounds)]

    shorts = short_texts(DATA)
    for i, mode in enumerate(short_modes):
        n = args.short_n
        rounds = [shorts[(i * args.rounds + k) * n :][:n] for k in range(args.rounds)]
        if len(rounds[-1]) < n:
            raise SystemExit(f"{len(shorts)} short texts: too few for {args.rounds} x {n} per mode")
        instructions = (
            callgrind_instructions(args, mode, shorts[-args.instructions :])
            if args.instructions
            else {}
        )
        run_short(
            short_calls(peers, mode, args.encoding),
            f"{mode}: one call per text of 1..{SHORT_MAX} bytes "
            f"({sum(len(t.encode()) for t in rounds[0]) / n:.0f} bytes on average), 1 thread",
            rounds,
            instructions,
        )

    if "encode" in modes:
        run_mode(
            peers,
            "encode, one call per document, 1 thread",
            take(),
            lambda p, d: lambda: [p.encode(x) for x in d],
        )
    if "count" in modes:
        run_mode(
            peers,
            "count, one call per document, 1 thread",
            take(),
            lambda p, d: lambda: [p.count(x) for x in d],
        )
    if "defaults" in modes:
        with_defaults = [p for p in peers if p.encode_defaults is not None]
        run_mode(
            with_defaults,
            "encode(text) with tiktoken's default arguments, one call per document",
            take(),
            lambda p, d: lambda: [p.encode_defaults(x) for x in d],  # type: ignore[misc]
        )
    if "string" in modes:
        run_mode(
            peers,
            "encode, the round's text as one string",
            take(),
            lambda p, d: functools.partial(p.encode, "\n".join(d)),
        )
    if "batch-encode" in modes:
        run_mode(
            peers,
            f"batch encode, {args.threads} threads",
            take(),
            lambda p, d: lambda: p.batch_encode(d),
        )
    if "batch-encode-lists" in modes:
        run_mode(
            peers,
            f"batch encode to lists, {args.threads} threads",
            take(),
            lambda p, d: lambda: (p.batch_lists or p.batch_encode)(d),
        )
    if "batch-count" in modes:
        run_mode(
            peers,
            f"batch count, {args.threads} threads",
            take(),
            lambda p, d: lambda: p.batch_count(d),
        )
    if "curve" in modes:
        print(
            "\nencode one string vs its size (MB/CPU-s, median over distinct strings of that size)"
        )
        text = "\n".join(d for r in take() for d in r)
        sizes = [s for s in (1_000, 10_000, 100_000, 1_000_000) if 2 * s <= len(text) // 4]
        print(f"  {'peer':16}" + "".join(f"{s:>10,}B" for s in sizes))
        rows: dict[str, list[float]] = {p.name: [] for p in peers}
        region = len(text) // len(sizes)
        for i, size in enumerate(sizes):
            # each size reads its own region of fresh text, cut into distinct strings
            part = text[i * region : (i + 1) * region]
            chunks = [part[j : j + size] for j in range(0, len(part) - size + 1, size)]
            groups = [chunks[k :: args.rounds] for k in range(min(args.rounds, len(chunks)))]
            per: dict[str, list[float]] = {p.name: [] for p in peers}
            for k, group in enumerate(groups):
                mb = sum(len(c.encode()) for c in group) / 1e6
                for p in peers[k % len(peers) :] + peers[: k % len(peers)]:
                    try:
                        _, c = timed(lambda p=p, g=group: [p.encode(x) for x in g])
                    except Exception:  # noqa: BLE001 (bpe-openai refuses long inputs)
                        per[p.name].append(float("nan"))
                        continue
                    per[p.name].append(mb / max(c, 1e-9))
            for p in peers:
                rows[p.name].append(statistics.median(per[p.name]))
        for p in peers:
            print(f"  {p.name:16}" + "".join(f"{v:11.2f}" for v in rows[p.name]))
        print("  (nan: the peer refused the input)")

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
    )
    wall, cpu = map(float, load.stdout.split())
    print(
        f"\ncold load of {args.encoding} in a fresh process: {wall:.1f} ms wall, {cpu:.1f} ms CPU"
    )


if __name__ == "__main__":
    main()
