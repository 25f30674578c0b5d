"""Each limit and timeout of the HTTP server (orroute._http_server.HttpLimits), the connection cap,
answers to handler errors and to a half-closed client. Timeouts are set short here and the
assertions wait generously: nothing depends on tight timing."""

from __future__ import annotations

import json
import socket
import time

import pytest
from _http_util import echo_server, exchange, read_responses

from orroute._http_server import HttpLimits

H = b"Host: x\r\n"


def post(headers: bytes, body: bytes) -> bytes:
    return b"POST /e HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes (fails the test if it does not)."""
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not data:
            return got
        got += data


def test_header_bytes_over_the_limit_get_431() -> None:
    with echo_server(HttpLimits(max_header_bytes=1024)) as s:
        ok = exchange(s, post(b"X-A: " + b"a" * 500 + b"\r\nContent-Length: 0\r\n", b""))
        assert ok[0][0] == 200
        big = exchange(s, post(b"X-A: " + b"a" * 2000 + b"\r\nContent-Length: 0\r\n", b""))
        assert big[0][0] == 431


def test_a_header_line_that_never_ends_is_cut_off_at_the_limit() -> None:
    """llhttp holds an unfinished header line in memory: the server counts what it fed."""
    with echo_server(HttpLimits(max_header_bytes=4096)) as s, s.connect() as sock:
        sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nX-A: ")
        sent, piece = 0, b"a" * 16384
        try:
            while sent < 256 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 256 * 1024 * 1024  # the server stopped reading and closed
        got = closed_by_server(sock)
        assert got == b"" or b" 431 " in got  # the answer, unless the reset overtook it


def test_too_many_headers_get_431() -> None:
    with echo_server(HttpLimits(max_headers=10)) as s:
        few = b"".join(b"X-%d: v\r\n" % i for i in range(5))
        many = b"".join(b"X-%d: v\r\n" % i for i in range(20))
        assert exchange(s, post(few + b"Content-Length: 0\r\n", b""))[0][0] == 200
        assert exchange(s, post(many + b"Content-Length: 0\r\n", b""))[0][0] == 431


def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent() -> None:
    with echo_server(HttpLimits(max_body_bytes=1000)) as s, s.connect() as sock:
        sock.sendall(post(b"Content-Length: 100000000\r\n", b""))
        (status, headers, _), = read_responses(sock)
        assert status == 413 and headers["connection"] == "close"


@pytest.mark.parametrize("chunk_size", [b"400", b"FFFFFFFFFF"], ids=["many_chunks", "one_huge"])
def test_a_chunked_body_over_the_limit_gets_413_as_it_arrives(chunk_size: bytes) -> None:
    """The body is counted as it arrives: a chunk declared 0xFFFFFFFFFF bytes is refused once
    the limit's worth has come, not buffered."""
    with echo_server(HttpLimits(max_body_bytes=4096)) as s, s.connect() as sock:
        sock.sendall(post(b"Transfer-Encoding: chunked\r\n", b""))
        try:
            for _ in range(64):
                sock.sendall(chunk_size + b"\r\n" + b"x" * 1024
                             + (b"\r\n" if chunk_size == b"400" else b""))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_responses(sock)[0][0] == 413


def test_a_body_within_the_limit_is_served() -> None:
    with echo_server(HttpLimits(max_body_bytes=4096)) as s:
        body = b"y" * 4096
        chunked = b"800\r\n" + body[:2048] + b"\r\n800\r\n" + body[2048:] + b"\r\n0\r\n\r\n"
        (status, _, payload), = exchange(s, post(b"Transfer-Encoding: chunked\r\n", chunked))
        assert status == 200 and json.loads(payload)["body"] == body.decode()


def test_headers_not_sent_in_time_get_408_and_others_are_still_served() -> None:
    with echo_server(HttpLimits(header_timeout=0.3)) as s:
        slow = [s.connect() for _ in range(20)]
        for sock in slow:
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        # someone else is served meanwhile
        assert exchange(s, post(b"Content-Length: 2\r\n", b"ok"))[0][0] == 200
        for sock in slow:
            assert b" 408 " in closed_by_server(sock)
            sock.close()


def test_a_body_not_sent_in_time_gets_408() -> None:
    with echo_server(HttpLimits(request_timeout=0.3)) as s, s.connect() as sock:
        sock.sendall(post(b"Content-Length: 10\r\n", b"abc"))
        assert b" 408 " in closed_by_server(sock)


def test_an_idle_keep_alive_connection_is_closed() -> None:
    with echo_server(HttpLimits(idle_timeout=0.3)) as s, s.connect() as sock:
        sock.sendall(post(b"Content-Length: 0\r\n", b""))
        assert read_responses(sock)[0][0] == 200
        assert closed_by_server(sock) == b""  # closed without a word, as keep-alive allows


def test_a_client_that_stops_reading_is_cut_off() -> None:
    """A response the client does not read for write_timeout aborts the connection (the
    handler is cancelled), so it cannot hold the handler forever."""
    from _http_util import EchoApp

    with echo_server(HttpLimits(write_timeout=0.3)) as s:
        app: EchoApp = s.app
        with s.connect() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            big = b"z" * (8 * 1024 * 1024)  # echoed back: far more than the socket buffers
            sock.sendall(post(b"Content-Length: %d\r\n" % len(big), big)
                         .replace(b"POST /e", b"POST /slow"))
            deadline = time.monotonic() + 15
            while s.open_connections() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert s.open_connections() == 0
        assert app.handled == 1


def test_pipelined_requests_a_client_does_not_read_the_answers_of_are_not_all_answered() -> None:
    """A client that pipelines requests and never reads: once the connection's write buffer is
    full the server answers no further request and stops reading, so what it holds stays near
    one answer (it answered them all into an ever-growing buffer until write_timeout: with the
    gateway's /openapi.json, 40 bytes asking for kilobytes, 142 MB held after 8 seconds)."""
    import asyncio

    with echo_server(HttpLimits(write_timeout=30)) as s, s.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = b"z" * 16384  # each answer echoes it
        one = post(b"Content-Length: %d\r\n" % len(body), body)
        sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 2000:  # 32 MB of requests, all answered before
                sock.sendall(one * 10)
                sent += 10
        except TimeoutError:
            pass  # the server stopped reading: what the fix does

        async def held() -> int:
            return sum(c.transport.get_write_buffer_size() for c in s.server.connections
                       if c.transport is not None)

        buffered = asyncio.run_coroutine_threadsafe(held(), s.loop).result(10)
        assert buffered < 2 * 1024 * 1024, (sent, buffered)
        assert sent < 2000  # past the kernel's socket buffers the client is held up


def test_at_the_connection_cap_the_longest_idle_connection_makes_room() -> None:
    with echo_server(HttpLimits(max_connections=4)) as s:
        parked = [s.connect() for _ in range(4)]
        for sock in parked:
            sock.sendall(b"GET /e HTTP/1.1\r\n")  # a slow client each
        time.sleep(0.2)
        assert exchange(s, post(b"Content-Length: 2\r\n", b"ok"))[0][0] == 200
        assert s.server.evicted >= 1
        for sock in parked:
            sock.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_gets_503() -> None:
    with echo_server(HttpLimits(max_connections=2)) as s:
        s.app.slow = 3.0
        busy = [s.connect() for _ in range(2)]
        for sock in busy:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 10
        while s.app.handled < 2 and time.monotonic() < deadline:  # both handlers running
            time.sleep(0.01)
        with s.connect() as sock:
            assert b" 503 " in closed_by_server(sock)
        for sock in busy:
            assert read_responses(sock)[0][0] == 200
            sock.close()


@pytest.mark.parametrize("target", ["/boom", "/aboom"], ids=["sync", "async"])
def test_a_handler_error_is_answered_500_with_a_request_id(target: str) -> None:
    with echo_server() as s:
        data = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        (status, headers, body), = exchange(s, data)
        assert status == 500
        rid = json.loads(body)["error"]["request_id"]
        assert rid.startswith("req_") and headers["x-request-id"] == rid


def test_a_request_followed_by_fin_is_answered() -> None:
    with echo_server() as s:
        s.app.slow = 0.2
        (status, _, body), = exchange(s, post(b"Content-Length: 2\r\n", b"hi")
                                      .replace(b"POST /e", b"POST /slow"), shut=True)
        assert status == 200 and json.loads(body)["body"] == "hi"


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        HttpLimits(max_body_bytes=0)
    with pytest.raises(ValueError, match="unknown"):
        HttpLimits.from_mapping({"max_bodybytes": 1})
    assert HttpLimits.from_mapping({"idle_timeout": "5"}).idle_timeout == 5.0


def test_the_gateway_reads_its_limits_from_the_config_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from orroute.gateway import load_gateway_settings

    cfg = tmp_path / "orroute.toml"
    cfg.write_text("[gateway.http]\nmax_body_bytes = 1024\nidle_timeout = 5\n")
    s = load_gateway_settings(config_file=cfg, env={}, env_file=False)
    assert s.http.max_body_bytes == 1024 and s.http.idle_timeout == 5.0
    assert s.http.max_headers == HttpLimits().max_headers
    cfg.write_text("[gateway.http]\nmax_body_byte = 1\n")
    with pytest.raises(ValueError, match="max_body_byte"):
        load_gateway_settings(config_file=cfg, env={}, env_file=False)


_GATEWAY_UNDER_A_FILE_LIMIT = """
import resource, sys, tempfile, time
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from orroute.gateway import Gateway, GatewaySettings
from orroute.testing import FakeOpenRouter
with FakeOpenRouter(api_key="sk-or-up") as fake, Gateway(GatewaySettings(
        base_url=fake.base_url, api_key="sk-or-up", port=0,
        ledger=tempfile.mkdtemp() + "/ledger.sqlite3")) as gw:
    print(gw.port, gw.keys.create("p")[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0],
          flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("hard", [256, None], ids=["hard-limit-256", "hard-limit-above"])
def test_idle_connections_past_the_open_file_limit_do_not_lock_clients_out(hard) -> None:  # type: ignore[no-untyped-def]
    """A gateway whose open-file limit is below what max_connections needs (4,096 by default;
    the usual soft limit is 1,024): its cap is fitted to the limit (raised toward the hard limit
    first), so idle connections are evicted for a new one. Before, past the limit a connection
    could not even be accepted (uvloop reset it) and 300 idle connections under a limit of 256
    locked every client out until they left."""
    import http.client
    import resource
    import subprocess
    import sys

    hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard_now != resource.RLIM_INFINITY and hard_now < 2048:
        pytest.skip(f"hard open-file limit {hard_now}")
    idle: list[socket.socket | http.client.HTTPConnection] = []
    with subprocess.Popen(
            [sys.executable, "-c", _GATEWAY_UNDER_A_FILE_LIMIT, "256", str(hard or hard_now)],
            stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            port_text, key, soft = proc.stdout.readline().split()
            if hard is None:
                assert int(soft) > 256  # raised as far as needed
            for _ in range(300):
                idle.append(socket.create_connection(("127.0.0.1", int(port_text)), timeout=5))
            time.sleep(0.5)
            conn = http.client.HTTPConnection("127.0.0.1", int(port_text), timeout=15)
            idle.append(conn)  # closed with the others
            conn.request("POST", "/v1/chat/completions", json.dumps(
                {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            assert conn.getresponse().status == 200
        finally:
            for sock in idle:
                sock.close()
            proc.kill()


def test_three_hundred_slow_clients_do_not_starve_a_normal_one() -> None:
    """Slow clients trickle a header or a chunked body a byte at a time: they cost a parser
    callback per byte, never a re-parse, and a normal client is served meanwhile. With a cap
    below their number, the newcomer evicts one of them."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 800:
        pytest.skip(f"open-file limit {soft} < 800")
    with echo_server(HttpLimits(max_connections=250)) as s:
        slow = []
        for i in range(300):
            sock = s.connect()
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2 else
                         post(b"Transfer-Encoding: chunked\r\n", b"1\r\nx\r\n"))
            slow.append(sock)
        for _ in range(3):  # a trickle on every one of them
            for i, sock in enumerate(slow):
                try:
                    sock.sendall(b"a" if i % 2 else b"1\r\nx\r\n")
                except OSError:
                    pass  # evicted at the cap
        (status, _, body), = exchange(s, post(b"Content-Length: 2\r\n", b"ok"))
        assert status == 200 and json.loads(body)["body"] == "ok"
        assert s.server.evicted >= 50
        for sock in slow:
            sock.close()


def test_100_continue_waits_for_the_requests_before_it() -> None:
    """'100 Continue' belongs to the request being read: it is sent only once the pipelined
    request before it has its answer, never in the middle of that answer's turn."""
    with echo_server() as s, s.connect() as sock:
        s.app.slow = 0.3
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                     + post(b"Expect: 100-continue\r\nContent-Length: 2\r\n", b""))
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 ")  # the first answer comes first
        while b"100 Continue" not in got:
            got += sock.recv(65536)
        assert got.index(b"200 OK") < got.index(b"100 Continue")
        sock.sendall(b"ok")
        answers = read_responses(sock, 1)
        assert answers[0][0] == 200 and json.loads(answers[0][2])["body"] == "ok"
