"""Time to a usable client and the memory of the catalog and selector, each in a fresh process,
median of N runs, next to installed peers measured in the same run.

  1. `import orroute` (python -X importtime, cumulative), and peers (openai, tiktoken, litellm).
  2. Time to a usable client: from before `import orroute` to a constructed `OpenRouter`,
     `AsyncOpenRouter`, and `AIModelManager` (no network: construction only), wall and CPU ms;
     peer: `openai.OpenAI`. Target (issue #21): <= 30 ms to a usable client.
  3. Resident memory added by loading the bundled catalog (`Catalog.bundled()`) and building a
     `ModelSelector` over it (RSS deltas from /proc/self/status, after `import orroute._core`, so
     the extension's own pages are not counted). Target: catalog + selector <= 5 MB.

Children run with bytecode caches, as an installed wheel does: PYTHONDONTWRITEBYTECODE is dropped
and PYTHONPYCACHEPREFIX points at a temporary directory (warmed by one untimed run), so the figures
are not the cost of compiling every module from source (which a no-bytecode environment would add,
to orroute and to the peers alike) and no __pycache__ lands in the source tree.

    PYTHONPATH=python python3 bench/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_CACHE = tempfile.mkdtemp(prefix="orroute-bench-pycache-")


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=_CACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPATH", str(HERE.parent / "python"))
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    return env


def import_us(module: str) -> int:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, check=True, env=child_env(),
    ).stderr
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no importtime line for {module}")


# Child programs print one JSON line: wall and CPU ms from before the first import to a usable object.
_TIMED = """
import json, time, resource
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
{body}
print(json.dumps({{"wall": (time.perf_counter() - t0) * 1e3, "cpu": (cpu() - c0) * 1e3}}))
"""

CLIENTS = {
    "orroute.OpenRouter": "import orroute\nc = orroute.OpenRouter(api_key='sk-or-v1-bench')",
    "orroute.AsyncOpenRouter": "import orroute\nc = orroute.AsyncOpenRouter(api_key='sk-or-v1-bench')",
    "orroute.AIModelManager": "import orroute\nm = orroute.AIModelManager(api_key='sk-or-v1-bench')",
    "openai.OpenAI (peer)": "import openai\nc = openai.OpenAI(api_key='sk-bench')",
}

_MEMORY = """
import json
from pathlib import Path
def rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
rb = rss_kb()
import orroute, orroute._core, orroute.catalog, orroute.selector
r0 = rss_kb()
cat = orroute.Catalog.bundled()
r1 = rss_kb()
sel = orroute.ModelSelector(cat)
sel.select_model("general", 500)
r2 = rss_kb()
print(json.dumps({"import_kb": r0 - rb, "catalog_kb": r1 - r0, "selector_kb": r2 - r1,
                  "models": len(cat)}))
"""


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(), check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    for module in ("orroute", "openai", "tiktoken", "litellm"):  # fill the bytecode cache
        if importlib.util.find_spec(module) is not None:
            import_us(module)
    for body in CLIENTS.values():
        if "openai" not in body or importlib.util.find_spec("openai") is not None:
            child(_TIMED.format(body=body))
    mine = statistics.median(import_us("orroute") for _ in range(args.runs)) / 1000
    print(f"1. import orroute      {mine:8.1f} ms  (median of {args.runs}; goal < 50 ms)")
    for peer in ("openai", "tiktoken", "litellm"):
        if importlib.util.find_spec(peer) is None:
            print(f"   import {peer:<12} (not installed)")
            continue
        t = statistics.median(import_us(peer) for _ in range(max(3, args.runs // 3))) / 1000
        print(f"   import {peer:<12} {t:8.1f} ms  ({t / mine:.1f}x orroute)")

    print(f"\n2. Time to a usable client (fresh process, median of {args.runs}; target <= 30 ms)")
    print(f"   {'':<26}{'wall ms':>9}{'CPU ms':>9}")
    for name, body in CLIENTS.items():
        if name.startswith("openai") and importlib.util.find_spec("openai") is None:
            continue
        runs = [child(_TIMED.format(body=body)) for _ in range(args.runs)]
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        print(f"   {name:<26}{wall:>9.1f}{cpu:>9.1f}")

    runs = [child(_MEMORY) for _ in range(max(3, args.runs // 3))]
    cat = statistics.median(r["catalog_kb"] for r in runs) / 1024
    sel = statistics.median(r["selector_kb"] for r in runs) / 1024
    print(f"\n3. Resident memory ({runs[0]['models']} models; target catalog + selector <= 5 MB)")
    imp = statistics.median(r["import_kb"] for r in runs) / 1024
    print(f"   (import orroute._core      {imp:6.1f} MB: the extension's pages, not counted below)")
    print(f"   Catalog.bundled()          {cat:6.1f} MB")
    print(f"   ModelSelector(catalog)     {sel:6.1f} MB")
    print(f"   catalog + selector         {cat + sel:6.1f} MB")


if __name__ == "__main__":
    main()
