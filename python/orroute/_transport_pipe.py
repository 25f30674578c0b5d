"""The in-process transport's pipe: a stand-in for the gateway's ``Connection`` that captures
what the gateway writes (status, headers, body) and hands the body to httpx, bounded.

Used by ``orroute.transport`` only; everything here runs on the event loop the request runs on.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

__all__ = ["Pipe", "abandon", "abort", "content_length", "finished", "next_chunk"]

#: Bytes of a streamed body buffered ahead of a slow reader before the relay waits (the engine's
#: own bounded queue then pauses the upstream transfer).
_PIPE_LIMIT = 1 << 16
_HOP_HEADERS = frozenset({"connection", "transfer-encoding", "keep-alive"})


class Pipe:
    """A stand-in for the gateway's ``Connection``: captures the status line and headers the
    gateway writes, then queues the body (a whole reply, or a stream's SSE bytes) for httpx.

    Runs on one event loop. ``drain`` waits while more than ``_PIPE_LIMIT`` bytes are unread, so
    a slow reader pauses the relay instead of growing a buffer; a reader that takes nothing for
    ``write_timeout`` seconds meanwhile is taken for gone and the pipe closes, as the gateway's
    socket would (``HttpLimits.write_timeout``)."""

    def __init__(self, write_timeout: float) -> None:
        self.write_timeout = write_timeout
        self.closed = False  # the reader left: the gateway stops relaying (and the engine run)
        self.reader_idle = False  # closed because the reader took nothing for write_timeout
        self.last_status = 0
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.eof = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._news = asyncio.Event()
        self._room = asyncio.Event()

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.status:
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            self.status = int(lines[0].split(" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.lower() not in _HOP_HEADERS:
                    self.headers.append((name, value.strip()))
        if data:
            self._chunks.append(data)
            self._size += len(data)
        self._news.set()

    async def drain(self) -> None:
        # A reader may be gone without closing: an openai stream dropped unclosed is garbage
        # only the cyclic collector frees (the stream and its ``__stream__`` generator refer to
        # each other, as do httpx's response and its bound stream), so no __del__ tells us, and
        # the paused run would hold its budget reservation until the stream deadline.
        while self._size > _PIPE_LIMIT and not self.closed:
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), self.write_timeout)
            except TimeoutError:
                self.reader_idle = True
                self.abort()  # the gateway stops the run: settled at what was streamed

    def close(self) -> None:
        self.eof = True
        self._news.set()

    def abort(self) -> None:
        self.closed = True
        self._chunks.clear()
        self._size = 0
        self._room.set()

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self._room.set()
        return data

    async def wait(self, task: asyncio.Future[Any], ready: Any) -> None:
        """Waits until ``ready()`` or the handler ended."""
        while not ready() and not task.done():
            self._news.clear()
            await self._news.wait()


def content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.isdigit():
            return int(value)
    return None


def finished(pipe: Pipe, task: Any) -> bool:
    return pipe.eof or task is None or task.done()


async def next_chunk(pipe: Pipe, task: Any) -> bytes:
    """The next piece of the body, b"" at its end."""
    while True:
        data = pipe.take()
        if data:
            return data
        if finished(pipe, task):
            return pipe.take()
        await pipe.wait(task, lambda: pipe._chunks or pipe.eof)


async def abort(pipe: Pipe, task: Any) -> None:
    """The reader left early: stop the relay (the gateway cancels the engine run, which stops
    the upstream transfer and releases the budget hold)."""
    pipe.abort()
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def abandon(loop: asyncio.AbstractEventLoop, pipe: Pipe, task: Any) -> None:
    """A body dropped unread and unclosed (an openai Stream left to the garbage collector): the
    relay would wait for a reader forever, holding the budget reservation; stop it."""
    if task is None or task.done() or loop.is_closed():
        return

    def stop() -> None:
        pipe.abort()
        task.cancel()

    try:
        loop.call_soon_threadsafe(stop)
    except RuntimeError:  # the loop closed meanwhile: its tasks are gone with it
        pass
