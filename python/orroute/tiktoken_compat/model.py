"""``tiktoken.model``: which encoding a model uses, with tiktoken 0.14's tables.

The tables come from orroute's core (the same ones ``orroute.count_tokens`` uses); as in tiktoken
they are plain dicts that a caller may extend, and lookups honour such additions.
"""

from __future__ import annotations

from .. import _core
from ..tokenizer import Encoding
from .registry import get_encoding

__all__ = [
    "MODEL_PREFIX_TO_ENCODING",
    "MODEL_TO_ENCODING",
    "encoding_for_model",
    "encoding_name_for_model",
]

_names, _prefixes = _core.tiktoken_model_tables()
MODEL_TO_ENCODING: dict[str, str] = dict(_names)
MODEL_PREFIX_TO_ENCODING: dict[str, str] = dict(_prefixes)
del _names, _prefixes


def encoding_name_for_model(model_name: str) -> str:
    """Name of the encoding ``model_name`` uses (tiktoken's answer, legacy encodings included).

    Raises ``KeyError`` if the model is not recognised.

    >>> encoding_name_for_model("gpt-4o-2024-05-13")
    'o200k_base'
    """
    if model_name in MODEL_TO_ENCODING:
        return MODEL_TO_ENCODING[model_name]
    for prefix, encoding_name in MODEL_PREFIX_TO_ENCODING.items():
        if model_name.startswith(prefix):
            return encoding_name
    raise KeyError(
        f"Could not automatically map {model_name} to a tokeniser. "
        "Please use `tiktoken.get_encoding` to explicitly get the tokeniser you expect."
    ) from None


def encoding_for_model(model_name: str) -> Encoding:
    """The encoding ``model_name`` uses. ``KeyError`` for an unknown model; ``ValueError`` naming
    the encoding for a model whose encoding orroute does not ship (gpt2, r50k, p50k families).
    """
    return get_encoding(encoding_name_for_model(model_name))
