"""A bare orroute HTTP server with an echo app, and a raw-socket client: what the HTTP layer's
tests (framing, limits, timeouts) and its fuzz harness drive."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h11

from orroute._http_server import (
    Connection,
    HttpLimits,
    HttpServer,
    RawRequest,
    head_bytes,
    new_event_loop,
    serve_in_thread,
)


class EchoApp:
    """Answers every request with its method, target and body as JSON. ``/slow`` answers after
    ``slow`` seconds; ``/boom`` raises (sync), ``/aboom`` raises after awaiting."""

    def __init__(self) -> None:
        self.conns: set[Connection] = set()
        self.slow = 0.5
        self.handled = 0
        self.targets: list[str] = []

    def _connection_opened(self, conn: Connection) -> None:
        self.conns.add(conn)

    def _connection_closed(self, conn: Connection) -> None:
        self.conns.discard(conn)

    def _handle(self, conn: Connection, raw: RawRequest) -> Any:
        self.handled += 1
        self.targets.append(raw.target)
        if raw.target == "/boom":
            raise RuntimeError("handler bug")
        if raw.target in ("/slow", "/aboom"):
            return self._later(conn, raw)
        self._answer(conn, raw)
        return None

    async def _later(self, conn: Connection, raw: RawRequest) -> None:
        await asyncio.sleep(self.slow if raw.target == "/slow" else 0.01)
        if raw.target == "/aboom":
            raise RuntimeError("async handler bug")
        self._answer(conn, raw)

    @staticmethod
    def _answer(conn: Connection, raw: RawRequest) -> None:
        body = json.dumps({"method": raw.method, "target": raw.target,
                           "body": raw.body.decode("latin-1")}).encode()
        conn.write(head_bytes(200, [("Content-Type", "application/json")], length=len(body),
                              close=not raw.keep_alive) + body)


class Served:
    def __init__(self, app: EchoApp, server: HttpServer, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.server = server
        self.loop = loop

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def open_connections(self) -> int:
        return len(self.server.connections)


@contextmanager
def echo_server(limits: HttpLimits | None = None) -> Iterator[Served]:
    app = EchoApp()
    server = HttpServer(app, limits)
    loop = new_event_loop()

    async def setup() -> None:
        await server.start("127.0.0.1", 0)

    thread = serve_in_thread(loop, setup, name="echo-http")
    try:
        yield Served(app, server, loop)
    finally:
        async def stop() -> None:
            server.close()
            for c in list(app.conns):
                c.abort()
            await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def read_responses(sock: socket.socket, count: int = 1, timeout: float = 10.0
                   ) -> list[tuple[int, dict[str, str], bytes]]:
    """Reads ``count`` responses (status, lower-case headers, body) with h11, or fewer if the
    server closes first."""
    conn = h11.Connection(h11.CLIENT)

    def prime() -> None:  # h11 reads a response only after a request was sent
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())

    prime()
    out: list[tuple[int, dict[str, str], bytes]] = []
    sock.settimeout(timeout)
    status, headers, body = 0, {}, bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            break
        if event is h11.NEED_DATA:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                data = b""
            conn.receive_data(data)  # b"": the server closed
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            body = bytearray()
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            out.append((status, headers, bytes(body)))
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                break
            prime()
        elif isinstance(event, h11.ConnectionClosed):
            break
    return out


def exchange(served: Served, data: bytes, count: int = 1, *, shut: bool = False
             ) -> list[tuple[int, dict[str, str], bytes]]:
    """Sends ``data`` on a new connection (then a FIN if ``shut``) and reads the answers."""
    with served.connect() as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return read_responses(s, count)


def h11_accepts(data: bytes) -> bool:
    """What h11 (the reference parser) decides for these bytes: one complete, valid request."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return False
            if isinstance(event, h11.EndOfMessage):
                return True
    except h11.RemoteProtocolError:
        return False
