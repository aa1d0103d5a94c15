"""ONNX selective INT8: onnxruntime static QDQ quantization with chosen nodes kept in float.

Uses `edgekit.backends.onnx.quantize.quantize_qdq(..., nodes_to_exclude=...)` with the same options as the
plain INT8 build (`options`: method, per_channel, ...; see `quantize.rebuild_options`); node ids
are ONNX node names. The first build calibrates and keeps the activation ranges in a file
(onnxruntime's `calibration_cache_path`); later builds reuse them. Builds are cached by float
set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from edgekit.backends.selective import QuantNode, TempModelFiles, keras_layer, unique_layers
from edgekit.errors import UsageError
from edgekit.runtime.base import TensorSpec
from edgekit.sources.tensorflow import scope_of

# ONNX ops onnxruntime quantizes whose float fallback can change accuracy.
QUANTIZABLE = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "Mul", "Concat", "AveragePool",
               "GlobalAveragePool", "Sigmoid", "HardSigmoid", "HardSwish", "Softmax", "LeakyRelu",
               "Relu", "Clip", "ReduceMean", "Resize", "Where", "Split"}


class OnnxSelective:
    """fp32_path: the float ONNX model; calibration: factory of feeds (settable later);
    options: `quantize_qdq` keyword arguments of every build (default: its defaults, minmax
    per-channel), the plain INT8 build's own (`rebuild_options`) when there is one; `smoothing`:
    the records of the activation smoothing in fp32_path (None: not known)."""

    target = "onnx"
    suffix = ".onnx"

    def __init__(self, fp32_path: Path, calibration=None, layer_names: Sequence[str] = (), *,
                 options: Mapping | None = None, smoothing: list | None = None):
        import onnx

        self.fp32_path = Path(fp32_path)
        self.calibration = calibration
        self.smoothing = smoothing
        self.options = dict(options or {})
        self._settings: dict[frozenset, dict] = {}
        self._layer_names = list(layer_names)
        self._files = TempModelFiles(self.suffix)
        self._cache: dict[frozenset, bytes] = {}
        graph = onnx.load(str(self.fp32_path), load_external_data=False).graph
        self._nodes = unique_layers([QuantNode(n.name, n.op_type, self._label(n.name), i)
                                     for i, n in enumerate(graph.node) if n.op_type in QUANTIZABLE and n.name])
        self.producers = {out: n.name for n in graph.node for out in n.output}

    def _label(self, name: str) -> str:
        """The Keras layer the node comes from when known, else the node's full name: the last
        part of '/model.2/cv1/conv/Conv' alone ('conv') names a dozen nodes."""
        return keras_layer(scope_of(name), self._layer_names) or name

    def nodes(self) -> list[QuantNode]:
        return self._nodes

    def build(self, float_nodes: Sequence[str] = ()) -> bytes:
        from edgekit.backends.onnx.quantize import quantize_qdq

        if self.calibration is None:
            raise UsageError("ONNX INT8 needs calibration data: pass --calibration DIR")
        key = frozenset(float_nodes)
        if key not in self._cache:
            unknown = key - {n.id for n in self._nodes}
            if unknown:
                raise UsageError(f"unknown ONNX node(s) {sorted(unknown)[:3]}; see `edgekit debug` for names")
            out = self._files.write(b"")
            settings = quantize_qdq(self.fp32_path, out, self.calibration, nodes_to_exclude=sorted(key),
                                    ranges_cache=self._files.path("ranges.json"),
                                    rounding_cache=self._files.path("rounded.npz"), **self.options)
            self._settings[key] = {k: v for k, v in settings.items() if k != "nodes_excluded"}
            self._cache[key] = out.read_bytes()
        return self._cache[key]

    def quantization(self, float_nodes: Sequence[str] = ()) -> dict:
        """The settings `quantize_qdq` reported for the build of `float_nodes` (its excluded list aside)."""
        self.build(float_nodes)
        return self._settings[frozenset(float_nodes)]

    def runner(self, model: bytes, threads: int | None = None):
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(self._files.write(model), threads)

    def input_specs(self) -> list[TensorSpec]:
        """The float model's inputs with unknown dims fixed to 1."""
        from edgekit.runtime.onnx import OnnxRunner

        return [TensorSpec(s.name, tuple(d if d > 0 else 1 for d in s.shape), s.dtype)
                for s in OnnxRunner(self.fp32_path).inputs]

    def reference(self):
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(self.fp32_path).run

    def layer_errors(self, feeds):
        """Per-layer error of the INT8 model vs float on `feeds` (edgekit.validate.layer_error)."""
        from edgekit.backends.onnx.debugger import onnx_layer_errors

        return onnx_layer_errors(self, feeds)

    def close(self) -> None:
        self._files.close()


class OnnxLadderSelective(OnnxSelective):
    """OnnxSelective that also offers the precision ladder (W8A8 -> W8A16 -> float);
    ladder_rounding: the ladder's INT8 weight rounding [default "gptq"; "nearest"]; channel_groups:
    whether the ladder may use channel-group activation scales [default True]."""

    def __init__(self, *args, ladder_rounding: str = "gptq", channel_groups: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.ladder_rounding, self.channel_groups = ladder_rounding, channel_groups

    def ladder(self):
        """The precision ladder over the same float graph and quantizer options, its INT8 weights
        rounded by `ladder_rounding` (one quantization, candidates by QDQ graph edits;
        `edgekit.backends.onnx.ladder.OnnxLadder`)."""
        from edgekit.backends.onnx.ladder import OnnxLadder

        options = {**self.options, "weight_rounding": self.ladder_rounding}
        return OnnxLadder(self.fp32_path, self.calibration, options=options, channel_groups=self.channel_groups)
