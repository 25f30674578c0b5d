"""``orroute routing``: held-out evaluation of the learned router, and training one from a table."""

from __future__ import annotations

import math
from typing import Any

import click

from ._common import CLIError, emit_json


@click.group()
def routing() -> None:
    """Learned routing: evaluate on the bundled outcome data, train a router from a table."""


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly headline figures of orroute.research.evaluate's result."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        block: dict[str, Any] = {"prompts": r.get("n_prompts"), "cv_seconds": r.get("cv_seconds")}
        if "aiq" in r:
            best = r["best"]
            block["best_model"] = {"name": best, "cost": r["singles"][best][0],
                                   "accuracy": r["singles"][best][1]}
            block["aiq"] = r["aiq"]
            block["match_share"] = r["match_share"]
            block["match_share_hull"] = r["match_share_hull"]
            block["vs_task"] = r["vs_task"]
            block["oracle"] = {"cost": r["oracle"][0], "accuracy": r["oracle"][1]}
        if "pgr" in r:
            block["pgr"] = {k: {m: v[m] for m in ("APGR", "CPT50", "CPT80", "PGR@50%")}
                            for k, v in r["pgr"].items() if not k.startswith("_")}
        if "speed" in r:
            block["speed"] = r["speed"]
        if "cascade" in r:
            cr = r["cascade"]
            block["cascade"] = {"accuracy": cr["accuracy"], "cost_share": cr["share"],
                                "match_share": cr["match_share"],
                                "curve": [{"cost_weight": w, "cost": c, "accuracy": a,
                                           "task_type_hull": h} for w, c, a, h in cr["curve"]]}
        out[name] = block
    return out


@routing.command("eval")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True,
              help="Cross-validation folds (prompts are split).")
@click.option("--seed", type=int, default=0, show_default=True, help="Fold assignment seed.")
@click.option("--datasets", default="routerbench,mmlu", show_default=True,
              help="Comma-separated bundled tables: routerbench, mmlu.")
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="Write PNG plots (accuracy-cost, PGR) into DIR (needs matplotlib).")
@click.option("--speed/--no-speed", default=True, show_default=True,
              help="Also time route() on long and short prompts.")
@click.option("--cascade/--no-cascade", default=True, show_default=True,
              help="Also evaluate the cascade router on RouterBench (~1 min).")
@click.option("--json", "as_json", is_flag=True, help="Print the headline figures as JSON.")
def eval_cmd(folds: int, seed: int, datasets: str, out_dir: str | None, speed: bool,
             cascade: bool, as_json: bool) -> None:
    """Held-out (cross-validated) accuracy-cost evaluation of the learned router and baselines."""
    from ..research import evaluate

    names = tuple(d.strip() for d in datasets.split(",") if d.strip())
    for d in names:
        if d not in ("routerbench", "mmlu"):
            raise click.BadParameter(f"unknown dataset {d!r} (known: routerbench, mmlu)",
                                     param_hint="--datasets")
    results = evaluate(datasets=names, folds=folds, seed=seed, out_dir=out_dir,
                       verbose=not as_json, speed=speed, cascade=cascade)
    if as_json:
        emit_json(_summary(results))


def _read_table(path: str) -> tuple[list[str], dict[str, list[float | None]],
                                    dict[str, list[float | None]]]:
    """Reads an outcome table: a ``prompt`` column, ``score:<model>`` columns and optional
    ``cost:<model>`` columns (empty cell = missing). ``.gz`` files are decompressed."""
    import csv
    import gzip
    import io
    from pathlib import Path

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise CLIError(f"cannot read {path}: {e.strerror or e}") from None
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader, None)
    if not header or "prompt" not in header:
        raise CLIError(f"{path}: needs a header with a 'prompt' column and 'score:<model>' columns")
    ip = header.index("prompt")
    score_cols = {h.removeprefix("score:"): i for i, h in enumerate(header) if h.startswith("score:")}
    cost_cols = {h.removeprefix("cost:"): i for i, h in enumerate(header) if h.startswith("cost:")}
    if not score_cols:
        raise CLIError(f"{path}: no 'score:<model>' columns")
    extra = sorted(set(cost_cols) - set(score_cols))
    if extra:
        raise CLIError(f"{path}: cost columns without score columns: {', '.join(extra)}")

    def cell(row: list[str], i: int, line: int) -> float | None:
        text = row[i].strip() if i < len(row) else ""
        if not text:
            return None
        try:
            v = float(text)
        except ValueError:
            raise CLIError(f"{path}:{line}: {text!r} is not a number") from None
        return None if math.isnan(v) else v

    prompts: list[str] = []
    scores: dict[str, list[float | None]] = {m: [] for m in score_cols}
    costs: dict[str, list[float | None]] = {m: [] for m in cost_cols}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        prompts.append(row[ip] if ip < len(row) else "")
        for m, i in score_cols.items():
            scores[m].append(cell(row, i, line))
        for m, i in cost_cols.items():
            costs[m].append(cell(row, i, line))
    if not prompts:
        raise CLIError(f"{path}: no rows")
    return prompts, scores, costs


@routing.command("fit")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, metavar="PATH", help="Router file to write.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Router option (e.g. epochs=8, l2=0.03); repeatable.")
@click.option("--max-cost-share", type=float, default=None, metavar="X",
              help="Also choose the cost_weight spending at most X (0-1) of --reference's cost "
                   "on the table; written to OUTPUT.op.json.")
@click.option("--target-cost-share", type=float, default=None, metavar="X",
              help="Like --max-cost-share, aiming at X instead of staying below it.")
@click.option("--reference", default=None, metavar="MODEL",
              help="Model whose cost the share is of (default: the dearest on average).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def fit_cmd(table: str, output: str, options: tuple[str, ...], max_cost_share: float | None,
            target_cost_share: float | None, reference: str | None, as_json: bool) -> None:
    """Train a router from TABLE (CSV: prompt, score:<model>..., cost:<model>...) and save it."""
    import ast
    import time

    from ..routing import LearnedRouter

    opts: dict[str, Any] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--option")
        try:
            opts[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise click.BadParameter(f"{item!r}: {value!r} is not a literal",
                                     param_hint="--option") from None
    prompts, scores, costs = _read_table(table)
    t0 = time.perf_counter()
    if max_cost_share is None and target_cost_share is None:
        router = LearnedRouter.fit(prompts, scores, costs, **opts)
    else:
        router = _fit_with_operating_point(prompts, scores, costs, reference, max_cost_share,
                                           target_cost_share, opts)
    secs = time.perf_counter() - t0
    router.save(output)
    rows = router.row_counts()
    op = router.operating_point
    if as_json:
        emit_json({"output": output, "prompts": len(prompts), "models": router.models,
                   "rows": rows, "seconds": secs,
                   "operating_point": op.to_dict() if op is not None else None})
    else:
        click.echo(f"trained on {len(prompts)} prompts x {len(router.models)} models "
                   f"({sum(rows.values())} rows) in {secs:.1f} s -> {output}")
        if op is not None:
            click.echo(f"operating point: cost_weight {op.cost_weight:.4g} -> {op.share:.1%} of "
                       f"{op.reference}'s cost (90% interval {op.share_lo:.1%}-{op.share_hi:.1%}"
                       f", on the training table){'' if op.met else '; the requested maximum is NOT met'}"
                       f" -> {output}.op.json")


def _fit_with_operating_point(prompts: list[str], scores: dict[str, list[float | None]],
                              costs: dict[str, list[float | None]], reference: str | None,
                              max_share: float | None, target: float | None,
                              opts: dict[str, Any]) -> Any:
    from ..routing import fit_operating_point

    if max_share is not None and target is not None:
        raise CLIError("give --max-cost-share or --target-cost-share, not both")
    share = max_share if max_share is not None else target
    if share is None or not 0 < share <= 1:
        raise CLIError("the cost share must be in (0, 1]")
    priced = [m for m in scores if any(c is not None for c in costs.get(m, []))]
    if not priced:
        raise CLIError("a cost share needs cost:<model> columns")
    if reference is None:
        def mean_cost(m: str) -> float:
            known = [c for c in costs[m] if c is not None]
            return sum(known) / len(known)
        reference = max(priced, key=mean_cost)
    if reference not in priced:
        raise CLIError(f"--reference {reference!r} has no cost column")
    router, _ = fit_operating_point(prompts, scores, costs, reference=reference,
                                    max_cost_share=max_share, target_cost_share=target, **opts)
    return router
