"""How fast is orroute.testing.FakeOpenRouter? Prints requests/second and concurrent-stream capacity.

    PYTHONPATH=python python3 bench/fake_server.py [--seconds 3] [--connections 32] [--streams 5000]

Measured in one run, each server in its own process (so it has a core and a GIL to itself) and
driven by one asyncio load generator over keep-alive connections in this process:
  - FakeOpenRouter: plain and streamed chat completions (full reply, usage, cost), GET /credits;
  - peer: the standard library's ThreadingHTTPServer answering a canned body of the same size
    (the simplest thing a test suite would otherwise write);
  - FakeOpenRouter in a thread of this process (how tests use it) sharing the GIL with the load;
  - N streams held open at once (time to open, server memory per open stream).
The load generator is Python too, so every rate is a lower bound of what the server can do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the source tree's orroute when no other is importable (PYTHONPATH or an installed package come
# first: a source tree holds the compiled modules only after scripts/dev-build.sh)
sys.path.append(str(ROOT / "python"))

BODY = {
    "model": "openai/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}],
    "max_tokens": 64,
}


def request_bytes(path: str, body: dict | None) -> bytes:
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-or-v1-bench\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    low = head.lower()
    i = low.find(b"content-length:")
    if i >= 0:
        n = int(low[i + 15 : low.index(b"\r\n", i)])
        return head + await reader.readexactly(n)
    return head + await reader.readuntil(b"\r\n0\r\n\r\n")  # chunked: the last chunk


async def load(port: int, request: bytes, seconds: float, connections: int) -> tuple[float, int]:
    """(requests per second, requests) over ``connections`` keep-alive connections."""
    stop = time.perf_counter() + seconds
    counts = [0] * connections

    async def worker(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                writer.write(request)
                await read_response(reader)
                counts[i] += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return sum(counts) / (time.perf_counter() - start), sum(counts)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, port: int, request: bytes, args: argparse.Namespace) -> tuple[float, float]:
    """(wall req/s, requests per server CPU-second)."""
    cpu = cpu_seconds(pid)
    rate, n = asyncio.run(load(port, request, args.seconds, args.connections))
    return rate, n / max(1e-9, cpu_seconds(pid) - cpu)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(500):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


def start_fake(port: int, **options: object) -> subprocess.Popen:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from orroute.testing import serve_forever;"
        f"serve_forever({port}, record=False, **{options!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT / "python")], stdout=subprocess.DEVNULL
    )
    wait_port(port, proc)
    return proc


PEER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = open(sys.argv[2], "rb").read()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def hold_streams(port: int, n: int) -> tuple[float, list[asyncio.StreamWriter]]:
    request = request_bytes("/api/v1/chat/completions", {**BODY, "stream": True})
    sem = asyncio.Semaphore(500)  # don't overflow the listen backlog

    async def one() -> asyncio.StreamWriter:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await reader.readuntil(b"OPENROUTER PROCESSING")
            return writer

    start = time.perf_counter()
    writers = await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start, list(writers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--streams", type=int, default=5000)
    ap.add_argument("--paced", type=int, default=2000, help="paced streams read to the end")
    ap.add_argument("--tps", type=float, default=20.0, help="tokens/s of each paced stream")
    args = ap.parse_args()
    chat = request_bytes("/api/v1/chat/completions", BODY)
    stream = request_bytes("/api/v1/chat/completions", {**BODY, "stream": True})
    credits = request_bytes("/api/v1/credits", None)
    c = args.connections
    print(f"load: {c} keep-alive connections, {args.seconds:g}s per figure, 1 asyncio client")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("                                               wall req/s   req per server CPU-s")

    def show(label: str, figures: tuple[float, float]) -> None:
        print(f"{label:<46} {figures[0]:9,.0f}   {figures[1]:12,.0f}")

    port = free_port()
    proc = start_fake(port)
    try:
        plain = measured(proc.pid, port, chat, args)
        show("FakeOpenRouter (own process)  plain chat", plain)
        show("FakeOpenRouter (own process)  streamed chat", measured(proc.pid, port, stream, args))
        show("FakeOpenRouter (own process)  GET /credits", measured(proc.pid, port, credits, args))
    finally:
        proc.terminate()
        proc.wait()

    # the peer: stdlib server returning a canned body of the same size
    from orroute.testing import FakeOpenRouter

    with FakeOpenRouter() as fake:
        import http.client

        conn = http.client.HTTPConnection(fake.host, fake.port)
        conn.request("POST", "/api/v1/chat/completions", json.dumps(BODY))
        canned = conn.getresponse().read()
        conn.close()
    body_file = ROOT / "build" / "bench_fake_body.json"
    body_file.parent.mkdir(exist_ok=True)
    body_file.write_bytes(canned)
    port = free_port()
    peer = subprocess.Popen([sys.executable, "-c", PEER, str(port), str(body_file)])
    try:
        wait_port(port, peer)
        stdlib = measured(peer.pid, port, chat, args)
    finally:
        peer.terminate()
        peer.wait()
    show("peer: stdlib ThreadingHTTPServer, canned body", stdlib)
    print(
        f"  FakeOpenRouter / peer (plain chat): {plain[0] / stdlib[0]:.1f}x wall,"
        f" {plain[1] / stdlib[1]:.1f}x per CPU-second"
    )

    with FakeOpenRouter(record=False) as fake:
        inproc = asyncio.run(load(fake.port, chat, args.seconds, args.connections))[0]
    print(f"FakeOpenRouter (thread of the load process)   {inproc:9,.0f}   (shares the GIL)")

    port = free_port()
    proc = start_fake(port, ttft=3600.0, keepalive_interval=600.0)
    try:
        before = rss_kb(proc.pid)
        cpu = cpu_seconds(proc.pid)

        async def streams() -> tuple[float, int]:
            took, writers = await hold_streams(port, args.streams)
            held = rss_kb(proc.pid)
            nonlocal cpu
            cpu = cpu_seconds(proc.pid) - cpu
            for w in writers:
                w.close()
            return took, held

        took, held = asyncio.run(streams())
    finally:
        proc.terminate()
        proc.wait()
    per = (held - before) / args.streams
    print(
        f"{args.streams:,} streams held open at once: opened in {took:.2f}s "
        f"({args.streams / took:,.0f}/s), server RSS +{(held - before) / 1024:.1f} MiB "
        f"({per:.1f} KiB per stream), server CPU {cpu * 1e6 / args.streams:.0f} us per stream"
    )
    paced(args)


async def read_streams(port: int, n: int) -> float:
    """Opens n streams at once and reads each to its end; returns the wall time."""
    request = request_bytes("/api/v1/chat/completions", {**BODY, "stream": True})
    sem = asyncio.Semaphore(500)

    async def one() -> None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await read_response(reader)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


def paced(args: argparse.Namespace) -> None:
    port = free_port()
    proc = start_fake(port, tokens_per_second=args.tps)
    try:
        cpu = cpu_seconds(proc.pid)
        took = asyncio.run(read_streams(port, args.paced))
        cpu = cpu_seconds(proc.pid) - cpu
    finally:
        proc.terminate()
        proc.wait()
    print(
        f"{args.paced:,} streams at {args.tps:g} tokens/s each, read to [DONE]: {took:.1f}s wall,"
        f" server CPU {cpu * 1e3 / args.paced:.2f} ms per stream"
    )


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") is None:
        os.environ["PYTHONHASHSEED"] = "0"
    main()
