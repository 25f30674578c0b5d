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
weights = [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000]
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
for c, a, w in curve:
    print(f"cost_weight {w:>7}: accuracy {a:.3f}, ${c:.6f}/prompt")"""),
]

COST_ANALYSIS: list[tuple[str, str]] = []  # filled in below

HEADER = """\
# Cost analysis of the usage ledger

Every call made through orroute (the router, the gateway, the demo) is a row in the usage ledger,
with exact costs. This notebook loads it into pandas and answers the usual questions: where the money
goes (by model, project, day and task type), how fast the models were (latency and time to first
token), how the budget burned down, how good the cost estimates were, and what the same workload
would have cost under other selection strategies.

It reads the ledger named by `ORROUTE_LEDGER`, else the demo's (`$ORROUTE_HOME/demo.sqlite`, written
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
