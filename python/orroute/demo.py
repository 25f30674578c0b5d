"""``orroute demo``'s workload, as a public module: the tasks (:func:`workload`), the offline
server with realistic latencies (:func:`start_offline`), the summary types and :func:`run_demo`.

The code lives with the command line (``orroute/_cli/_demo_workload.py`` for the workload,
``orroute/_cli/_demo_show.py`` for running and showing it); this module names it for tests,
notebooks and benchmarks. ``run_demo`` loads the show (rich) only when called.
"""

from __future__ import annotations

from typing import Any

from ._cli._demo_workload import (
    PREMIUM_MODEL,
    PROFILES,
    DemoSpec,
    DemoSummary,
    Outcome,
    apply_realistic_profiles,
    demo_reply,
    start_offline,
    workload,
    workload_specs,
)

__all__ = [
    "PREMIUM_MODEL",
    "PROFILES",
    "DemoSpec",
    "DemoSummary",
    "Outcome",
    "apply_realistic_profiles",
    "demo_reply",
    "run_demo",
    "start_offline",
    "workload",
    "workload_specs",
]


def run_demo(**kwargs: Any) -> DemoSummary:
    """Runs the demo and returns its summary (see ``orroute._cli._demo_show.run_demo``)."""
    from ._cli._demo_show import run_demo as run

    return run(**kwargs)
