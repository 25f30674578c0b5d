"""``tiktoken.registry``: encodings by name.

``ENCODINGS`` is shared with ``orroute.get_encoding``'s cache, so an encoding registered here
(``ENCODINGS["r50k_base"] = Encoding(...)``) is found by both. ``ENCODING_CONSTRUCTORS`` maps the
bundled names to tiktoken-style constructors (functions returning ``Encoding``'s keyword
arguments) and may be extended with more, as tiktoken's plugins do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .. import _core
from ..tokenizer import _ENCODINGS, Encoding
from ..tokenizer import get_encoding as _get_bundled

__all__ = ["ENCODINGS", "ENCODING_CONSTRUCTORS", "get_encoding", "list_encoding_names"]

_lock = threading.RLock()
ENCODINGS: dict[str, Encoding] = _ENCODINGS
_LEGACY = ("gpt2", "r50k_base", "p50k_base", "p50k_edit")


def _constructor(name: str) -> Callable[[], dict[str, Any]]:
    def construct() -> dict[str, Any]:
        enc = _get_bundled(name)
        return {
            "name": enc.name,
            "pat_str": enc._pat_str,
            "mergeable_ranks": enc._mergeable_ranks,
            "special_tokens": dict(enc._special_tokens),
        }

    construct.__name__ = name
    return construct


_BUNDLED: dict[str, Callable[[], dict[str, Any]]] = {
    name: _constructor(name) for name in _core.encoding_names()
}
ENCODING_CONSTRUCTORS: dict[str, Callable[[], dict[str, Any]]] = dict(_BUNDLED)


def get_encoding(encoding_name: str) -> Encoding:
    """The named encoding: a registered one, a bundled one, or one from ``ENCODING_CONSTRUCTORS``.

    Raises ``ValueError`` for other names, saying when it is a tiktoken encoding orroute does not
    ship.

    >>> get_encoding("o200k_harmony").n_vocab
    201088
    """
    if not isinstance(encoding_name, str):
        raise ValueError(  # noqa: TRY004 (tiktoken raises ValueError here)
            f"Expected a string in get_encoding, got {type(encoding_name)}"
        )
    enc = ENCODINGS.get(encoding_name)
    if enc is not None:
        return enc
    with _lock:
        if encoding_name in ENCODINGS:
            return ENCODINGS[encoding_name]
        constructor = ENCODING_CONSTRUCTORS.get(encoding_name)
        if constructor is None:
            shipped = ", ".join(_core.encoding_names())
            if encoding_name in _LEGACY:
                raise ValueError(
                    f"Unknown encoding {encoding_name}: orroute does not ship tiktoken's "
                    f"{encoding_name} vocabulary (it ships {shipped}). Build it from its .tiktoken "
                    "file with Encoding(name, pat_str=..., mergeable_ranks=load_tiktoken_bpe(path), "
                    "special_tokens=...) and put it in tiktoken.registry.ENCODINGS."
                )
            raise ValueError(f"Unknown encoding {encoding_name}. Known encodings: {shipped}")
        if constructor is _BUNDLED.get(encoding_name):
            return _get_bundled(encoding_name)  # the shared object, not a copy of it
        enc = Encoding(**constructor())
        ENCODINGS[encoding_name] = enc
        return enc


def list_encoding_names() -> list[str]:
    """Names ``get_encoding`` accepts without a registration: the bundled encodings and any added
    constructors."""
    with _lock:
        return list(ENCODING_CONSTRUCTORS)
