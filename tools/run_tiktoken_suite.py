"""Runs tiktoken's own test suite (from its sdist) against orroute.tiktoken_compat.

A shim package named ``tiktoken`` that installs the compat module is put first on PYTHONPATH (so
subprocesses the tests start see it too), and tiktoken's tests/ run unchanged. Tests that fail because
they ask for an encoding orroute does not ship (gpt2, r50k_base, p50k_base, p50k_edit: the compat
module's "does not ship" ValueError) are reported apart; any other failure makes the script exit 1. The tiktoken oracle is not used.

Usage: PYTHONPATH=python python3 tools/run_tiktoken_suite.py [--version 0.14.0] [--sdist FILE]
       [--max-examples 100] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

LEGACY = ("gpt2", "r50k_base", "p50k_base", "p50k_edit", "text-davinci")
SHIM = "import orroute.tiktoken_compat as _compat\n\n_compat.install()\n"


def fetch_sdist(version: str, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"tiktoken=={version}",
            "--no-binary",
            ":all:",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-d",
            str(into),
        ],
        check=True,
    )
    return next(into.glob("tiktoken-*.tar.gz"))


def test_sources(tests: Path) -> dict[str, str]:
    """Source of each test function, by name (to see which encodings a failed test names)."""
    out: dict[str, str] = {}
    for path in tests.glob("test_*.py"):
        text = path.read_text()
        for m in re.finditer(r"^def (test_\w+)\(.*?(?=^def |\Z)", text, re.DOTALL | re.MULTILINE):
            out[f"{path.stem}::{m.group(1)}"] = m.group(0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", default="0.14.0")
    ap.add_argument(
        "--sdist", type=Path, help="a downloaded tiktoken sdist (else pip downloads it)"
    )
    ap.add_argument("--max-examples", default="100", help="TIKTOKEN_MAX_EXAMPLES for hypothesis")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tiktoken-suite-"))
    sdist = args.sdist or fetch_sdist(args.version, work)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name and m.isfile()]
        tar.extractall(work, members=members, filter="data")
    tests = next(work.glob("tiktoken-*/tests"))
    shim = work / "shim" / "tiktoken"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(SHIM)
    repo_python = Path(__file__).resolve().parents[1] / "python"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(shim.parent), str(repo_python), os.environ.get("PYTHONPATH", "")]
        ),
        "TIKTOKEN_MAX_EXAMPLES": args.max_examples,
    }
    report = work / "report.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tests),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(tests.parent),
            f"--junitxml={report}",
            *args.pytest_args,
        ],
        env=env,
        cwd=tests.parent,
        check=False,
    )
    sources = test_sources(tests)
    passed, legacy, other = [], [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if case.find("skipped") is not None:
            continue
        if failure is None:
            passed.append(name)
            continue
        message = (failure.get("message") or "") + (failure.text or "")
        base = name.split("[")[0]
        names_legacy = any(k in name or k in sources.get(base, "") for k in LEGACY)
        if names_legacy and "does not ship" in message:  # the compat module's own refusal
            legacy.append(name)
        else:
            other.append(f"{name}: {(failure.get('message') or '').splitlines()[0][:200]}")
    print(f"\ntiktoken {args.version} test suite against orroute.tiktoken_compat:")
    print(f"  passed: {len(passed)}")
    print(f"  failed, needing an encoding orroute does not ship: {len(legacy)}")
    for name in legacy:
        print(f"    {name}")
    print(f"  other failures: {len(other)}")
    for line in other:
        print(f"    {line}")
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main())
