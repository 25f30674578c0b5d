"""The training run of a profile-guided build (CMake's ORROUTE_PGO; docs/performance.md, "Session
25: the build users get"): drives an orroute whose _core was compiled with -fprofile-generate
through the calls users make, against FakeOpenRouter on loopback, so the profile the compiler
reads back weighs the per-call paths.

What it runs, each a few thousand calls: the sync `OpenRouter`, the `AsyncOpenRouter` awaited
call after call and gathered, the manager awaited and gathered with no ledger, with a budget on
an in-memory ledger and on a file ledger, streams from the client and the manager, and the
gateway (`orroute serve`, a file ledger) relaying plain and streamed completions. Each process
that loaded the instrumented extension writes its counts when it exits normally (the gateway is
stopped with SIGTERM, which it handles). Exits non-zero when any part fails: a build that
trains on a broken run must fall back to the plain build, not read a profile of error paths.

Usage: PYTHONPATH=<tree with the instrumented extension> python3 tools/pgo_train.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = "m/a"
MSGS = [{"role": "user", "content": "Say hi"}]
KEY = "sk-or-v1-pgo-training-0000000000000000000000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Starts a server process and returns once its port accepts connections."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{cmd[:4]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"{cmd[:4]} did not listen on {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM and a wait: a normal exit, so an instrumented process writes its profile."""
    proc.send_signal(signal.SIGTERM)
    if proc.wait(timeout=30) not in (0, -signal.SIGTERM):
        sys.exit(f"a server exited with {proc.returncode}")


def _clients(url: str, calls: int) -> None:
    import orroute

    client = orroute.OpenRouter(api_key=KEY, base_url=url)
    for _ in range(calls):
        client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
    for _ in range(calls // 20):
        for _chunk in client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16,
                                                     stream=True):
            pass
    client.close()

    async def awaited() -> None:
        aclient = orroute.AsyncOpenRouter(api_key=KEY, base_url=url)
        for _ in range(calls):
            await aclient.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)
        gate = asyncio.Semaphore(8)

        async def one() -> None:
            async with gate:
                await aclient.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=16)

        await asyncio.gather(*(one() for _ in range(calls)))
        for _ in range(calls // 20):
            stream = await aclient.chat.completions.create(model=MODEL, messages=MSGS,
                                                           max_tokens=16, stream=True)
            async for _chunk in stream:
                pass
        await aclient.close()

    asyncio.run(awaited())


def _managers(url: str, calls: int, ledger: str) -> None:
    import orroute
    from orroute import Task

    async def run(**kw: Any) -> None:
        manager = orroute.AIModelManager(api_key=KEY, base_url=url, fallbacks=[MODEL, "m/b"], **kw)
        for _ in range(calls):
            await manager.execute_task(Task(messages=MSGS, max_tokens=16))
        gate = asyncio.Semaphore(8)

        async def one() -> None:
            async with gate:
                await manager.execute_task(Task(messages=MSGS, max_tokens=16))

        await asyncio.gather(*(one() for _ in range(calls)))
        for i in range(calls // 20):
            async for _chunk in manager.stream_task(Task(messages=f"stream {i}", max_tokens=16)):
                pass
        manager.close()

    asyncio.run(run())
    asyncio.run(run(budget=1_000_000))
    asyncio.run(run(budget=1_000_000, ledger=ledger))


def _gateway(env: dict[str, str], tmp: Path, calls: int) -> None:
    """`orroute serve` with a file ledger: plain and streamed completions over one connection."""
    ledger = str(tmp / "gateway.sqlite3")
    key = json.loads(subprocess.run(
        [sys.executable, "-m", "orroute", "keys", "create", "--project", "pgo", "--budget",
         "1000000", "--ledger", ledger, "--json"], env=env, check=True, capture_output=True,
        text=True).stdout)["key"]
    port = _free_port()
    gateway = _start([sys.executable, "-m", "orroute", "serve", "--port", str(port), "--ledger",
                      ledger], env, port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for i in range(calls):
            body = {"model": "openai/gpt-4o-mini", "messages": MSGS, "max_tokens": 16,
                    "stream": i % 20 == 0}
            conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
            reply = conn.getresponse()
            reply.read()
            if reply.status != 200:
                sys.exit(f"the gateway answered {reply.status}")
        conn.close()
    finally:
        _stop(gateway)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per set-up")
    calls = ap.parse_args().calls
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="orroute-pgo-") as d:
        tmp = Path(d)
        env.update(ORROUTE_HOME=str(tmp / "home"), OPENROUTER_API_KEY=KEY)
        port = _free_port()
        serve = (f"from orroute.testing import serve_forever; serve_forever(port={port}, "
                 f"record=False, api_key={KEY!r}, models=['m/a', 'm/b', 'openai/gpt-4o-mini'])")
        fake = _start([sys.executable, "-c", serve], env, port)
        url = f"http://127.0.0.1:{port}/api/v1"
        try:
            os.environ["ORROUTE_HOME"] = env["ORROUTE_HOME"]  # no ledger of the user's touched
            started = time.monotonic()
            _clients(url, calls)
            _managers(url, calls, str(tmp / "manager.sqlite3"))
            _gateway(dict(env, OPENROUTER_BASE_URL=url), tmp, calls)
            print(f"pgo training: {calls} calls a set-up in {time.monotonic() - started:.0f} s")
        finally:
            _stop(fake)


if __name__ == "__main__":
    main()
