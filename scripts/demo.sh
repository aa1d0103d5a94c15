#!/usr/bin/env bash
# The main job on the bundled example, from a fresh clone: install, train a small CNN on
# scikit-learn's bundled digits (seconds), compress it to INT8 TFLite, and print the report.
# Usage: scripts/demo.sh [OUT_DIR]        (default: demo-out/)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(scripts/setup.sh)
OUT=${1:-demo-out}
mkdir -p "$OUT"
echo "== training the digits CNN (sklearn's bundled digits, held-out images excluded)" >&2
"$PY" -m scripts.models.make_models digits "$OUT/model" >&2
echo "== edgekit compress (INT8 + FP32 TFLite, calibrated on calibration_data/digits)" >&2
"$PY" -m edgekit compress "$OUT/model/digits_savedmodel" --recipe digits_int8 --out "$OUT/build"
