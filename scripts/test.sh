#!/usr/bin/env bash
# Quick start, command 2: runs every test. Builds and installs the package with its test extras
# (incremental: the build tree under build/ is reused), lints the Python with ruff, builds and runs
# the Catch2 tests, runs pytest (which also executes the notebooks) and checks the _core type stubs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh --with-test-services
python3 -m pip install --quiet ".[test]"
python3 -m ruff check python/ tests/py bench tools   # [tool.ruff] in pyproject.toml; fails fast

cmake -S . -B build/cpp-tests -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORROUTE_BUILD_TESTS=ON \
  -DORROUTE_BUILD_PYTHON=OFF -DORROUTE_WERROR=ON >/dev/null
cmake --build build/cpp-tests -j"$(nproc)"
(cd build/cpp-tests && ./orroute_tests)

python3 -m pytest "$@"
python3 -m mypy.stubtest orroute._core --ignore-missing-stub --allowlist .ci/stubtest-allowlist.txt
python3 -m mypy --no-incremental   # the package type-checks ([tool.mypy] in pyproject.toml)
