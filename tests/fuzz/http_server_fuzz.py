"""Fuzz harness for orroute's HTTP server (llhttp under orroute._http_server) and the gateway's
request handling.

    PYTHONPATH=python:tests/py python3 tests/fuzz/http_server_fuzz.py [--seconds 60] [--seed N]
        [--target http|gateway]

``http``: an echo app behind HttpServer with small limits and short timeouts. Each round sends
either a well-formed request (random method, target, headers, a Content-Length or chunked body
split at random points, sometimes pipelined) and asserts its exact echo comes back, or hostile
bytes (random, or a valid request mutated: bytes flipped, inserted, deleted, duplicated, headers
spliced, chunk sizes rewritten) and asserts the connection is answered or closed within the
timeouts. After every hostile round a well-formed request on a new connection must be answered:
the server stays up and keeps serving.

``gateway``: the gateway in front of FakeOpenRouter, fed chat and Responses bodies whose fields
are replaced with random JSON values. Every answer must be a JSON error naming a field or a
success; a 500 (a handler that raised) fails the run.

Exit status 0 when every assertion held; the failing input is printed (repr) otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests" / "py")]

from _http_util import Served, echo_server, read_responses

from orroute._http_server import HttpLimits

LIMITS = HttpLimits(max_header_bytes=8192, max_headers=50, max_body_bytes=65536,
                    header_timeout=1.0, request_timeout=2.0, idle_timeout=2.0, write_timeout=2.0)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
TOKEN = "!#$%&'*+-.^_`|~" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Failure(AssertionError):
    pass


def well_formed(rng: random.Random) -> tuple[bytes, str, str]:
    """A valid request, the target and the body it carries."""
    method = rng.choice(METHODS[:6])  # HEAD answers have no body to compare
    target = "/" + "".join(rng.choice("abcxyz/_-.~%20") for _ in range(rng.randint(0, 30)))
    target = target.replace("%", "%25").replace("%2520", "%20")
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 10, 500, 5000])))
    headers = [f"Host: h{rng.randint(0, 9)}"]
    for _ in range(rng.randint(0, 8)):
        name = "".join(rng.choice(TOKEN) for _ in range(rng.randint(1, 12)))
        if name.lower() in ("host", "content-length", "transfer-encoding", "connection",
                            "expect", "upgrade"):
            continue
        value = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 40)))
        headers.append(f"{name}: {value.strip()}")
    if body and rng.random() < 0.5:
        headers.append("Transfer-Encoding: chunked")
        framed = b""
        rest = body
        while rest:
            n = rng.randint(1, len(rest))
            ext = b";x=y" if rng.random() < 0.1 else b""
            framed += b"%x%s\r\n%s\r\n" % (n, ext, rest[:n])
            rest = rest[n:]
        framed += b"0\r\n\r\n"
    else:
        headers.append(f"Content-Length: {len(body)}")
        framed = body
    head = f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("latin-1") + framed, target, body.decode("latin-1")


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = bytes([rng.choice(b"\r\n\x00 :;\t-+0xfF")])
        elif op == 2 and b:
            del b[i:i + rng.randint(1, 8)]
        elif op == 3:
            j = rng.randrange(len(b) + 1)
            b[i:i] = b[min(i, j):max(i, j)][:256]
        elif op == 4:
            b[i:i] = rng.choice([b"Transfer-Encoding: chunked\r\n", b"Content-Length: 7\r\n",
                                 b"Content-Length: -1\r\n", b"Transfer-Encoding: xchunked\r\n",
                                 b"Expect: 100-continue\r\n", b"Connection: close\r\n",
                                 b"Upgrade: h2c\r\nConnection: Upgrade\r\n", b" folded\r\n"])
        elif op == 5:
            b[i:i] = rng.choice([b"FFFFFFFFFF\r\n", b"0x5\r\n", b"-1\r\n", b"\r\n\r\n", b"5 \r\n"])
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return bytes(b)


def send_split(sock: socket.socket, data: bytes, rng: random.Random) -> None:
    """Sends ``data`` in random pieces (the parser must not care where reads end)."""
    while data:
        n = rng.randint(1, max(1, len(data)))
        try:
            sock.sendall(data[:n])
        except (BrokenPipeError, ConnectionResetError):
            return
        data = data[n:]


def check_echo(served: Served, rng: random.Random, pipelined: int = 1) -> None:
    reqs = [well_formed(rng) for _ in range(pipelined)]
    with served.connect(timeout=10) as s:
        send_split(s, b"".join(r[0] for r in reqs), rng)
        answers = read_responses(s, len(reqs), timeout=10)
    if len(answers) != len(reqs):
        raise Failure(f"{len(reqs)} well-formed requests, {len(answers)} answers: "
                      f"{[r[0][:300] for r in reqs]!r}")
    for (data, target, body), (status, _, payload) in zip(reqs, answers, strict=True):
        got = json.loads(payload) if status == 200 else None
        if got is None or got["body"] != body or got["target"] != target:
            raise Failure(f"well-formed request {data[:300]!r} answered {status} {payload[:200]!r}")


def hostile(served: Served, rng: random.Random) -> bytes:
    if rng.random() < 0.2:
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))
    else:
        data = mutate(rng, b"".join(well_formed(rng)[0] for _ in range(rng.randint(1, 2))))
    t0 = time.monotonic()
    with served.connect(timeout=10) as s:
        send_split(s, data, rng)
        if rng.random() < 0.5:
            try:
                s.shutdown(socket.SHUT_WR)  # FIN: whatever arrived is answered, then closed
            except OSError:
                pass
        s.settimeout(LIMITS.request_timeout + LIMITS.header_timeout + 5)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise Failure(f"connection neither answered nor closed: {data[:400]!r}") from None
    if time.monotonic() - t0 > LIMITS.request_timeout + LIMITS.header_timeout + 5:
        raise Failure(f"took too long: {data[:400]!r}")
    return data


def run_http(seconds: float, seed: int, log: Callable[[str], None], min_rounds: int = 0) -> int:
    rng = random.Random(seed)
    rounds = 0
    with echo_server(LIMITS) as served:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or rounds < min_rounds:
            if rng.random() < 0.4:
                check_echo(served, rng, pipelined=rng.choice([1, 1, 2, 3]))
            else:
                hostile(served, rng)
                check_echo(served, rng)  # still up, still serving
            rounds += 1
    log(f"http: {rounds} rounds, seed {seed}: ok")
    return rounds


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["int", "neg", "float", "str", "bool", "null", "list", "dict", "big", "unicode"]
    kind = rng.choice(kinds if depth < 3 else kinds[:6])
    if kind == "int":
        return rng.randint(0, 10)
    if kind == "neg":
        return -rng.randint(1, 2**40)
    if kind == "float":
        return rng.choice([0.5, 1e308, -0.0, 3.25])
    if kind == "str":
        return "".join(rng.choice("ab\r\n\"\\{}") for _ in range(rng.randint(0, 10)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "big":
        return 2**70
    if kind == "unicode":
        return "模型\u2028\ud7ff"
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["role", "content", "type", "name", "function", "x"]):
            random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8}
RESPONSES = {"model": "openai/gpt-4o-mini", "input": "hi", "max_output_tokens": 8}
FIELDS = ["model", "messages", "max_tokens", "n", "tools", "tool_choice", "stream", "temperature",
          "top_p", "response_format", "stop", "stream_options", "provider", "reasoning",
          "max_completion_tokens", "input", "instructions", "text", "max_output_tokens"]


def run_gateway(seconds: float, seed: int, log: Callable[[str], None], min_rounds: int = 0) -> int:
    import tempfile

    import httpx

    from orroute.gateway import Gateway, GatewaySettings
    from orroute.testing import FakeOpenRouter

    rng = random.Random(seed)
    rounds = 0
    upstream = "sk-or-v1-fuzz-upstream-0000000000000000000000"
    with tempfile.TemporaryDirectory() as tmp, FakeOpenRouter(api_key=upstream) as fake, \
            Gateway(GatewaySettings(base_url=fake.base_url, api_key=upstream, port=0,
                                    ledger=f"{tmp}/ledger.sqlite3")) as gw, \
            httpx.Client(base_url=gw.url, timeout=30) as http:
        key = gw.keys.create("fuzz")[0]
        auth = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or rounds < min_rounds:
            path, base = rng.choice([("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES),
                                     ("/v1/embeddings", {"model": "x", "input": "y"})])
            body = dict(base)
            for _ in range(rng.randint(1, 3)):
                body[rng.choice(FIELDS)] = random_json(rng)
            if rng.random() < 0.2:
                body.pop(rng.choice(list(body)), None)
            raw = json.dumps(body).encode()
            r = http.post(path, content=raw, headers=auth)
            err = (r.json().get("error") or {}) if r.status_code >= 400 else {}
            own = err.get("type") != "upstream_error"  # the gateway's own answer, not relayed
            if r.status_code >= 500 and r.status_code not in (502, 503, 504) and own:
                raise Failure(f"{path} {raw!r} answered {r.status_code} {r.text[:300]}")
            if r.status_code == 400 and own and not err.get("param"):
                raise Failure(f"400 without the field: {path} {raw!r} {r.text[:300]}")
            rounds += 1
        ok = http.post("/v1/chat/completions", json=CHAT, headers=auth)
        if ok.status_code != 200:
            raise Failure(f"the gateway stopped serving: {ok.status_code}")
    log(f"gateway: {rounds} rounds, seed {seed}: ok")
    return rounds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--target", choices=["http", "gateway", "both"], default="both")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    try:
        if args.target in ("http", "both"):
            run_http(args.seconds, seed, print)
        if args.target in ("gateway", "both"):
            run_gateway(args.seconds, seed, print)
    except Failure as e:
        print(f"FAILED (seed {seed}): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
