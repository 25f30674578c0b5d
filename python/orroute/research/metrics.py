"""Shared pieces of the held-out evaluations: the cross-validation folds, RouteLLM's PGR
(performance gap recovered) curve and its summary figures (APGR, CPT), and RouterBench's AIQ
(the non-decreasing convex hull of cost-quality points)."""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["STRONG_WEAK", "aiq", "hull", "hull_at", "pgr_curve", "pgr_metrics"]

# the strong and the weak model of each outcome table (PGR is measured between them)
STRONG_WEAK = {
    "routerbench": ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"),
    "mmlu": ("gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
}


def _folds(n: int, k: int, seed: int) -> list[Any]:
    import numpy as np

    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def pgr_curve(score: Any, strong: Any, weak: Any, grid: int = 101) -> tuple[Any, Any]:
    """PGR at call shares f = 0..1 when the top-f prompts by ``score`` go to the strong model."""
    import numpy as np

    n = len(score)
    order = np.argsort(-score, kind="stable")
    acc_s, acc_w = strong.mean(), weak.mean()
    fs = np.linspace(0, 1, grid)
    gains = np.concatenate([[0.0], np.cumsum((strong - weak)[order])])
    perf = np.array([acc_w + gains[round(float(f) * n)] / n for f in fs])
    return fs, (perf - acc_w) / (acc_s - acc_w)


def _trapezoid() -> Any:
    """numpy's trapezoidal rule (``trapezoid`` since numpy 2.0, ``trapz`` before)."""
    import numpy as np

    for name in ("trapezoid", "trapz"):
        if hasattr(np, name):
            return getattr(np, name)
    raise RuntimeError("numpy has no trapezoidal rule")


def pgr_metrics(fs: Any, pgr: Any) -> dict[str, float]:
    import numpy as np

    def cpt(x: float) -> float:
        hit = np.nonzero(pgr >= x - 1e-12)[0]
        return float(fs[hit[0]]) if len(hit) else 1.0

    return {
        "APGR": float(_trapezoid()(pgr, fs)),
        "CPT50": cpt(0.5),
        "CPT80": cpt(0.8),
        "PGR@50%": float(pgr[np.argmin(abs(fs - 0.5))]),
    }


# ---------------------------------------------------------------------------- reports


# ---------------------------------------------------------------------------- RouterBench AIQ


def hull(points: list) -> list[tuple[float, float]]:
    """Non-decreasing upper convex hull of (cost, quality) points, sorted by cost."""
    pts = sorted({(c, q) for c, q, *_ in points})
    upper: list[tuple[float, float]] = []
    for pt in pts:
        while len(upper) >= 2:
            (x1, y1), (x2, y2) = upper[-2], upper[-1]
            if (x2 - x1) * (pt[1] - y1) - (y2 - y1) * (pt[0] - x1) >= 0:
                upper.pop()
            else:
                break
        upper.append(pt)
    best = max(range(len(upper)), key=lambda i: upper[i][1])
    return upper[: best + 1]


def hull_at(h: list[tuple[float, float]], cost: float) -> float:
    """Quality of the hull at ``cost`` (flat beyond its ends)."""
    if cost <= h[0][0]:
        return h[0][1]
    for (x1, y1), (x2, y2) in itertools.pairwise(h):
        if cost <= x2:
            return y1 + (y2 - y1) * (cost - x1) / (x2 - x1)
    return h[-1][1]


def aiq(h: list[tuple[float, float]], lo: float, hi: float, steps: int = 2000) -> float:
    import numpy as np

    grid = np.linspace(lo, hi, steps)
    return float(np.mean([hull_at(h, c) for c in grid]))
