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
# Routing quality: which of my calls could have gone to a cheaper model?

This notebook reads **your** usage ledger (every call made through orroute, with its exact cost)
and the quality feedback kept in it (`AIModelManager.record_feedback`, `orroute models rate`),
and asks, for each task type and model you used: is there a model of at least the same quality
for that task type that would have answered the same tokens for less?

Quality is the router's own view: the selector's priors per task type, with your feedback folded
in exactly as the router does when it ranks (so this is what the router would pick next time).
Costs are the same token counts repriced exactly on the other model.

It reads the ledger named by `ORROUTE_LEDGER`, else the demo's (`$ORROUTE_HOME/demo.sqlite3`),
else the default ledger. An appendix shows the learned router on RouterBench."""),
    ("code", """\
import os

import matplotlib.pyplot as plt
import pandas as pd

import orroute
from orroute import analytics
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


def short(label, width=28):
    label = label or "(none)"
    return label if len(label) <= width else label[: width - 1] + "\u2026"
"""),
    ("md", "## Your feedback"),
    ("code", """\
fb = pd.DataFrame([{"model": r.model, "task type": r.task_type, "scores": r.count,
                    "mean": round(r.mean, 3)} for r in analytics.feedback(tracker)])
if fb.empty:
    print("no feedback recorded yet: qualities below are the selector's priors")
fb"""),
    ("md", """\
## Cheaper models of the same quality

`tolerance` accepts models slightly below the one you used (0 = at least as good)."""),
    ("code", """\
tolerance = float(os.environ.get("ORROUTE_NB_TOLERANCE", "0"))
alts = analytics.cheaper_alternatives(tracker, tolerance=tolerance)
table = pd.DataFrame([{
    "task type": a.task_type, "model": a.model, "calls": a.calls, "cost": a.cost,
    "quality": round(a.quality, 3), "instead": a.alternative,
    "its quality": round(a.alternative_quality, 3), "would cost": a.alternative_cost,
    "saving": a.saving, "saving %": round(100 * a.saving_share, 1)} for a in alts])
total = sum((a.cost for a in alts), 0)
saved = sum((a.saving for a in alts), 0)
print(f"{sum(a.calls for a in alts)} calls could have cost ${total - saved} instead of ${total} "
      f"(saving ${saved})")
table"""),
    ("code", """\
if alts:
    top = alts[:10]
    labels = [f"{a.task_type}: {short(a.model.split('/')[-1], 24)} -> "
              f"{short(a.alternative.split('/')[-1], 24)}" for a in top]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(top) + 1.2))
    ax.barh(range(len(top)), [float(a.cost) for a in top], color="lightgrey", label="actual")
    ax.barh(range(len(top)), [float(a.alternative_cost) for a in top], color="tab:green",
            label="on the cheaper model")
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USD")
    ax.set_title("the biggest savings")
    ax.legend(loc="lower right")
    plt.tight_layout()
    plt.show()"""),
    ("md", """\
## Quality against cost for your busiest task type

Each point is a model the selector considers for the task type, placed by its quality (with your
feedback) and by what your calls of that type would have cost on it."""),
    ("code", """\
ok = df[df["outcome"] == "ok"]
if len(ok):
    busiest = ok["task_type"].replace("", "general").value_counts().index[0]
    calls = [r for r in tracker.usage_history() if r.outcome == "ok"
             and (r.task_type or "general") == busiest]
    feedback = {r.model: r.mean for r in analytics.feedback(tracker) if r.task_type == busiest}
    ranked = orroute.ModelSelector().rank(busiest, int(ok["prompt_tokens"].median()),
                                         predicted_quality=feedback, explain=False, limit=25)
    catalog = orroute.Catalog.bundled()
    points = []
    for c in ranked:
        try:
            cost = sum(catalog.cost(c.model, prompt_tokens=r.prompt_tokens,
                                    completion_tokens=r.completion_tokens) for r in calls)
        except orroute.OrRouteError:
            continue
        points.append((float(cost), c.quality, c.model))
    used = set(ok[ok["task_type"].replace("", "general") == busiest]["model"])
    fig, ax = plt.subplots(figsize=(8, 5))
    others = [p for p in points if p[2] not in used]
    ax.scatter([p[0] for p in others], [p[1] for p in others], s=15, color="tab:blue",
               label="other candidates")
    markers = "o^sDvP*X"
    for i, (cost, q, model) in enumerate(p for p in points if p[2] in used):
        # a legend entry per model used: names never overlap each other or the points
        ax.scatter(cost, q, s=60, marker=markers[i % len(markers)], color="tab:red",
                   label=short(model, 40))
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel(f"cost of your {len(calls)} {busiest} calls on the model (USD, log scale)")
    ax.set_ylabel("quality for the task type")
    ax.set_title(f"{busiest}: the models you used (red) among the candidates")
    plt.tight_layout()
    plt.show()"""),
    ("md", """\
## Your cascades: verify, then escalate

`manager.execute_cascade(task, VerifiedCascade([cheap, strong], verifiers))` (and the gateway's
`orroute/cascade`) asks the cheap model first, checks its answer and calls the next stage only
when a check fails; every stage's calls are in the ledger under the task's id, tagged with the
stage. Here: how often the cheap answer stood, what the runs cost against the final model alone
(its own calls when a run reached it, the cheap first answer repriced on it otherwise), and your
feedback on both models."""),
    ("code", """\
runs = analytics.cascades(tracker)
summary = analytics.cascade_summary(tracker)
if not runs:
    print("no cascade runs in this ledger yet: run manager.execute_cascade(...) or send "
          "model='orroute/cascade' to the gateway")
pd.DataFrame([{
    "cheap stage": s.first, "final stage": s.final, "runs": s.runs,
    "escalated %": round(100 * s.escalation_rate, 1), "cost": s.cost,
    "final model alone": s.final_only_cost,
    "cost share": None if s.cost_share is None else round(s.cost_share, 3),
    "feedback, cheap": None if s.quality_first is None else round(s.quality_first, 3),
    "feedback, final": None if s.quality_final is None else round(s.quality_final, 3)}
    for s in summary])"""),
    ("code", """\
if runs:
    by_type = pd.DataFrame([{"task type": r.task_type, "escalated": r.escalated,
                             "cost": float(r.cost)} for r in runs])
    per_type = by_type.groupby("task type").agg(runs=("escalated", "size"),
                                                 escalated=("escalated", "mean"),
                                                 cost=("cost", "sum"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
    axes[0].barh(per_type.index, per_type["escalated"] * 100)
    axes[0].set_xlabel("runs escalated (%)")
    axes[0].set_title("escalations by task type")
    priced = [s for s in summary if s.final_only_cost is not None][:6]
    labels = [f"{short(s.first.split('/')[-1], 20)} -> {short(s.final.split('/')[-1], 20)}"
              for s in priced]
    axes[1].barh([i + 0.2 for i in range(len(priced))],
                 [float(s.final_only_cost) for s in priced], height=0.4, color="lightgrey",
                 label="final model alone")
    axes[1].barh([i - 0.2 for i in range(len(priced))], [float(s.cost) for s in priced],
                 height=0.4, color="tab:green", label="the cascade")
    axes[1].set_yticks(range(len(priced)), labels, fontsize=8)
    axes[1].set_xlabel("USD")
    axes[1].legend(loc="lower right")
    plt.tight_layout()
    plt.show()"""),
    ("md", """\
## Appendix: the learned router on RouterBench

`orroute.routing.LearnedRouter` predicts, from the prompt alone, each model's chance of answering
well and routes on quality per dollar. Trained on 70% of RouterBench's bundled outcome table and
compared on the held-out prompts with every single model, a task-type-only router and the oracle
(`ORROUTE_NB_SAMPLE` uses fewer prompts)."""),
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
import os
from decimal import Decimal

import matplotlib.pyplot as plt
import pandas as pd

import orroute
from orroute import analytics
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
    ("md", """\
## Where the money goes

By model, provider, project, user (the `user` tag), conversation and task type: exact sums from
the ledger (`orroute.analytics.spend`, the same figures as `orroute analytics cost --by ...`).
Each chart shows the eight largest groups."""),
    ("code", """\
def short(label, width=28):
    label = label or "(none)"
    return label if len(label) <= width else label[: width - 1] + "…"

views = ["model", "provider", "project", "user", "conversation", "task_type"]
fig, axes = plt.subplots(2, 3, figsize=(15, 7))
for ax, by in zip(axes.flat, views):
    rows = sorted(analytics.spend(tracker, by=by), key=lambda r: r.cost)[-8:]
    ax.set_title(f"spend by {by.replace('_', ' ')} (USD)")
    if not any(r.key for r in rows):  # e.g. no `user` tag on any call
        ax.text(0.5, 0.5, "not recorded on these calls", ha="center", va="center",
                transform=ax.transAxes, color="grey")
        ax.set_axis_off()
        continue
    ax.barh([short(r.key) for r in rows], [float(r.cost) for r in rows])
    ax.tick_params(axis="y", labelsize=8)
plt.tight_layout()
plt.show()
pd.DataFrame([{"model": r.key, "calls": r.calls, "errors": r.errors, "cost": r.cost,
               "share %": round(100 * r.share, 1)} for r in analytics.spend(tracker, by="model")])"""),
    ("code", """\
days = analytics.spend(tracker, by="day")
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.bar(range(len(days)), [float(r.cost) for r in days])
step = max(1, len(days) // 12)  # at most ~12 date labels: they never overlap
ax.set_xticks(range(0, len(days), step), [r.period for r in days][::step], rotation=30,
              ha="right")
ax.set_ylabel("USD")
ax.set_title("spend per day")
plt.tight_layout()
plt.show()"""),
    ("md", """\
## Where the period will end

For every budget, `orroute.analytics.forecast` projects the period's end at the recent pace
(mean spend per hour for daily budgets, per day otherwise) with a 90% interval and the chance of
going over. A total budget has no period end: the forecast says when it would run out."""),
    ("code", """\
forecasts = analytics.forecast(tracker)
pd.DataFrame([{"budget": f.budget, "limit": f.limit, "spent": f.spent,
               "rate per unit": None if f.rate is None else f.rate.quantize(Decimal("1e-9")),
               "unit": f.unit,
               "based on units": f.samples, "projected": f.projected, "low": f.low,
               "high": f.high, "P(over)": f.probability_over, "runs out": f.exhausted_at}
              for f in forecasts])"""),
    ("code", """\
windowed = [f for f in forecasts if f.window_end is not None and f.projected is not None]
if windowed:
    f = max(windowed, key=lambda f: f.spent)
    b = next(b for b in tracker.budgets() if b.name == f.budget)
    scoped = df[(df["time"] >= f.window_start) & (df["time"] <= f.now)]
    if b.scope.startswith("project:"):
        scoped = scoped[scoped["project"] == b.scope.removeprefix("project:")]
    spent = scoped.sort_values("time").set_index("time")["cost_usd"].cumsum()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.step(spent.index, spent.values, where="post", label="spent")
    ax.plot([f.now, f.window_end], [float(f.spent), float(f.projected)], "--",
            label="projected")
    if f.low is not None:
        ax.fill_between([f.now, f.window_end], [float(f.spent)] * 2,
                        [float(f.low), float(f.high)], alpha=0.2,
                        label=f"{f.level:.0%} interval")
    ax.axhline(float(f.limit), color="red", linewidth=0.8, label=f"limit ${f.limit}")
    ax.set_title(f"{f.budget}: forecast to {f.window_end:%Y-%m-%d %H:%M}")
    ax.set_ylabel("USD")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    plt.tight_layout()
    plt.show()
else:
    print("no daily, weekly or monthly budget with spending yet: nothing to draw")"""),
    ("md", """\
## Savings against a baseline model

The same token counts priced exactly on a baseline of your choice (`ORROUTE_NB_BASELINE`, default
`openai/gpt-4o`); `orroute analytics savings --baseline MODEL` prints the same figures."""),
    ("code", """\
baseline = os.environ.get("ORROUTE_NB_BASELINE", "openai/gpt-4o")
sv = analytics.savings(tracker, baseline)
print(f"actual ${sv.actual} vs ${sv.baseline_cost} on {baseline}: saved ${sv.saved} "
      f"({sv.saved_share:.0%}) over {sv.calls} calls")
rows = sv.by_model[:8]
if rows:
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [float(b) for _, _, _, b in rows], height=0.4,
            label=f"on {baseline}", color="lightgrey")
    ax.barh([i - 0.2 for i in y], [float(a) for _, _, a, _ in rows], height=0.4,
            label="actual", color="tab:green")
    ax.set_yticks(list(y), [short(m) for m, *_ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("USD")
    ax.legend(loc="lower right")
    plt.tight_layout()
    plt.show()"""),
    ("md", """\
## Errors, fallbacks and cache hits over time

Errors: calls that failed; fallbacks: calls that needed more than one attempt (a retry or another
model); cache hits: answers from orroute's response cache, and calls whose prompt the provider
partly served from its cache."""),
    ("code", """\
span = (df["time"].max() - df["time"].min()) if len(df) else pd.Timedelta(0)
bucket = "hour" if span <= pd.Timedelta(days=2) else "day"
tr = analytics.trends(tracker, bucket)
fig, ax = plt.subplots(figsize=(10, 3.5))
x = range(len(tr))
ax.plot(x, [r.calls for r in tr], "o-", label="calls")
ax.plot(x, [r.errors for r in tr], "s-", label="errors")
ax.plot(x, [r.fallbacks for r in tr], "^-", label="fallbacks")
ax.plot(x, [r.cache_hits + r.prompt_cache_hits for r in tr], "d-", label="cache hits")
step = max(1, len(tr) // 12)
ax.set_xticks(list(x)[::step], [r.period for r in tr][::step], rotation=30, ha="right")
ax.set_title(f"per {bucket}")
ax.legend()
plt.tight_layout()
plt.show()
pd.DataFrame([{**vars(r), "error rate": round(r.error_rate, 3)} for r in tr])"""),
    ("md", "## Latency, time to first token, success and quality per model"),
    ("code", """\
import inspect

perf = analytics.performance(tracker)
ok = df[df["outcome"] == "ok"]
# matplotlib >= 3.10 says orientation=, older ones vert=
horizontal = ({"orientation": "horizontal"}
              if "orientation" in inspect.signature(plt.Axes.boxplot).parameters
              else {"vert": False})
top = [p.model for p in perf[:6]]
if top:
    fig, axes = plt.subplots(1, 2, figsize=(14, 4))
    for ax, col, title in ((axes[0], "latency_s", "latency (s)"),
                           (axes[1], "ttft_s", "time to first token (s)")):
        data = [ok[ok["model"] == m][col].dropna() for m in top]
        ax.boxplot(data, **horizontal)
        ax.set_yticks(range(1, len(top) + 1), [short(m) for m in top], fontsize=8)
        ax.set_title(title)
    plt.tight_layout()
    plt.show()
pd.DataFrame([{"model": p.model, "calls": p.calls, "success": round(p.success_rate, 3),
               "p50 s": p.latency_p50, "p95 s": p.latency_p95, "p99 s": p.latency_p99,
               "quality": p.quality, "cost/call": p.cost_per_call.quantize(Decimal("1e-12"))}
              for p in perf])"""),
    ("md", "## Budget burn-down"),
    ("code", """\
budgets = tracker.budgets()
for b in budgets:
    print(f"{b.name}: limit ${b.limit}, spent ${b.spent}, remaining ${b.remaining} "
          f"({b.fraction_used:.0%} used)")
fig, ax = plt.subplots(figsize=(9, 4))
for b in budgets[-3:]:  # the most recent budgets (each demo run has its own)
    scoped = df[df["project"] == b.scope.removeprefix("project:")] \\
        if b.scope.startswith("project:") else df
    spent = scoped.sort_values("time").set_index("time")["cost_usd"].cumsum()
    line = ax.step(spent.index, spent.values, where="post", label=f"spent, {b.name}")[0]
    ax.axhline(float(b.limit), linestyle="--", color=line.get_color(), label=f"limit ${b.limit}")
    for pct in b.thresholds:
        ax.axhline(float(b.limit) * pct / 100, linestyle=":", color="grey", linewidth=0.8)
ax.set_ylabel("USD")
ax.set_title("budget burn-down")
ax.legend(fontsize=8)
fig.autofmt_xdate()
plt.tight_layout()
plt.show()
pd.DataFrame([{"budget": a.budget, "threshold %": a.threshold_pct, "spent": a.spent,
               "limit": a.limit} for a in tracker.alerts])"""),
    ("md", """\
## Estimates against actual costs

Before each call the router reserves the worst case (every allowed output token) but records its
**expected** cost on the call row: prompt tokens plus the task type's expected output, at the
model's prices. This compares that estimate, not the reservation, with the actual cost. Points
above the line were over-estimated."""),
    ("code", """\
est = df.dropna(subset=["estimated_cost_usd"])
est = est[(est["outcome"] == "ok") & (est["cost_usd"] > 0)]
if len(est):
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(est["cost_usd"], est["estimated_cost_usd"], s=12)
    lo = min(est["cost_usd"].min(), est["estimated_cost_usd"].min())
    hi = max(est["cost_usd"].max(), est["estimated_cost_usd"].max())
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("actual cost (USD)")
    ax.set_ylabel("estimated cost (USD)")
    plt.tight_layout()
    plt.show()
pd.DataFrame([{"model": r.key, "calls": r.calls, "estimated": r.estimated, "actual": r.actual,
               "error %": None if r.error is None else round(100 * r.error, 1),
               "median est/actual": r.median_ratio}
              for r in analytics.estimates(tracker, "model")])"""),
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
with exact costs. This notebook answers the analyst's questions from it: where the money goes (by model, provider,
project, user, conversation, task type and day), where each budget's period will end (with an
interval), what a baseline model would have cost, how errors, fallbacks and cache hits evolve, how
fast and how good each model was, how the budget burned down, how good the cost estimates were,
and what the same workload would cost under other selection strategies. The figures come from
`orroute.analytics`, the same functions as `orroute analytics ...`.

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
