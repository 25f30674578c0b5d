"""orroute's HTTP/1.1 server on asyncio: requests parsed by llhttp (through ``httptools``, the
parser uvicorn and Node.js use), keep-alive, pipelining, ``Expect: 100-continue``, chunked or
close-delimited responses, with the limits and timeouts of :class:`HttpLimits`.

Shared by ``orroute.testing.FakeOpenRouter`` and the gateway (``orroute serve``). It knows
nothing about either: each parsed request goes to ``app._handle(conn, request)``, which either
answers at once (returns None) or returns a coroutine that answers later; the connection answers
no further request until that coroutine is done (requests pipelined behind it are parsed and
queued). A connection the peer closes cancels that coroutine (``asyncio.CancelledError`` inside
the handler) if its response had begun; a request followed at once by the peer's FIN (a
half-close, as ``nc`` does) is still answered, then the connection closes. A handler that raises is
answered 500 with a request id (or, if it had started its response, the connection is aborted).

The parser decides framing (RFC 9112: Content-Length, Transfer-Encoding, chunk sizes, header
syntax); this module only counts and times what it is fed, and answers 400 / 408 / 413 / 431.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import httptools

from ._http_limits import HttpLimits
from ._http_response import error_bytes, head_bytes, header_value

__all__ = [
    "App",
    "Connection",
    "HttpLimits",
    "HttpServer",
    "RawRequest",
    "head_bytes",
    "header_value",
    "new_event_loop",
]

_log = logging.getLogger("orroute.http")

_OWS = (b" ", b"\t")
# connection phases
_IDLE, _HEAD, _BODY = 0, 1, 2


class RawRequest:
    """One parsed request. ``headers`` keys are lower-case; duplicates joined with ", "."""

    __slots__ = ("_id", "body", "headers", "keep_alive", "method", "target", "version")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 body: bytes, keep_alive: bool = True) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self._id = 0

    @property
    def request_id(self) -> str:
        """``req_`` and 16 hex digits, unique in this process (formatted only when asked for)."""
        return f"req_{self._id:016x}"


class App(Protocol):
    def _handle(
        self, conn: Connection, request: RawRequest
    ) -> Coroutine[Any, Any, None] | None: ...

    def _connection_opened(self, conn: Connection) -> None: ...

    def _connection_closed(self, conn: Connection) -> None: ...


class _Reject(Exception):
    """Raised inside a parser callback: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    """Listens, keeps the connection cap and checks every connection's deadlines.

    >>> server = HttpServer(app, HttpLimits(idle_timeout=30))  # doctest: +SKIP
    >>> await server.start("127.0.0.1", 0); server.port  # doctest: +SKIP
    """

    def __init__(self, app: App, limits: HttpLimits | None = None) -> None:
        self.app = app
        self.limits = limits or HttpLimits()
        self.connections: set[Connection] = set()
        self.accepted = 0  # connections admitted since start (a client that reuses its own opens few)
        self.evicted = 0  # connections closed at the cap to make room
        self.refused = 0  # connections answered 503 at the cap
        self.rejected: dict[int, int] = {}  # requests answered here (400/408/413/431) by status
        self._server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = int.from_bytes(os.urandom(4), "big") << 24  # request ids unique per process
        self.port = 0

    async def start(self, host: str, port: int, *, backlog: int = 4096,
                    reuse_port: bool | None = None) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self.app, self), host, port, backlog=backlog, reuse_port=reuse_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._timer = loop.call_later(self.limits.tick(), self._sweep)

    def close(self) -> None:
        """Stops listening and checking deadlines (open connections stay: abort them)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    def next_request_id(self) -> int:
        self._ids += 1
        return self._ids

    def _admit(self, conn: Connection) -> bool:
        """At the cap, closes the connection idle the longest (a slow or parked client cannot
        keep a new one out); False if every connection is busy."""
        if len(self.connections) < self.limits.max_connections:
            self.connections.add(conn)
            self.accepted += 1
            return True
        victim = min((c for c in self.connections if not c.busy), key=lambda c: c.since,
                     default=None)
        if victim is None:
            self.refused += 1
            return False
        self.evicted += 1
        victim.abort()
        self.connections.discard(victim)
        self.connections.add(conn)
        self.accepted += 1
        return True

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for conn in list(self.connections):
            conn.check_deadline(now)
        self._timer = self._loop.call_later(self.limits.tick(), self._sweep)


class Connection(asyncio.Protocol):
    """One client connection. All methods run on the server's event loop thread."""

    def __init__(self, app: App, server: HttpServer) -> None:
        self.app = app
        self.server = server
        self.limits = server.limits
        self._max_head = server.limits.max_header_bytes
        self._max_headers = server.limits.max_headers
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[RawRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wrote = False  # something of the current request's response was written
        self._closed = False
        self._refused = False
        self._closing = False  # answer what is in progress, then close
        self._eof = False
        self._reading_paused = False
        self._fatal: bytes | None = None  # the error to answer once the queue is done
        self._upgrading: tuple[RawRequest, int, bytearray] | None = None  # (request, length, body)
        self._closed_future: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._paused_at = 0.0
        # the message being parsed
        self._phase = _IDLE
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_len = 0
        self._head_len = 0
        self._head_fed = 0  # bytes of whole feeds that started and ended inside the head
        self._expect_continue = False
        self._version = "1.1"
        self._now: Callable[[], float] = time.monotonic  # the loop's clock once connected
        self.since = 0.0  # when the current phase began (loop time)
        self.requests_served = 0
        self.last_status = 0  # set by a handler that writes a response head (for its metrics)

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self._now = asyncio.get_running_loop().time
        self.since = self._now()
        if not self.server._admit(self):
            self._closed = self._refused = True
            transport.write(error_bytes(503, "too many connections"))  # type: ignore[attr-defined]
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.app._connection_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:  # answered 503 at the cap: never opened
            return
        self._closed = True
        self.server.connections.discard(self)
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)
        self._wake_drain()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.app._connection_closed(self)

    def data_received(self, data: bytes) -> None:
        if self._upgrading is not None:
            self._upgrade(data)
            return
        if self._closing or self._fatal is not None:
            return  # past an error or a last request: the rest is not read
        in_head = self._phase == _HEAD
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            # Upgrade (h2c, websocket) / CONNECT: not supported, so the request is answered as
            # plain HTTP/1.1 and the connection closes. llhttp stops before an upgrading request's
            # body (curl --http2 sends h2c with its POST): read Content-Length bytes of it here.
            self._upgrade(data[int(e.args[0]):] if e.args else b"")
            return
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            if isinstance(cause, _Reject):
                self._fail(cause.status, str(cause))
            else:  # a bug in a callback: still an answer, not a dropped connection
                _log.error("HTTP parser callback failed", exc_info=cause)
                self._fail(500, "internal error while reading the request")
            return
        except httptools.HttpParserError as e:
            self._fail(400, f"malformed request: {_reason(e)}")
            return
        if self._phase == _HEAD:
            # llhttp holds a header line it has not finished in memory: count whole feeds spent
            # inside one head so a never-ending line is cut off too.
            self._head_fed = self._head_fed + len(data) if in_head else 0
            if max(self._head_fed, self._head_len) > self.limits.max_header_bytes:
                self._fail(431, "request header fields too large")
                return
        self._pump()

    def eof_received(self) -> bool | None:
        # A half-close: the peer sends nothing more but may still read. Answer what arrived.
        self._eof = True
        if self._closed_future is not None and not self._closed_future.done():
            self._closed_future.set_result(None)  # for wait_closed(): no more requests come
        if self._task is not None and self._wrote:
            # A response was under way (a stream): the client closed while reading it, as clients
            # that stop a stream do. Stop the handler (and its upstream call) now, not at the
            # next write that fails.
            self._task.cancel()
            self.close()
        elif self._task is None and not self._queue:
            self.close()
        return True

    def pause_writing(self) -> None:
        self._paused = True
        if self.server._loop is not None:
            self._paused_at = self.server._loop.time()

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()
        self._pump()  # the requests held back while the client was not reading

    # --- llhttp callbacks (run inside feed_data) ------------------------------------------------

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self.since = self._now()
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = self._head_len = self._head_fed = 0
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_len += len(url)
        if self._head_len > self.limits.max_header_bytes:
            raise _Reject(431, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        # The hot path of every request (once per header): limits first, in one branch.
        n = self._head_len = self._head_len + len(name) + len(value) + 4
        headers = self._headers
        if n > self._max_head or len(headers) >= self._max_headers:
            raise _Reject(431, "request header fields too large" if n > self._max_head
                          else "too many header fields")
        key = name.decode("latin-1").lower()
        if value[-1:] in _OWS:  # llhttp drops leading whitespace, not trailing
            value = value.rstrip(b" \t")
        text = value.decode("latin-1")
        old = headers.get(key)
        if old is None:
            headers[key] = text
        elif key == "host":  # RFC 9112 3.2: exactly one Host
            raise _Reject(400, "more than one Host header")
        else:
            headers[key] = f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        # What llhttp leaves to the server (RFC 9112 3.2 and 6.1).
        self._version = self._parser.get_http_version()
        if self._version == "1.0":
            if "transfer-encoding" in self._headers:
                raise _Reject(400, "Transfer-Encoding in an HTTP/1.0 request")
        elif "host" not in self._headers:
            raise _Reject(400, "missing Host header")
        length = self._headers.get("content-length")
        if length is not None:  # llhttp checked its syntax
            if not length.isdigit():
                raise _Reject(400, "bad Content-Length")
            if int(length) > self.limits.max_body_bytes:
                raise _Reject(413, "request body too large")
        self._expect_continue = "100-continue" in self._headers.get("expect", "").lower()
        if self._expect_continue and self._task is None and not self._queue:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._expect_continue = False

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len > self.limits.max_body_bytes:
            raise _Reject(413, "request body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        p = self._parser
        request = RawRequest(
            p.get_method().decode("ascii"),
            self._url.decode("latin-1"),
            "HTTP/1.1" if self._version == "1.1" else f"HTTP/{self._version}",
            self._headers,
            b"".join(self._body),
            p.should_keep_alive(),
        )
        self._phase = _IDLE
        self.since = self._now()
        self._body = []
        self._queue.append(request)
        if len(self._queue) > self.limits.max_pipeline and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    # --- for handlers -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        """A request is being answered (or queued to be)."""
        return self._task is not None or bool(self._queue)

    def write(self, data: bytes) -> None:
        if not self._closed and self.transport is not None:
            self._wrote = True
            self.transport.write(data)

    async def drain(self) -> None:
        """Waits until the kernel buffer accepts more data (or the connection is gone)."""
        if self._paused and not self._closed:
            loop = asyncio.get_running_loop()
            self._drain_waiter = loop.create_future()
            await self._drain_waiter

    async def wait_closed(self) -> None:
        """Waits until the peer closes (or half-closes) the connection, or the server closes it."""
        if self._closed or self._eof:
            return
        if self._closed_future is None:
            self._closed_future = asyncio.get_running_loop().create_future()
        await self._closed_future

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
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

    # --- deadlines ------------------------------------------------------------------------------

    def check_deadline(self, now: float) -> None:
        """Called by the server every tick: enforces the timeouts of the current phase."""
        lim = self.limits
        if self._closed:
            return
        if self._paused and now - self._paused_at > lim.write_timeout:
            _log.info("aborting a connection whose client stopped reading")
            self.abort()  # cancels the handler, if one is still writing
            return
        if self._task is not None:  # answering: the handler's own timeouts apply
            return
        if self._phase == _HEAD and now - self.since > lim.header_timeout:
            self._fail(408, "request headers not received in time")
        elif self._phase == _BODY and now - self.since > lim.request_timeout:
            self._fail(408, "request body not received in time")
        elif self._phase == _IDLE and not self._queue and now - self.since > lim.idle_timeout:
            self.close()

    # --- internals ----------------------------------------------------------------------------

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, status: int, message: str) -> None:
        """Answers ``status`` once the requests already queued are answered, then closes."""
        if self._closing and not self._queue and self._task is None:
            self.close()
            return
        self.server.rejected[status] = self.server.rejected.get(status, 0) + 1
        self._fatal = error_bytes(status, message)
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._pump()

    def _upgrade(self, data: bytes) -> None:
        """Collects the body of a request llhttp handed over as upgraded (see data_received);
        queues it once complete, then answers what is queued and closes."""
        if self._upgrading is None:
            request = self._queue.pop() if self._queue else None
            declared = request.headers.get("content-length", "0") if request is not None else "0"
            if request is None or request.method == "CONNECT" or not declared.isdigit():
                if request is not None:
                    self._queue.append(request)
                self._closing_after_queue()
                return
            if int(declared) > self.limits.max_body_bytes:
                self._fail(413, "request body too large")
                return
            self._upgrading = (request, int(declared), bytearray())
            self._phase = _BODY  # request_timeout applies while it arrives
        request, size, body = self._upgrading
        body += data[: size - len(body)]
        if len(body) < size:
            return
        self._upgrading = None
        self._phase = _IDLE
        request.body = bytes(body)
        self._queue.append(request)
        self._closing_after_queue()

    def _closing_after_queue(self) -> None:
        if self._queue:
            self._queue[-1].keep_alive = False
        self._closing = True
        self._pump()

    def _pump(self) -> None:
        """Answers queued requests one at a time, in order. Not while the client leaves what
        was written unread (writing paused): a client pipelining requests it never reads the
        answers of would otherwise have them all buffered here; reading stays paused too, so the
        queue stays within max_pipeline (resume_writing goes on)."""
        while self._task is None and not self._closed and not self._paused:
            if not self._queue:
                if self._expect_continue and self._phase == _BODY and self._fatal is None:
                    # the request being read waited for the ones before it: its turn now
                    self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self._expect_continue = False
                if self._fatal is not None:
                    self.write(self._fatal)
                    self.close()
                elif self._eof or self._closing:
                    self.close()
                elif self._reading_paused and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return
            request = self._queue.popleft()
            request._id = self.server.next_request_id()
            self.requests_served += 1
            self._wrote = False
            if not request.keep_alive:
                self._closing = True
                self._queue.clear()
            try:
                pending = self.app._handle(self, request)
            except Exception:  # noqa: BLE001 - answered 500, logged with its id
                self._handler_failed(request)
                return
            if pending is not None:
                self._task = asyncio.ensure_future(self._finish(pending, request))
                return
            if self._closing:
                self.close()
                return

    def _handler_failed(self, request: RawRequest) -> None:
        _log.exception("handler failed on %s %s (request id %s)", request.method,
                       header_value(request.target[:200]), request.request_id)
        if self._wrote:  # a response was under way: only an abort tells the client
            self.abort()
            return
        self.write(error_bytes(500, "internal error", request_id=request.request_id))
        self.close()

    async def _finish(self, pending: Coroutine[Any, Any, None], request: RawRequest) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            return
        except Exception:  # noqa: BLE001 - answered 500, logged with its id
            self._task = None
            self._handler_failed(request)
            return
        self._task = None
        self.since = self._now()
        if self._closing and not self._queue:
            self.close()
        else:
            self._pump()


def _reason(e: Exception) -> str:
    text = str(e)
    return text.split(": ", 1)[-1] if text else type(e).__name__


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
