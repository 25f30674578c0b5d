"""Runs user callbacks so that none of them can break, stall or slow down a call (private).

A call hands each callback to :func:`submit` and goes on. Synchronous callbacks run one after
another on a background thread, in the order the calls submitted them; coroutine callbacks run as
tasks on the submitting thread's event loop when it has one (so they may touch loop-bound objects),
else on that background thread's own loop. Every callback has a time limit:

- an exception is logged (its class and traceback; the event is not) and the next callback runs;
- a synchronous callback still running after its limit is reported as hung, and later callbacks go
  on on a fresh thread (the hung one is left to finish on its own; after ``MAX_HUNG`` of them
  callbacks are dropped, with an error logged, instead of starting more threads);
- a coroutine callback is cancelled at its limit.

The queue is bounded (``MAX_PENDING``): a callback slower than the calls that feed it loses events
(logged) instead of growing memory without bound.
"""

from __future__ import annotations

import atexit
import collections
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio itself is imported on use: a sync client never needs it
    import asyncio

_log = logging.getLogger("orroute")

#: Events waiting for the callback thread before new ones are dropped.
MAX_PENDING = 10_000
#: Hung callback threads tolerated before callbacks are dropped instead.
MAX_HUNG = 16


def _name(cb: Any) -> str:
    return getattr(cb, "__qualname__", None) or type(cb).__name__


def _is_async(cb: Any) -> bool:
    return inspect.iscoroutinefunction(cb) or inspect.iscoroutinefunction(
        getattr(cb, "__call__", None)  # noqa: B004 (an object with an async __call__)
    )


async def _bounded(cb: Callable[..., Any], arg: Any, timeout: float) -> None:
    import asyncio

    try:
        await asyncio.wait_for(cb(arg), timeout)
    except asyncio.TimeoutError:
        _log.error("callback %s did not finish within %.1fs and was cancelled", _name(cb), timeout)
    except Exception:  # noqa: BLE001 (a callback's failure is logged, never raised)
        _log.exception("callback %s raised", _name(cb))


def _call_sync(cb: Callable[..., Any], arg: Any, timeout: float) -> None:
    try:
        out = cb(arg)
        if inspect.isawaitable(out):  # a plain function that returned a coroutine
            import asyncio

            asyncio.run(_bounded(lambda _: out, None, timeout))
    except Exception:  # noqa: BLE001
        _log.exception("callback %s raised", _name(cb))


class _Worker:
    """The background thread of synchronous callbacks (one per process, started on first use)."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: collections.deque[tuple[Callable[..., Any], Any, float]] = collections.deque()
        self._generation = 0  # bumped when a hung thread is left behind
        self._thread: threading.Thread | None = None
        self._busy: tuple[float, float, str] | None = None  # (since, limit, callback name)
        self._hung = 0
        self._dropped = 0

    def submit(self, cb: Callable[..., Any], arg: Any, timeout: float) -> None:
        with self._cv:
            self._check_hung()
            if self._hung >= MAX_HUNG or len(self._queue) >= MAX_PENDING:
                self._dropped += 1
                if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                    _log.error("callback %s dropped (%d so far): callbacks are hung or too slow",
                               _name(cb), self._dropped)
                return
            self._queue.append((cb, arg, timeout))
            if self._thread is None:
                self._start()
            self._cv.notify()

    def _start(self) -> None:
        gen = self._generation
        self._thread = threading.Thread(target=self._run, args=(gen,), daemon=True,
                                        name="orroute-callbacks")
        self._thread.start()

    def _check_hung(self) -> None:
        """Leaves a callback past its limit to its thread and starts a fresh one (lock held)."""
        if self._busy is None:
            return
        since, limit, name = self._busy
        if time.monotonic() - since <= limit:
            return
        self._hung += 1
        _log.error("callback %s has run for more than %.1fs; later callbacks run on a new thread",
                   name, limit)
        self._generation += 1
        self._busy = None
        self._thread = None
        if self._queue:
            self._start()
        self._cv.notify_all()

    def _run(self, gen: int) -> None:
        while True:
            with self._cv:
                while not self._queue and gen == self._generation:
                    if not self._cv.wait(timeout=30.0) and not self._queue:
                        if gen == self._generation:  # idle: the thread ends, restarts on demand
                            self._thread = None
                        return
                if gen != self._generation:
                    return
                cb, arg, timeout = self._queue.popleft()
                self._busy = (time.monotonic(), timeout, _name(cb))
            _call_sync(cb, arg, timeout)
            with self._cv:
                if gen != self._generation:  # declared hung meanwhile: a newer thread took over
                    self._hung = max(0, self._hung - 1)
                    return
                self._busy = None
                self._cv.notify_all()

    def flush(self, timeout: float) -> bool:
        """Waits until every submitted synchronous callback has run (or was declared hung).
        True if that happened within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                self._check_hung()
                if not self._queue and self._busy is None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))


_worker = _Worker()
_tasks: set[asyncio.Task[None]] = set()  # coroutine callbacks running on a caller's loop
atexit.register(lambda: _worker.flush(2.0))


def _new_worker_in_child() -> None:
    """A forked child has no callback thread and its copy of the queue holds the parent's
    events (the parent runs them; the lock may have been held at the fork): a fresh worker."""
    global _worker
    _worker = _Worker()


os.register_at_fork(after_in_child=_new_worker_in_child)


def submit(cb: Callable[..., Any], arg: Any, timeout: float) -> None:
    """Runs ``cb(arg)`` later, contained (see the module docstring). Never raises."""
    if _is_async(cb):
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(_bounded(cb, arg, timeout))
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)
            return
    _worker.submit(cb, arg, timeout)


def flush(timeout: float = 5.0) -> bool:
    """Waits for the synchronous callbacks submitted so far (tests, shutdown)."""
    return _worker.flush(timeout)
