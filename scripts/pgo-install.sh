#!/usr/bin/env bash
# The profile-guided build of the installed package: what scripts/install.sh installs unless
# ORROUTE_PGO=0 (docs/performance.md, "Session 26: the install builds the profile-guided core").
#   1. a wheel whose _core counts what it runs (CMake's ORROUTE_PGO=generate), installed with the
#      package's runtime dependencies into build/pgo/site, never where orroute is installed;
#   2. the training: tools/pgo_train.py, with that directory first on PYTHONPATH, drives it
#      through the calls users make against FakeOpenRouter on loopback, and each of its
#      processes writes its counts as it exits;
#   3. the package compiled again from those counts (ORROUTE_PGO=use) into a wheel,
#      tools/pgo_check.py checks that its objects were compiled with their profiles, and only
#      then is it installed, over whatever orroute was installed.
# So an install stopped at any step (Ctrl-C, a failure) leaves the orroute installed before it:
# the instrumented build (slower, writing its counts as each process exits) is never installed.
# Usage: scripts/pgo-install.sh [EXTRAS], e.g. "[analysis]". Exits non-zero when a step fails
# (the step's output is in build/pgo/log): scripts/install.sh then installs the plain build.
# GCC only. The profile is GCC's own format, per compiler version: written at each install under
# the ignored build/, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
work=$PWD/build/pgo
profile=$work/profile
log=$work/log
site=$work/site
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
# found by its path there (CMakeLists.txt, -fprofile-prefix-path). Both are compiled in full at
# each install: pip's build environment is a new directory each time, and scikit-build-core then
# configures afresh (a kept directory's second build compiled all 150 objects again).
pip_pgo_wheel() {  # generate|use, the wheel's directory
  python3 -m pip wheel --no-deps . -w "$2" -C build-dir="$work/{wheel_tag}" \
    -C cmake.define.ORROUTE_PGO="$1" -C cmake.define.ORROUTE_PGO_DIR="$profile"
}
train() {  # the instrumented package in $site, whatever orroute is installed
  rm -rf "$profile"  # the build's vocabulary and catalog tools ran the instrumented core
  PYTHONPATH=$site python3 tools/pgo_train.py
}

step "1/3 building the instrumented core" pip_pgo_wheel generate "$work/instrumented"
step "1/3 putting it in $site with its dependencies" \
  python3 -m pip install --target "$site" "$(ls "$work"/instrumented/orroute-*.whl)"
step "2/3 training it (loopback calls to FakeOpenRouter)" train
step "3/3 building the core from the profile" pip_pgo_wheel use "$work/wheel"
step "3/3 checking the objects read their profiles" \
  python3 tools/pgo_check.py "$(ls "$work"/*/compile_commands.json)" "$profile"
wheel=$(ls "$work"/wheel/orroute-*.whl)
# the dependencies (and the extras'), then the wheel over an orroute already installed
step "3/3 installing it with the dependencies" python3 -m pip install "$wheel$extras"
step "3/3 installing it" python3 -m pip install --no-deps --force-reinstall "$wheel"
echo "orroute: installed the profile-guided build ($(grep '^profiles read' "$log" | tail -n 1))"
