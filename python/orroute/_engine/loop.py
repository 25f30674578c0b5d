"""The asyncio bridge: one eventfd per event loop, signalled by the transport thread (which never
takes the GIL); the loop's reader resolves the futures of the calls that have news. The network
loop may be lent to the event loop's thread (a plain call awaited on an idle loop): the reader
then also runs its turns (``Notifier.drain``), watching libcurl's sockets through the notifier's
own epoll descriptor."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import _core

if TYPE_CHECKING:
    import asyncio

__all__ = ["BlockingWaiter", "LoopBridge", "bridge", "lend_terms", "wait", "wait_any"]


class LoopBridge:
    """One eventfd per event loop: the transport thread signals a token, the loop's reader
    resolves the future of the call that has news."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # lendable: a call awaited here on an idle network loop is read on this thread too
        self.notifier = _core.Notifier(True)
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.next_token = 1
        loop.add_reader(self.notifier.fd, self._drain)
        self._loop_fd = _selector_fd(loop)

    def serve_idle(self, call: Any) -> bool:
        """Waits for ``call`` (a plain call whose network loop is lent to this bridge) on this
        thread, while the event loop has nothing else to do: no callback ready, until its next
        timer at most, and only as long as its selector's descriptor stays quiet (a socket, a
        thread's call_soon_threadsafe, a signal wake it). What the event loop would do itself
        (block in epoll_wait), without its two iterations per awaited call. True once the call
        is done; False when it must be awaited the usual way (:func:`wait`)."""
        _, _, loop_fd, timeout = lend_terms(False, self)
        return timeout is not None and bool(call.serve_lent(self.notifier, loop_fd, timeout))

    def lend_terms(self, lending: bool = True) -> tuple[Any, int, float | None]:
        """A plain call's ``(lend_to, loop_fd, serve_timeout)``: :func:`lend_terms` of this
        bridge, without the bridge."""
        _, lend_to, loop_fd, timeout = lend_terms(lending, self)
        return lend_to, loop_fd, timeout

    def _drain(self) -> None:
        for token in self.notifier.drain():
            fut = self.waiters.pop(token, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def wait(self, armable: Any) -> None:
        """Until ``armable`` (a call, stream, pending result or streamed run) has news."""
        token = self.next_token
        self.next_token += 1
        fut = self.loop.create_future()
        self.waiters[token] = fut
        armable.arm(self.notifier, token)
        try:
            await fut
        finally:
            self.waiters.pop(token, None)


def _selector_fd(loop: asyncio.AbstractEventLoop) -> int:
    """The descriptor a selector event loop of asyncio's own blocks on (its epoll), or -1 for
    other loops (uvloop, proactor, a loop without an epoll selector): what
    :meth:`LoopBridge.serve_idle` may watch, and only where it knows ``_ready`` and
    ``_scheduled`` (BaseEventLoop's ready callbacks and timers)."""
    from asyncio import BaseEventLoop

    selector = getattr(loop, "_selector", None)
    fileno = getattr(selector, "fileno", None)
    if not isinstance(loop, BaseEventLoop) or fileno is None:
        return -1
    if not (hasattr(loop, "_ready") and hasattr(loop, "_scheduled")):
        return -1
    return int(fileno())


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopBridge] = (
    weakref.WeakKeyDictionary()
)


_get_running_loop: Any = None  # asyncio.get_running_loop, once asyncio is imported
_last: LoopBridge | None = None  # the bridge asked for last: every call asks, nearly always the same


def bridge() -> LoopBridge:
    """The running loop's bridge (made on first use)."""
    global _get_running_loop, _last
    if _get_running_loop is None:
        # asyncio is imported here, on the first async call, not by `import orroute`: a sync
        # client is usable without it (importing asyncio is most of the time to a usable client).
        from asyncio import get_running_loop

        _get_running_loop = get_running_loop
    loop = _get_running_loop()
    last = _last
    if last is not None and last.loop is loop:  # no import nor weak-key lookup (~1 µs a call)
        return last
    b = _bridges.get(loop)
    if b is None:
        b = _bridges[loop] = LoopBridge(loop)
    _last = b
    return b


def lend_terms(lending: bool = True, b: LoopBridge | None = None
               ) -> tuple[LoopBridge, Any, int, float | None]:
    """The bridge ``b`` (the running loop's, :func:`bridge`, when None) and a plain call's
    ``(lend_to, loop_fd, serve_timeout)`` on it, in one frame (the bridge asked for and its
    terms read cost an awaited manager call two frames, ~0.5k instructions more): the notifier
    to lend an idle network loop to, or all None while other calls of this event loop are
    awaited (its thread has their results to handle, and a loop lent to it then flaps between
    the threads: each call that finds the network loop idle takes it, the next call's command
    takes it back, so that one thread does both threads' work; with a ledger at concurrency 64
    the network loop often idles, and lending cost 12-25% of the throughput; ``lending=False``:
    the notifier whatever the waiters), the event loop's descriptor, and how long the call may
    be served on this thread now (:meth:`LoopBridge.serve_idle`): until the loop's next timer,
    -1.0 for no limit, None when the loop has work to do (a ready callback, a timer due) or is
    not one whose work this can see."""
    if b is None:
        b = _last
        # _get_running_loop is set once a bridge was made (_last)
        if b is None or b.loop is not _get_running_loop():
            b = bridge()
    if lending and b.waiters:
        return b, None, None, None  # type: ignore[return-value]
    loop: Any = b.loop
    if b._loop_fd < 0 or loop._ready:
        return b, b.notifier, b._loop_fd, None
    timeout = -1.0
    if loop._scheduled:
        timeout = loop._scheduled[0].when() - loop.time()
        if timeout <= 0:
            return b, b.notifier, b._loop_fd, None
    return b, b.notifier, b._loop_fd, timeout


async def wait_any(armables: Sequence[Any]) -> None:
    """Until one of ``armables`` has news: one future armed on every one (no task per run)."""
    b = bridge()
    fut = b.loop.create_future()
    tokens = []
    for armable in armables:
        token = b.next_token
        b.next_token += 1
        b.waiters[token] = fut
        tokens.append(token)
        armable.arm(b.notifier, token)
    try:
        await fut
    finally:
        for token in tokens:
            b.waiters.pop(token, None)


class BlockingWaiter:
    """:class:`LoopBridge` for a thread without an event loop (sync streaming): an eventfd of
    its own, waited on with ``select`` (the GIL released)."""

    def __init__(self) -> None:
        self.notifier = _core.Notifier()

    def wait(self, armable: Any) -> None:
        """Until ``armable`` has news (at once when a chunk or the end is already waiting)."""
        import select

        armable.arm(self.notifier, 1)
        select.select([self.notifier.fd], [], [])
        self.notifier.drain()


async def wait(armable: Any) -> None:
    """Waits for ``armable`` to finish; cancelling the await cancels it (the upstream transfer
    stops, a reservation is released).

    :meth:`LoopBridge.wait` written out in this one coroutine: every awaited call passes here,
    and each coroutine layer costs its creation and a resume per call."""
    if getattr(armable, "done", False) is True:
        return
    b = bridge()
    token = b.next_token
    b.next_token = token + 1
    fut = b.loop.create_future()
    b.waiters[token] = fut
    try:
        armable.arm(b.notifier, token)
        await fut
    except BaseException:
        armable.cancel()
        raise
    finally:
        b.waiters.pop(token, None)
