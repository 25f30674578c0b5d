"""Shared fixtures. Tests use the public API only (``import orroute``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the `fake_openrouter` fixture (also registered by the pytest11 entry point when installed)
from orroute.testing.pytest_plugin import fake_openrouter  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see a real key or the user's own ledger and config."""
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    monkeypatch.setenv("ORROUTE_HOME", str(tmp_path / "orroute-home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def pytest_report_header(config: pytest.Config) -> str:
    import orroute

    return f"orroute {orroute.__version__} from {os.path.dirname(orroute.__file__)}"


# ---- a private redis-server for the Redis ledger tests ----------------------------------------


def redis_command(port: int, *args: str) -> object:
    """Sends one command to the loopback redis-server (a minimal RESP client, so the tests need
    no Redis client package). Returns the reply: str, int, None or a list."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(b), b)
        sock.sendall(out)
        with sock.makefile("rb") as f:
            return _read_reply(f)


def _read_reply(f: Any) -> object:
    """One RESP reply from the file-like `f`."""
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError(f"bad RESP reply {line!r}")


class RedisServer:
    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, prefix: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix}"

    def command(self, *args: str) -> object:
        return redis_command(self.port, *args)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port in a temp dir (skips when the binary is absent:
    ``scripts/system-deps.sh --with-test-services`` installs it, and CI runs these tests)."""
    from orroute import _core

    if not _core.redis_available():
        pytest.skip("this orroute was built without the Redis ledger (no hiredis at build time)")
    binary = os.environ.get("ORROUTE_REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed (scripts/system-deps.sh --with-test-services)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_command(port, "PING") == "PONG":
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.02)
        yield RedisServer(port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis ledger URL with a key prefix of its own (tests do not see each other's keys)."""
    return redis_server.url(f"t{uuid.uuid4().hex[:12]}:")


@pytest.fixture(params=["sqlite", "redis"])
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger of each backend: a SQLite file, or a Redis URL (skipped without
    redis-server)."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(tmp_path / "ledger.sqlite3")
