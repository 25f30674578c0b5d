#!/usr/bin/env bash
# Quick start, command 1: installs everything (system packages, the C++ build, the Python package)
# and runs the main job, `orroute demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
python3 -m pip install --quiet ".[analysis]"
exec python3 -m orroute demo  # same as `orroute demo`, even when pip's script dir is not on PATH
