#!/usr/bin/env bash
# Creates .venv (if absent) and installs edgekit with its conversion stack and test tools.
# Usage: scripts/setup.sh            (idempotent; prints the venv's python path last)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.edgekit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[all,test]" >&2
  # Test data only: the real pretrained PaddleOCR ONNX models this wheel ships (tests/onnx/
  # test_paddle_models.py). --no-deps: the files are all we use, not its OpenCV stack.
  .venv/bin/python -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4" >&2
  # Test only: an independent reader of the TFLite metadata edgekit writes (tests/compress/
  # test_artifact_metadata.py). Only its pure-Python generated schema reader
  # tensorflow_lite_support.metadata.metadata_schema_py_generated is used; --no-deps: the package
  # requires protobuf<4, which TensorFlow 2.21 rules out, and none of its native parts are loaded.
  .venv/bin/python -m pip install -q --no-deps "tflite-support==0.4.4" >&2
  touch "$stamp"
fi
echo "$PWD/.venv/bin/python"
