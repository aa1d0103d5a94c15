"""ONNX float fallback builds use the plain INT8 build's quantization settings (issue #10, bug 2).

The fallback called the quantizer with its defaults: a per-tensor recipe got per-channel
candidates (and with them the [1, N] Gemm bias crash of bug 1); `calibration.method: auto` made
it fail outright. Every step records the settings of its build; they must equal the plain one's.
"""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import numpy_helper

from tests.onnx.tail_models import dense_tail_files


@pytest.mark.parametrize("per_channel,method", [(False, "minmax"), (True, "percentile"), (False, "auto")])
def test_fallback_steps_use_the_plain_build_settings(per_channel, method, tmp_path, edgekit_cli):
    model, data = dense_tail_files(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"precisions: [int8]\nint8: {{per_channel: {str(per_channel).lower()}}}\n"
                      f"calibration: {{method: {method}}}\ngates: {{min_sqnr_db: 40}}\n")
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--recipe", recipe, "-c", data, "--out", out, "--runs", "2", "--json")
    assert result.code in (0, 10), result.err
    int8 = next(a for a in json.loads(result.out)["artifacts"] if a["precision"] == "int8")
    plain = int8["details"]["steps"]["quantization"]
    assert plain["per_channel"] is per_channel and plain["method"] == (method if method != "auto" else
                                                                       plain["method"])
    expected = {k: v for k, v in plain.items() if k not in ("nodes_excluded", "weight_rounding")}
    steps = int8["details"]["fallback"]["steps"]
    assert len(steps) >= 2 and steps[0]["phase"] == "baseline"
    for step in steps:  # the ladder's steps add the tensors they raise (and the bias correction step its
        # record) to the plain build's settings, and round its INT8 weights with GPTQ (int8.weight_rounding auto)
        own = ("tensor_precisions", "bias_correction", "weight_rounding")
        assert {k: v for k, v in step["quantization"].items() if k not in own} == expected, step["phase"]
    assert plain["weight_rounding"] == "nearest"
    raised = [s["quantization"]["weight_rounding"] for s in steps if s["quantization"].get("tensor_precisions")]
    assert raised and all(r["method"] == "gptq" for r in raised), [s["phase"] for s in steps]
    assert steps[-1]["precisions"] or int8["details"]["fallback"]["float_layers"], "the gate must need a raise"
    # the shipped fallback model: weight scales per tensor (scalar) or per channel (a vector), INT8
    # weights and those the ladder's weight rung requantized int16 alike
    graph = onnx.load(str(out / "dense_int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    weight_scales = [inits[n.input[1]] for n in graph.node
                     if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
                     and inits[n.input[0]].dtype.name in ("int8", "int16")]
    assert weight_scales and all((s.ndim == 1) is per_channel for s in weight_scales)
