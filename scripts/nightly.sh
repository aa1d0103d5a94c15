#!/usr/bin/env bash
# The nightly run: the slow tests kept out of scripts/test.sh (40 random SIGKILLs, every heavy
# malformed-input case, MobileNetV3 ONNX export, every extra resolved for four platforms), the zoo
# tier of real pretrained models (tests/zoo/README.md; about 30 minutes on 2 shared cores), the
# emulated arm64 board tier (first run builds the board: about a minute), then the benchmarks.
# Usage: scripts/nightly.sh [--no-bench]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_system_deps.sh
PY=$(scripts/setup.sh)
"$PY" -m pip install -q -e ".[ray]" >&2   # the two-node Ray fleet test (tests/fleet/test_ray_fleet.py)
"$PY" -m pytest -q -m slow
CI=${CI:-1} "$PY" -m pytest -q -s -m zoo tests/zoo   # CI set: a missing zoo wheel fails, not skips
"$PY" -m pytest -q -m arm64 tests/arm64   # the emulated aarch64 board (scripts/arm64_board.sh)
if [ "${1:-}" != "--no-bench" ]; then
  "$PY" -m scripts.bench --out bench-out/bench.json
  "$PY" scripts/bench/fallback.py
  "$PY" -m scripts.bench.executor
fi
