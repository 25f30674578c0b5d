#!/usr/bin/env bash
# Quick start, command 2: runs every test. Builds and installs the package with its test extras
# (incremental: the build tree under build/ is reused), lints the Python with ruff, builds and runs
# the Catch2 tests, runs pytest (which also executes the notebooks) and checks the _core type stubs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh --with-test-services
phase() { echo "== $(date -u +%T) $*"; }

# The package is built once, with the Catch2 tests and fuzz drivers in the same CMake tree
# (build/test-<wheel tag>): the core library is compiled once for both, as the wheel ships it
# (Release), and warnings are errors there too.
# ccache (installed with the test services) keeps compiled objects across clones: the paths are
# made relative to the checkout, so a fresh clone anywhere reuses what an earlier one compiled.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-C cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

phase "build and install the package with its tests"
python3 -m pip install --quiet ".[test]" -C build-dir="build/test-{wheel_tag}" \
  -C cmake.define.ORROUTE_BUILD_TESTS=ON -C cmake.define.ORROUTE_WERROR=ON "${launcher[@]}"
phase "ruff"
python3 -m ruff check python/ tests/py bench tools   # [tool.ruff] in pyproject.toml; fails fast

phase "Catch2"
tests_bin=$(ls -t build/test-*/orroute_tests | head -n 1)
(cd "$(dirname "$tests_bin")" && ./orroute_tests)
phase "no static destroyed at exit"   # threads without the GIL outlive exit()'s destructors
python3 tools/check_exit_destructors.py "$(dirname "$tests_bin")"

phase "pytest"
python3 -m pytest "$@"
phase "stubtest and mypy"
python3 -m mypy.stubtest orroute._core orroute._task --ignore-missing-stub --allowlist .ci/stubtest-allowlist.txt
python3 -m mypy --no-incremental   # the package type-checks ([tool.mypy] in pyproject.toml)
phase "done"
