"""A pooled connection's socket stays in the network loop's epoll set while it idles, and the event
loop's watch keeps that set registered between leases: a server closing the idle connection
(its socket readable for ever) must not keep the event loop's reader running, and the next call
must open a new connection."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

import orroute
from orroute import _engine
from orroute.testing import FakeOpenRouter

MODEL = "test/a"


class ClosingProxy:
    """A TCP proxy to ``upstream`` whose client-side connections close_idle() shuts down."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self._clients: list[socket.socket] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self.accepted += 1
                self._clients.append(client)
                self._sockets += [client, server]
                for a, b in ((client, server), (server, client)):
                    t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                    self._threads.append(t)
                    t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close_idle(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            c.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._acceptor.join(5)
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)
        for s in sockets:
            s.close()


@pytest.fixture
def proxy():
    with FakeOpenRouter(models=[MODEL], use_uvloop=False, record=False) as fake:
        host, port = fake.url.split("//")[1].rsplit(":", 1)
        p = ClosingProxy((host, int(port)))
        yield p
        p.close()


def test_an_idle_connection_closed_by_the_server_does_not_keep_the_event_loop_busy(proxy, monkeypatch):
    drains = 0
    drain = _engine.loop.LoopBridge._drain

    def counting_drain(self: _engine.loop.LoopBridge) -> None:
        nonlocal drains
        drains += 1
        drain(self)

    monkeypatch.setattr(_engine.loop.LoopBridge, "_drain", counting_drain)

    async def main() -> tuple[int, int]:
        client = orroute.AsyncOpenRouter(api_key="sk-or-test", base_url=f"http://127.0.0.1:{proxy.port}/api/v1")
        messages = [{"role": "user", "content": "Say hi"}]
        for _ in range(20):  # lent to this event loop on some of them at least
            await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)
        proxy.close_idle()
        await asyncio.sleep(0.05)  # the close reaches the client's socket
        before = drains
        await asyncio.sleep(0.3)
        quiet = drains - before
        reply = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=16)
        assert reply.choices[0].message.content
        return quiet, proxy.accepted

    quiet, accepted = asyncio.run(main())
    assert quiet <= 3  # a spinning reader runs thousands of times in 0.3 s
    assert accepted == 2
