"""The httpx-like libraries the in-process transport serves: ``httpx`` (what openai 1.x and 2.x
build their client on) and ``httpx2`` (openai 3.x), a fork with the same transport API but its
own classes. A client of one library accepts only that library's responses, streams and
exceptions, so the transport answers each request in the library the request came from.

Imported by ``orroute.transport`` only, so ``import orroute`` imports neither library.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["NAMES", "for_openai", "installed", "of"]

#: The libraries, in the order their base classes appear in the transports' bases.
NAMES = ("httpx", "httpx2")


def installed() -> list[ModuleType]:
    """The libraries this Python can import (at least one, or ImportError)."""
    libs = [importlib.import_module(name) for name in NAMES
            if importlib.util.find_spec(name) is not None]
    if not libs:
        raise ImportError("orroute.Transport needs httpx (openai 1.x/2.x) or httpx2 (openai "
                          "3.x): pip install openai")
    return libs


def of(obj: Any) -> ModuleType:
    """The library a request or client object belongs to (``httpx._models`` -> ``httpx``)."""
    return sys.modules[type(obj).__module__.partition(".")[0]]


def for_openai(openai: ModuleType) -> ModuleType:
    """The library the imported openai builds its clients on: httpx2 from 3.x on."""
    major = str(getattr(openai, "__version__", "0")).partition(".")[0]
    return importlib.import_module("httpx2" if major.isdigit() and int(major) >= 3 else "httpx")
