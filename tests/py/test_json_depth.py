"""Hostile JSON from an upstream: a 200 whose body is 20 MB of ``[`` used to overflow the C++ stack
(RapidJSON's recursive parser) and kill Python with SIGSEGV. Each probe runs in a subprocess so a
regression shows as a crash exit code, not as a dead test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import orroute

# the child imports the same orroute as this process (the source tree or the installed wheel)
_PYTHON_DIR = Path(orroute.__file__).resolve().parents[1]

# A loopback upstream that answers every chat completion with a body nested 20 million deep
# (plain JSON or one SSE event) and every other path with a small JSON error.
_UPSTREAM = textwrap.dedent(
    """
    import re, socket, threading

    DEEP = b"[" * 20_000_000

    def _serve(sock, stream):
        while True:
            c, _ = sock.accept()
            try:
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\\r\\n\\r\\n")
                m = re.search(rb"content-length: *(\\d+)", head, re.I)
                while m and len(rest) < int(m.group(1)):
                    rest += c.recv(65536)
                if b"/chat/completions" not in head.split(b"\\r\\n", 1)[0]:
                    body, ctype, status = b'{"error":{"code":404,"message":"no"}}', b"application/json", b"404 Not Found"
                elif stream:
                    body, ctype, status = b"data: " + DEEP + b"\\n\\n", b"text/event-stream", b"200 OK"
                else:
                    body, ctype, status = DEEP, b"application/json", b"200 OK"
                c.sendall(b"HTTP/1.1 " + status + b"\\r\\nContent-Type: " + ctype + b"\\r\\nContent-Length: "
                          + str(len(body)).encode() + b"\\r\\nConnection: close\\r\\n\\r\\n" + body)
            except OSError:
                pass
            finally:
                c.close()

    def upstream(stream):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        threading.Thread(target=_serve, args=(s, stream), daemon=True).start()
        return f"http://127.0.0.1:{s.getsockname()[1]}/api/v1"
    """
)


def _run(body: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(_PYTHON_DIR))
    return subprocess.run(
        [sys.executable, "-c", _UPSTREAM + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_a_deeply_nested_reply_is_an_api_error_not_a_crash(stream: bool) -> None:
    proc = _run(
        f"""
        import orroute
        client = orroute.OpenRouter(api_key="k", base_url=upstream({stream}), max_retries=0)
        try:
            r = client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], stream={stream}
            )
            for _ in (r if {stream} else ()):
                pass
            print("NO ERROR")
        except orroute.APIError as e:
            print("APIError", type(e).__name__, len(str(e)) < 1000)
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith("APIError"), proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("True")  # the message is a snippet, not 20 MB


def test_the_gateway_stays_up_when_the_upstream_or_a_client_sends_deep_json(tmp_path: Path) -> None:
    proc = _run(
        f"""
        import http.client, json
        from orroute.gateway import Gateway, GatewaySettings

        def post(gw, key, stream):
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
            body = {{"model": "openai/gpt-4o-mini", "messages": [{{"role": "user", "content": "hi"}}],
                     "stream": stream}}
            conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                         headers={{"Authorization": "Bearer " + key, "Content-Type": "application/json"}})
            r = conn.getresponse()
            data = r.read()
            conn.close()
            return r.status, len(data)

        for stream in (False, True):
            settings = GatewaySettings(base_url=upstream(stream), api_key="k", port=0,
                                       ledger={str(tmp_path)!r} + f"/ledger{{stream}}.sqlite3")
            with Gateway(settings) as gw:
                key = gw.keys.create("p")[0]
                print("first", stream, *post(gw, key, stream))
                print("again", stream, *post(gw, key, stream))
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
                deep = b'{{"model":"openai/gpt-4o-mini","messages":' + b"[" * 500_000 + b"]" * 500_000 + b"}}"
                conn.request("POST", "/v1/chat/completions", body=deep,
                             headers={{"Authorization": "Bearer " + key, "Content-Type": "application/json"}})
                print("client", conn.getresponse().status)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
                conn.request("GET", "/health")
                print("health", conn.getresponse().status)
                conn.close()
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    lines = proc.stdout.splitlines()
    assert len(lines) == 8, proc.stdout + proc.stderr[-3000:]
    for line in lines:
        word, *rest = line.split()
        if word == "client":  # a deeply nested request from a client is a 4xx
            assert 400 <= int(rest[0]) < 500, line
        elif word == "health":  # it answers (503 only because this upstream has no /key)
            assert rest[0] in ("200", "503"), line
        else:  # plain and streamed: an upstream error status with a small body
            assert int(rest[1]) >= 500 and int(rest[2]) < 10_000, line


def test_the_core_json_helpers_refuse_hostile_nesting() -> None:
    from orroute import _core
    from orroute._exceptions import ParseError

    with pytest.raises(ParseError, match="nested too deeply"):
        _core.json_loads("[" * 1_000_000 + "]" * 1_000_000)
    assert _core.json_loads("[" * 127 + "]" * 127) == _nested(127)
    with pytest.raises(ValueError, match="nested deeper than"):
        _core.json_dumps(_nested(1000))


def _nested(depth: int) -> list[object]:
    out: list[object] = []
    for _ in range(depth - 1):
        out = [out]
    return out
