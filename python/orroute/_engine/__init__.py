"""The one door to the C++ engine and network client.

Only this package touches ``_core.Engine``, ``_core.NetClient`` and the asyncio bridge: the client,
the manager, the cascade, the gateway and the command line go through it. It holds

- settings → engine config (:func:`engine_config`) and → network client (:func:`new_client`);
- the asyncio bridge (:func:`bridge`, :func:`wait`): one eventfd per event loop, signalled by the
  transport thread, which never takes the GIL;
- the ONE table from a failure (a network call's error, an engine result) to an exception
  (:func:`api_error`, :func:`result_error`); the gateway presents the same exceptions as HTTP;
- typed plan and result records (:class:`Plan`, :class:`RunResult`) and :class:`Engine`, the
  handle the rest of the package holds instead of ``_core.Engine``.

Catalog, tokenizer, selector and verify bindings are used where they are: they decide nothing
about sending.
"""

from __future__ import annotations

from .engine import Engine, engine_of, engine_task, planner, task_request
from .failures import (
    api_error,
    call_result,
    chat_reply,
    chat_request_problem,
    chat_result,
    check_body_error,
    result_error,
)
from .loop import BlockingWaiter, LoopBridge, bridge, lend_terms, wait, wait_any
from .records import ApiErrorInfo, Plan, RunResult
from .wiring import engine_config, limit_args, limit_scope, new_client, stream_of, user_agent

__all__ = [
    "ApiErrorInfo",
    "BlockingWaiter",
    "Engine",
    "LoopBridge",
    "Plan",
    "RunResult",
    "api_error",
    "bridge",
    "call_result",
    "chat_reply",
    "chat_request_problem",
    "chat_result",
    "check_body_error",
    "engine_config",
    "engine_of",
    "engine_task",
    "lend_terms",
    "limit_args",
    "limit_scope",
    "new_client",
    "planner",
    "result_error",
    "stream_of",
    "task_request",
    "user_agent",
    "wait",
    "wait_any",
]
