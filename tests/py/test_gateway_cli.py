"""The real ``orroute serve`` and ``orroute keys`` commands, as subprocesses, against
FakeOpenRouter, reaching the upstream through the environment like every orroute command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

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


@pytest.fixture
def served(fake: FakeOpenRouter, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """(base URL, env, lines the server printed) of a running ``orroute serve --port 0``."""
    env = _env(fake, tmp_path / "home")
    proc = subprocess.Popen([sys.executable, "-m", "orroute", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    url = None
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"OpenAI base_url (http://\S+/v1)", line)
        if m:
            url = m.group(1)
    try:
        assert url is not None, "".join(lines)
        yield url, env, lines
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        lines.append(out)
        assert proc.returncode == 0, "".join(lines)


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
