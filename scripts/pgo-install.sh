#!/usr/bin/env bash
# The profile-guided build of the installed package: what scripts/install.sh installs unless
# ORROUTE_PGO=0 (docs/performance.md, "Session 26: the install builds the profile-guided core").
#   1. a wheel whose _core counts what it runs (CMake's ORROUTE_PGO=generate), installed with the
#      package's dependencies (the training imports them);
#   2. the training: tools/pgo_train.py drives it through the calls users make against
#      FakeOpenRouter on loopback, and each of its processes writes its counts as it exits;
#   3. the package compiled again from those counts (ORROUTE_PGO=use) and installed over it, then
#      tools/pgo_check.py checks that its objects were compiled with their profiles.
# Usage: scripts/pgo-install.sh [EXTRAS], e.g. "[analysis]". Exits non-zero when a step fails
# (the step's output is in build/pgo/log): scripts/install.sh then installs the plain build over
# whatever this left. GCC only. The profile is GCC's own format, per compiler version: written at
# each install under the ignored build/, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
work=$PWD/build/pgo
profile=$work/profile
log=$work/log
rm -rf "$work"
mkdir -p "$work"

step() {  # a name, then the command: its output goes to the log, a failure names the step
  local name=$1
  shift
  echo "orroute: profile-guided build: $name"
  if ! "$@" >>"$log" 2>&1; then
    echo "orroute: profile-guided build: $name failed (its output: $log)" >&2
    exit 1
  fi
}
# generate and use build the same tree in one build directory, so each object's profile is
# found by its path there (CMakeLists.txt, -fprofile-prefix-path)
pip_pgo() {  # generate|use, then pip's command
  local mode=$1
  shift
  python3 -m pip "$@" -C build-dir="$work/{wheel_tag}" \
    -C cmake.define.ORROUTE_PGO="$mode" -C cmake.define.ORROUTE_PGO_DIR="$profile"
}
train() {  # the installed instrumented package, whatever PYTHONPATH the caller has
  rm -rf "$profile"  # the build's vocabulary and catalog tools ran the instrumented core
  env -u PYTHONPATH python3 tools/pgo_train.py
}

step "1/3 building the instrumented core" pip_pgo generate wheel --no-deps . -w "$work/wheel"
wheel=$(ls "$work"/wheel/orroute-*.whl)
step "1/3 installing it with the dependencies" python3 -m pip install "$wheel$extras"
step "1/3 installing it" python3 -m pip install --no-deps --force-reinstall "$wheel"
step "2/3 training it (loopback calls to FakeOpenRouter)" train
step "3/3 building the core from the profile" pip_pgo use install --no-deps --force-reinstall .
step "3/3 checking the objects read their profiles" \
  python3 tools/pgo_check.py "$(ls "$work"/*/compile_commands.json)" "$profile"
echo "orroute: installed the profile-guided build ($(tail -n 1 "$log"))"
