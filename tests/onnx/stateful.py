"""A small streaming model shaped like silero-vad, built with onnx.helper (deterministic).

Inputs: `input` [batch, samples] (both unknown), `state` [2, batch, H] (PyTorch's
[layers, batch, hidden] RNN state) and a rank-0 int64 `sr`. The whole network sits inside
`If(sr == 16000)`: each branch is a MatMul recurrent cell with its own weights, reading the outer
`input` and `state`, returning `output` [batch, 1] and `stateN` [2, batch, H].
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 8
SAMPLES = 16


def _branch(name: str, rng) -> onnx.GraphProto:
    def weight(key, *shape):
        return numpy_helper.from_array(rng.normal(0, 0.5, shape).astype(np.float32), f"{name}_{key}")

    inits = [weight("W", SAMPLES, HIDDEN), weight("U", HIDDEN, HIDDEN), weight("b", HIDDEN),
             weight("V", HIDDEN, HIDDEN), weight("Wo", HIDDEN, 1), weight("bo", 1),
             numpy_helper.from_array(np.array([0], np.int64), f"{name}_axis0")]
    p = name + "_"
    nodes = [
        helper.make_node("Gather", ["state", f"{p}zero"], [f"{p}h0"], axis=0),
        helper.make_node("Gather", ["state", f"{p}one"], [f"{p}c0"], axis=0),
        helper.make_node("MatMul", ["input", f"{p}W"], [f"{p}xw"]),
        helper.make_node("MatMul", [f"{p}h0", f"{p}U"], [f"{p}hu"]),
        helper.make_node("Add", [f"{p}xw", f"{p}hu"], [f"{p}pre"]),
        helper.make_node("Add", [f"{p}pre", f"{p}b"], [f"{p}pre_b"]),
        helper.make_node("Tanh", [f"{p}pre_b"], [f"{p}h"]),
        helper.make_node("MatMul", [f"{p}h", f"{p}V"], [f"{p}hv"]),
        helper.make_node("Add", [f"{p}hv", f"{p}c0"], [f"{p}c_pre"]),
        helper.make_node("Relu", [f"{p}c_pre"], [f"{p}c"]),
        helper.make_node("Unsqueeze", [f"{p}h", f"{p}axis0"], [f"{p}h_u"]),
        helper.make_node("Unsqueeze", [f"{p}c", f"{p}axis0"], [f"{p}c_u"]),
        helper.make_node("Concat", [f"{p}h_u", f"{p}c_u"], [f"{p}stateN"], axis=0),
        helper.make_node("MatMul", [f"{p}h", f"{p}Wo"], [f"{p}logit"]),
        helper.make_node("Add", [f"{p}logit", f"{p}bo"], [f"{p}logit_b"]),
        helper.make_node("Sigmoid", [f"{p}logit_b"], [f"{p}output"]),
    ]
    consts = [helper.make_node("Constant", [], [f"{p}zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
              helper.make_node("Constant", [], [f"{p}one"], value=numpy_helper.from_array(np.array(1, np.int64)))]
    outputs = [helper.make_tensor_value_info(f"{p}output", TensorProto.FLOAT, None),
               helper.make_tensor_value_info(f"{p}stateN", TensorProto.FLOAT, None)]
    return helper.make_graph(consts + nodes, name, [], outputs, inits)


def streaming_model(seed: int = 0) -> onnx.ModelProto:
    """The model (opset 17); `sr` == 16000 runs the then branch, anything else the else branch."""
    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["rate16k"], value=numpy_helper.from_array(np.array(16000, np.int64))),
         helper.make_node("Equal", ["sr", "rate16k"], ["is16k"]),
         helper.make_node("If", ["is16k"], ["output", "stateN"], name="If_sr",
                          then_branch=_branch("then16k", rng), else_branch=_branch("else8k", rng))],
        "streaming",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, HIDDEN]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, [2, None, HIDDEN])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def stream(count: int, *, sr=16000, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """`count` consecutive chunks of speech-like noise bursts, each with the state the model left."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    session = ort.InferenceSession(streaming_model().SerializeToString(), providers=["CPUExecutionProvider"])
    state = np.zeros((2, 1, HIDDEN), np.float32)
    rates = [sr] * count if np.isscalar(sr) else list(sr)
    samples = []
    for i in range(count):
        loud = 1.0 if (i // 4) % 2 else 0.05  # bursts of four loud chunks, then quiet ones
        chunk = (loud * rng.standard_normal((1, SAMPLES))).astype(np.float32)
        feed = {"input": chunk, "state": state, "sr": np.array(rates[i], np.int64)}
        samples.append(feed)
        state = session.run(None, feed)[1]
    return samples
