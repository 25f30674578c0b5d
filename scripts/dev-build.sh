#!/usr/bin/env bash
# Developer build: configures build/dev (RelWithDebInfo, Catch2 tests on), builds with ninja, and
# links the extension into python/orroute so `PYTHONPATH=python pytest` uses this tree.
# Usage: scripts/dev-build.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ORROUTE_DEV_BUILD_DIR:-build/dev}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORROUTE_BUILD_TESTS=ON \
    -DORROUTE_WERROR=ON -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" \
    -DPython_EXECUTABLE="$(command -v python3)" "$@"
fi
cmake --build "$build" -j"$(nproc)"
so=$(ls "$build"/_core*.so)
ln -sf "$(realpath "$so")" python/orroute/
echo "built $(basename "$so"); run: PYTHONPATH=$PWD/python python3 -m pytest   and   $build/orroute_tests"
