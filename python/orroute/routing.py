"""Learned routing: predict each model's chance of answering a prompt well, and route on quality per
dollar.

The work happens in C++ (``orroute._core.LearnedRouter``): hashed word and character n-gram
features, one L2-regularised logistic model per model plus a shared rank-1 difficulty component,
AdaGrad training, microsecond predictions, a versioned binary file. This module adds the
dict-shaped API and the bundled outcome data (the held-out evaluation is ``orroute.research``).

>>> from orroute.routing import LearnedRouter
>>> router = LearnedRouter.fit(["2+2?", "Prove Fermat's last theorem"],
...                            scores={"small": [1.0, 0.0], "big": [1.0, 1.0]},
...                            costs={"small": [0.0001, 0.0001], "big": [0.01, 0.01]})
>>> sorted(router.predict("3+3?"))
['big', 'small']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import _core
from ._cascade import Cascade, CascadeRouter, extract_answer
from ._cascade_run import VerifiedCascade
from ._exceptions import InvalidArgumentError

__all__ = [
    "Cascade",
    "CascadeRouter",
    "CatalogQualityPredictor",
    "LearnedRouter",
    "PromptStats",
    "RouteOperatingPoint",
    "VerifiedCascade",
    "extract_answer",
    "fit_operating_point",
    "load_outcomes",
    "prompt_features",
    "prompt_stats",
]

PromptStats = _core.PromptStats

_OPTIONS = (
    "hash_bits",
    "word_unigrams",
    "word_bigrams",
    "char_ngram_min",
    "char_ngram_max",
    "char_window",
    "word_window",
    "structure",
    "epochs",
    "learning_rate",
    "l2",
    "l2_shared",
    "shared_component",
    "adagrad_init",
    "prior_strength",
    "seed",
)


def _config(options: Mapping[str, Any]) -> _core.RouterConfig:
    config = _core.RouterConfig()
    for key, value in options.items():
        if key not in _OPTIONS:
            raise InvalidArgumentError(
                f"unknown router option {key!r}; known: {', '.join(_OPTIONS)}"
            )
        setattr(config, key, value)
    return config


def _column(values: Sequence[float | None] | None, n: int, what: str) -> list[float]:
    if values is None:
        return [math.nan] * n
    if len(values) != n:
        raise InvalidArgumentError(f"{what} has {len(values)} values for {n} prompts")
    return [math.nan if v is None else float(v) for v in values]


def prompt_stats(prompt: str) -> PromptStats:
    """Length, structure and code/math/multi-step cues of a prompt (``complexity`` is in [0, 1]).

    >>> prompt_stats("Write a python function that returns the sum of a list.").code_cues > 0
    True
    """
    return _core.prompt_stats(prompt)


def prompt_features(prompt: str, **options: Any) -> list[tuple[int, float]]:
    """The router's sparse feature vector of a prompt: sorted ``(index, value)`` pairs.

    Options are the feature options of :meth:`LearnedRouter.fit` (``hash_bits``, ...).
    """
    return _core.PromptFeaturizer(_config(options)).features(prompt)


class CatalogQualityPredictor:
    """A trained router seen by catalog id: ``predict(prompt) -> {catalog_id: probability}``.

    Made by :meth:`LearnedRouter.as_quality_predictor`. The selector's ``quality_first`` and
    ``balanced`` strategies take it as their quality predictor (its C++ object is ``.core``).
    It shares the router: feedback folded in with ``router.update`` is seen at once.
    """

    def __init__(self, core: _core.CatalogQualityPredictor) -> None:
        self.core = core

    @property
    def catalog_ids(self) -> list[str]:
        return list(self.core.catalog_ids)

    def predict(self, prompt: str) -> dict[str, float]:
        return dict(self.core.predict(prompt))

    def __contains__(self, catalog_id: object) -> bool:
        return isinstance(catalog_id, str) and self.core.covers(catalog_id)

    def __repr__(self) -> str:
        return f"CatalogQualityPredictor({len(self.catalog_ids)} models)"


class LearnedRouter:
    """Per-model success predictor trained from an outcome table; routes on quality per dollar.

    Thread-safe: predictions may run concurrently with :meth:`update`.
    """

    def __init__(self, core: _core.LearnedRouter) -> None:
        self._core = core
        self._models: list[str] = core.model_names()
        self.operating_point: RouteOperatingPoint | None = None

    # ---- training and persistence ----

    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        scores: Mapping[str, Sequence[float | None]],
        costs: Mapping[str, Sequence[float | None]] | None = None,
        **options: Any,
    ) -> LearnedRouter:
        """Trains a router (GIL released; seconds for tens of thousands of rows).

        Args:
            prompts: the prompt texts.
            scores: model -> score in [0, 1] per prompt (``None`` = not observed).
            costs: model -> USD cost of that model's answer per prompt (``None`` = unknown).
                Models missing here get no cost estimate (treated as free when routing).
            **options: ``epochs`` (8), ``learning_rate`` (0.02), ``l2`` (0.03), ``l2_shared``
                (1e-3), ``adagrad_init`` (4), ``shared_component`` (True), ``prior_strength``
                (10), ``seed`` (1), ``hash_bits`` (16), ``word_unigrams``/``word_bigrams``
                (True), ``word_window`` (512 bytes read by the word features; 0 = the whole
                prompt), ``char_ngram_min``/``char_ngram_max`` (3/5, 0 = off), ``char_window``
                (256), ``structure`` (True).

        Raises:
            InvalidArgumentError: ragged columns, scores outside [0, 1], negative costs, a cost
                column for a model without scores, or an unknown option.
        """
        prompts = list(prompts)
        if isinstance(prompts[0] if prompts else "", str) is False:
            raise InvalidArgumentError("prompts must be strings")
        models = list(scores)
        costs = dict(costs or {})
        unknown = set(costs) - set(models)
        if unknown:
            raise InvalidArgumentError(f"costs given for models without scores: {sorted(unknown)}")
        n = len(prompts)
        score_cols = [_column(scores[m], n, f"scores[{m!r}]") for m in models]
        cost_cols = [_column(costs.get(m), n, f"costs[{m!r}]") for m in models]
        core = _core.LearnedRouter.fit(prompts, models, score_cols, cost_cols, _config(options))
        return cls(core)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the router to a versioned binary file (sparse weights; a few MB at most), and
        its operating point, if any, next to it (``<path>.op.json``)."""
        self._core.save(os.fspath(path))
        if self.operating_point is not None:
            with open(os.fspath(path) + ".op.json", "w", encoding="utf-8") as f:
                json.dump(self.operating_point.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LearnedRouter:
        """Reads a file written by :meth:`save`.

        Raises:
            ParseError: missing file, not a router file, other format version, or truncated.
        """
        router = cls(_core.LearnedRouter.load(os.fspath(path)))
        op_path = os.fspath(path) + ".op.json"
        if os.path.exists(op_path):
            with open(op_path, encoding="utf-8") as f:
                router.operating_point = RouteOperatingPoint.from_dict(json.load(f))
        return router

    # ---- prediction and routing ----

    @property
    def models(self) -> list[str]:
        """The model names, in training order."""
        return list(self._models)

    def predict(self, prompt: str) -> dict[str, float]:
        """Model -> predicted probability of success on ``prompt``."""
        return dict(zip(self._models, self._core.predict(prompt)))

    def expected_costs(self, prompt: str) -> dict[str, float]:
        """Model -> expected USD cost of answering ``prompt`` (NaN if no cost was ever seen)."""
        return dict(zip(self._models, self._core.expected_costs(prompt)))

    def predict_many(self, prompts: Sequence[str]) -> tuple[list[list[float]], list[list[float]]]:
        """Probabilities and expected costs for many prompts: two ``[prompt][model]`` lists."""
        probs, costs = self._core.predict_many(list(prompts))
        m = len(self._models)
        return (
            [probs[i : i + m] for i in range(0, len(probs), m)],
            [costs[i : i + m] for i in range(0, len(costs), m)],
        )

    def route(self, prompt: str, cost_weight: float | None = None, *,
              max_cost_share: float | None = None,
              target_cost_share: float | None = None) -> str:
        """The model maximising ``P(success) - cost_weight * expected USD cost``.

        ``cost_weight`` is how much success probability one dollar is worth: 0 picks the most
        likely model; about 100-1000 trades typical per-call costs of 1e-4..1e-2 USD. Instead of a
        weight, ask for a cost share of the reference model (``max_cost_share=0.5``: at most half
        of what always calling it would cost); that needs an operating point for exactly that
        request, from :meth:`calibrate` or :func:`fit_operating_point` (``orroute routing fit
        --max-cost-share``), stored in :attr:`operating_point`.

        Raises:
            InvalidArgumentError: both or neither of a weight and a share, or no operating point
                for the requested share.
        """
        if (max_cost_share is not None or target_cost_share is not None):
            if cost_weight is not None:
                raise InvalidArgumentError("give a cost_weight or a cost share, not both")
            cost_weight = self._weight_for(max_cost_share, target_cost_share)
        if cost_weight is None:
            raise InvalidArgumentError("route() needs cost_weight, max_cost_share or "
                                       "target_cost_share")
        return self._core.route(prompt, float(cost_weight))

    def _weight_for(self, max_share: float | None, target: float | None) -> float:
        op = self.operating_point
        mode, share = ("max", max_share) if max_share is not None else ("target", target)
        if op is None or op.mode != mode or abs(op.requested - float(share or 0)) > 1e-9:
            raise InvalidArgumentError(
                f"no operating point for {mode}_cost_share={share}: call calibrate() or "
                "fit_operating_point() (orroute routing fit --max-cost-share/--target-cost-share)")
        return op.cost_weight

    def calibrate(self, prompts: Sequence[str], costs: Mapping[str, Sequence[float]], *,
                  reference: str, max_cost_share: float | None = None,
                  target_cost_share: float | None = None,
                  weights: Sequence[float] | None = None) -> RouteOperatingPoint:
        """Chooses the ``cost_weight`` whose cost share of ``reference`` on a calibration set
        (prompts this router did not train on, with every model's real cost) is closest to
        ``target_cost_share`` / the largest not above ``max_cost_share``; stores and returns it
        (share with a 90% bootstrap interval over the calibration prompts)."""
        probs, pred = self.predict_many(prompts)
        return _choose_weight(probs, pred, [[float(costs[m][i]) for m in self._models]
                                            for i in range(len(prompts))],
                              self._models.index(reference), max_cost_share, target_cost_share,
                              weights, self)

    def route_threshold(self, prompt: str, threshold: float) -> str:
        """The cheapest model whose predicted success reaches ``threshold`` (else the most likely)."""
        return self._core.route_threshold(prompt, float(threshold))

    def update(self, prompt: str, model: str, score: float, cost: float | None = None) -> None:
        """Folds in one observed outcome (one online step; no refit).

        Raises:
            NotFoundInCatalogError: ``model`` is not one of :attr:`models`.
            InvalidArgumentError: ``score`` outside [0, 1] or a negative ``cost``.
        """
        self._core.update(prompt, model, float(score), math.nan if cost is None else float(cost))

    def row_counts(self) -> dict[str, int]:
        """Model -> rows learned from (training + updates)."""
        return dict(zip(self._models, self._core.row_counts()))

    def as_quality_predictor(self, mapping: Mapping[str, str]) -> CatalogQualityPredictor:
        """This router as the selector's quality predictor, keyed by catalog id.

        Args:
            mapping: router model name -> catalog id (e.g. ``{"gpt-4-1106-preview":
                "openai/gpt-4-1106-preview"}``). Unmapped router models are ignored.

        Raises:
            NotFoundInCatalogError: a mapping key is not one of :attr:`models`.
        """
        return CatalogQualityPredictor(
            _core.CatalogQualityPredictor(self._core, list(mapping.items()))
        )

    def __repr__(self) -> str:
        return f"LearnedRouter(models={self._models!r})"


def load_outcomes(name: str = "routerbench") -> Any:
    """Loads a bundled outcome table: ``"routerbench"`` (11 models, 3 tasks, with costs) or
    ``"mmlu"`` (RouteLLM: GPT-4 vs Mixtral, no costs). Returns an ``Outcomes`` record. (The
    held-out evaluation is ``orroute.research.evaluate``.)"""
    from ._outcomes import load_outcomes as _load

    return _load(name)


# ---------------------------------------------------------------------------- operating points

DEFAULT_WEIGHTS = [0.0] + [10 ** (k / 20) for k in range(-20, 101)]  # 0.1 .. 1e5


@dataclass(frozen=True)
class RouteOperatingPoint:
    """The ``cost_weight`` chosen for a cost share of the ``reference`` model on calibration
    prompts: ``share`` there with its 90% bootstrap interval [``share_lo``, ``share_hi``];
    ``requested`` and ``mode`` (``"max"`` or ``"target"``) say what was asked; ``met`` is False
    when even the cheapest setting costs more than a maximum share."""

    cost_weight: float
    share: float
    share_lo: float
    share_hi: float
    requested: float
    mode: str
    reference: str
    met: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"format": "orroute.operating_point/1", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RouteOperatingPoint:
        if d.get("format") != "orroute.operating_point/1":
            raise InvalidArgumentError("not an orroute.operating_point/1 document")
        return cls(**{k: v for k, v in d.items() if k != "format"})


def _choose_weight(probs: Sequence[Sequence[float]], pred: Sequence[Sequence[float]],
                   real: Sequence[Sequence[float]], ref: int, max_share: float | None,
                   target: float | None, weights: Sequence[float] | None,
                   router: LearnedRouter | None) -> RouteOperatingPoint:
    """Realised cost per calibration prompt for each weight of the grid (the rule of
    ``route``: argmax P - w * predicted cost, ties to the cheaper prediction), then the C++
    choice of the weight for the share."""
    import numpy as np

    if (max_share is None) == (target is None):
        raise InvalidArgumentError("give exactly one of max_cost_share and target_cost_share")
    grid = list(weights) if weights is not None else DEFAULT_WEIGHTS
    p = np.asarray(probs, dtype=float)
    c = np.nan_to_num(np.asarray(pred, dtype=float), nan=0.0)
    actual = np.asarray(real, dtype=float)
    rows = np.arange(len(p))
    cost = [actual[rows, (p - w * c - 1e-12 * c).argmax(axis=1)].tolist() for w in grid]
    share = float(target if target is not None else max_share)  # type: ignore[arg-type]
    mode = _core.ShareMode.TARGET if target is not None else _core.ShareMode.AT_MOST
    i, op = _core.choose_grid_point(cost, actual[:, ref].tolist(), share, mode, 1000, 0, 0.9)
    names = router.models if router is not None else []
    point = RouteOperatingPoint(float(grid[i]), op.share, op.share_lo, op.share_hi, share,
                                "target" if target is not None else "max",
                                names[ref] if names else str(ref), op.met, op.rows)
    if router is not None:
        router.operating_point = point
    return point


def _out_of_fold(prompts: Sequence[str], scores: Mapping[str, Sequence[float | None]],
                 costs: Mapping[str, Sequence[float | None]], folds: int, seed: int,
                 options: Mapping[str, Any]) -> tuple[Any, Any]:
    """Probabilities and predicted costs of every prompt from a router trained without it."""
    import numpy as np

    n, models = len(prompts), list(scores)
    probs, pred = np.zeros((n, len(models))), np.zeros((n, len(models)))
    order = np.random.default_rng(seed).permutation(n)
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        r = LearnedRouter.fit([prompts[i] for i in train],
                              {m: [scores[m][i] for i in train] for m in models},
                              {m: [costs[m][i] for i in train] for m in costs}, **options)
        pr, pc = r.predict_many([prompts[i] for i in test])
        probs[test], pred[test] = pr, pc
    return probs, pred


def fit_operating_point(prompts: Sequence[str], scores: Mapping[str, Sequence[float | None]],
                        costs: Mapping[str, Sequence[float | None]], *, reference: str,
                        max_cost_share: float | None = None,
                        target_cost_share: float | None = None, folds: int = 0, seed: int = 0,
                        **options: Any) -> tuple[LearnedRouter, RouteOperatingPoint]:
    """Fits a router on the whole table and chooses its operating point on the same table.

    ``folds=0`` (default) calibrates on the fitted router's own predictions for its training
    prompts; ``folds >= 2`` on out-of-fold predictions (``folds`` routers, each trained without the
    prompts it predicts). Measured on held-out folds (``bench/routing_eval.py``), the first lands
    closer to the requested share on new prompts: the router is strongly regularised, so its
    in-sample predictions are barely optimistic, while routers trained on less data predict on a
    different scale. Rows with a missing cost are left out of the calibration. Returns the router
    (with ``operating_point`` set) and the point.
    """
    import numpy as np

    models = list(scores)
    if reference not in models:
        raise InvalidArgumentError(f"reference {reference!r} is not one of the models")
    n = len(prompts)
    # a model without a cost column is free (as when routing); a missing cell drops the row
    cols = {m: costs.get(m) or [0.0] * n for m in models}
    real = np.array([[np.nan if cols[m][i] is None else float(cols[m][i])  # type: ignore[arg-type]
                      for m in models] for i in range(n)])
    router = LearnedRouter.fit(prompts, scores, costs, **options)
    if folds < 2:
        pr, pc = router.predict_many(prompts)
        probs, pred = np.array(pr), np.array(pc)
    else:
        probs, pred = _out_of_fold(prompts, scores, costs, folds, seed, options)
    ok = ~np.isnan(real).any(axis=1)
    point = _choose_weight(probs[ok], pred[ok], real[ok], models.index(reference),
                           max_cost_share, target_cost_share, None, router)
    return router, point
