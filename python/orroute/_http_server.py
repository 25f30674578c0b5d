"""A minimal HTTP/1.1 server protocol on asyncio: keep-alive, pipelining, Content-Length and
chunked request bodies, ``Expect: 100-continue``, chunked or close-delimited responses.

Shared by ``orroute.testing.FakeOpenRouter`` and the gateway (``orroute serve``). It knows
nothing about either: each parsed request goes to ``app._handle(conn, request)``, which either
answers at once (returns None) or returns a coroutine that answers later; the connection reads
no further request until that coroutine is done. A client that disconnects cancels that
coroutine (``asyncio.CancelledError`` inside the handler).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any, Protocol

__all__ = ["App", "Connection", "RawRequest", "head_bytes", "new_event_loop"]

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024

_REASONS = {s.value: s.phrase for s in HTTPStatus}


class RawRequest:
    """One parsed request. ``headers`` keys are lower-case; duplicates joined with ", "."""

    __slots__ = ("body", "headers", "keep_alive", "method", "target", "version")

    def __init__(
        self, method: str, target: str, version: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        conn = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        else:
            self.keep_alive = "close" not in conn


class App(Protocol):
    def _handle(
        self, conn: Connection, request: RawRequest
    ) -> Coroutine[Any, Any, None] | None: ...

    def _connection_opened(self, conn: Connection) -> None: ...

    def _connection_closed(self, conn: Connection) -> None: ...


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def head_bytes(
    status: int,
    headers: list[tuple[str, str]],
    *,
    length: int | None = None,
    chunked: bool = False,
    close: bool = False,
) -> bytes:
    """The status line and headers of a response, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    if length is not None:
        lines.append(f"Content-Length: {length}")
    elif chunked:
        lines.append("Transfer-Encoding: chunked")
    if close:
        lines.append("Connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class Connection(asyncio.Protocol):
    """One client connection. All methods run on the server's event loop thread."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._busy = False
        self._closed = False
        self._closed_future: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._task: asyncio.Task[None] | None = None
        self._sent_continue = False
        self.requests_served = 0

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.app._connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)
        self._wake_drain()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.app._connection_closed(self)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            self._process()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    # --- for handlers -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        """Waits until the kernel buffer accepts more data (or the connection is gone)."""
        if self._paused and not self._closed:
            loop = asyncio.get_running_loop()
            self._drain_waiter = loop.create_future()
            await self._drain_waiter

    async def wait_closed(self) -> None:
        """Waits until the peer or the server closes the connection."""
        if self._closed:
            return
        if self._closed_future is None:
            self._closed_future = asyncio.get_running_loop().create_future()
        await self._closed_future

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.close()

    def reset(self) -> None:
        """Closes with a TCP RST (SO_LINGER 0) so the client sees 'connection reset by peer'."""
        if self.transport is None or self._closed:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.abort()

    # --- internals ----------------------------------------------------------------------------

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _process(self) -> None:
        while not self._closed and self._buf:
            try:
                request = self._parse()
            except _BadRequest as e:
                body = f'{{"error":{{"code":{e.status},"message":"{e}"}}}}'.encode()
                self.write(
                    head_bytes(
                        e.status,
                        [("Content-Type", "application/json")],
                        length=len(body),
                        close=True,
                    )
                    + body
                )
                self.close()
                return
            if request is None:
                return
            self.requests_served += 1
            pending = self.app._handle(self, request)
            if pending is not None:
                self._busy = True
                self._task = asyncio.ensure_future(self._finish(pending, request.keep_alive))
                return
            if not request.keep_alive:
                self.close()
                return

    async def _finish(self, pending: Coroutine[Any, Any, None], keep_alive: bool) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - a failing handler drops its connection
            self.abort()
            return
        finally:
            self._busy = False
            self._task = None
        if not keep_alive:
            self.close()
        elif self._buf and not self._closed:
            self._process()

    def _parse(self) -> RawRequest | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise _BadRequest(431, "Request header fields too large")
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLF between requests
            lines.pop(0)
        if not lines:
            del buf[: end + 4]
            return None
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest(400, "Malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "Malformed header line")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _parse_chunked(buf, start)
            if parsed is None:
                self._maybe_continue(headers)
                return None
            body, consumed = parsed
        else:
            try:
                length = int(headers.get("content-length", "0") or 0)
            except ValueError:
                raise _BadRequest(400, "Bad Content-Length") from None
            if length < 0 or length > MAX_BODY:
                raise _BadRequest(413, "Payload too large")
            if len(buf) - start < length:
                self._maybe_continue(headers)
                return None
            body = bytes(buf[start : start + length])
            consumed = start + length
        del buf[:consumed]
        self._sent_continue = False
        return RawRequest(method, target, version, headers, body)

    def _maybe_continue(self, headers: dict[str, str]) -> None:
        if not self._sent_continue and "100-continue" in headers.get("expect", "").lower():
            self._sent_continue = True
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def _parse_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        try:
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(400, "Bad chunk size") from None
        pos = eol + 2
        if size == 0:
            # optional trailers, then a blank line
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        if len(out) > MAX_BODY:
            raise _BadRequest(413, "Payload too large")
        pos += size + 2


def new_event_loop(use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when ``use_uvloop`` is None and uvloop is installed, or when it
    is True (ImportError if it is not installed); asyncio's otherwise."""
    if use_uvloop is not False:
        try:
            import uvloop  # type: ignore[import-not-found]

            return uvloop.new_event_loop()  # type: ignore[no-any-return]
        except ImportError:
            if use_uvloop:
                raise
    return asyncio.new_event_loop()


def serve_in_thread(
    loop: asyncio.AbstractEventLoop,
    setup: Callable[[], Coroutine[Any, Any, object]],
    *,
    name: str,
) -> threading.Thread:
    """Runs ``setup()`` on ``loop`` in a new daemon thread, then the loop until it is stopped.

    Returns once ``setup`` has finished. If it raised, the loop is closed and the exception is
    re-raised here, in the caller's thread. Stop with ``loop.call_soon_threadsafe(loop.stop)``
    and join the returned thread.
    """
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(setup())
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            failure.append(e)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    started.wait()
    if failure:
        thread.join()
        raise failure[0]
    return thread
