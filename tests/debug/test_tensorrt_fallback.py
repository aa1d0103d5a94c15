"""TensorRT's ladder is INT8 -> FP16: compress -t tensorrt on the hostile model floats the planted
pair out of QDQ (they run in FP16 on the engine) and the plan records each layer's precision."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DIGITS_DATA
from tests.debug.test_compress_fallback import NO_EQUALIZATION


@pytest.mark.slow  # trains the hostile model, exports it and searches: 60-150 s on 2 shared cores
def test_tensorrt_fallback_keeps_the_planted_pair_in_fp16(hostile_keras, planted, tmp_path, edgekit_cli):
    recipe = tmp_path / "no_equalization.yaml"  # equalization alone fixes the planted pair
    recipe.write_text(NO_EQUALIZATION)
    out = tmp_path / "out"
    result = edgekit_cli("compress", hostile_keras, "--int8", "-c", DIGITS_DATA, "--color", "grayscale",
                         "-t", "tensorrt", "--max-accuracy-drop", "1", "--recipe", recipe, "--out", out, "--quiet")
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    trt = next(a for a in report["artifacts"] if a["target"] == "tensorrt")
    fallback = trt["details"]["fallback"]
    assert fallback["met"] and fallback["steps"][0]["accuracy"]["accuracy_drop_pts"] > 3.0
    assert trt["accuracy"]["accuracy_drop_pts"] <= 1.0
    assert set(fallback["float_layers"]) & planted, fallback["float_layers"]
    record = trt["details"]["precisions"]
    by_node = {layer["node"]: layer["precision"] for layer in record["layers"]}
    fp16 = {n for n, p in by_node.items() if p == "fp16"}  # out of QDQ in the final model
    tried = {n for step in fallback["steps"] for n in step["float_nodes"]}
    assert fp16 and fp16 <= tried and any(p in n for n in fp16 for p in planted), (fp16, by_node)
    assert list(by_node.values()).count("int8") >= 2 and 0 < record["mac_share"]["fp16"] < 0.5
    assert trt["details"]["engine"]["built"] is False  # no --device: the record is the plan's
    calib = (out / trt["details"]["calibration_cache"]["path"]).read_text()  # rewritten for the final model
    assert calib.startswith("TRT-") and trt["details"]["calibration_cache"]["tensors"] == len(calib.splitlines()) - 1
