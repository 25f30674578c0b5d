"""OpenRouter's model catalog: lookup, filtering and exact pricing (parsed and priced in C++).

>>> catalog = Catalog.bundled()
>>> catalog.cost("openai/gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
Decimal('0.00045')
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from ._core import ModelCatalog, ModelInfo, Prices, PriceTier, Pricing  # noqa: F401
    from .types import CompletionUsage

__all__ = ["Catalog", "ModelInfo", "bundled_catalog_path"]

Amount = Decimal | int | str | float

_DATA = Path(__file__).resolve().parent / "data"
_bundled: Catalog | None = None
_bundled_lock = threading.Lock()


def bundled_catalog_path() -> Path:
    """Path of the catalog snapshot shipped with the package (a ``GET /api/v1/models`` response)."""
    return _DATA / "openrouter_models.json"


def bundled_snapshot_path() -> Path:
    """Path of the binary form of :func:`bundled_catalog_path`, written at build time (it may be
    missing, e.g. in a source checkout before a build: the JSON is then parsed)."""
    return _DATA / "openrouter_models.snapshot"


def bundled_priors_path() -> Path:
    """Path of the quality-prior table shipped with the package (see tools/derive_priors.py).

    Defined here, next to the catalog's, so a manager reads it without importing
    ``orroute.selector``; ``orroute.selector`` re-exports it."""
    return _DATA / "quality_priors.json"


def __getattr__(name: str) -> object:
    # ModelInfo is the C++ class; resolve it lazily so importing this module stays cheap.
    if name == "ModelInfo":
        from ._core import ModelInfo

        return ModelInfo
    raise AttributeError(f"module 'orroute.catalog' has no attribute {name!r}")


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class Catalog:
    """An immutable catalog of OpenRouter models.

    Build one with :meth:`bundled` (the offline snapshot shipped with orroute), :meth:`load` (a
    saved ``/api/v1/models`` response) or :meth:`from_json`. Entries that cannot be used are skipped
    and described in :attr:`warnings`; a document that is not a models response raises
    :class:`orroute.ParseError`.

    >>> cat = Catalog.bundled()
    >>> cat["anthropic/claude-sonnet-4.5"].context_length > 0
    True
    """

    __slots__ = ("_core",)

    def __init__(self, core: ModelCatalog) -> None:
        self._core = core

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def bundled(cls) -> Catalog:
        """The catalog snapshot shipped with the package, parsed once and cached (thread-safe)."""
        global _bundled
        if _bundled is None:
            with _bundled_lock:
                if _bundled is None:
                    _bundled = cls._load_bundled()
        return _bundled

    @classmethod
    def _load_bundled(cls) -> Catalog:
        # The binary snapshot written at build time when it matches the JSON, else the JSON (the
        # catalog's first warning then says why the snapshot was not used).
        from ._core import ModelCatalog

        json_path = bundled_catalog_path()
        if not json_path.is_file():
            raise FileNotFoundError(f"model catalog file not found: {json_path}")
        return cls(ModelCatalog.load_bundled(str(json_path), str(bundled_snapshot_path())))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Catalog:
        """Parses a saved ``GET /api/v1/models`` response from a file.

        Raises:
            FileNotFoundError: the file does not exist.
            orroute.ParseError: the file is not a models response.
        """
        from ._core import ModelCatalog

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model catalog file not found: {path}")
        return cls(ModelCatalog.from_file(path))

    @classmethod
    def from_json(cls, text: str | bytes) -> Catalog:
        """Parses the text of a ``GET /api/v1/models`` response.

        Raises:
            orroute.ParseError: the text is not JSON or not a models response.
        """
        from ._core import ModelCatalog

        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return cls(ModelCatalog.from_json(text))

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._core)

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._core.models)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and self._core.find(model_id) is not None

    def __getitem__(self, model_id: str) -> ModelInfo:
        """The model with this id; raises :class:`orroute.NotFoundInCatalogError` (a KeyError)."""
        return self._core.at(model_id)

    def get(self, model_id: str, default: ModelInfo | None = None) -> ModelInfo | None:
        """The model with this id, or ``default``."""
        found = self._core.find(model_id)
        return default if found is None else found

    def __repr__(self) -> str:
        return f"<Catalog of {len(self)} models, {len(self.warnings)} warnings>"

    @property
    def ids(self) -> list[str]:
        """Every model id, in catalog order."""
        return [m.id for m in self._core.models]

    @property
    def warnings(self) -> list[str]:
        """One line per skipped entry or ignored field, naming the model id and the field."""
        return list(self._core.warnings)

    # -- filtering ----------------------------------------------------------------------------
    def filter(
        self,
        *,
        capability: str | Iterable[str] | None = None,
        max_prompt_price: Amount | None = None,
        max_completion_price: Amount | None = None,
        min_context: int | None = None,
        provider: str | Iterable[str] | None = None,
        free: bool | None = None,
        include_dynamic: bool = True,
    ) -> list[ModelInfo]:
        """Models that meet every given criterion, in catalog order.

        Args:
            capability: capability name(s) the model must all have (see ``capability_names()``):
                ``"tools"``, ``"structured_outputs"``, ``"vision"``, ``"reasoning"``, ...
            max_prompt_price: highest prompt price in USD per million tokens (base tier).
            max_completion_price: highest completion price in USD per million tokens.
            min_context: smallest context window in tokens.
            provider: author prefix(es) of the id (``"openai"``, ``"anthropic"``).
            free: True for free models only, False for paid models only.
            include_dynamic: keep router entries whose price is dynamic (``"-1"``); they never
                pass a price limit.

        >>> all(m.has_capability("tools") for m in Catalog.bundled().filter(capability="tools"))
        True
        """
        if min_context is not None and min_context < 0:
            raise InvalidArgumentError(f"min_context must be >= 0, got {min_context}")
        return self._core.filter(
            capabilities=_as_list(capability),
            max_prompt_price_per_mtok=max_prompt_price,
            max_completion_price_per_mtok=max_completion_price,
            min_context=min_context,
            providers=_as_list(provider),
            free=free,
            include_dynamic=include_dynamic,
        )

    # -- pricing ------------------------------------------------------------------------------
    def cost(
        self,
        model_id: str,
        *,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        audio_tokens: int = 0,
        audio_output_tokens: int = 0,
        image_output_tokens: int = 0,
        requests: int = 1,
        images: int = 0,
        web_searches: int = 0,
        cache_write_1h: bool = False,
        utc_hhmm: int | None = None,
    ) -> Decimal:
        """Exact cost in USD of one call, as OpenRouter bills it.

        ``cached_tokens``, ``cache_write_tokens`` and ``audio_tokens`` (input audio) are part of
        ``prompt_tokens``; ``reasoning_tokens``, ``audio_output_tokens`` and
        ``image_output_tokens`` are part of ``completion_tokens`` (as in OpenRouter's ``usage``),
        so nothing is billed twice; each part is billed at its own price when the model lists one
        (``input_cache_read``, ``audio``, ``image_output``, ...), else at the prompt or completion
        price. Tier overrides (``min_prompt_tokens``) apply by prompt size; time-windowed tiers
        apply only when ``utc_hhmm`` (e.g. ``1430``) is given. :meth:`usage_cost` reads the counts
        from a response's ``usage``.

        Raises:
            orroute.NotFoundInCatalogError: unknown model id.
            orroute.InvalidArgumentError: negative or inconsistent counts, or a router model whose
                price is dynamic (``"-1"``).
        """
        return self._core.cost(
            model_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            audio_tokens=audio_tokens,
            audio_output_tokens=audio_output_tokens,
            image_output_tokens=image_output_tokens,
            requests=requests,
            images=images,
            web_searches=web_searches,
            cache_write_1h=cache_write_1h,
            utc_hhmm=utc_hhmm,
        )

    def usage_cost(
        self,
        model_id: str,
        usage: Mapping[str, Any] | CompletionUsage,
        *,
        cache_write_1h: bool = False,
        utc_hhmm: int | None = None,
    ) -> Decimal:
        """Exact cost of a call from its OpenRouter ``usage`` (a dict, or ``response.usage``).

        Reads the totals and every breakdown the usage object has: ``prompt_tokens_details``
        (``cached_tokens``, ``cache_write_tokens``, ``audio_tokens``), ``completion_tokens_details``
        (``reasoning_tokens``, ``audio_tokens``, ``image_tokens``) and
        ``server_tool_use_details.web_search_requests``; then prices them as :meth:`cost` does.
        The usage object counts no input image tokens or cached audio tokens, so the
        ``image_token`` and ``input_audio_cache`` prices are never applied (those tokens are billed
        as the prompt or cached tokens they are part of).

        >>> Catalog.bundled().usage_cost("openai/gpt-4o-mini",
        ...                              {"prompt_tokens": 1000, "completion_tokens": 500})
        Decimal('0.00045')
        """
        u = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)

        def count(section: str | None, name: str) -> int:
            d = u if section is None else (u.get(section) or {})
            return int(d.get(name) or 0)

        return self.cost(
            model_id,
            prompt_tokens=count(None, "prompt_tokens"),
            completion_tokens=count(None, "completion_tokens"),
            cached_tokens=count("prompt_tokens_details", "cached_tokens"),
            cache_write_tokens=count("prompt_tokens_details", "cache_write_tokens"),
            audio_tokens=count("prompt_tokens_details", "audio_tokens"),
            reasoning_tokens=count("completion_tokens_details", "reasoning_tokens"),
            audio_output_tokens=count("completion_tokens_details", "audio_tokens"),
            image_output_tokens=count("completion_tokens_details", "image_tokens"),
            web_searches=count("server_tool_use_details", "web_search_requests"),
            cache_write_1h=cache_write_1h,
            utc_hhmm=utc_hhmm,
        )

    def worst_case_cost(
        self,
        model_id: str,
        *,
        prompt_tokens: int,
        max_output_tokens: int | None = None,
        requests: int = 1,
        may_write_cache: bool = False,
    ) -> Decimal:
        """Highest cost a call can have, for budget reservations (see docs/foundation.md).

        ``max_output_tokens=None`` uses the model's own output cap (its ``max_completion_tokens``,
        else the context left after the prompt).
        """
        return self._core.worst_case(
            model_id,
            prompt_tokens=prompt_tokens,
            max_output_tokens=max_output_tokens,
            requests=requests,
            may_write_cache=may_write_cache,
        )


def capability_names() -> Sequence[str]:
    """Every capability name a model can have."""
    from ._core import capability_names as names

    return tuple(names())
