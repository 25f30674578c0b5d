#!/usr/bin/env bash
# Quick start, command 1: installs everything (system packages, the C++ build, the Python package)
# and runs the main job, `orroute demo`. The core is the profile-guided build
# (scripts/pgo-install.sh: two builds and a training run); ORROUTE_PGO=0 installs the plain build
# `pip install .` gives, in about half the time. A failed profile-guided build falls back to it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
extras="[analysis]"
if [ "${ORROUTE_PGO:-1}" = 0 ]; then
  python3 -m pip install --quiet ".$extras"
elif ! scripts/pgo-install.sh "$extras"; then
  echo "orroute: the profile-guided build failed; installing the plain build instead" >&2
  python3 -m pip install --quiet ".$extras"
fi
exec python3 -m orroute demo  # same as `orroute demo`, even when pip's script dir is not on PATH
