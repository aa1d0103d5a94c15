#!/usr/bin/env bash
# The test command: sets up everything it needs, then runs the default test suite (without the
# slow tests, the zoo tier of real pretrained models and the emulated arm64 board tier:
# scripts/nightly.sh runs those).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_system_deps.sh
PY=$(scripts/setup.sh)
exec "$PY" -m pytest -q -m "not slow and not zoo and not arm64" "$@"
