#!/bin/sh
# Xcode "Run Script" build phase (before "Copy Bundle Resources"): compress the model and copy the
# INT8 artifact and its model.json into the app bundle. Input files: $(SRCROOT)/ML/model.keras,
# $(SRCROOT)/ML/calibration; output files: $(DERIVED_FILE_DIR)/edgekit/model_int8.tflite.
# A non-zero exit fails the build; the one-line error appears in Xcode's issue navigator.
# Needs an Apple-silicon Mac (macOS 14+) and edgekit[tflite] in a Python 3.10-3.13 virtual
# environment, and User Script Sandboxing off: see README.md beside this file.
set -eu
# Xcode runs this with a minimal PATH and no shell profile: use the virtual environment's edgekit.
PATH="${EDGEKIT_VENV:-${SRCROOT}/.venv}/bin:$PATH"
MODEL="${SRCROOT}/ML/model.keras"
DATA="${SRCROOT}/ML/calibration"
OUT="${DERIVED_FILE_DIR}/edgekit"
# >>> edgekit command
edgekit compress "$MODEL" --recipe generic_int8 --calibration "$DATA" --out "$OUT" --max-accuracy-drop 1.0 --quiet
# <<< edgekit command
cp "$OUT/model_int8.tflite" "$OUT/model_int8.json" "${BUILT_PRODUCTS_DIR}/${UNLOCALIZED_RESOURCES_FOLDER_PATH}/"
