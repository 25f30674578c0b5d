"""Research and evaluation code: held-out (cross-validated) figures of the learned and cascade
routers, PGR/APGR curves, plots (``evaluate``; ``bench/routing_eval.py``, ``orroute routing
eval``), and the verification experiments (``verify_eval``).

Not part of what ``import orroute`` loads, and not imported by any library module: the library
routes; this package measures how well it does.
"""

from __future__ import annotations

from .evaluation import evaluate

__all__ = ["evaluate"]
