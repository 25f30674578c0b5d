"""The real ``orroute serve`` and ``orroute keys`` commands, as subprocesses, against
FakeOpenRouter, reaching the upstream through the environment like every orroute command."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import orroute
from orroute.testing import FakeOpenRouter

UPSTREAM_KEY = "sk-or-v1-cli-upstream-secret-abcdef0123456789abcdef"
HI = [{"role": "user", "content": "Say hi"}]


def _env(fake: FakeOpenRouter, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["OPENROUTER_API_KEY"] = UPSTREAM_KEY
    env["OPENROUTER_BASE_URL"] = fake.base_url
    env["ORROUTE_HOME"] = str(home)
    src = str(Path(orroute.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def orroute_cmd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orroute", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def fake() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(api_key=UPSTREAM_KEY) as f:
        yield f


@contextlib.contextmanager
def serving(env: dict[str, str], *args: str,
            processes: int = 1) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """Runs ``orroute serve ARGS`` until ``processes`` of its processes say they listen; yields
    (process, OpenAI base URL, lines printed so far). On exit it is stopped with SIGTERM (unless it
    already stopped) and must exit with status 0; its remaining output goes into the lines."""
    proc = subprocess.Popen([sys.executable, "-m", "orroute", "serve", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    urls: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        while len(urls) < processes and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"OpenAI base_url (http://\S+/v1)", line)
            if m:
                urls.append(m.group(1))
        assert len(urls) == processes, "".join(lines)
        yield proc, urls[0], lines
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        lines.append(out)
    assert proc.returncode == 0, "".join(lines)


@pytest.fixture
def served(fake: FakeOpenRouter, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """(base URL, env, lines the server printed) of a running ``orroute serve --port 0``."""
    env = _env(fake, tmp_path / "home")
    with serving(env, "--port", "0") as (_, url, lines):
        yield url, env, lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """GET on a new connection (the kernel picks a worker per connection)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_keys_create_prints_the_key_alone_on_the_last_line(fake: FakeOpenRouter,
                                                           tmp_path: Path) -> None:
    env = _env(fake, tmp_path / "home")
    r = orroute_cmd(env, "keys", "create", "--project", "alpha", "--budget", "2.5")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"orr-gw-[A-Za-z0-9_-]{40,}", key)
    r = orroute_cmd(env, "keys", "create", "--project", "beta", "--json")
    obj = json.loads(r.stdout)
    assert obj["project"] == "beta" and obj["key"].startswith("orr-gw-") and obj["budget"] is None
    listed = json.loads(orroute_cmd(env, "keys", "list", "--json").stdout)
    assert {k["project"] for k in listed} == {"alpha", "beta"}
    assert all(key not in json.dumps(k) for k in listed)  # only ids are stored
    alpha = next(k for k in listed if k["project"] == "alpha")
    assert alpha["budget"]["limit"].startswith("2.5")
    assert orroute_cmd(env, "keys", "revoke", obj["id"]).returncode == 0
    assert orroute_cmd(env, "keys", "revoke", obj["id"]).returncode != 0
    assert [k["project"] for k in json.loads(orroute_cmd(env, "keys", "list", "--json").stdout)] \
        == ["alpha"]


def test_orroute_serve_with_the_openai_client(served: tuple[str, dict[str, str], list[str]],
                                              fake: FakeOpenRouter) -> None:
    base_url, env, lines = served
    created = orroute_cmd(env, "keys", "create", "--project", "cli", "--budget", "1")
    key = created.stdout.strip().splitlines()[-1]
    with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
        r = client.chat.completions.create(model="orroute/cheapest", messages=HI)
        assert r.choices[0].message.content and r.model != "orroute/cheapest"
        with client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI,
                                            stream=True) as stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text
    with openai.OpenAI(base_url=base_url, api_key="orr-gw-wrong", max_retries=0) as wrong, \
            pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
    assert fake.last_request.api_key.reveal() == UPSTREAM_KEY
    deadline = time.monotonic() + 30  # the server settles just after answering
    while True:
        listed = json.loads(orroute_cmd(env, "keys", "list", "--json").stdout)
        if Decimal(listed[0]["budget"]["spent"]) > 0 or time.monotonic() > deadline:
            break
    assert Decimal(listed[0]["budget"]["spent"]) > 0  # the server booked to the shared ledger
    assert UPSTREAM_KEY not in "".join(lines) + created.stdout + created.stderr


def test_serve_workers_share_the_port_and_all_stop_on_sigterm(fake: FakeOpenRouter,
                                                              tmp_path: Path) -> None:
    """``--workers 2``: two processes accept on one port (SO_REUSEPORT), both answer, and SIGTERM
    to the one started stops them all."""
    env = _env(fake, tmp_path / "home")
    port = free_port()
    with serving(env, "--port", str(port), "--workers", "2", processes=2) as (proc, url, lines):
        key = orroute_cmd(env, "keys", "create", "--project", "w").stdout.strip().splitlines()[-1]
        answered = 0
        for _ in range(6):  # a fresh connection each: the answers come from either worker
            with openai.OpenAI(base_url=url, api_key=key, max_retries=0) as client:
                r = client.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
            answered += bool(r.choices[0].message.content)
        assert answered == 6
        pids: set[int] = set()
        for _ in range(200):  # each new connection lands on one of the two at random
            status, body = http_get(port, "/health")
            assert status == 200, body
            pids.add(body["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2 and proc.pid in pids, pids
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, "".join(lines)
    assert not any(alive(pid) for pid in pids), "".join(lines)
    with pytest.raises(ConnectionRefusedError):
        http_get(port, "/health")
