"""What does orroute's HTTP layer cost per request? Prints microseconds per request, in one run, for
the same chat completion request (6 headers, a 110-byte JSON body) fed again and again to:

  - orroute's Connection (llhttp through httptools, the limits and deadlines, a RawRequest, and
    a no-op app that writes a 3-header response through head_bytes);
  - llhttp alone through httptools with empty callbacks (the floor of this design);
  - h11, the pure-Python parser (the peer: what the layer would cost parsing in Python).

    PYTHONPATH=python python3 bench/http_parser.py [--requests 50000] [--repeat 5]

Best of ``--repeat`` runs each (a loaded machine only ever makes a run slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the source tree's orroute when no other is importable (PYTHONPATH or an installed package come
# first: a source tree holds the compiled modules only after scripts/dev-build.sh)
sys.path.append(str(ROOT / "python"))

import h11
import httptools

from orroute._http_server import Connection, HttpServer, head_bytes

BODY = json.dumps({"model": "openai/gpt-4o-mini", "messages": [{"role": "user",
                   "content": "Say hi"}], "max_tokens": 32}).encode()
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
           b"Authorization: Bearer orr-gw-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"
           b"Content-Type: application/json\r\nUser-Agent: bench\r\nAccept: */*\r\n"
           b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY


class _Transport:
    def write(self, data: bytes) -> None:
        pass

    def get_extra_info(self, name: str) -> Any:
        return None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class _App:
    def _handle(self, conn: Connection, raw: Any) -> None:
        conn.write(head_bytes(200, [("Content-Type", "application/json"), ("Server", "orroute"),
                                    ("X-Orroute-Model", "openai/gpt-4o-mini")], length=2) + b"{}")

    def _connection_opened(self, conn: Connection) -> None:
        pass

    def _connection_closed(self, conn: Connection) -> None:
        pass


def best(fn: Any, n: int, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        out = min(out, time.perf_counter() - t0)
    return out / n * 1e6


def orroute_layer(n: int) -> None:
    async def run() -> None:
        app = _App()
        conn = Connection(app, HttpServer(app))  # type: ignore[arg-type]
        conn.connection_made(_Transport())  # type: ignore[arg-type]
        for _ in range(n):
            conn.data_received(REQUEST)

    asyncio.run(run())


class _Empty:
    def on_message_begin(self) -> None: ...
    def on_url(self, url: bytes) -> None: ...
    def on_header(self, name: bytes, value: bytes) -> None: ...
    def on_headers_complete(self) -> None: ...
    def on_body(self, body: bytes) -> None: ...
    def on_message_complete(self) -> None: ...


def llhttp_alone(n: int) -> None:
    parser = httptools.HttpRequestParser(_Empty())
    for _ in range(n):
        parser.feed_data(REQUEST)


def h11_peer(n: int) -> None:
    conn = h11.Connection(h11.SERVER)
    response = h11.Response(status_code=200, headers=[("Content-Length", "2")])
    for _ in range(n):
        conn.receive_data(REQUEST)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.EndOfMessage):
                break
        conn.send(response)
        conn.send(h11.Data(data=b"{}"))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    ours = best(orroute_layer, a.requests, a.repeat)
    floor = best(llhttp_alone, a.requests, a.repeat)
    peer = best(h11_peer, a.requests // 5, a.repeat)
    print(f"# {len(REQUEST)}-byte request, best of {a.repeat} x {a.requests}")
    print(f"orroute HTTP layer (llhttp + limits + request + response head) {ours:8.2f} us/request")
    print(f"llhttp alone (httptools, empty callbacks)                      {floor:8.2f} us/request")
    print(f"h11 (pure Python parse + response)                             {peer:8.2f} us/request")
    print(f"orroute layer vs h11: {peer / ours:.1f}x faster; vs llhttp alone: {ours / floor:.1f}x")


if __name__ == "__main__":
    main()
