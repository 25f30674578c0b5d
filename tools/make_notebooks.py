"""Writes notebooks/*.ipynb from the cell sources below (outputs cleared).

    python3 tools/make_notebooks.py

The notebooks are the product; this script only keeps their source reviewable as plain Python.
Edit the cells here and re-run it, or edit the notebooks in Jupyter and clear their outputs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1] / "notebooks"

ROUTING_QUALITY = [
    ("md", """\
# Routing quality: the learned router against the baselines

`orroute.routing.LearnedRouter` predicts, from the prompt alone, each model's chance of answering
well, and routes on quality per dollar: it picks the model maximising
`P(success) - cost_weight x expected cost`. Sweeping `cost_weight` traces an accuracy-cost curve.

This notebook trains it on part of RouterBench's outcome table (11 models; ARC-Challenge, MBPP,
Winogrande, with the cost of every answer, bundled with orroute), and compares it **on held-out
prompts** with:

* every single model (one point each),
* random mixes of two models (the straight line between their points),
* a task-type-only router (knows the benchmark the prompt came from, nothing else),
* the oracle (the cheapest model that got each prompt right): an upper bound no router reaches.

Runtime: a few seconds. Set `ORROUTE_NB_SAMPLE` to use fewer prompts."""),
    ("code", """\
import os
import random

import matplotlib.pyplot as plt
import numpy as np

from orroute.routing import LearnedRouter, load_outcomes

data = load_outcomes("routerbench")
sample = int(os.environ.get("ORROUTE_NB_SAMPLE", "0")) or len(data.prompts)
rng = random.Random(0)
index = list(range(len(data.prompts)))
rng.shuffle(index)
index = index[:sample]
cut = int(len(index) * 0.7)
train, test = index[:cut], index[cut:]
print(f"{len(data.prompts)} prompts x {len(data.models)} models; "
      f"train {len(train)}, held-out test {len(test)}")"""),
    ("code", """\
def column(matrix, rows, j):
    return [float(matrix[i, j]) for i in rows]

router = LearnedRouter.fit(
    [data.prompts[i] for i in train],
    scores={m: column(data.scores, train, j) for j, m in enumerate(data.models)},
    costs={m: column(data.costs, train, j) for j, m in enumerate(data.models)},
)
router"""),
    ("code", """\
test_prompts = [data.prompts[i] for i in test]
S = data.scores[test]          # held-out scores  [prompt, model]
C = data.costs[test]           # held-out costs   [prompt, model]
col = {m: j for j, m in enumerate(data.models)}
rows = np.arange(len(test))

# the learned router over a sweep of cost weights
weights = [0.0, *np.geomspace(1, 30000, 25)]
curve = []
for w in weights:
    picks = np.array([col[router.route(p, w)] for p in test_prompts])
    curve.append((C[rows, picks].mean(), S[rows, picks].mean(), w))

# single models
singles = {m: (C[:, j].mean(), S[:, j].mean()) for m, j in col.items()}
best_model = max(singles, key=lambda m: singles[m][1])

# oracle: the cheapest model that answered correctly (else the cheapest model)
ok = S >= 0.5
oracle_cost = np.where(ok, C, np.inf).min(axis=1)
oracle_cost = np.where(np.isinf(oracle_cost), C.min(axis=1), oracle_cost)
oracle = (oracle_cost.mean(), ok.any(axis=1).mean())

# task-type-only router: per benchmark, the model that maximises train accuracy - w * cost
tasks_train = np.array([data.tasks[i] for i in train])
tasks_test = np.array([data.tasks[i] for i in test])
S_tr, C_tr = data.scores[train], data.costs[train]
task_curve = []
for w in weights:
    picks = np.empty(len(test), dtype=int)
    for t in set(tasks_test):
        m = tasks_train == t
        picks[tasks_test == t] = int(np.argmax(S_tr[m].mean(0) - w * C_tr[m].mean(0)))
    task_curve.append((C[rows, picks].mean(), S[rows, picks].mean()))

print(f"best single model: {best_model}: accuracy {singles[best_model][1]:.3f} "
      f"at ${singles[best_model][0]:.6f}/prompt")
print(f"oracle: accuracy {oracle[1]:.3f} at ${oracle[0]:.6f}/prompt")"""),
    ("code", """\
fig, ax = plt.subplots(figsize=(8, 5))
for m, (c, a) in singles.items():
    ax.scatter(c, a, color="grey", s=18)
    ax.annotate(m.split("/")[-1][:22], (c, a), fontsize=7, alpha=0.7)
ax.plot([p[0] for p in task_curve], [p[1] for p in task_curve], "s--", color="tab:orange",
        label="task-type-only router")
ax.plot([p[0] for p in curve], [p[1] for p in curve], "o-", color="tab:blue",
        label="LearnedRouter (held-out)")
ax.scatter(*oracle, marker="*", s=150, color="tab:green", label="oracle")
ax.set_xscale("log")
ax.set_xlabel("mean cost per prompt (USD, log scale)")
ax.set_ylabel("accuracy on held-out prompts")
ax.set_title("RouterBench: accuracy-cost curves")
ax.legend(loc="lower right")
plt.show()"""),
    ("md", """\
## How much does the router save?

The cheapest point of the router's curve that reaches the best single model's accuracy, as a share
of that model's cost (lower is better; the goal is at most 50%)."""),
    ("code", """\
target_cost, target_acc = singles[best_model]
reaching = [c for c, a, _ in curve if a >= target_acc]
if reaching:
    share = min(reaching) / target_cost
    print(f"matches {best_model} ({target_acc:.3f}) at {share:.0%} of its cost")
else:
    best = max(curve, key=lambda p: p[1])
    print(f"best router accuracy {best[1]:.3f} (w={best[2]}) vs {target_acc:.3f}: "
          f"{best[1] - target_acc:+.3f} at {best[0] / target_cost:.0%} of the cost")
task_reaching = [c for c, a in task_curve if a >= target_acc]
if task_reaching:
    print(f"task-type-only router: {min(task_reaching) / target_cost:.0%} of the cost")
for c, a, w in curve[::3]:
    print(f"cost_weight {w:>9.1f}: accuracy {a:.3f}, ${c:.6f}/prompt")"""),
]

COST_ANALYSIS: list[tuple[str, str]] = [
    ("code", """\
from decimal import Decimal

import matplotlib.pyplot as plt
import pandas as pd

import orroute
from orroute.config import load_settings

settings = load_settings()
demo_ledger = settings.home / "demo.sqlite3"
if settings.sources["ledger"] == "default" and demo_ledger.exists():
    ledger = demo_ledger
else:
    ledger = settings.ledger_path
tracker = orroute.CostTracker(ledger)
df = tracker.to_dataframe()
print(f"{ledger}: {len(df)} calls, {df['model'].nunique()} models, "
      f"exact total ${tracker.total_cost()}")
df[["time", "project", "task_type", "model", "prompt_tokens", "completion_tokens", "cost",
    "latency_s", "ttft_s", "outcome"]].tail()"""),
    ("md", "## Where the money goes: by model, project and day"),
    ("code", """\
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
by_model = df.groupby("model")["cost_usd"].sum().sort_values()
by_model.plot.barh(ax=axes[0], title="spend by model (USD)")
df.groupby("project")["cost_usd"].sum().sort_values().plot.barh(ax=axes[1],
                                                                title="spend by project (USD)")
per_day = df.set_index("time")["cost_usd"].resample("D").sum()
per_day.index = per_day.index.strftime("%Y-%m-%d")
per_day.plot.bar(ax=axes[2], title="spend per day (USD)", rot=0)
plt.tight_layout()
plt.show()

# the exact figures, from the ledger's own report (Decimal sums, no float rounding)
pd.DataFrame([{"model": r.key, "calls": r.calls, "cost": r.cost,
               "mean latency (s)": r.mean_latency_s}
              for r in tracker.report("total", "model")]).sort_values("cost", ascending=False)"""),
    ("md", "## Cost per task type"),
    ("code", """\
per_type = df.groupby("task_type").agg(
    calls=("cost_usd", "size"), total_usd=("cost_usd", "sum"), mean_usd=("cost_usd", "mean"),
    tokens_out=("completion_tokens", "mean"))
per_type["share"] = per_type["total_usd"] / per_type["total_usd"].sum()
ax = per_type["mean_usd"].sort_values().plot.barh(title="mean cost per task (USD)",
                                                   figsize=(7, 3))
plt.show()
per_type.sort_values("total_usd", ascending=False)"""),
    ("md", "## Latency and time to first token"),
    ("code", """\
ok = df[df["outcome"] == "ok"]
top = ok["model"].value_counts().index[:6]
fig, axes = plt.subplots(1, 2, figsize=(14, 4))
ok[ok["model"].isin(top)].boxplot(column="latency_s", by="model", ax=axes[0], rot=30)
axes[0].set_title("latency (s)")
ok[ok["model"].isin(top)].boxplot(column="ttft_s", by="model", ax=axes[1], rot=30)
axes[1].set_title("time to first token (s)")
fig.suptitle("")
plt.tight_layout()
plt.show()
ok.groupby("model")[["latency_s", "ttft_s"]].describe(percentiles=[0.5, 0.95]).round(3)"""),
    ("md", "## Budget burn-down"),
    ("code", """\
budgets = tracker.budgets()
for b in budgets:
    print(f"{b.name}: limit ${b.limit}, spent ${b.spent}, remaining ${b.remaining} "
          f"({b.fraction_used:.0%} used)")
fig, ax = plt.subplots(figsize=(9, 4))
for b in budgets[-3:]:  # the most recent budgets (each demo run has its own)
    scoped = df[df["project"] == b.scope.removeprefix("project:")] \
        if b.scope.startswith("project:") else df
    spent = scoped.sort_values("time").set_index("time")["cost_usd"].cumsum()
    line = ax.step(spent.index, spent.values, where="post", label=f"spent, {b.name}")[0]
    ax.axhline(float(b.limit), linestyle="--", color=line.get_color(), label=f"limit ${b.limit}")
    for pct in b.thresholds:
        ax.axhline(float(b.limit) * pct / 100, linestyle=":", color="grey", linewidth=0.8)
ax.set_ylabel("USD")
ax.set_title("budget burn-down")
ax.legend()
plt.show()
pd.DataFrame([{"budget": a.budget, "threshold %": a.threshold_pct, "spent": a.spent,
               "limit": a.limit} for a in tracker.alerts])"""),
    ("md", """\
## Estimates against actual costs

Before each call the router reserves an estimate (prompt tokens x prompt price + expected output x
completion price); afterwards the ledger books the actual cost. Points above the line were
over-estimated (the reservation held more than needed), below it under-estimated."""),
    ("code", """\
est = df.dropna(subset=["estimated_cost_usd"])
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(est["cost_usd"], est["estimated_cost_usd"], s=12)
hi = max(est["cost_usd"].max(), est["estimated_cost_usd"].max()) if len(est) else 1
ax.plot([0, hi], [0, hi], color="grey", linewidth=0.8)
ax.set_xscale("symlog", linthresh=1e-6)
ax.set_yscale("symlog", linthresh=1e-6)
ax.set_xlabel("actual cost (USD)")
ax.set_ylabel("estimated cost (USD)")
plt.show()
pd.DataFrame([{"model": r.key, "calls": r.calls, "estimated": r.estimated, "actual": r.cost,
               "estimate error": r.estimate_error}
              for r in tracker.report("total", "model") if r.estimate_error is not None])"""),
    ("md", """\
## What would other strategies have cost?

`orroute.simulate` replays a workload offline (no API call) under each selection strategy: the
model each would pick and its estimated cost. Here, the demo's own workload."""),
    ("code", """\
from orroute.demo import workload

strategies = ["cost_optimized", "balanced", "performance", "quality_first"]
sim = orroute.simulate(workload(), strategies=strategies)
sim"""),
]

HEADER = """\
# Cost analysis of the usage ledger

Every call made through orroute (the router, the gateway, the demo) is a row in the usage ledger,
with exact costs. This notebook loads it into pandas and answers the usual questions: where the money
goes (by model, project, day and task type), how fast the models were (latency and time to first
token), how the budget burned down, how good the cost estimates were, and what the same workload
would have cost under other selection strategies.

It reads the ledger named by `ORROUTE_LEDGER`, else the demo's (`$ORROUTE_HOME/demo.sqlite3`, written
by `orroute demo`), else the default ledger. Run `orroute demo` first to have something to look at."""


def _cells(spec: list[tuple[str, str]]) -> list[nbformat.NotebookNode]:
    return [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
            for kind, src in spec]


def write(name: str, spec: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = _cells(spec)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name.split('.')[0].replace('_', '-')}-{i}"
    ROOT.mkdir(exist_ok=True)
    nbformat.write(nb, ROOT / name)


if __name__ == "__main__":
    write("routing_quality.ipynb", ROUTING_QUALITY)
    if COST_ANALYSIS:
        write("cost_analysis.ipynb", [("md", HEADER), *COST_ANALYSIS])
