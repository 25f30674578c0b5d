"""A stand-in for the ``tiktoken`` module, backed by orroute's C++ tokenizer.

Same public names as tiktoken 0.14 (``Encoding``, ``get_encoding``, ``encoding_for_model``,
``encoding_name_for_model``, ``list_encoding_names``) and submodules (``core``, ``model``,
``registry``, ``load``), token-for-token identical on the encodings orroute ships: cl100k_base,
o200k_base and o200k_harmony. Other encodings (gpt2, r50k_base, p50k_base, p50k_edit) are not
bundled: asking for them raises a ``ValueError`` that says so; build one from its ``.tiktoken``
file with ``Encoding(name, pat_str=..., mergeable_ranks=load.load_tiktoken_bpe(path),
special_tokens=...)`` and register it in ``registry.ENCODINGS``.

Use it directly, or make ``import tiktoken`` in other libraries resolve to it::

    >>> import orroute.tiktoken_compat as tiktoken
    >>> tiktoken.encoding_for_model("gpt-4o").encode("hello world")
    [24912, 2375]
    >>> tiktoken.install()  # sys.modules["tiktoken"] (and its submodules) -> this module
"""

from __future__ import annotations

import sys

from . import core, load, model, registry
from .core import Encoding
from .model import encoding_for_model, encoding_name_for_model
from .registry import get_encoding, list_encoding_names

__all__ = [
    "Encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "install",
    "list_encoding_names",
]

__version__ = "0.14.0"  # the tiktoken release whose API and model table this module mirrors


def install() -> None:
    """Makes ``import tiktoken`` (and ``tiktoken.core``, ``.model``, ``.registry``, ``.load``)
    give this module, for libraries that import tiktoken themselves. Call it before they import
    tiktoken; a tiktoken module imported earlier keeps its own objects.
    """
    this = sys.modules[__name__]
    sys.modules["tiktoken"] = this
    for name, module in (("core", core), ("model", model), ("registry", registry), ("load", load)):
        sys.modules[f"tiktoken.{name}"] = module
