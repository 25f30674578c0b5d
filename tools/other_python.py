#!/usr/bin/env python3
"""orroute on a CPython other than the one the package was built for: builds its extensions
(``orroute._core``, ``orroute._task``) for that interpreter against a build tree's core library
(only the bindings are compiled: the core has no Python in it; CMake's ORROUTE_CORE_LIBRARY),
then runs a short smoke in it against a FakeOpenRouter served from this interpreter: a manager
call and its TaskResult's fields, a streamed manager call, a client reply's fields.

CI runs CPython 3.11 only, and a defect can be one version's: on 3.13 every TaskResult made in
the core had no fields (session 23; cpp/bindings/bind_route.cpp ``make_result``). A cold build of
the bindings costs ~140-210 s of CPU (docs/testing.md), more than CI's run can take on each
push: run this by hand after a change to the bindings or before a release::

    python3 tools/other_python.py                   # the newest other CPython found here
    python3 tools/other_python.py --python /root/.pyenv/versions/3.10.13/bin/python3

It needs a built tree for the core library (scripts/test.sh's ``build/test-*``, else
scripts/dev-build.sh's ``build/dev``: ``--core`` names another) and writes
``build/other-python-<version>/``. Exit status: 0 the smoke passed, 1 it failed, 2 nothing to run
(no other CPython with its headers, or no core library).

The smoke runs in the other interpreter as ``other_python.py --smoke URL``: this file imports
nothing but the standard library at the top, and runs on every CPython the package supports.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLDEST = (3, 10)  # pyproject's requires-python
KEY = "sk-or-v1-other-python-smoke-0123456789"
MODEL = "openai/gpt-4o-mini"

_SHOW_VERSION_AND_HEADERS = (
    "import sys, sysconfig; print('{}.{}'.format(*sys.version_info[:2])); "
    "print(sysconfig.get_paths()['include'])")


def other_pythons() -> dict[str, tuple[str, str]]:
    """CPython interpreters of another version than this one found here (on PATH as
    ``python3.N``, or under pyenv's versions), one a version from 3.10 on, each with its headers:
    ``{"3.13": (executable, include directory)}``, oldest first."""
    candidates = [f"python3.{minor}" for minor in range(10, 16)]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        candidates += sorted(str(p) for p in pyenv.glob("3.*/bin/python3"))
    this = "{}.{}".format(*sys.version_info[:2])
    found: dict[str, tuple[str, str]] = {}
    for name in candidates:
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            out = subprocess.run([exe, "-c", _SHOW_VERSION_AND_HEADERS], check=False,
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = out.stdout.split("\n")
        if out.returncode != 0 or len(lines) < 2 or not (Path(lines[1]) / "Python.h").is_file():
            continue
        version = lines[0]
        if version != this and tuple(map(int, version.split("."))) >= OLDEST:
            found.setdefault(version, (exe, lines[1]))
    return {v: found[v] for v in sorted(found, key=lambda v: tuple(map(int, v.split("."))))}


def core_library() -> Path | None:
    """The newest liborroute_core.a of this checkout's test builds, else of its dev build."""
    built = sorted(ROOT.glob("build/test-*/liborroute_core.a"), key=lambda p: p.stat().st_mtime)
    if built:
        return built[-1]
    dev = ROOT / "build" / "dev" / "liborroute_core.a"
    return dev if dev.is_file() else None


def build(python: str, core: Path, out: Path, *, ccache: bool) -> float:
    """Configures ``out`` for ``python`` with ``core`` linked in, builds the two extensions;
    returns the build's wall time in seconds. Release as the wheel, without its link-time
    optimisation (a smoke: the link would cost a minute)."""
    launcher = []
    env = dict(os.environ)
    if ccache and shutil.which("ccache"):  # as scripts/test.sh: objects shared across clones
        env.update(CCACHE_BASEDIR=str(ROOT), CCACHE_NOHASHDIR="1")
        launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
    pybind11 = subprocess.run([sys.executable, "-m", "pybind11", "--cmakedir"], check=True,
                              capture_output=True, text=True).stdout.strip()
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(out), "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF",
                    "-DORROUTE_WERROR=ON", f"-DORROUTE_CORE_LIBRARY={core}",
                    f"-DPython_EXECUTABLE={python}", f"-Dpybind11_DIR={pybind11}", *launcher],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    start = time.monotonic()
    subprocess.run(["cmake", "--build", str(out), f"-j{os.cpu_count() or 2}",
                    "--target", "_core", "_task"], check=True, env=env)
    return time.monotonic() - start


def package(out: Path) -> Path:
    """A copy of python/orroute holding the extensions built in ``out``; the directory to put
    on the other interpreter's path."""
    site = out / "site"
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(ROOT / "python" / "orroute", site / "orroute", symlinks=True,
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    for ext in out.glob("_*.so"):
        shutil.copy2(ext, site / "orroute")
    return site


def smoke(base_url: str) -> None:
    """What the other interpreter runs: each part raises (AssertionError, AttributeError...)
    when it does not hold."""
    from decimal import Decimal

    import orroute

    messages = [{"role": "user", "content": "Say hi"}]
    manager = orroute.AIModelManager(api_key=KEY, base_url=base_url, fallbacks=[MODEL])
    r = manager.execute_task_sync(orroute.Task(messages=messages, max_tokens=16))
    assert r.model == MODEL and r.content, r
    assert r.usage["completion_tokens"] > 0 and isinstance(r.cost, Decimal) and r.cost > 0
    assert r.attempts and r.task_id and r.id, r  # the fields the core's result maker sets
    chunks = list(manager.stream_task_sync(orroute.Task(messages=messages, max_tokens=16)))
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                       if c.get("choices"))
    assert streamed == r.content, (streamed, r.content)  # the fake answers a prompt alike
    reply = orroute.OpenRouter(api_key=KEY, base_url=base_url).chat.completions.create(
        model=MODEL, messages=messages, max_tokens=16)
    assert reply.choices[0].message.content == r.content and reply.model == MODEL, reply
    assert reply.usage is not None and reply.usage.total_tokens > 0, reply
    print(f"CPython {sys.version.split()[0]}: a manager call, a streamed call and a client "
          "reply, their fields as on the build's CPython")


def run_smoke(python: str, site: Path) -> bool:
    """The smoke in ``python`` against a FakeOpenRouter of this interpreter; True if it passed."""
    sys.path.append(str(ROOT / "python"))  # an installed orroute first: a clean tree is unbuilt
    from orroute.testing import FakeOpenRouter

    with FakeOpenRouter(api_key=KEY) as fake:
        done = subprocess.run([python, str(Path(__file__).resolve()), "--smoke", fake.base_url],
                              check=False, env={**os.environ, "PYTHONPATH": str(site)},
                              timeout=300)
    return done.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", help="the interpreter (default: the newest other CPython found)")
    ap.add_argument("--core", type=Path, help="liborroute_core.a (default: this tree's newest)")
    ap.add_argument("--no-ccache", action="store_true", help="compile everything (a cold build)")
    ap.add_argument("--smoke", metavar="URL", help=argparse.SUPPRESS)  # in the other interpreter
    args = ap.parse_args()
    if args.smoke:
        smoke(args.smoke)
        return 0
    python = args.python or next(reversed([exe for exe, _ in other_pythons().values()]), None)
    core = args.core or core_library()
    if python is None or core is None:
        print("nothing to run: " + ("no CPython of another version with its headers here"
                                    if python is None else "no built liborroute_core.a (run "
                                    "scripts/dev-build.sh or scripts/test.sh first)"))
        return 2
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    out = ROOT / "build" / f"other-python-{version}"
    seconds = build(python, core, out, ccache=not args.no_ccache)
    print(f"built orroute._core and orroute._task for CPython {version} against {core} in "
          f"{seconds:.0f} s")
    return 0 if run_smoke(python, package(out)) else 1


if __name__ == "__main__":
    sys.exit(main())
