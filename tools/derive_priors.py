#!/usr/bin/env python3
"""Derives orroute's bundled quality-prior table from public ratings.

Reads ../shared/data/priors/ (LMArena style-controlled ratings by category, Dec 2025; Aider polyglot
pass rates) and the bundled OpenRouter catalog, maps the rated names to OpenRouter ids, and writes
python/orroute/data/quality_priors.json:

    {"version": 1, "categories": [...], "scale": "...",
     "models":   {"<openrouter id>": {"overall": q, "coding": q, ..., "source": "..."}},
     "families": {"<family key>":   {..., "source": "family of <id>"}},
     "tier_defaults": {"flagship": {...}, "premium": {...}, "standard": {...}, "economy": {...}}}

Scores are in [0, 1]: an LMArena rating r maps to (r - 1000) / 500, clipped to [0.02, 1]; Aider's
pass_rate_2 (percent) maps to pass_rate / 100 and is averaged with the arena coding score.
A model's family key is its id with the provider kept and version/date tokens dropped
(see ``family_key``; the C++ core implements the same rule in quality_priors.cpp).

Usage: python3 tools/derive_priors.py [--shared ../shared/data] [--out python/orroute/data/...]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = {  # our category -> LMArena category
    "overall": "full",
    "coding": "coding",
    "math": "math",
    "instruction_following": "if",
    "creative": "creative_writing",
    "hard_prompts": "hard_6",
}
# Blended $/M (3 prompt : 1 completion) thresholds, the same as select/tiers in the C++ core.
TIERS = [("flagship", 6.0), ("premium", 1.5), ("standard", 0.25), ("economy", 0.0)]

_VERSION_TOKEN = re.compile(r"^v?\d[\d.]*[a-z]?$")
_SIZE_TOKEN = re.compile(r"^a?\d+(\.\d+)?[bm]$")
_DROP_WORDS = {"latest", "preview", "exp", "experimental"}


def family_key(model_id: str) -> str:
    """Provider + slug without version/date tokens: 'anthropic/claude-opus-4.5' -> 'anthropic/claude-opus'.

    Tokens (split on '-') are dropped when they look like a version or date ('4.5', 'v3.2', '4o',
    '20250514') or are 'latest'/'preview'/'exp'; parameter sizes ('70b', 'a22b') are kept.
    """
    mid = model_id.lstrip("~").split(":", 1)[0]
    provider, _, slug = mid.partition("/")
    kept = [
        t
        for t in slug.lower().split("-")
        if t and t not in _DROP_WORDS and (_SIZE_TOKEN.match(t) or not _VERSION_TOKEN.match(t))
    ]
    return f"{provider}/{'-'.join(kept)}"


def _norm(name: str) -> str:
    return name.lower().replace(".", "-").replace("_", "-").replace(" ", "-")


_ARENA_SUFFIXES = [
    re.compile(r"-thinking(-\d+k)?$"),
    re.compile(r"-(high|medium|low|minimal)$"),
    re.compile(r"-\d{8}$"),
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),
    re.compile(r"-(preview|exp|latest|chat|instruct|no-thinking)$"),
]


def arena_keys(name: str) -> list[str]:
    """Normalised forms of an LMArena name, from most to least specific."""
    keys = [_norm(name)]
    k = keys[0]
    changed = True
    while changed:
        changed = False
        for rx in _ARENA_SUFFIXES:
            nk = rx.sub("", k)
            if nk != k:
                k = nk
                keys.append(k)
                changed = True
    return keys


def or_keys(model_id: str) -> list[str]:
    slug = model_id.lstrip("~").split(":", 1)[0].split("/", 1)[1]
    keys = [_norm(slug)]
    for rx in _ARENA_SUFFIXES:
        nk = rx.sub("", keys[-1])
        if nk != keys[-1]:
            keys.append(nk)
    return keys


def elo_to_score(r: float) -> float:
    return round(min(1.0, max(0.02, (r - 1000.0) / 500.0)), 4)


def tier_of(pricing: dict) -> str | None:
    try:
        p, c = float(pricing["prompt"]), float(pricing["completion"])
    except (KeyError, ValueError):
        return None
    if p < 0 or c < 0:
        return None
    blended = (3 * p + c) / 4 * 1e6
    return next(name for name, lo in TIERS if blended >= lo)


def aider_scores(shared: Path) -> dict[str, float]:
    """Normalised Aider model name -> best polyglot pass rate (0..1)."""
    out: dict[str, float] = {}
    for fname in ("aider_polyglot_leaderboard.yml",):
        for row in yaml.safe_load((shared / "priors" / fname).read_text()):
            name = re.sub(r"\s*\(.*?\)\s*", "", str(row.get("model", ""))).strip()
            if "+" in str(row.get("model", "")):
                continue  # architect/editor pairs are not one model
            rate = float(row.get("pass_rate_2", 0.0)) / 100.0
            for k in arena_keys(name):
                out[k] = max(out.get(k, 0.0), rate)
    return out


def derive(shared: Path, catalog_path: Path) -> dict:
    arena = json.loads(
        (shared / "priors" / "lmarena_leaderboard_text_style_control_2025-12.json").read_text()
    )
    catalog = json.loads(catalog_path.read_text())["data"]
    aider = aider_scores(shared)

    # Arena: normalised key -> (category -> best rating, source names).
    by_key: dict[str, dict[str, float]] = defaultdict(dict)
    names: dict[str, set[str]] = defaultdict(set)
    for ours, theirs in CATEGORIES.items():
        for name, row in arena.get(theirs, {}).items():
            for k in arena_keys(name):
                prev = by_key[k].get(ours)
                by_key[k][ours] = max(prev, row["rating"]) if prev is not None else row["rating"]
                names[k].add(name)
            # only the most specific key that exists on OpenRouter will be used (below)

    models: dict[str, dict] = {}
    for m in catalog:
        mid = m["id"]
        if m["pricing"].get("prompt") == "-1" or "/" not in mid or mid.startswith("~"):
            continue  # routers; "~x/y-latest" aliases resolve through their family instead
        base = mid.lstrip("~").split(":", 1)[0]
        if base in models:
            continue
        hit = next((k for k in or_keys(mid) if k in by_key), None)
        if hit is None:
            continue
        ratings = by_key[hit]
        entry = {cat: elo_to_score(r) for cat, r in ratings.items()}
        ak = next((k for k in or_keys(mid) if k in aider), None)
        if ak is not None:
            entry["coding"] = round((entry.get("coding", aider[ak]) + aider[ak]) / 2, 4)
        entry["source"] = (
            "lmarena:" + ",".join(sorted(names[hit])[:3]) + (f"; aider:{ak}" if ak else "")
        )
        models[base] = entry

    # Families: the newest rated member (by catalog `created`) stands for the family.
    created = {m["id"].lstrip("~").split(":", 1)[0]: m.get("created") or 0 for m in catalog}
    families: dict[str, dict] = {}
    newest: dict[str, int] = {}
    for mid, entry in models.items():
        fk = family_key(mid)
        if created.get(mid, 0) >= newest.get(fk, -1):
            newest[fk] = created.get(mid, 0)
            families[fk] = {
                **{k: v for k, v in entry.items() if k != "source"},
                "source": f"family of {mid}",
            }

    # Tier defaults: mean score of the rated models in each price tier.
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in catalog:
        mid = m["id"]
        if mid in models:
            t = tier_of(m["pricing"])
            if t:
                for cat in CATEGORIES:
                    if cat in models[mid]:
                        sums[t][cat].append(models[mid][cat])
    tier_defaults = {}
    for t, _ in TIERS:
        vals = sums.get(t, {})
        tier_defaults[t] = {
            cat: round(sum(vals[cat]) / len(vals[cat]), 4) if vals.get(cat) else 0.5
            for cat in CATEGORIES
        }
    return {
        "version": 1,
        "categories": list(CATEGORIES),
        "scale": "0..1; LMArena rating r -> (r-1000)/500 clipped to [0.02,1]; Aider pass_rate_2/100 averaged into coding",
        "sources": [
            "lmarena_leaderboard_text_style_control_2025-12.json (LMArena, style control, Dec 2025)",
            "aider_polyglot_leaderboard.yml (Aider, Apache-2.0)",
        ],
        "models": dict(sorted(models.items())),
        "families": dict(sorted(families.items())),
        "tier_defaults": tier_defaults,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent.parent / "shared" / "data")
    ap.add_argument(
        "--catalog", type=Path, default=REPO / "python/orroute/data/openrouter_models.json"
    )
    ap.add_argument("--out", type=Path, default=REPO / "python/orroute/data/quality_priors.json")
    args = ap.parse_args()
    if not (args.shared / "priors").is_dir():
        args.shared = Path("/work/shared/data")
    table = derive(args.shared, args.catalog)
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    print(
        f"wrote {args.out}: {len(table['models'])} models, {len(table['families'])} families, "
        f"tier defaults {table['tier_defaults']}"
    )


if __name__ == "__main__":
    main()
