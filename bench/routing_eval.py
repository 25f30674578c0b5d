#!/usr/bin/env python3
"""Held-out evaluation of orroute's learned router on the bundled RouterBench and RouteLLM-MMLU
outcome tables: accuracy-cost curves, cost to match the best single model, AIQ, PGR/APGR/CPT, and
the baselines (single models, random mixes, task-type-only router, random router, oracle); the
verify-then-escalate cascade on the shared GSM8K development set (``--datasets gsm8k``); what k
agreeing cheap samples buy (``--datasets selfconsistency``, shared RouterDC GSM8K table); and
whether requested cost shares, chosen on training folds, hold on held-out folds; MT-Bench
(``--datasets mtbench``, RouteLLM's judgements under bench/data/mt_bench); RouterBench cascades with
a sandboxed code check on MBPP (``--datasets routerbench-verified --mbpp sanitized-mbpp.json``);
the in-sample ceilings of the ingredients the cascades could add (``--datasets bounds``, ~10 min).

Usage: PYTHONPATH=python python3 bench/routing_eval.py [--folds 5] [--seed 0] [--out bench/out/routing]
       [--datasets routerbench,mmlu,gsm8k,selfconsistency,mtbench,routerbench-verified,bounds]
       [--mbpp PATH] [--mt-bench PATH] [--no-cost-share] [--option key=value ...]
"""

from __future__ import annotations

import argparse
import ast

from orroute.research import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/routing", help="directory for PNG plots ('' = none)")
    ap.add_argument("--datasets", default="routerbench,mmlu,gsm8k,selfconsistency,mtbench")
    ap.add_argument("--mbpp", default=None,
                    help="sanitized MBPP JSON (google-research/mbpp, CC-BY-4.0) for routerbench-verified"
                         " (default: <shared data>/routing/mbpp/sanitized-mbpp.json)")
    ap.add_argument("--mt-bench", default=None,
                    help="RouteLLM evals/mt_bench directory or compact table (default: bundled)")
    ap.add_argument("--no-cost-share", action="store_true",
                    help="skip the cost-share transfer check (nested CV)")
    ap.add_argument("--option", action="append", default=[], help="router option key=value")
    args = ap.parse_args()
    options = {}
    for item in args.option:
        key, _, value = item.partition("=")
        options[key] = ast.literal_eval(value)
    evaluate(datasets=tuple(args.datasets.split(",")), folds=args.folds, seed=args.seed,
             out_dir=args.out or None, cost_share=not args.no_cost_share,
             paths={k: v for k, v in (("mbpp", args.mbpp), ("mtbench", args.mt_bench)) if v},
             **options)


if __name__ == "__main__":
    main()
