"""How the gateway turns one chat request into upstream calls: reserve, send, fall back, settle.

``DirectBackend`` is the only thing the HTTP layer calls for a completion (``await
backend.chat(...)``), so replacing it with one built on ``orroute.AIModelManager.stream_task`` is
one change in ``server.py``. It relays upstream bytes untouched: the body is never rebuilt and a
stream is forwarded chunk by chunk; only the final usage event is parsed, to settle the cost.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._json import dumps, loads
from ._upstream import Upstream, UpstreamConnectionError, UpstreamResponse

__all__ = ["RETRYABLE", "ChatReply", "DirectBackend", "LedgerQueue"]

_log = logging.getLogger("orroute.gateway")

#: Upstream statuses after which the next candidate is tried (nothing was sent to the client yet).
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_TAIL = 16384


@dataclass
class ChatReply:
    """An upstream answer being relayed. ``body`` is set for a plain (or error) answer; for a
    stream, iterate ``chunks()`` and then call ``aclose()`` (also on cancellation)."""

    status: int
    model: str
    stream: bool
    attempts: int
    body: bytes = b""
    content_type: str = "application/json"
    _resp: UpstreamResponse | None = None
    _settle: Any = None
    _release: Any = None
    _tail: bytearray = field(default_factory=bytearray)

    async def chunks(self) -> AsyncIterator[bytes]:
        resp = self._resp
        if resp is None:
            return
        tail = self._tail
        first: float | None = None
        async for data in resp.iter_chunks():
            if first is None and not data.startswith(b":"):
                first = time.perf_counter()
            tail += data
            if len(tail) > _TAIL:
                del tail[: len(tail) - _TAIL]
            yield data
        settle, self._settle = self._settle, None
        if settle is not None:
            settle(_usage_from_tail(tail), first)

    async def aclose(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.release()
        release, self._release = self._release, None
        if release is not None and self._settle is not None:
            self._settle = None
            release()


def _usage_from_tail(tail: bytearray) -> dict[str, Any] | None:
    at = tail.rfind(b'"usage"')
    if at < 0:
        return None
    start = tail.rfind(b"data:", 0, at)
    end = tail.find(b"\n", at)
    if start < 0:
        return None
    try:
        event = loads(bytes(tail[start + 5 : end if end >= 0 else len(tail)]))
    except ValueError:
        return None
    usage = event.get("usage") if isinstance(event, dict) else None
    if isinstance(usage, dict):
        usage["_model"] = event.get("model")
        usage["_id"] = event.get("id")
        usage["_provider"] = event.get("provider")
        return usage
    return None


class LedgerQueue:
    """Runs ledger calls on a few threads so the event loop never waits on SQLite.

    ``reserve`` is awaited (nothing is sent before the budget holds); settle and release are
    queued (``later``) and the response does not wait for them: the reservation keeps the budget
    booked until they land. The core releases the GIL and commits concurrent writes together, so
    threads raise the ledger's write rate. ``flush()`` waits for everything queued.
    """

    def __init__(self, tracker: Any, threads: int = 4) -> None:
        self.tracker = tracker
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="orroute-ledger")
        self._pending: set[asyncio.Future[Any]] = set()
        self._batch: list[Callable[[], Any]] = []

    async def reserve(self, amount: Decimal, **kw: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, functools.partial(self.tracker.reserve, amount, **kw))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # the reservation may still be made: release it when it is
            def undo(f: asyncio.Future[Any]) -> None:
                if not f.cancelled() and f.exception() is None:
                    self.later(f.result().release)

            fut.add_done_callback(undo)
            raise

    def later(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Queues a ledger write; the writes queued during one loop iteration go to the pool as
        one job (one thread wake-up instead of one per write under load)."""
        self._batch.append(functools.partial(fn, *args, **kw))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._submit)

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        fut = asyncio.get_running_loop().run_in_executor(self._pool, _run_all, batch)
        self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            _log.error("ledger write failed: %r", fut.exception())

    async def flush(self) -> None:
        self._submit()
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _run_all(batch: list[Callable[[], Any]]) -> None:
    for job in batch:
        try:
            job()
        except Exception:  # noqa: BLE001 - one failed write must not drop the others
            _log.exception("ledger write failed")


class DirectBackend:
    """Sends completions to the upstream with orroute's budget reservations and ordered fallback
    over the candidates. Runs on the gateway's event loop; the ledger calls are short SQLite
    transactions made inline."""

    def __init__(self, upstream: Upstream, tracker: Any, catalog: Any) -> None:
        self.upstream = upstream
        self.tracker = tracker
        self.catalog = catalog
        self.ledger = LedgerQueue(tracker)

    def worst_case(self, model: str, prompt_tokens: int, max_tokens: int | None) -> Decimal:
        try:
            return Decimal(
                self.catalog.worst_case_cost(
                    model, prompt_tokens=prompt_tokens, max_output_tokens=max_tokens
                )
            )
        except Exception:  # noqa: BLE001 - unknown or dynamically priced model: settle decides
            return Decimal(0)

    def _cost(self, model: str, usage: dict[str, Any]) -> Decimal:
        cost = usage.get("cost")
        if cost is not None:
            return Decimal(str(cost))
        try:
            return Decimal(
                self.catalog.cost(
                    model,
                    prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0),
                )
            )
        except Exception:  # noqa: BLE001
            return Decimal(0)

    async def chat(
        self,
        body: dict[str, Any],
        raw: bytes,
        candidates: list[str],
        *,
        project: str,
        key_id: str,
        prompt_tokens: int,
        requested: str,
    ) -> ChatReply:
        """Runs the attempt loop. Raises BudgetExceededError (nothing sent) or returns the reply
        to relay (an upstream error status is a reply too)."""
        stream = bool(body.get("stream"))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        last: ChatReply | None = None
        t0 = time.perf_counter()
        for attempt, model in enumerate(candidates, 1):
            amount = self.worst_case(model, prompt_tokens, max_tokens)
            res = await self.ledger.reserve(
                amount, project=project, model=model, tags={"gateway_key": key_id}
            )
            release = functools.partial(self.ledger.later, res.release)
            if body.get("model") == model:
                data = raw
            else:
                data = dumps({**body, "model": model})
            try:
                resp = await self.upstream.request("POST", "/chat/completions", data)
            except UpstreamConnectionError as e:
                release()
                msg = dumps({"error": {"message": str(e), "type": "upstream_error", "code": 502}})
                last = ChatReply(502, model, False, attempt, msg)
                continue
            except BaseException:
                release()
                raise
            try:
                if resp.status != 200:
                    err = await resp.read()
                    resp.release()
                    release()
                    last = ChatReply(resp.status, model, False, attempt, err)
                    if resp.status in RETRYABLE:
                        continue
                    return last
                settle = self._settler(res, model, requested, attempt, t0)
                if stream and "event-stream" in resp.headers.get("content-type", ""):
                    return ChatReply(200, model, True, attempt, content_type="text/event-stream",
                                     _resp=resp, _settle=settle, _release=release)
                payload = await resp.read()
                resp.release()
            except BaseException:
                resp.release()
                release()
                raise
            try:
                parsed = loads(payload)
                usage = parsed.get("usage") or {}
                usage["_model"] = parsed.get("model")
                usage["_id"] = parsed.get("id")
                usage["_provider"] = parsed.get("provider")
            except (ValueError, AttributeError):
                usage = None
            settle(usage, None)
            return ChatReply(200, model, False, attempt, payload)
        assert last is not None
        return last

    def _settler(self, res: Any, model: str, requested: str, attempts: int, t0: float) -> Any:
        def settle(usage: dict[str, Any] | None, first: float | None) -> None:
            self.ledger.later(settle_now, usage, first, time.perf_counter())

        def settle_now(usage: dict[str, Any] | None, first: float | None, now: float) -> None:
            if not usage:
                res.settle(0, model=model, model_requested=requested, outcome="ok",
                           attempts=attempts, latency=now - t0)
                return
            served = usage.get("_model") or model
            details = usage.get("prompt_tokens_details") or {}
            res.settle(
                self._cost(served, usage),
                model=served,
                model_requested=requested,
                provider=usage.get("_provider") or "",
                generation_id=usage.get("_id") or "",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                cached_tokens=int(details.get("cached_tokens") or 0),
                outcome="ok",
                attempts=attempts,
                latency=now - t0,
                ttft=None if first is None else first - t0,
            )

        return settle


