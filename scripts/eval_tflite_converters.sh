#!/usr/bin/env bash
# Repeats the README's evaluation of the PyTorch/ONNX -> TFLite converters (PyTorch models):
# whether litert-torch and onnx2tf resolve beside edgekit's installed stack (numpy 2,
# tensorflow-cpu 2.21, pydantic 2.14). Resolution only (pip install --dry-run, constrained to the
# stack's exact versions) in a throwaway venv; nothing is installed into .venv.
# Usage: scripts/eval_tflite_converters.sh      (after scripts/setup.sh; PY=python picks another env)
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PY:-.venv/bin/python}" -m pip freeze --exclude-editable | grep -v '^edgekit' > "$tmp/stack.txt"
"${PY:-.venv/bin/python}" -m venv "$tmp/venv"
for spec in "litert-torch" "litert-torch==0.10.0" "onnx2tf" "onnx2tf==1.28.8 tf-keras~=2.21.0 onnx-graphsurgeon sng4onnx psutil"; do
  echo "== $spec"
  # shellcheck disable=SC2086
  "$tmp/venv/bin/pip" install --dry-run --report "$tmp/report.json" -c "$tmp/stack.txt" $spec 2>&1 \
    | grep -E "conflict is caused by|depends on|requested|ERROR: Cannot" | head -8
  if [ -s "$tmp/report.json" ]; then
    "$tmp/venv/bin/python" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("resolves:", " ".join(
      i["metadata"]["name"] + "-" + i["metadata"]["version"] for i in r["install"]
      if i["metadata"]["name"].lower() in ("tensorflow", "tensorflow-cpu", "onnx2tf", "litert-torch", "numpy")))' \
      "$tmp/report.json"
    rm -f "$tmp/report.json"
  fi
done
