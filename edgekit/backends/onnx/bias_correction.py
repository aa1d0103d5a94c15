"""Empirical bias correction of an onnxruntime QDQ model (see edgekit.transforms.bias_correction).

Each Conv/Gemm of the QDQ model whose bias is a DequantizeLinear of an int32 initializer is
matched to the float model's node with the same bias name (onnxruntime keeps it); both nodes'
outputs (pre-activation: the quantizer drops a Relu after the Conv, the float model keeps it)
are read on calibration samples, and the mean per-channel shift is added to the int32 bias.
`rounds` passes (default 3) correct what the previous pass's upstream corrections moved.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgekit.transforms.bias_correction import ShiftMeter, corrected_int_bias

SAMPLES = 256
ROUNDS = 3


def _bias_nodes(model: onnx.ModelProto) -> dict[str, tuple]:
    """bias name -> (node output, int32 bias initializer, scale initializer) of the QDQ model."""
    inits = {i.name: i for i in model.graph.initializer}
    dequant = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    found = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in dequant:
            continue
        dq = dequant[node.input[2]]
        data, scale = inits.get(dq.input[0]), inits.get(dq.input[1])
        if data is not None and scale is not None and data.data_type == onnx.TensorProto.INT32:
            found[node.input[2]] = (node.output[0], data, scale)
    return found


def _float_outputs(model: onnx.ModelProto, bias_names) -> dict[str, str]:
    """bias name -> the float model's output of the Conv/Gemm using that bias initializer."""
    return {node.input[2]: node.output[0] for node in model.graph.node
            if node.op_type in ("Conv", "Gemm") and len(node.input) > 2 and node.input[2] in bias_names}


def _session(model: onnx.ModelProto, outputs: list[str]):
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for name in outputs:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])


def correct_biases(fp32_path: Path, qdq_path: Path, out_path: Path, calibration, *,
                   samples: int = SAMPLES, rounds: int = ROUNDS) -> dict:
    """Write `qdq_path` with corrected biases to `out_path`; returns {"layers", "samples", "rounds",
    "max_shift"} (max_shift: the largest |per-channel mean shift| of the first round, real units).

    calibration: a callable returning a fresh iterator of {input name: array}; the first
    `samples` (default 256) are used.
    """
    fp32, qdq = onnx.load(str(fp32_path)), onnx.load(str(qdq_path))
    targets = _bias_nodes(qdq)
    floats = _float_outputs(fp32, set(targets))
    names = [b for b in targets if b in floats]
    float_session = _session(fp32, [floats[b] for b in names])
    feeds = list(itertools.islice(calibration(), samples))
    float_inputs = {i.name for i in float_session.get_inputs()}
    reference = [float_session.run([floats[b] for b in names], {k: v for k, v in f.items() if k in float_inputs})
                 for f in feeds]
    first_shift = 0.0
    for round_index in range(rounds if names else 0):
        session = _session(qdq, [targets[b][0] for b in names])
        meters = {b: ShiftMeter(axis=1) for b in names}
        for feed, ref in zip(feeds, reference):
            got = session.run([targets[b][0] for b in names], {k: v for k, v in feed.items() if k in float_inputs})
            for b, r, q in zip(names, ref, got):
                meters[b].update(r, q)
        for b in names:
            _, data, scale = targets[b]
            shift = meters[b].shift()
            if round_index == 0:
                first_shift = max(first_shift, float(np.max(np.abs(shift))))
            bias = corrected_int_bias(numpy_helper.to_array(data), numpy_helper.to_array(scale), shift)
            data.CopyFrom(numpy_helper.from_array(bias, data.name))
    onnx.save(qdq, str(out_path))
    return {"layers": len(names), "samples": len(feeds), "rounds": rounds, "max_shift": first_shift}
