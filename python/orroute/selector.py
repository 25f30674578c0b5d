"""The plan's ``ModelSelector``, backed by the C++ selector (cpp/orroute/select/).

>>> selector = ModelSelector()
>>> model_id = selector.select_model("coding", 2000, budget=0.05)
>>> "coding" in selector.models[model_id]["capabilities"]
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, bundled_priors_path

if TYPE_CHECKING:
    from ._core import Constraints

__all__ = [
    "STRATEGIES",
    "ModelSelector",
    "ModelSpec",
    "ModelTable",
    "Ranked",
    "bundled_priors_path",
    "task_types",
]

Amount = Decimal | int | str | float
STRATEGIES = ("cost_optimized", "balanced", "performance", "quality_first")

_CONSTRAINT_KEYS = frozenset(
    {
        "capabilities",
        "parameters",
        "max_price_per_1k",
        "max_price_per_mtok",
        "min_context",
        "expected_output_tokens",
        "allowed_providers",
        "blocked_providers",
        "allowed_models",
        "blocked_models",
        "free_only",
        "paid_only",
        "allow_free",
        "tiers",
        "min_quality",
    }
)
_LIST_KEYS = frozenset(
    {
        "capabilities",
        "parameters",
        "allowed_providers",
        "blocked_providers",
        "allowed_models",
        "blocked_models",
        "tiers",
    }
)


def task_types() -> dict[str, str]:
    """Every task type the selector knows, with the rule a model must meet for it."""
    from ._core import task_type_rules

    return dict(task_type_rules())


@dataclass(frozen=True)
class ModelSpec:
    """One entry of ``ModelSelector.models`` (also readable as a dict: ``spec["cost_per_1k"]``).

    Attributes:
        capabilities: task types the model qualifies for, then its capability names.
        cost_per_1k: blended USD per 1000 tokens (3 prompt : 1 completion), exact.
        context_window: context length in tokens.
        tier: ``flagship``, ``premium``, ``standard`` or ``economy`` (from the blended price).
        quality: overall quality prior in [0, 1]; ``quality_source`` says where it comes from.
    """

    id: str
    capabilities: list[str]
    cost_per_1k: Decimal
    context_window: int
    tier: str
    quality: float
    quality_source: str

    def __getitem__(self, key: str) -> Any:
        if key not in _SPEC_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _SPEC_KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(_SPEC_KEYS)

    def __len__(self) -> int:
        return len(_SPEC_KEYS)

    def get(self, key: str, default: Any = None) -> Any:
        """``spec[key]``, or ``default`` for a key the spec does not have."""
        return self[key] if key in _SPEC_KEYS else default

    def keys(self) -> list[str]:
        return list(_SPEC_KEYS)

    def values(self) -> list[Any]:
        return [self[k] for k in _SPEC_KEYS]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in _SPEC_KEYS]


# The keys a ModelSpec shows as a dict (the plan's three, then orroute's).
_SPEC_KEYS = ("id", "capabilities", "cost_per_1k", "context_window", "tier", "quality",
              "quality_source")


class ModelTable(Mapping[str, ModelSpec]):
    """``ModelSelector.models``: a read-only dict of model id -> :class:`ModelSpec`.

    An unknown id raises ``KeyError`` (:class:`orroute.NotFoundInCatalogError`) naming the
    nearest ids of the catalog, so a retired name points at its successors.
    """

    __slots__ = ("_catalog", "_specs")

    def __init__(self, specs: dict[str, ModelSpec], catalog: Catalog) -> None:
        self._specs = specs
        self._catalog = catalog

    def __getitem__(self, model_id: str) -> ModelSpec:
        try:
            return self._specs[model_id]
        except KeyError:
            pass
        self._catalog[model_id]  # raises NotFoundInCatalogError naming the nearest ids
        raise KeyError(model_id)  # in the catalog yet not a selector entry: not expected

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<ModelTable of {len(self._specs)} models>"


@dataclass(frozen=True)
class Ranked:
    """A candidate model with its score and the reasons for it.

    ``estimated_cost`` (USD, exact) covers ``input_size`` prompt tokens plus the task type's
    expected output tokens. ``score`` combines ``quality``, ``cheapness`` and ``speed`` with the
    strategy's weights (the last reason spells the sum out).
    """

    model: str
    score: float
    quality: float
    cheapness: float
    speed: float
    estimated_cost: Decimal
    tier: str
    quality_source: str
    reasons: list[str] = field(default_factory=list)


def _load_priors(priors: str | os.PathLike[str] | Mapping[str, Any] | None) -> Any:
    from ._core import QualityPriors

    table = QualityPriors.from_json(bundled_priors_path().read_text(encoding="utf-8"))
    if priors is None:
        return table
    if isinstance(priors, Mapping):
        # {"model id": {"coding": 0.9, ...}} or a full table {"models": ..., "families": ...}
        doc = (
            priors if {"models", "families", "tier_defaults"} & set(priors) else {"models": priors}
        )
        text = json.dumps(doc)
    else:
        text = Path(priors).read_text(encoding="utf-8")
    return table.merge(QualityPriors.from_json(text))


def _constraints(kwargs: Mapping[str, Any]) -> Constraints | None:
    from ._core import Constraints

    unknown = set(kwargs) - _CONSTRAINT_KEYS
    if unknown:
        from ._exceptions import InvalidArgumentError

        raise InvalidArgumentError(
            f"unknown constraint(s) {sorted(unknown)}; known: {sorted(_CONSTRAINT_KEYS)}"
        )
    if not kwargs:
        return None
    args: dict[str, Any] = {}
    for k, v in kwargs.items():
        if v is None:
            continue
        if k in _LIST_KEYS and isinstance(v, str):
            v = [v]
        elif k in _LIST_KEYS and isinstance(v, Iterable):
            v = list(v)
        args[k] = v
    return Constraints(**args)


class ModelSelector:
    """Chooses a model for a task: the plan's ``ModelSelector``, on the C++ core.

    Args:
        catalog: the models to choose from (default: the bundled catalog snapshot).
        strategy: ``cost_optimized``, ``balanced`` (default), ``performance`` or ``quality_first``.
        priors: quality priors to merge over the bundled table: a path to a JSON file in the
            bundled format, or a mapping ``{model_id: {"coding": 0.9, ...}}``.
        quality_predictor: a learned predictor keyed by catalog id
            (``LearnedRouter.as_quality_predictor(mapping)``), used when a ``prompt`` is given.
        **constraints: default constraints for every selection: ``capabilities``, ``parameters``,
            ``max_price_per_1k``, ``max_price_per_mtok``, ``min_context``,
            ``expected_output_tokens``, ``allowed_providers``, ``blocked_providers``,
            ``allowed_models``, ``blocked_models``, ``free_only``, ``paid_only``, ``allow_free``
            (free models are rate-limited, so they are candidates only with ``allow_free=True``
            or ``free_only=True``), ``tiers``, ``min_quality``.

    >>> ModelSelector(paid_only=True).select_model("general", 500) != ""
    True
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        strategy: str = "balanced",
        priors: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        quality_predictor: Any = None,
        **constraints: Any,
    ) -> None:
        from ._core import ModelSelector as _Core

        self.catalog = catalog if catalog is not None else Catalog.bundled()
        self._constraint_kwargs = dict(constraints)
        self._core = _Core(
            self.catalog._core, _load_priors(priors), strategy, _constraints(constraints)
        )
        self._models: ModelTable | None = None
        if quality_predictor is not None:
            self.set_quality_predictor(quality_predictor)

    def set_quality_predictor(self, predictor: Any) -> None:
        """Installs a learned predictor (``LearnedRouter.as_quality_predictor(...)``), or removes it
        with None. Selections that pass ``prompt=`` then use its per-prompt success probabilities
        for the models it covers (80% prediction, 20% prior)."""
        self._core.set_quality_predictor(None if predictor is None else predictor.core)

    @property
    def strategy(self) -> str:
        """The default strategy."""
        return str(self._core.default_strategy)

    @property
    def models(self) -> ModelTable:
        """Model id -> :class:`ModelSpec` (capabilities, cost_per_1k, context_window, ...), as a
        read-only dict; an unknown id raises ``KeyError`` naming the nearest ids."""
        if self._models is None:
            self._models = ModelTable({
                s.model_id: ModelSpec(
                    id=s.model_id,
                    capabilities=list(s.capabilities),
                    cost_per_1k=s.cost_per_1k,
                    context_window=s.context_window,
                    tier=s.tier,
                    quality=s.quality,
                    quality_source=s.quality_source,
                )
                for s in self._core.specs()
            }, self.catalog)
        return self._models

    def select_model(
        self,
        task_type: str,
        input_size: int,
        budget: Amount | None = None,
        *,
        prompt: str | None = None,
        **constraints: Any,
    ) -> str:
        """Id of the best model for the task that fits its input and the budget.

        ``budget`` bounds the estimated cost of the call (input_size prompt tokens plus the task
        type's expected output). Constraints given here replace the selector's defaults for this
        call. With ``prompt`` and an installed quality predictor, its prediction for the prompt
        informs quality.

        Raises:
            orroute.NoModelAvailableError: nothing fits; the message names the constraint that
                removed the last candidates.
            orroute.InvalidArgumentError: unknown task type (the message lists the known ones).
        """
        if not constraints and not prompt:
            return str(self._core.select_model(task_type, input_size, budget))
        ranked = self.rank(
            task_type, input_size, budget, prompt=prompt, explain=False, limit=1, **constraints
        )
        return ranked[0].model

    def rank(
        self,
        task_type: str = "general",
        input_size: int = 0,
        budget: Amount | None = None,
        *,
        strategy: str | None = None,
        predicted_quality: Mapping[str, float] | None = None,
        prompt: str | None = None,
        explain: bool = True,
        limit: int | None = None,
        complexity_floor: bool = True,
        **constraints: Any,
    ) -> list[Ranked]:
        """Every candidate for the task, best first, with its score and the reasons.

        Args:
            predicted_quality: a learned predictor's probability of success per model id for this
                prompt; it replaces 80% of the prior for those models.
            prompt: the prompt, for the installed quality predictor (explicit
                ``predicted_quality`` entries win over its predictions); its complexity tier also
                sets the engine's quality floor (the same C++ rule ``AIModelManager`` routes
                with: standard 0.65, premium 0.80, frontier 0.90; see docs/router.md).
            explain: False skips building the reasons (faster).
            limit: keep only the best ``limit`` candidates (all by default).
            complexity_floor: False ranks a ``prompt`` without the complexity floor.
        """
        merged = {**self._constraint_kwargs, **constraints} if constraints else None
        ranked = self._core.rank(
            task_type,
            input_size,
            budget,
            strategy,
            _constraints(merged) if merged else None,
            dict(predicted_quality or {}),
            explain,
            limit or 0,
            prompt or "",
            complexity_floor,
        )
        return [
            Ranked(
                model=c.model_id,
                score=c.score,
                quality=c.quality,
                cheapness=c.cheapness,
                speed=c.speed,
                estimated_cost=c.estimated_cost,
                tier=c.tier,
                quality_source=c.quality_source,
                reasons=list(c.reasons),
            )
            for c in ranked
        ]

    def set_metrics(
        self,
        model_id: str,
        *,
        success_rate: float | None = None,
        latency_ms: float | None = None,
        tokens_per_second: float | None = None,
        available: bool = True,
    ) -> None:
        """Feeds measured behaviour of a model into ranking (thread-safe).

        ``success_rate`` multiplies the model's quality; latency and throughput drive the speed
        term (weighted by the ``performance`` strategy); ``available=False`` excludes the model.
        """
        self._core.set_metrics(
            model_id,
            success_rate=success_rate,
            latency_ms=latency_ms,
            tokens_per_second=tokens_per_second,
            available=available,
        )

    def clear_metrics(self) -> None:
        """Forgets every measured metric."""
        self._core.clear_metrics()

    def __repr__(self) -> str:
        return f"<ModelSelector strategy={self.strategy!r} over {len(self.catalog)} models>"
