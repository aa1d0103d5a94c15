"""`edgekit compress --int8` on a model whose last Dense is MatMul + Add with a [1, N] bias.

tf2onnx exports a Dense this way (issue #10, bug 1): edgekit's own MatMul+Add fusion made a Gemm
with the 2-D bias, and onnxruntime's per-channel QDQ then failed (exit 6) although the unfused
model quantizes.
"""

from __future__ import annotations

import json

import onnx
import pytest

from tests.onnx.tail_models import UNITS, dense_tail_files


@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "per_tensor"])
def test_compress_int8_dense_with_2d_bias(per_channel, tmp_path, edgekit_cli):
    model, data = dense_tail_files(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"precisions: [int8]\nint8:\n  per_channel: {str(per_channel).lower()}\n")
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--recipe", recipe, "-c", data, "--out", out, "--runs", "2", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert int8["details"]["steps"]["quantization"]["per_channel"] is per_channel
    assert int8["accuracy"]["cosine"] > 0.95  # measured 0.98 (random weights, 32 samples)
    head = onnx.load(str(out / "dense_fp32.onnx")).graph.node[-1]
    assert head.op_type == "Gemm" and head.output[0] == "y"
    bias = next(i for i in onnx.load(str(out / "dense_fp32.onnx")).graph.initializer if i.name == head.input[2])
    assert list(bias.dims) == [UNITS]
