#!/usr/bin/env bash
# The nightly run: the slow tests kept out of scripts/test.sh (40 random SIGKILLs, every heavy
# malformed-input case, MobileNetV3 ONNX export, every extra resolved for four platforms), then the
# benchmarks.
# Usage: scripts/nightly.sh [--no-bench]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_system_deps.sh
PY=$(scripts/setup.sh)
"$PY" -m pytest -q -m slow
if [ "${1:-}" != "--no-bench" ]; then
  "$PY" scripts/bench.py --out bench-out/bench.json
  "$PY" scripts/bench_fallback.py
fi
