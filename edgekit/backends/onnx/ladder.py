"""The ONNX side of the precision ladder: quantize once, then build every candidate by editing the QDQ graph.

`OnnxLadder(fp32_path, calibration, options)` calibrates and quantizes the float model once with
`quantize_qdq` (the plain INT8 build's options), indexes its tensor groups (`QdqGraph` units) and
builds a candidate for {unit id or weight key: "int16" | "float"} in milliseconds (a weight key,
`weight_keys()`, sets one conv/matmul's weights apart from its activations: `qdq_edit`). `bias_correction(True)`
switches every later build to the bias-corrected INT8 graph (`correct_biases`, computed once on
the calibration samples; the same units). `recipe()` is a picklable `OnnxLadderRecipe` that opens
the same ladder in another process without calibrating again (same files: a local pool). It also gives what the
search ranks with before building anything: each unit's local quantization noise on float
activations (`local_noise`) and the Concats whose inputs' calibrated ranges are orders of
magnitude apart (`heterogeneous`), the output noise of each conv/matmul's INT8 weights alone
(`conv_weight_noise`), and the per-layer precision map of a built model (`layer_map`, see
`backends.onnx.layer_map`). `group_units()` are the units whose conv/matmul readers can take
channel-group scales (level "groups", `channel_groups`; `groups`, a `GroupPlan`, measures their
per-channel ranges and regrouped weights once on the calibration samples; both travel in the recipe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from edgekit.backends.onnx.group_plan import GroupPlan
from edgekit.backends.selective import TempModelFiles
from edgekit.errors import UsageError

HETEROGENEOUS_RATIO = 100.0  # a Concat whose inputs' ranges differ this much shares one scale badly


@dataclass(frozen=True)
class OnnxLadderRecipe:
    """What reopens an `OnnxLadder` elsewhere: the float model, its INT8 QDQ build, the
    quantizer's settings and the bias-corrected build when one is in use (paths on this machine)."""

    fp32_path: str
    int8_path: str
    settings: dict
    corrected_path: Optional[str] = None
    correction: Optional[dict] = None
    channel_groups: bool = True
    channel_tensors: int = 0  # how many tensors' channel ranges come along (part of the repr: a worker's key)
    channel_ranges: Optional[dict] = field(default=None, repr=False)
    regrouped: int = 0  # how many readers' regrouped weights come along (also in the repr)
    group_weights: Optional[dict] = field(default=None, repr=False)

    def open(self) -> "OnnxLadder":
        ladder = OnnxLadder(Path(self.fp32_path), None, quantized=(Path(self.int8_path), self.settings),
                            channel_groups=self.channel_groups, groups=(self.channel_ranges, self.group_weights))
        if self.corrected_path is not None:
            ladder._use_corrected(Path(self.corrected_path), self.correction)
        return ladder


class OnnxLadder:
    """fp32_path: the float (fused) ONNX model; calibration: factory of feeds; options:
    `quantize_qdq` keyword arguments of the plain INT8 build (default: its defaults); quantized:
    (an INT8 QDQ build of fp32_path, its settings) to start from instead of quantizing;
    channel_groups: False leaves `group_units` empty [default True]; groups: (channel ranges,
    regrouped weights) measured elsewhere (`GroupPlan`)."""

    target = "onnx"
    suffix = ".onnx"

    def __init__(self, fp32_path: Path, calibration, options: Mapping | None = None, *,
                 quantized: tuple[Path, dict] | None = None, channel_groups: bool = True,
                 groups: tuple[dict | None, dict | None] = (None, None)):
        import onnx

        from edgekit.backends.onnx.qdq_edit import QdqGraph
        from edgekit.backends.onnx.quantize import quantize_qdq

        if calibration is None and quantized is None:
            raise UsageError("ONNX INT8 needs calibration data: pass --calibration DIR")
        self.fp32_path, self.calibration = Path(fp32_path), calibration
        self._files = TempModelFiles(self.suffix)
        self.int8_path = self._files.path("int8.onnx")
        if quantized is None:
            self.settings = quantize_qdq(self.fp32_path, self.int8_path, calibration, **dict(options or {}))
        else:
            self.int8_path, self.settings = Path(quantized[0]), dict(quantized[1])
        self.fp32 = onnx.load(str(self.fp32_path))
        self.plain = self.graph = QdqGraph(onnx.load(str(self.int8_path)), self.fp32)
        self.units = {u.id: u for u in self.graph.units}
        self._cache: dict[tuple, bytes] = {}
        self._macs: dict[str, int] | None = None
        self._corrected: tuple | None = None  # (QdqGraph, path, record) once computed
        self.groups = GroupPlan(self.plain, self.fp32, calibration, enabled=channel_groups,
                                ranges=groups[0], weights=groups[1])

    def build(self, levels: Mapping[str, str] | None = None) -> bytes:
        key = tuple(sorted((k, v) for k, v in (levels or {}).items() if v != "int8"))
        cache_key = (self.graph is not self.plain, key)
        if cache_key not in self._cache:
            grouped = any(v == "groups" for _, v in key)
            model = self.graph.edit(dict(key), *((self.groups.ranges(), self.groups.weights()) if grouped else ()))
            if self.graph is not self.plain:
                _plain_biases_where_weights_left_int8(model, self.plain.inits)
            self._cache[cache_key] = model.SerializeToString()
        return self._cache[cache_key]

    def bias_correction(self, on: bool) -> dict | None:
        """Build from the bias-corrected INT8 graph (on) or the plain one; returns the correction's
        record ({"layers", "samples", "max_shift"}) when on."""
        if not on:
            self.graph = self.plain
            return None
        if self._corrected is None:
            from edgekit.backends.onnx.bias_correction import correct_biases

            path = self._files.path("int8_bias_corrected.onnx")
            self._use_corrected(path, correct_biases(self.fp32_path, self.int8_path, path, self.calibration))
        self.graph = self._corrected[0]
        return self._corrected[2]

    def _use_corrected(self, path: Path, record: dict | None) -> None:
        import onnx

        from edgekit.backends.onnx.qdq_edit import QdqGraph

        self._corrected = (QdqGraph(onnx.load(str(path)), self.fp32), path, record)
        self.graph = self._corrected[0]

    def recipe(self) -> OnnxLadderRecipe:
        """The picklable recipe of this ladder as it builds now (see OnnxLadderRecipe): with the
        channel ranges, once measured, come the regrouped weights."""
        corrected = self.graph is not self.plain
        ranges, weights = self.groups.measured()
        return OnnxLadderRecipe(str(self.fp32_path), str(self.int8_path), self.settings,
                                str(self._corrected[1]) if corrected else None,
                                self._corrected[2] if corrected else None, self.groups.enabled,
                                len(ranges or {}), ranges, len(weights or {}), weights)

    def group_units(self) -> list[str]:
        """`GroupPlan.units`: the units that take channel groups ("groups": `qdq_edit`)."""
        return self.groups.units()

    def channel_ranges(self) -> dict:
        """`GroupPlan.ranges`: per-channel ranges of the tensors channel groups could split."""
        return self.groups.ranges()

    def quantization(self, levels: Mapping[str, str] | None = None) -> dict:
        raised = {k: v for k, v in (levels or {}).items() if v != "int8"}
        settings = {k: v for k, v in self.settings.items() if k != "nodes_excluded"}
        if self.graph is not self.plain:
            settings["bias_correction"] = self._corrected[2]
        grouped = [u for u, v in raised.items() if v == "groups"]
        if grouped:
            from edgekit.backends.onnx.qdq_edit import weight_key

            settings["regrouped_weights"] = sorted(  # the split readers with weight scales per group
                r for u in grouped for r in self.units[u].readers
                if r in self.groups.weights() and weight_key(r) not in raised)
        return {**settings, "tensor_precisions": raised} if raised else settings

    def fp32_model(self) -> bytes:
        return self.fp32_path.read_bytes()

    def runner(self, model: bytes, threads: int | None = None):
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(self._files.write(model), threads)

    def weight_keys(self) -> list[str]:
        """The weight keys of the conv/matmul/gemm nodes with INT8 weights, in graph order."""
        from edgekit.backends.onnx.qdq_edit import COMPUTE, weight_key

        ops = {n.name: n.op_type for n in self.graph.model.graph.node}
        return [weight_key(n) for n in self.graph.weights if ops[n] in COMPUTE]

    def reader_weights(self, unit_id: str) -> list[str]:
        """The weight keys of the conv/matmul/gemm nodes that read `unit_id` (INT8 weights only)."""
        from edgekit.backends.onnx.qdq_edit import weight_key

        keys = set(self.weight_keys())
        return [weight_key(r) for r in self.units[unit_id].readers if weight_key(r) in keys]

    def label(self, unit_id: str) -> str:
        from edgekit.backends.onnx.qdq_edit import WEIGHTS

        if unit_id.startswith(WEIGHTS):
            return f"{unit_id[len(WEIGHTS):]} weights"
        unit = self.units[unit_id]
        return f"{unit.layer} -> {unit_id}" if unit.layer != unit_id else unit_id

    def local_noise(self, feeds: Sequence[dict[str, np.ndarray]]) -> dict[str, float]:
        """Unit id -> noise power / signal power of its own INT8 grid on the float model's values."""
        from edgekit.backends.onnx.graph import float_values

        noise, signal = {}, {}
        for values in float_values(self.fp32, [t for u in self.graph.units for t in u.tensors], feeds):
            for unit in self.graph.units:
                for tensor in unit.tensors:
                    x = values.get(tensor)
                    if x is None or x.dtype.kind != "f":
                        continue
                    err = x - self._fake_quant(tensor, x)
                    noise[unit.id] = noise.get(unit.id, 0.0) + float(np.square(err, dtype=np.float64).sum())
                    signal[unit.id] = signal.get(unit.id, 0.0) + float(np.square(x, dtype=np.float64).sum())
        return {u: noise[u] / max(signal[u], 1e-30) for u in noise}

    def weight_noise(self, feeds: Sequence[dict[str, np.ndarray]], noise: Callable[[list], float],
                     deadline: float | None = None) -> dict[str, float]:
        """Unit id -> the largest `conv_weight_noise` of the conv/matmul nodes reading that unit
        (floating a unit gives its readers their float weights: qdq_edit)."""
        from edgekit.backends.onnx.qdq_edit import WEIGHTS

        made = {n.name: n for n in self.plain.model.graph.node}
        found: dict[str, float] = {}
        for key, value in self.conv_weight_noise(feeds, noise, deadline).items():
            unit = self._input_unit(made[key[len(WEIGHTS):]], self.plain.made)
            if unit is not None:
                found[unit] = max(found.get(unit, 0.0), value)
        return found

    def conv_weight_noise(self, feeds: Sequence[dict[str, np.ndarray]], noise: Callable[[list], float],
                          deadline: float | None = None) -> dict[str, float]:
        """Weight key -> `noise` (of the outputs, one dict per feed: e.g. an Evaluator's
        ranking_noise) of the float model with only that conv/matmul's INT8 weights, on `feeds`;
        stops at `deadline` (time.monotonic())."""
        import time

        import onnx
        import onnxruntime
        from onnx import numpy_helper

        from edgekit.backends.onnx.graph import dequantize
        from edgekit.backends.onnx.qdq_edit import WEIGHTS, original_weight
        from edgekit.runtime.onnx import session_options

        def outputs(model) -> list[dict[str, np.ndarray]]:
            session = onnxruntime.InferenceSession(model.SerializeToString(), session_options(1),
                                                   providers=["CPUExecutionProvider"])
            names = [o.name for o in session.get_outputs()]
            return [dict(zip(names, session.run(None, f))) for f in feeds]

        inits = self.plain.inits
        model = onnx.ModelProto()
        model.CopyFrom(self.fp32)  # one copy; each conv's weights are swapped in, then back
        slot = {init.name: init for init in model.graph.initializer}
        found: dict[str, float] = {}
        for key in self.weight_keys():
            if deadline is not None and time.monotonic() > deadline:
                break
            swapped = []
            for _, dq in self.plain.weights[key[len(WEIGHTS):]]:
                name = original_weight(dq.input[0])
                if name in slot and len(slot[name].dims) > 1:
                    swapped.append((name, onnx.TensorProto()))
                    swapped[-1][1].CopyFrom(slot[name])
                    slot[name].CopyFrom(numpy_helper.from_array(dequantize(dq, inits).astype(np.float32), name))
            if swapped:
                found[key] = noise(outputs(model))
            for name, original in swapped:
                slot[name].CopyFrom(original)
        return found

    def _fake_quant(self, tensor: str, x: np.ndarray) -> np.ndarray:
        low, high = self.graph.range(tensor)
        scale = (high - low) / 255.0
        if scale <= 0:
            return x
        return np.clip(np.round((x - low) / scale), 0, 255) * scale + low

    def heterogeneous(self) -> list[tuple[str, float, str]]:
        """[(unit id, range ratio, Concat node)] for each Concat whose inputs' calibrated spans
        differ >= HETEROGENEOUS_RATIO times, the widest first; the unit is the Concat's output."""
        found = []
        g = self.graph
        for node in g.model.graph.node:
            if node.op_type != "Concat" or node.output[0] not in g.unit_of:
                continue
            spans = []
            for name in node.input:
                dq = g.made.get(name)
                if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in g.made:
                    q = g.made[dq.input[0]]
                    if q.op_type == "QuantizeLinear" and q.input[0] in g.pairs:
                        low, high = g.range(q.input[0])
                        spans.append(high - low)
            if len(spans) >= 2 and min(spans) > 0 and max(spans) / min(spans) >= HETEROGENEOUS_RATIO:
                found.append((g.unit_of[node.output[0]], max(spans) / min(spans), node.name))
        return sorted(found, key=lambda f: -f[1])

    def unit_macs(self) -> dict[str, int]:
        """Unit id -> MACs of the conv/matmul/gemm nodes that read it, weight key -> its node's
        MACs (what int16 or float costs)."""
        from edgekit.backends.onnx.qdq_edit import WEIGHTS

        self._count_macs()
        return {**{u.id: sum(self._macs.get(r, 0) for r in u.readers) for u in self.graph.units},
                **{k: self._macs.get(k[len(WEIGHTS):], 0) for k in self.weight_keys()}}

    def off_w8a8_macs(self, levels: Mapping[str, str]) -> int:
        """Conv/matmul/gemm MACs that `levels` moves off W8A8 (each node counted once)."""
        from edgekit.backends.onnx.qdq_edit import WEIGHTS

        self._count_macs()
        nodes = set()
        for key, level in levels.items():
            if level not in ("int8", "groups"):
                nodes.update([key[len(WEIGHTS):]] if key.startswith(WEIGHTS) else self.units[key].readers)
        return sum(self._macs.get(n, 0) for n in nodes)

    def _count_macs(self) -> None:
        from edgekit.backends.onnx.layer_map import conv_macs

        if self._macs is None:
            self._macs = conv_macs(self.graph.model)

    def layer_map(self, model: bytes, sensitivity: Mapping[str, float]) -> list[dict]:
        """`layer_map.layer_rows` of `model` (built here; sensitivity: unit id -> score)."""
        from edgekit.backends.onnx.layer_map import layer_rows

        self._count_macs()
        return layer_rows(model, self._macs, self._input_unit, sensitivity)

    def _input_unit(self, node, made) -> str | None:
        source = made.get(node.input[0])
        while source is not None and source.op_type in ("DequantizeLinear", "QuantizeLinear", "Identity", "Gather"):
            tensor = source.input[0]
            if tensor in self.graph.unit_of:
                return self.graph.unit_of[tensor]
            source = made.get(tensor)
        return self.graph.unit_of.get(node.input[0])

    def close(self) -> None:
        self._files.close()


def _plain_biases_where_weights_left_int8(model, plain_inits) -> None:
    """Bias correction compensates the plain build's INT8 weights: a Conv/Gemm whose weights were
    raised to int16 or float, or regrouped (`channel_groups.REGROUPED`), gets its uncorrected int32
    bias back (`plain_inits`: the plain INT8 build's initializers)."""
    import onnx

    from edgekit.backends.onnx.channel_groups import REGROUPED

    made = {out: n for n in model.graph.node for out in n.output}
    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3:
            continue
        weights, bias = made.get(node.input[1]), made.get(node.input[2])
        int8 = (weights is not None and weights.op_type == "DequantizeLinear" and weights.input[0] in inits
                and inits[weights.input[0]].data_type == onnx.TensorProto.INT8
                and not weights.input[0].endswith(REGROUPED))
        if not int8 and bias is not None and bias.op_type == "DequantizeLinear" and bias.input[0] in plain_inits \
                and bias.input[0] in inits:
            inits[bias.input[0]].CopyFrom(plain_inits[bias.input[0]])
