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
# The instrumented build reads no profile, so its build directory is kept from one install to
# the next (CMake and Ninja recompile what changed): one per compiler, as Ninja does not see a
# compiler upgraded in place. The use build reads the profile, which Ninja does not track as an
# input: its directory is made anew each time. Each object finds its profile by its path under
# its own build directory (CMakeLists.txt, -fprofile-prefix-path), the same in both.
compiler_id=$({ "${CXX:-c++}" -v; "${CC:-cc}" -v; } 2>&1 | sha256sum | cut -c1-16)
generate_dir=$work/generate-$compiler_id
use_dir=$work/use
mkdir -p "$work"
for entry in "$work"/*; do
  [ "$entry" = "$generate_dir" ] || rm -rf "$entry"
done

step() {  # a name, then the command: its output goes to the log, a failure names the step
  local name=$1
  shift
  echo "orroute: profile-guided build: $name"
  if ! "$@" >>"$log" 2>&1; then
    echo "orroute: profile-guided build: $name failed (its output: $log)" >&2
    exit 1
  fi
}
pip_pgo_wheel() {  # generate|use, its build directory, the wheel's directory
  python3 -m pip wheel --no-deps . -w "$3" -C build-dir="$2/{wheel_tag}" \
    -C cmake.define.ORROUTE_PGO="$1" -C cmake.define.ORROUTE_PGO_DIR="$profile"
}
train() {  # the instrumented package in $site, whatever orroute is installed
  rm -rf "$profile"  # the build's vocabulary and catalog tools ran the instrumented core
  PYTHONPATH=$site python3 tools/pgo_train.py
}

step "1/3 building the instrumented core" pip_pgo_wheel generate "$generate_dir" "$work/instrumented"
step "1/3 putting it in $site with its dependencies" \
  python3 -m pip install --target "$site" "$(ls "$work"/instrumented/orroute-*.whl)"
step "2/3 training it (loopback calls to FakeOpenRouter)" train
step "3/3 building the core from the profile" pip_pgo_wheel use "$use_dir" "$work/wheel"
step "3/3 checking the objects read their profiles" \
  python3 tools/pgo_check.py "$(ls "$use_dir"/*/compile_commands.json)" "$profile"
wheel=$(ls "$work"/wheel/orroute-*.whl)
# the dependencies (and the extras'), then the wheel over an orroute already installed
step "3/3 installing it with the dependencies" python3 -m pip install "$wheel$extras"
step "3/3 installing it" python3 -m pip install --no-deps --force-reinstall "$wheel"
echo "orroute: installed the profile-guided build ($(grep '^profiles read' "$log" | tail -n 1))"
