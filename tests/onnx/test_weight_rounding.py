"""GPTQ weight rounding (int8.weight_rounding): same scales, integers that move each layer's output least."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.quantize import quantize_qdq, rebuild_options


def _correlated_model(path) -> None:
    """x (1, 4, 12, 12) -> Conv 3x3 pad 1 (2 groups) -> Relu -> MatMul (over 12 features): weights
    drawn at random (fixed seed), each output channel with one large weight, so that INT8 weight
    rounding dominates the output error."""
    rng = np.random.default_rng(0)
    conv, dense = rng.normal(size=(8, 2, 3, 3)), rng.normal(size=(12, 16))
    conv[:, 0, 0, 0], dense[0] = 40, 40  # one large weight per output channel: a coarse INT8 grid for the rest
    conv = numpy_helper.from_array(conv.astype(np.float32), "conv_w")
    dense = numpy_helper.from_array(dense.astype(np.float32), "dense_w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "conv_w"], ["c"], name="conv", pads=[1, 1, 1, 1], group=2),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "dense_w"], ["y"], name="dense")],
        "correlated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12, 16])], [conv, dense])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _feeds(count: int, seed: int):
    """Smooth images: neighbouring pixels and channels move together (what GPTQ exploits)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, 1, 4, 4))
    images = np.kron(base, np.ones((1, 1, 3, 3))) * np.array([1, 0.9, 0.8, 0.7])[None, :, None, None]
    images += 0.05 * rng.normal(size=images.shape)
    return [{"x": images[i:i + 1].astype(np.float32)} for i in range(count)]


def _sqnr(model_path, reference_path, feeds) -> float:
    run = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (model_path, reference_path)]
    outs = [[s.run(None, f)[0] for f in feeds] for s in run]
    signal = sum(float(np.sum(r ** 2)) for r in outs[1])
    noise = sum(float(np.sum((o - r) ** 2)) for o, r in zip(*outs))
    return 10 * np.log10(signal / noise)


def _weights(path) -> dict:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
            if i.name.endswith("_quantized")}


def test_gptq_rounding_keeps_the_scales_and_lowers_the_output_error_on_fresh_inputs(tmp_path):
    fp32 = tmp_path / "fp32.onnx"
    _correlated_model(fp32)
    calibration, fresh = _feeds(64, 1), _feeds(32, 2)
    nearest = quantize_qdq(fp32, tmp_path / "nearest.onnx", lambda: iter(calibration))
    cache = tmp_path / "rounded.npz"
    gptq = quantize_qdq(fp32, tmp_path / "gptq.onnx", lambda: iter(calibration), weight_rounding="gptq",
                        rounding_cache=cache)
    assert nearest["weight_rounding"] == "nearest"
    assert gptq["weight_rounding"]["layers"] == 2 and gptq["weight_rounding"]["samples"] == 64
    assert rebuild_options(gptq)["weight_rounding"] == "gptq" and "weight_rounding" not in rebuild_options(nearest)
    plain, rounded = _weights(tmp_path / "nearest.onnx"), _weights(tmp_path / "gptq.onnx")
    assert plain.keys() == rounded.keys() and len(plain) == 2
    assert all(np.mean(plain[k] != rounded[k]) > 0.05 for k in plain)  # new integers ...
    assert all(np.max(np.abs(plain[k].astype(int) - rounded[k])) <= 8 for k in plain)  # ... on the same grid
    gain = _sqnr(tmp_path / "gptq.onnx", fp32, fresh) - _sqnr(tmp_path / "nearest.onnx", fp32, fresh)
    assert gain > 1.0, gain
    # the cache gives another build the same integers without measuring again (no samples here)
    again = quantize_qdq(fp32, tmp_path / "again.onnx", lambda: iter(calibration), weight_rounding="gptq",
                         rounding_cache=cache)
    assert again["weight_rounding"] == gptq["weight_rounding"]
    assert all(np.array_equal(v, _weights(tmp_path / "again.onnx")[k]) for k, v in rounded.items())
