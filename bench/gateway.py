"""What does the gateway (``orroute serve``) add to a chat completion? Prints, in one run against
FakeOpenRouter: latency per request (p50, p99) at concurrency 1, 16 and 64 and the latency added
over calling FakeOpenRouter directly, requests/second at 64, and each server's peak memory; the
same for peers where they can be installed, with ratios.

    PYTHONPATH=python python3 bench/gateway.py [--requests 3000] [--peer-python /tmp/venv/bin/python]

Every server runs in its own process; the load generator is one asyncio (uvloop) process with
keep-alive connections. The FakeOpenRouter upstream answers at once (no simulated latency), so the
figures are pure overhead. Peers (run from ``--peer-python``, a separate venv, when it has them):
  - LiteLLM's proxy (``litellm --config``), its defaults, one model mapped to the fake;
  - a minimal FastAPI + uvicorn + httpx relay (no auth, budget or routing): the floor of the
    "standard" Python stack the gateway could have been built on.
The gateway itself authenticates a key, reserves the worst-case cost in the SQLite ledger, relays,
and settles the actual cost in the ledger on every request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the source tree's orroute when no other is importable (PYTHONPATH or an installed package come
# first: a source tree holds the compiled modules only after scripts/dev-build.sh)
sys.path.append(str(ROOT / "python"))

from orroute._http_server import new_event_loop

sys.path.insert(0, str(ROOT / "bench"))
from _http_client import Upstream  # the load generator's client

MODEL = "openai/gpt-4o-mini"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}],
                   "max_tokens": 32}).encode()
UPSTREAM_KEY = "sk-or-v1-bench-upstream-key-0000000000000000"
LITELLM_KEY = "sk-bench-litellm-master-4f1c2a9e7d3b5a8c6e0f"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} not listening")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process and its children (MB)."""
    total = 0
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def _run(url: str, path: str, key: str | None, concurrency: int, n: int) -> dict[str, float]:
    up = Upstream(url, key, max_idle=concurrency)
    lat: list[float] = []
    errors = 0
    left = n

    async def worker() -> None:
        nonlocal left, errors
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            resp = await up.request("POST", path, BODY)
            await resp.read()
            resp.release()
            lat.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors += 1

    # warm-up: open the connections and the server's caches
    warm = min(n, max(concurrency * 4, 50))
    left = warm
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    lat.clear()
    left = n
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    up.close()
    lat.sort()
    return {"p50": lat[len(lat) // 2] * 1e3, "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            * 1e3, "mean": statistics.fmean(lat) * 1e3, "rps": len(lat) / wall, "errors": errors}


def measure(url: str, path: str, key: str | None, levels: list[int], n: int) -> dict[int, dict]:
    out = {}
    for c in levels:
        loop = new_event_loop()
        try:
            out[c] = loop.run_until_complete(_run(url, path, key, c, n if c > 1 else n // 3))
        finally:
            loop.close()
    return out


def start(args: list[str], env: dict[str, str], port: int, **kw: object) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kw)  # type: ignore[call-overload]
    wait_port(port, proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


FASTAPI_RELAY = textwrap.dedent('''
    import os, httpx, uvicorn
    from fastapi import FastAPI, Request, Response
    UP = os.environ["UPSTREAM"]
    app = FastAPI()
    client = httpx.AsyncClient(base_url=UP, headers={"Authorization": "Bearer " + os.environ["KEY"]},
                               limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))
    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        r = await client.post("/chat/completions", content=await request.body(),
                              headers={"Content-Type": "application/json"})
        return Response(r.content, status_code=r.status_code, media_type="application/json")
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
''')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="requests per concurrency level")
    ap.add_argument("--levels", default="1,16,64")
    ap.add_argument("--peer-python", default="/tmp/gw-litellm-venv/bin/python",
                    help="python of a venv with litellm[proxy] (skipped if missing)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--workers", type=int, default=1, help="orroute serve --workers")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="orroute-gw-bench-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), env.get("PYTHONPATH", "")])
    env.update(OPENROUTER_API_KEY=UPSTREAM_KEY, ORROUTE_HOME=str(tmp / "home"))
    procs: list[subprocess.Popen] = []
    results: dict[str, dict[int, dict]] = {}
    memory: dict[str, float] = {}
    try:
        fport = free_port()
        code = ("from orroute.testing import serve_forever; "
                f"serve_forever(port={fport}, record=False, api_key={UPSTREAM_KEY!r})")
        fake = start([sys.executable, "-c", code], env, fport)
        procs.append(fake)
        fake_url = f"http://127.0.0.1:{fport}/api/v1"
        env["OPENROUTER_BASE_URL"] = fake_url
        print(f"# {a.requests} requests per level (1/3 at concurrency 1), plain completions, "
              f"{os.cpu_count()} CPUs shared by load generator, server and fake", flush=True)
        results["direct (FakeOpenRouter)"] = measure(fake_url, "/chat/completions", UPSTREAM_KEY,
                                                     levels, a.requests)

        gport = free_port()
        ledger = tmp / "ledger.sqlite3"
        key = json.loads(subprocess.run(
            [sys.executable, "-m", "orroute", "keys", "create", "--project", "bench", "--budget",
             "1000000", "--ledger", str(ledger), "--json"], env=env, check=True,
            capture_output=True, text=True).stdout)["key"]
        gw = start([sys.executable, "-m", "orroute", "serve", "--port", str(gport), "--ledger",
                    str(ledger), "--workers", str(a.workers)], env, gport)
        time.sleep(3 if a.workers > 1 else 0)  # let every worker bind
        procs.append(gw)
        results["orroute serve"] = measure(f"http://127.0.0.1:{gport}/v1", "/chat/completions",
                                           key, levels, a.requests)
        memory["orroute serve"] = peak_rss_mb(gw.pid)
        stop(gw)
        procs.remove(gw)

        peer = Path(a.peer_python)
        try:
            run_peers(a, peer, env, fake_url, tmp, levels, results, memory, procs)
        except Exception as e:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
            print(f"# peer failed: {e!r}", flush=True)
    finally:
        for p in procs:
            stop(p)
    report(results, memory, levels)


def run_peers(a: argparse.Namespace, peer: Path, env: dict[str, str], fake_url: str, tmp: Path,
              levels: list[int], results: dict, memory: dict, procs: list) -> None:
    if not a.no_peers and peer.exists():
        penv = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        ok = subprocess.run([str(peer), "-c", "import fastapi, uvicorn, httpx"],
                            capture_output=True, check=False).returncode == 0
        if ok:
            rport = free_port()
            script = tmp / "relay.py"
            script.write_text(FASTAPI_RELAY)
            relay = start([str(peer), str(script)],
                          {**penv, "UPSTREAM": fake_url, "KEY": UPSTREAM_KEY,
                           "PORT": str(rport)}, rport)
            procs.append(relay)
            results["FastAPI+uvicorn+httpx relay"] = measure(
                f"http://127.0.0.1:{rport}/v1", "/chat/completions", None, levels,
                a.requests)
            memory["FastAPI+uvicorn+httpx relay"] = peak_rss_mb(relay.pid)
            stop(relay)
            procs.remove(relay)
        litellm = peer.parent / "litellm"
        if litellm.exists():
            lport = free_port()
            cfg = tmp / "litellm.yaml"
            cfg.write_text(textwrap.dedent(f"""
                model_list:
                  - model_name: {MODEL}
                    litellm_params:
                      model: openai/{MODEL}
                      api_base: {fake_url}
                      api_key: {UPSTREAM_KEY}
                litellm_settings:
                  drop_params: true
                general_settings:
                  master_key: {LITELLM_KEY}
            """))
            lenv = {**penv, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                    "DISABLE_SCHEMA_UPDATE": "true"}
            lp = start([str(litellm), "--config", str(cfg), "--port", str(lport),
                        "--host", "127.0.0.1"], lenv, lport)
            procs.append(lp)
            time.sleep(2)
            results["LiteLLM proxy"] = measure(f"http://127.0.0.1:{lport}/v1",
                                               "/chat/completions", LITELLM_KEY, levels,
                                               a.requests)
            memory["LiteLLM proxy"] = peak_rss_mb(lp.pid)
            stop(lp)
            procs.remove(lp)


def report(results: dict, memory: dict, levels: list[int]) -> None:
    direct = results["direct (FakeOpenRouter)"]
    print(f"\n{'server':32} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} "
          f"{'+p99 ms':>8} {'req/s':>8} {'errors':>6}")
    for name, rows in results.items():
        for c, r in rows.items():
            add50 = r["p50"] - direct[c]["p50"]
            add99 = r["p99"] - direct[c]["p99"]
            print(f"{name:32} {c:>4} {r['p50']:8.3f} {r['p99']:8.3f} {add50:8.3f} {add99:8.3f} "
                  f"{r['rps']:8.0f} {r['errors']:>6}")
    print("\npeak memory (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items()))
    gw_rows = results["orroute serve"]
    top = max(levels)
    for name, rows in results.items():
        if name in ("orroute serve", "direct (FakeOpenRouter)"):
            continue
        print(f"\norroute serve vs {name}:")
        print(f"  throughput at {top}: {gw_rows[top]['rps'] / rows[top]['rps']:.1f}x")
        for c in levels:
            ga = gw_rows[c]["p50"] - direct[c]["p50"]
            pa = rows[c]["p50"] - direct[c]["p50"]
            ga99 = gw_rows[c]["p99"] - direct[c]["p99"]
            pa99 = rows[c]["p99"] - direct[c]["p99"]
            print(f"  added latency at {c}: p50 {ga:.3f} vs {pa:.3f} ms "
                  f"({ga / pa if pa > 0 else float('nan'):.2f}x), p99 {ga99:.3f} vs {pa99:.3f} ms")
        if name in memory:
            print(f"  peak memory: {memory['orroute serve']:.0f} vs {memory[name]:.0f} MB")


if __name__ == "__main__":
    main()
