#!/usr/bin/env bash
# Developer build: configures build/dev (RelWithDebInfo, Catch2 tests on), builds with ninja, and
# links the extensions into python/orroute so `PYTHONPATH=python pytest` uses this tree.
# Usage: scripts/dev-build.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ORROUTE_DEV_BUILD_DIR:-build/dev}
launcher=()
if command -v ccache >/dev/null 2>&1; then  # worktrees share compiled objects (paths relative to /work)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$PWD")}
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}  # -g would otherwise hash the build directory
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORROUTE_BUILD_TESTS=ON \
    -DORROUTE_WERROR=ON -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" \
    -DPython_EXECUTABLE="$(command -v python3)" "${launcher[@]}" "$@"
fi
cmake --build "$build" -j"$(nproc)"
so=$(ls "$build"/_core*.so)
ln -sf "$(realpath "$so")" python/orroute/
ln -sf "$(realpath "$(ls "$build"/_task*.so)")" python/orroute/  # orroute.Task's type (cpp/pyext)
# the bundled catalog snapshot, where an installed wheel has it (next to the JSON)
ln -sf "$(realpath "$build/catalog/openrouter_models.snapshot")" python/orroute/data/
echo "built $(basename "$so"); run: PYTHONPATH=$PWD/python python3 -m pytest   and   $build/orroute_tests"
