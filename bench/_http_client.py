"""The load generator's HTTP client (bench only): a small keep-alive HTTP/1.1 client on asyncio
streams. A few microseconds per request, so the figures measure the servers, not the client
(httpx's layers cost ~10x that). The gateway itself reaches the upstream through the engine's
libcurl loop; this file used to be its upstream client and stays here for the benchmark.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

__all__ = ["Upstream", "UpstreamConnectionError", "UpstreamResponse"]


class UpstreamConnectionError(Exception):
    """The upstream could not be reached, or closed the connection before answering."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        try:
            self.writer.transport.abort()
        except Exception:  # noqa: BLE001, S110 - closing a broken transport
            pass


class UpstreamResponse:
    """Status and headers of an upstream response; the body is read with :meth:`read` or
    :meth:`iter_chunks`. ``release()`` (or ``aclose()``) must be called when done: a fully read
    body returns the connection to the pool, anything else closes it."""

    __slots__ = ("_chunked", "_conn", "_done", "_length", "_pool", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], conn: _Conn, pool: Upstream) -> None:
        self.status = status
        self.headers = headers
        self._conn: _Conn | None = conn
        self._pool = pool
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        cl = headers.get("content-length")
        self._length = int(cl) if cl is not None and not self._chunked else None
        self._done = False

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        if conn is None:
            return b""
        if self._length is not None:
            data = await conn.reader.readexactly(self._length) if self._length else b""
            self._done = True
            return data
        parts = [c async for c in self.iter_chunks()]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked), in pieces of any size."""
        conn = self._conn
        if conn is None:
            return
        reader = conn.reader
        if self._chunked:
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    self._done = True
                    return
                data = await reader.readexactly(size + 2)
                yield data[:-2]
        elif self._length is not None:
            left = self._length
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                yield data
            self._done = True
        else:  # close-delimited
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                yield data
            self._done = True
            self._length = 0
            conn.close()
            self._conn = None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self.headers.get("connection", "").lower() != "close":
            self._pool._give_back(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        self.release()


class Upstream:
    """Keep-alive connections to one upstream base URL (``http://`` or ``https://``), used from one
    event loop. ``headers`` go on every request (the Authorization header among them)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        headers: dict[str, str] | None = None,
        max_idle: int = 512,
        connect_timeout: float = 10.0,
    ) -> None:
        split = urlsplit(base_url.rstrip("/"))
        if split.scheme not in ("http", "https"):
            raise ValueError(f"upstream base URL must be http(s), got scheme {split.scheme!r}")
        self.base_url = base_url.rstrip("/")
        self._tls = split.scheme == "https"
        self._host = split.hostname or "127.0.0.1"
        self._port = split.port or (443 if self._tls else 80)
        self._prefix = split.path
        host_header = split.netloc.rpartition("@")[2]
        fixed = {"Host": host_header, "User-Agent": "orroute-gateway", **(headers or {})}
        if api_key:
            fixed["Authorization"] = f"Bearer {api_key}"
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._idle: deque[_Conn] = deque()
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None

    def __repr__(self) -> str:
        return f"<Upstream {self.base_url}>"

    async def _connect(self) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._host, self._port, ssl=self._ssl, limit=1 << 20,
                    server_hostname=self._host if self._tls else None,
                ),
                self._connect_timeout,
            )
        except (OSError, asyncio.TimeoutError) as e:
            raise UpstreamConnectionError(
                f"cannot connect to upstream {self._host}:{self._port}: {type(e).__name__}"
            ) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return _Conn(reader, writer)

    def _give_back(self, conn: _Conn) -> None:
        if len(self._idle) < self._max_idle and conn.usable():
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> UpstreamResponse:
        """Sends one request and reads the response head. A request on a reused connection that
        the upstream had closed is retried once on a new one. Raises UpstreamConnectionError."""
        head = bytearray(f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode("latin-1"))
        head += self._fixed
        if headers:
            for k, v in headers.items():
                head += f"{k}: {v}\r\n".encode("latin-1")
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        head += b"\r\n"
        payload = bytes(head) + body if body else bytes(head)
        for attempt in (0, 1):
            reused = False
            conn: _Conn | None = None
            while self._idle:
                c = self._idle.pop()
                if c.usable():
                    conn, reused = c, True
                    break
                c.close()
            if conn is None:
                conn = await self._connect()
            try:
                conn.writer.write(payload)
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.CancelledError:
                conn.close()
                raise
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise UpstreamConnectionError(
                    f"upstream closed the connection: {type(e).__name__}"
                ) from None
            lines = raw[:-4].decode("latin-1").split("\r\n")
            try:
                status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                conn.close()
                raise UpstreamConnectionError("malformed upstream status line") from None
            hdrs: dict[str, str] = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            return UpstreamResponse(status, hdrs, conn, self)
        raise UpstreamConnectionError("upstream unreachable")  # pragma: no cover
