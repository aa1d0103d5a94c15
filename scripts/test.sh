#!/usr/bin/env bash
# The test command: sets up everything it needs, checks the import layers and flake8 (setup.cfg),
# then runs the default test suite (without the slow tests, the zoo tier of real pretrained
# models and the emulated arm64 board tier: scripts/nightly.sh runs those).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_system_deps.sh
PY=$(scripts/setup.sh)
# The layer contracts and style settings of setup.cfg first: a back-edge or a lint error fails fast.
"$(dirname "$PY")/lint-imports" --no-cache
"$PY" -m flake8 edgekit scripts tests
exec "$PY" -m pytest -q -m "not slow and not zoo and not arm64" "$@"
