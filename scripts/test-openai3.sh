#!/usr/bin/env bash
# The in-process drop-in under openai 3.x (built on httpx2), beside the suite's openai 2.x: builds a
# private venv that sees this Python's packages but shadows openai with 3.x (the shared Python keeps
# its openai), then runs the drop-in's tests (test_transport.py) and the native client's openai surface
# (test_client_openai_surface.py: errors are openai's classes) and docs/integrations.md's openai 3
# snippet there.
# Usage: scripts/test-openai3.sh [pytest args]   (venv: $ORROUTE_OPENAI3_VENV, default
# /work/venv-openai3 if /work exists, else .venv-openai3). It tests this tree's dev build
# (scripts/dev-build.sh) when there is one, else the installed orroute (CI: scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
default=.venv-openai3
[ -d /work ] && default=/work/venv-openai3
venv=${ORROUTE_OPENAI3_VENV:-$default}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" --system-site-packages
fi
"$venv/bin/python" -c 'import openai, sys; sys.exit(int(openai.__version__.split(".")[0]) != 3)' \
  2>/dev/null || "$venv/bin/pip" install --quiet 'openai>=3,<4'
"$venv/bin/python" -c 'import openai; print("openai", openai.__version__)'
if compgen -G "python/orroute/_core*.so" >/dev/null; then export PYTHONPATH=$PWD/python; fi
"$venv/bin/python" -m pytest tests/py/test_transport.py tests/py/test_client_openai_surface.py -q -p no:cacheprovider "$@"
"$venv/bin/python" -m pytest tests/py/test_integrations_doc.py -q -p no:cacheprovider -k httpx2
