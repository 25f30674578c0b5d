"""orroute: cheap, reliable and accountable LLM calls through OpenRouter.

The public API is imported lazily so that ``import orroute`` stays fast; each name is loaded from
its module on first use.
"""

from __future__ import annotations

import importlib

from ._exceptions import *
from ._exceptions import __all__ as _exception_names
from .task import Task as Task  # re-exported: the plan's task type, small enough to load eagerly

__version__ = "0.1.0"
TYPE_CHECKING = False  # typing is not imported at run time: `import orroute` stays fast

# name -> module that defines it. Add a line here when a module adds a public name.
_LAZY: dict[str, str] = {
    # catalog, pricing, selection (foundation)
    "Catalog": "orroute.catalog",
    "ModelInfo": "orroute.catalog",
    "ModelSelector": "orroute.selector",
    "Ranked": "orroute.selector",
    # tokenizer
    "get_encoding": "orroute.tokenizer",
    "encoding_for_model": "orroute.tokenizer",
    "count_tokens": "orroute.tokenizer",
    "Encoding": "orroute.tokenizer",
    "TokenCount": "orroute.tokenizer",
    # client
    "OpenRouter": "orroute.client",
    "AsyncOpenRouter": "orroute.client",
    "Timeout": "orroute.client",
    "Stream": "orroute.client",
    "AsyncStream": "orroute.client",
    # in-process drop-in for the openai SDK and anything on httpx (needs httpx / openai)
    "Transport": "orroute.transport",
    "AsyncTransport": "orroute.transport",
    "openai_client": "orroute.transport",
    "async_openai_client": "orroute.transport",
    # cost and budgets
    "CostTracker": "orroute.cost",
    "Reservation": "orroute.cost",
    "BudgetStatus": "orroute.cost",
    "simulate": "orroute._simulate",
    # learned routing
    "LearnedRouter": "orroute.routing",
    "CascadeRouter": "orroute.routing",
    "VerifiedCascade": "orroute.routing",
    # gateway (orroute serve)
    "Gateway": "orroute.gateway",
    # router
    "AIModelManager": "orroute.manager",
    # the architecture document's API (several providers)
    "APIManager": "orroute.api_manager",
    "APIRouter": "orroute.api_manager",
    "APIConfig": "orroute.api_manager",
    "APIResponse": "orroute.api_manager",
    "ProviderType": "orroute.api_manager",
    "TaskResult": "orroute.manager",
    "CascadeResult": "orroute._cascade_run",
    "Attempt": "orroute.manager",
    "Conversation": "orroute.manager",
    "Compression": "orroute.compress",
}

# Derived from _LAZY, the one list of lazily loaded public names (tests/py/test_package.py checks
# that every name resolves); static tools read the TYPE_CHECKING imports below instead.
__all__ = sorted([*_exception_names, "Task", "__version__", *_LAZY])  # noqa: PLE0605


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from ._simulate import simulate  # noqa: F401
    from .catalog import Catalog, ModelInfo  # noqa: F401
    from .client import AsyncOpenRouter, AsyncStream, OpenRouter, Stream, Timeout  # noqa: F401
    from .compress import Compression  # noqa: F401
    from .cost import BudgetStatus, CostTracker, Reservation  # noqa: F401
    from .gateway import Gateway  # noqa: F401
    from .manager import (  # noqa: F401
        AIModelManager,
        Attempt,
        CascadeResult,
        Conversation,
        TaskResult,
    )
    from .routing import CascadeRouter, LearnedRouter, VerifiedCascade  # noqa: F401
    from .selector import ModelSelector, Ranked  # noqa: F401
    from .tokenizer import (  # noqa: F401
        Encoding,
        TokenCount,
        count_tokens,
        encoding_for_model,
        get_encoding,
    )
    from .transport import (  # noqa: F401
        AsyncTransport,
        Transport,
        async_openai_client,
        openai_client,
    )
