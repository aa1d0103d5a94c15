"""Nodes quantize_qdq never quantizes: a Concat that writes a graph output (a detector head), a
variance computed as E[x^2] - E[x]^2 (LayerNorm as TF/JAX export it), and a spectrum magnitude
sqrt(re^2 + im^2) of an STFT computed as a Conv (PyTorch audio front ends)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.exclusions import MAGNITUDE, OUTPUT_CONCAT, VARIANCE, magnitudes, variance_statistics
from edgekit.backends.onnx.quantize import quantize_qdq


def _run(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _samples(mean: float, std: float, shape: tuple):
    return lambda: ({"x": np.random.default_rng(i).normal(mean, std, shape).astype(np.float32)} for i in range(16))


def _detector_head() -> onnx.ModelProto:
    """YOLOv8's last node in small: Concat([box pixels = x * 100, class scores = Sigmoid(x)])."""
    nodes = [
        helper.make_node("Mul", ["x", "stride"], ["boxes"], name="boxes"),
        helper.make_node("Sigmoid", ["x"], ["scores"], name="scores"),
        helper.make_node("Concat", ["boxes", "scores"], ["head"], name="head", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 64])],
        [helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 8, 64])],
        [numpy_helper.from_array(np.float32(100.0), "stride")])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_an_output_concat_stays_float_so_scores_keep_their_own_scale(tmp_path):
    fp32 = tmp_path / "head.onnx"
    onnx.save(_detector_head(), str(fp32))
    samples = _samples(0, 2, (1, 4, 64))
    settings = quantize_qdq(fp32, tmp_path / "int8.onnx", samples)
    assert settings["nodes_excluded_auto"] == {"head": OUTPUT_CONCAT}
    x = next(samples())["x"]
    head = _run(tmp_path / "int8.onnx", x)
    scores_error = np.abs(head[:, 4:] - 1 / (1 + np.exp(-x))).max()
    # one scale across both parts (about 1400/255) rounded every score to 0 (error 0.998); their own: 1/255
    assert scores_error < 0.01, scores_error
    assert np.abs(head[:, :4] - 100 * x).max() < 3  # the boxes keep theirs


def _fast_layernorm(*, centred: bool = False) -> onnx.ModelProto:
    """LayerNorm over the last axis of x [1, 16, 32] as Flax exports it: var = E[x^2] - E[x]^2, then
    (x - mean) * rsqrt(var + eps) * gamma. `centred`: PyTorch's var = E[(x - mean)^2] instead."""
    n = helper.make_node
    if centred:
        variance = [n("Mul", ["d", "d"], ["d2"], name="d2"), n("ReduceMean", ["d2"], ["var"], name="var", axes=[-1])]
    else:
        variance = [
            n("Mul", ["x", "x"], ["x2"], name="x2"), n("ReduceMean", ["x2"], ["ex2"], name="ex2", axes=[-1]),
            n("Mul", ["mean", "mean"], ["mean2"], name="mean2"), n("Sub", ["ex2", "mean2"], ["var"], name="var"),
        ]  # fmt: skip
    nodes = [
        n("ReduceMean", ["x"], ["mean"], name="mean", axes=[-1]), n("Sub", ["x", "mean"], ["d"], name="d"),
        *variance,
        n("Add", ["var", "eps"], ["var_eps"], name="var_eps"), n("Sqrt", ["var_eps"], ["std"], name="std"),
        n("Reciprocal", ["std"], ["rstd"], name="rstd"), n("Mul", ["rstd", "gamma"], ["scale"], name="scale"),
        n("Mul", ["d", "scale"], ["y"], name="y"),
    ]  # fmt: skip
    inits = [
        numpy_helper.from_array(np.float32(1e-6), "eps"),
        numpy_helper.from_array(np.ones(32, np.float32), "gamma"),
    ]
    graph = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32])], inits)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_the_statistics_of_a_fast_variance_stay_float(tmp_path):
    assert variance_statistics(_fast_layernorm().graph) == ["mean", "x2", "ex2", "mean2", "var", "var_eps", "std",
                                                            "rstd", "scale"]  # fmt: skip
    assert variance_statistics(_fast_layernorm(centred=True).graph) == []  # no cancellation there
    fp32 = tmp_path / "ln.onnx"
    onnx.save(_fast_layernorm(), str(fp32))
    # activations whose mean (5) is large against their spread (0.2), as after a GELU
    samples = _samples(5, 0.2, (1, 16, 32))
    settings = quantize_qdq(fp32, tmp_path / "int8.onnx", samples)
    assert set(settings["nodes_excluded_auto"].values()) == {VARIANCE} and "y" not in settings["nodes_excluded_auto"]
    x = next(samples())["x"]
    y = _run(tmp_path / "int8.onnx", x)
    reference = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    # INT8 rounding of E[x^2] (about 25) exceeded the variance (0.04): errors up to 1.6 without the rule
    assert np.abs(y - reference).max() < 0.2, np.abs(y - reference).max()


def _stft_magnitude() -> onnx.ModelProto:
    """x [1, 1, 256] -> Conv with a 64-point DFT basis (32 real + 32 imaginary rows, stride 32) ->
    Slice re / im -> Pow 2 -> Add -> Sqrt: the magnitude spectrum [1, 32, 7], as silero-vad does."""
    k, f = np.arange(64), np.arange(32)[:, None]
    basis = np.concatenate([np.cos(2 * np.pi * f * k / 64), -np.sin(2 * np.pi * f * k / 64)])[:, None, :]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "basis"], ["spec"], name="stft", strides=[32]),
        n("Slice", ["spec", "zero", "half", "one"], ["re"], name="re"),
        n("Slice", ["spec", "half", "full", "one"], ["im"], name="im"),
        n("Pow", ["re", "two"], ["re2"], name="re2"), n("Pow", ["im", "two"], ["im2"], name="im2"),
        n("Add", ["re2", "im2"], ["power"], name="power"), n("Sqrt", ["power"], ["magnitude"], name="magnitude"),
    ]  # fmt: skip
    inits = [numpy_helper.from_array(basis.astype(np.float32), "basis"), numpy_helper.from_array(np.float32(2), "two")]
    inits += [numpy_helper.from_array(np.array([v], np.int64), name)
              for name, v in (("zero", 0), ("half", 32), ("full", 64), ("one", 1))]  # fmt: skip
    graph = helper.make_graph(nodes, "stft", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 256])],
                              [helper.make_tensor_value_info("magnitude", TensorProto.FLOAT, [1, 32, 7])], inits)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_an_stft_magnitude_stays_float_so_quiet_bins_survive(tmp_path):
    assert magnitudes(_stft_magnitude().graph) == ["magnitude", "power", "re2", "im2", "re", "stft", "im"]
    fp32 = tmp_path / "stft.onnx"
    onnx.save(_stft_magnitude(), str(fp32))
    t = np.arange(256)

    def signal(seed):  # a loud tone over quiet noise, as speech over room noise
        noise = np.random.default_rng(seed).normal(0, 0.003, 256)
        return {"x": (np.sin(2 * np.pi * 8 * t / 64) + noise).astype(np.float32)[None, None]}

    settings = quantize_qdq(fp32, tmp_path / "int8.onnx", lambda: (signal(i) for i in range(16)))
    assert set(settings["nodes_excluded_auto"].values()) == {MAGNITUDE}
    x = signal(99)["x"]
    magnitude = _run(tmp_path / "int8.onnx", x)
    (reference,) = onnx.reference.ReferenceEvaluator(_stft_magnitude()).run(None, {"x": x})
    quiet = reference < 1  # every bin but the tone's
    # the power (0-1000) on one INT8 scale rounded every quiet bin (|X| about 0.02) to 0
    assert np.median(np.abs(magnitude[quiet] - reference[quiet]) / reference[quiet]) < 0.05
