"""How long the analyst's views take on a ledger of N calls (SQLite file), and how big piped
`orroute models list` output is.

Fills a fresh ledger with N calls spread over 30 days (6 models, 3 projects, 20 users, 5 task
types, a few errors and fallbacks), 200 feedback scores and a monthly budget, then times each
`orroute.analytics` function (best of 3, wall clock) and the matching CLI command end to end in a
subprocess (`--json`, one run). Prints one line per figure.

    PYTHONPATH=python python3 bench/analytics.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orroute
from orroute import analytics as A

MODELS = ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-3-haiku",
          "meta-llama/llama-3.1-8b-instruct", "google/gemini-2.5-pro", "mistralai/mistral-nemo"]
TYPES = ["general", "coding", "reasoning", "bulk_processing", "extraction"]


def fill(path: Path, calls: int, now: datetime) -> orroute.CostTracker:
    rng = random.Random(0)
    t = orroute.CostTracker(path, clock=lambda: now)
    t.set_budget("500", period="monthly")
    catalog = orroute.Catalog.bundled()
    for _ in range(calls):
        model = rng.choice(MODELS)
        pt, ct = rng.randint(100, 4000), rng.randint(10, 800)
        ok = rng.random() > 0.03
        t.record_call(
            time=now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
            cost=catalog.cost(model, prompt_tokens=pt, completion_tokens=ct) if ok else 0,
            model=model, provider=model.split("/")[0], project=f"p{rng.randint(1, 3)}",
            tags={"user": f"u{rng.randint(1, 20)}"}, task_type=rng.choice(TYPES),
            prompt_tokens=pt, completion_tokens=ct if ok else 0, latency=rng.uniform(0.2, 5),
            ttft=rng.uniform(0.05, 0.5), outcome="ok" if ok else "error",
            error_class="" if ok else "RateLimitError", attempts=1 + (rng.random() < 0.05))
    for _ in range(200):
        A.record_feedback(t, rng.choice(MODELS), rng.random(), task_type=rng.choice(TYPES))
    return t


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    args = ap.parse_args()
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite3"
        start = time.perf_counter()
        t = fill(path, args.calls, now)
        print(f"filled {args.calls} calls in {time.perf_counter() - start:.1f} s ({path})")
        figures = {
            "spend by model (ledger report)": lambda: A.spend(t, by="model"),
            "spend by user per day": lambda: A.spend(t, by="user", bucket="day"),
            "trends per day": lambda: A.trends(t, "day"),
            "estimates by model": lambda: A.estimates(t, "model"),
            "performance (p50/p95/p99, quality)": lambda: A.performance(t),
            "forecast (monthly budget)": lambda: A.forecast(t, now=now),
            "savings against openai/gpt-4o": lambda: A.savings(t, "openai/gpt-4o"),
            "cheaper alternatives": lambda: A.cheaper_alternatives(t),
            "feedback summary": lambda: A.feedback(t),
        }
        for name, fn in figures.items():
            print(f"{name:40s} {best_of(fn) * 1000:9.1f} ms")
        env = {**os.environ, "ORROUTE_OUTPUT": "tsv"}
        cli = [sys.executable, "-m", "orroute", "--ledger", str(path)]
        for cmd in (["analytics", "cost", "--period", "all", "--by", "day", "--json"],
                    ["analytics", "forecast", "--json"], ["models", "performance", "--json"]):
            start = time.perf_counter()
            subprocess.run(cli + cmd, check=True, capture_output=True, env=env)
            print(f"{'orroute ' + ' '.join(cmd):60s} {time.perf_counter() - start:6.2f} s")
    for mode in ("tsv", "table"):
        out = subprocess.run([sys.executable, "-m", "orroute", "models", "list"], check=True,
                             capture_output=True, env={**os.environ, "ORROUTE_OUTPUT": mode}).stdout
        print(f"orroute models list, {mode:5s}: {len(out) / 1024:6.1f} KB")


if __name__ == "__main__":
    main()
