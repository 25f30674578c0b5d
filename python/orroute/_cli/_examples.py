"""Examples shown at the end of every command's ``--help`` (one table, so that every command has
them, including those defined elsewhere such as ``serve`` and ``keys``)."""

from __future__ import annotations

import click

EXAMPLES: dict[str, list[str]] = {
    "": ["orroute demo", "orroute models list --capability tools --sort price --limit 10",
         "orroute --ledger team.sqlite3 analytics cost --period week --by user"],
    "config": ["orroute config show", "orroute config init --path ./orroute.toml"],
    "config show": ["orroute config show", "orroute config show --json | jq .settings"],
    "config init": ["orroute config init", "orroute config init --path ./orroute.toml --force"],
    "models": ["orroute models list --free", "orroute models performance --period week"],
    "models list": ["orroute models list --capability tools --max-price 1 --sort price",
                    "orroute models list --provider anthropic --json",
                    "orroute models list | cut -f1   # piped: tab-separated"],
    "models show": ["orroute models show openai/gpt-4o", "orroute models show openai/gpt-4o --json"],
    "models test": ["orroute models test openai/gpt-4o-mini",
                    "orroute models test openai/gpt-4o-mini --prompt 'Say hi' --json"],
    "models benchmark": ["orroute models benchmark openai/gpt-4o-mini anthropic/claude-3-haiku",
                         "orroute models benchmark --runs 5 --json"],
    "models recommend": ["orroute models recommend --task coding --budget 0.01",
                         "orroute models recommend --task code-analysis --strategy quality_first"],
    "models performance": ["orroute models performance",
                           "orroute models performance --period week --task coding --json"],
    "models rate": ["orroute models rate openai/gpt-4o-mini 0.8 --task coding",
                    "orroute models rate anthropic/claude-3-haiku 0 --result-id gen-123"],
    "ask": ["orroute ask 'Explain HTTP 429' --show-models",
            "echo 'Summarize: ...' | orroute ask - --type bulk_processing --budget 0.001"],
    "analytics": ["orroute analytics cost --by provider", "orroute analytics forecast"],
    "analytics cost": ["orroute analytics cost --period week --by model",
                       "orroute analytics cost --period all --by day",
                       "orroute analytics cost --by user --bucket day --json",
                       "orroute analytics cost --by tag:team"],
    "analytics forecast": ["orroute analytics forecast",
                           "orroute analytics forecast --budget project:demo/daily --level 0.8"],
    "analytics savings": ["orroute analytics savings --baseline openai/gpt-4o",
                          "orroute analytics savings --baseline openai/gpt-4o --period all --json"],
    "analytics trends": ["orroute analytics trends",
                         "orroute analytics trends --bucket hour --period today"],
    "analytics estimates": ["orroute analytics estimates",
                            "orroute analytics estimates --by task_type --period all"],
    "analytics alternatives": ["orroute analytics alternatives --period all",
                               "orroute analytics alternatives --tolerance 0.05 --json"],
    "analytics feedback": ["orroute analytics feedback", "orroute analytics feedback --json"],
    "budget": ["orroute budget set 5 --period daily", "orroute budget status"],
    "budget set": ["orroute budget set 5 --period daily --project default",
                   "orroute budget set 20 --period monthly --tag user=alice --policy downgrade"],
    "budget status": ["orroute budget status", "orroute budget status --json"],
    "budget remove": ["orroute budget remove --period daily --project default"],
    "budget cutoff": ["orroute budget cutoff --reason 'runaway agent'"],
    "budget resume": ["orroute budget resume"],
    "simulate": ["orroute simulate workload.jsonl",
                 "orroute simulate workload.jsonl --strategies cost_optimized,balanced --json"],
    "credits": ["orroute credits", "orroute credits --json"],
    "health": ["orroute health", "orroute health --probe"],
    "sim": ["orroute sim --port 8080",
            "orroute sim --realistic --fault 'openai/gpt-4o=server_error:503@2'"],
    "demo": ["orroute demo", "orroute demo --tasks 10 --speed 1 --json"],
    "serve": ["orroute serve", "orroute serve --port 8080 --strategy cost_optimized"],
    "keys": ["orroute keys create --name alice", "orroute keys list"],
    "keys create": ["orroute keys create --name alice"],
    "keys list": ["orroute keys list"],
    "keys revoke": ["orroute keys revoke KEY_ID"],
    "routing": ["orroute routing eval --folds 3", "orroute routing fit table.csv -o router.bin"],
    "routing eval": ["orroute routing eval", "orroute routing eval --datasets mmlu --json"],
    "cache": ["orroute cache stats", "orroute cache clear --yes"],
    "cache stats": ["orroute cache stats", "orroute cache stats --json",
                    "orroute cache stats --location redis://cache-host:6379/0"],
    "cache clear": ["orroute cache clear", "orroute cache clear --yes"],
    "routing fit": ["orroute routing fit outcomes.csv.gz -o router.bin",
                    "orroute routing fit outcomes.csv -o router.bin --option epochs=5"],
}


def _epilog(lines: list[str]) -> str:
    # "\b" keeps click from re-wrapping the lines
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def add_examples(cmd: click.Command, path: str) -> None:
    """Appends the examples of ``path`` (e.g. "models list") to ``cmd``'s help, and those of its
    subcommands (recursively, for groups that are not lazy)."""
    lines = EXAMPLES.get(path)
    if lines and "Examples:" not in (cmd.epilog or ""):
        cmd.epilog = f"{cmd.epilog}\n\n{_epilog(lines)}" if cmd.epilog else _epilog(lines)
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            add_examples(sub, f"{path} {name}".strip())
