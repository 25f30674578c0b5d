"""Every bench script starts: `--help` imports what it imports (benches share router.py's workload,
so a change there that drops a name another bench uses is caught here, not at the next benchmark
run) and parses its arguments. Nothing is measured."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import orroute

ROOT = Path(__file__).resolve().parents[2]
# the orroute these tests import (the source tree's with a built extension, or the installed one)
ORROUTE_PATH = str(Path(orroute.__file__).resolve().parents[1])
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


def _help(script: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=ORROUTE_PATH)
    return subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((s.name for s in SCRIPTS), pool.map(_help, SCRIPTS)))


@pytest.mark.parametrize("name", [s.name for s in SCRIPTS])
def test_bench_script_starts(name: str, helps: dict[str, subprocess.CompletedProcess[str]]) -> None:
    done = helps[name]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()


def test_pgo_training_runs() -> None:
    """tools/pgo_train.py, a profile-guided build's training (CMake's ORROUTE_PGO), runs every
    set-up to its end: a training that fails must stop the build from reading a profile of error
    paths, so it exits non-zero on any failure, and a change to the calls it makes breaks here
    rather than in a user's build."""
    env = dict(os.environ, PYTHONPATH=ORROUTE_PATH)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "pgo_train.py"), "--calls", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pgo training: 3 calls a set-up" in done.stdout
