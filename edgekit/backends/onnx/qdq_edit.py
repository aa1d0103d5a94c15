"""Precision edits on a quantized QDQ graph: one tensor group, or one conv/matmul's weights, at int8, int16 or float.

`QdqGraph(quantized, fp32)` indexes the activation Q/DQ pairs of an onnxruntime QDQ model (built
once, from one calibration) into units: a quantized tensor together with the tensors that share
its scale through pass-through ops (MaxPool, Reshape, Flatten, Transpose, ...), so the producer
and every consumer of an outlier tensor, pooling included, change together. `edit(levels)` returns
a new model where each named unit is
- "int16": its QuantizeLinear/DequantizeLinear retyped to 16 bits (com.microsoft domain, which
  onnxruntime runs at any opset) over the INT8 grid's range widened by one INT8 step on each side
  (scale s / 255: the zero point's rounding to an integer cuts up to half a step off the
  calibrated range, an error int16 would otherwise keep), or over exactly the same range (s / 257)
  where the quantizer folded a Relu/Clip into it (its bounds are the activation's);
- "float": its Q removed and each DQ replaced by Identity of the float tensor;
- "groups": INT8, and each conv/matmul reading it with INT8 weights (none raised by a weight key)
  split by input channel groups, each group with its own INT8 scale (`channel_groups`: `edit`'s
  channel_ranges, per tensor) and, where `edit`'s group_weights has that reader, its own INT8
  weight scales; still W8A8, finer grids.
A weight key (`weight_key(node)`: WEIGHTS + the name of a conv/matmul/gemm with INT8 weights,
`QdqGraph.weights`) edits that node's weights alone, whatever its activations:
- "int16": requantized from the FP32 model's weights, symmetric, per channel on the INT8 build's
  axis (per tensor when it was), read through a com.microsoft DequantizeLinear;
- "float": the FP32 model's weights.
A conv/matmul whose activation inputs are all float after the edits gets its float weights back
(from the FP32 model). Everything else is the single INT8 build, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekit.backends.onnx.channel_groups import reader_axis, split_reader
from edgekit.backends.onnx.graph import constant_value, prune

LEVELS = ("int8", "groups", "int16", "float")
PASS_THROUGH = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Slice",
                "Gather", "Split", "Resize", "DepthToSpace", "SpaceToDepth"}
ACTIVATIONS = {"Relu", "Clip"}  # onnxruntime's quantizer folds them into the INT8 range
COMPUTE = {"Conv", "ConvTranspose", "MatMul", "Gemm"}
CONTRIB = "com.microsoft"
WEIGHTS = "weights:"  # a weight key: this prefix + the conv/matmul node's name
WIDE = {onnx.TensorProto.UINT8: (onnx.TensorProto.UINT16, np.uint16, False),  # (16-bit type, numpy, signed)
        onnx.TensorProto.INT8: (onnx.TensorProto.INT16, np.int16, True)}


@dataclass
class Unit:
    """One quantized tensor group: `id` (its first tensor), the node that writes it (`layer`) and
    the nodes that read any of its tensors; `low`/`high`: the calibrated range of its INT8 grid."""

    id: str
    tensors: list[str]
    layer: str
    op_type: str
    readers: list[str]
    index: int
    low: float = 0.0
    high: float = 0.0
    readers_ops: list[str] = field(default_factory=list)


class QdqGraph:
    """quantized: the QDQ ModelProto (onnxruntime's quantize_static); fp32: the float model it
    came from (its weights serve the float layers)."""

    def __init__(self, quantized: onnx.ModelProto, fp32: onnx.ModelProto):
        self.model = quantized
        self.float_weights = {init.name: init for init in fp32.graph.initializer}
        self.fp32 = fp32.graph
        self.fp32_made = {out: node for node in fp32.graph.node for out in node.output}
        graph = quantized.graph
        self.inits = {init.name: init for init in graph.initializer}
        self.made = {out: node for node in graph.node for out in node.output}
        self.made_by_name = {node.name: node for node in graph.node}
        self.users: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.users.setdefault(name, []).append(node)
        self.pairs = {}  # float tensor -> (Q node, [DQ nodes])
        for node in graph.node:
            if node.op_type == "QuantizeLinear" and node.input[0] not in self.inits:
                dqs = [u for u in self.users.get(node.output[0], []) if u.op_type == "DequantizeLinear"]
                self.pairs[node.input[0]] = (node, dqs)
        self.units = self._group()
        self.unit_of = {t: u.id for u in self.units for t in u.tensors}
        self.units_by_id = {u.id: u for u in self.units}
        self.weights = {}  # node name -> [(input index, DQ of its 8-bit constant)]
        for node in graph.node:
            found = [(i, self.made[name]) for i, name in enumerate(node.input)
                     if node.op_type != "QuantizeLinear" and name in self.made
                     and self.made[name].op_type == "DequantizeLinear" and self.made[name].input[0] in self.inits
                     and self.inits[self.made[name].input[0]].data_type in WIDE
                     and original_weight(self.made[name].input[0]) in self.float_weights]
            if found:
                self.weights[node.name] = found

    def _source(self, tensor: str) -> str:
        """The quantized tensor a pass-through op's output shares its scale with, else itself."""
        node = self.made.get(tensor)
        while node is not None and node.op_type in PASS_THROUGH and node.input:
            dq = self.made.get(node.input[0])
            if dq is None or dq.op_type != "DequantizeLinear":
                break
            upstream = self.made.get(dq.input[0])
            if upstream is None or upstream.op_type != "QuantizeLinear":
                break
            tensor, node = upstream.input[0], self.made.get(upstream.input[0])
        return tensor

    def _group(self) -> list[Unit]:
        groups: dict[str, list[str]] = {}
        for tensor in self.pairs:
            groups.setdefault(self._source(tensor), []).append(tensor)
        order = {node.name: i for i, node in enumerate(self.model.graph.node)}
        units = []
        for root, tensors in groups.items():
            writer = self.made.get(root)
            readers = [u for t in tensors for dq in self.pairs[t][1] for out in dq.output
                       for u in self.users.get(out, []) if u.op_type != "QuantizeLinear"]
            low, high = self.range(root)
            units.append(Unit(root, tensors, writer.name if writer is not None else root,
                              writer.op_type if writer is not None else "input",
                              list(dict.fromkeys(r.name for r in readers)),
                              order.get(writer.name, -1) if writer is not None else -1, low, high,
                              list(dict.fromkeys(r.op_type for r in readers))))
        return sorted(units, key=lambda u: (u.index, u.id))

    def range(self, tensor: str) -> tuple[float, float]:
        """The real range the INT8 grid of `tensor` covers (from its scale and zero point)."""
        q = self.pairs[tensor][0]
        scale = float(numpy_helper.to_array(self.inits[q.input[1]]).reshape(-1)[0])
        zero = numpy_helper.to_array(self.inits[q.input[2]]) if len(q.input) > 2 else np.zeros(1, np.uint8)
        info = np.iinfo(zero.dtype)
        z = int(zero.reshape(-1)[0])
        return (info.min - z) * scale, (info.max - z) * scale

    def groupable(self, unit_id: str) -> dict[str, int]:
        """{tensor of the unit: channel axis} for the tensors of `unit_id` read by a conv/matmul
        that `channel_groups` can split (a tensor read along two axes is left out)."""
        unit, found = self.units_by_id[unit_id], {}
        for tensor in unit.tensors:
            axes = {self.split_axis(r, tensor) for r in unit.readers} - {None}
            if len(axes) == 1:
                found[tensor] = axes.pop()
        return found

    def split_axis(self, reader: str, tensor: str) -> int | None:
        """The channel axis along which node `reader`, a conv/matmul reading `tensor` through its
        Q/DQ, splits by channel groups (`channel_groups.reader_axis`), else None."""
        node = self.made_by_name[reader]
        dq = self.made.get(node.input[0])
        q = self.made.get(dq.input[0]) if dq is not None else None
        if node.op_type not in COMPUTE or q is None or q.input[0] != tensor:
            return None
        return reader_axis(node, self.inits, self.made)

    def edit(self, levels: Mapping[str, str], channel_ranges: Mapping | None = None,
             group_weights: Mapping | None = None) -> onnx.ModelProto:
        """A copy of the quantized model with each unit id in `levels` at its level (see module);
        channel_ranges: {tensor: (low, high) per channel} of the units at "groups"; group_weights
        (default none): {reader: its regrouped weights (`split_reader`)}."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        by_name = {node.name: node for node in graph.node}
        inits = {init.name: init for init in graph.initializer}
        drop: set[str] = set()
        widened: dict[str, int] = {}  # Q output -> its 16-bit element type
        unknown = [k for k in levels if k.startswith(WEIGHTS) and k[len(WEIGHTS):] not in self.weights]
        if unknown:
            raise ValueError(f"no INT8 weights to edit for {unknown[0]!r}")
        for unit in self.units:
            level = levels.get(unit.id, "int8")
            if level not in LEVELS:
                raise ValueError(f"unknown precision {level!r} for {unit.id}; choose from {LEVELS}")
            for tensor in unit.tensors if level in ("int16", "float") else ():
                q, dqs = self.pairs[tensor]
                if level == "int16":
                    widened[q.output[0]] = self._widen(graph, inits, by_name[q.name], [by_name[d.name] for d in dqs],
                                                       self._folded(tensor))
                else:
                    drop.add(q.name)
                    for dq in dqs:
                        self._unquantize(graph, by_name[dq.name], tensor)
        rewired = self._weights(graph, by_name, levels)
        self._split(graph, levels, channel_ranges or {}, group_weights or {})
        if widened or rewired:
            if CONTRIB not in {o.domain for o in model.opset_import}:
                model.opset_import.append(helper.make_opsetid(CONTRIB, 1))
        if widened:
            kept_info = [v for v in graph.value_info if v.name not in widened]
            del graph.value_info[:]
            graph.value_info.extend([*kept_info, *(helper.make_tensor_value_info(name, elem, None)
                                                   for name, elem in widened.items())])
        self._float_weights(graph)
        used = {name for node in graph.node for name in node.input} | {v.name for v in graph.output}
        drop |= {dq.name for found in self.weights.values() for _, dq in found if dq.output[0] not in used}
        kept = [node for node in graph.node if node.name not in drop]
        del graph.node[:]
        graph.node.extend(kept)
        return model

    def _split(self, graph, levels: Mapping[str, str], channel_ranges: Mapping, group_weights: Mapping) -> None:
        """Split the conv/matmul readers of each unit at "groups" by channel groups; the nodes and
        initializers that nothing reads any more go (`graph.prune`)."""
        grouped = [u for u, level in levels.items() if level == "groups"]
        for unit in grouped:
            for tensor in self.groupable(unit):
                if tensor not in channel_ranges:
                    raise ValueError(f"no channel ranges for {tensor!r} (unit {unit} at 'groups')")
                for reader in self.units_by_id[unit].readers:
                    if self.split_axis(reader, tensor) is None or levels.get(weight_key(reader), "int8") != "int8":
                        continue  # W16A8/WfA8: not split
                    split_reader(graph, reader, tensor, channel_ranges[tensor], weights=group_weights.get(reader))
        if grouped:
            prune(graph)

    def _unquantize(self, graph, dq, tensor: str) -> None:
        """DQ -> Identity(tensor), or the float model's Relu/Clip on `tensor` when the quantizer
        folded it into the INT8 range (its output name stayed, its node went)."""
        dq.domain = ""
        del dq.input[:]
        dq.input.append(tensor)
        folded = self._float_writer(tensor)
        writer = self.made.get(tensor)
        kept = writer is not None and writer.op_type == folded.op_type if folded is not None else False
        if folded is None or folded.op_type not in ACTIVATIONS or kept:
            dq.op_type = "Identity"
            return
        dq.op_type = folded.op_type
        del dq.attribute[:]
        dq.attribute.extend(folded.attribute)
        for k, bound in enumerate(folded.input[1:3], 1):
            value = constant_value(self.fp32, bound) if bound else None
            name = f"{dq.name}_bound{k}" if value is not None else ""  # one DQ, one bound: unique
            if value is not None:
                graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
            dq.input.append(name)

    def _float_writer(self, tensor: str) -> onnx.NodeProto | None:
        """The float model's node that wrote `tensor`; for a graph output's tensor that the
        quantizer renamed (`<output>_QuantizeLinear_Input`), the one that wrote what its DQ gives."""
        node = self.fp32_made.get(tensor)
        for dq in self.pairs[tensor][1] if node is None and tensor in self.pairs else ():
            node = node or self.fp32_made.get(dq.output[0])
        return node

    def _folded(self, tensor: str) -> bool:
        """Whether the quantizer folded the float model's Relu/Clip writing `tensor` into its Q range."""
        folded, writer = self._float_writer(tensor), self.made.get(tensor)
        return (folded is not None and folded.op_type in ACTIVATIONS
                and (writer is None or writer.op_type != folded.op_type))

    @staticmethod
    def _widen(graph, inits, q, dqs, exact: bool) -> int:
        """Retype q and its DQs to 16 bits; returns the 16-bit element type. exact: over the same
        range (s / 257; a folded Relu/Clip's bounds); else one INT8 step wider on each side (s / 255),
        which the zero point's rounding to an integer took from the calibrated range."""
        zero = inits[q.input[2]]
        wide_type, wide_np, signed = WIDE[zero.data_type]
        name = q.input[0]
        z = numpy_helper.to_array(zero).astype(np.int64)
        if exact:  # [0, 255] -> [0, 65535] (z -> 257 z); [-128, 127] -> [-32768, 32767] (z -> 257 z + 128)
            z, steps = z * 257 + (128 if signed else 0), 257
        else:  # [-1, 256] -> [0, 65280] (z -> 255 (z + 1)); [-128.5, 128.5] -> [-32768, 32767] (z -> 255 z)
            z, steps = (z if signed else z + 1) * 255, 255
        s = numpy_helper.to_array(inits[q.input[1]]).astype(np.float32) / np.float32(steps)
        graph.initializer.extend([numpy_helper.from_array(s, f"{name}_scale16"),
                                  numpy_helper.from_array(z.astype(wide_np), f"{name}_zero_point16")])
        for node in (q, *dqs):
            node.domain = CONTRIB
            node.input[1], node.input[2] = f"{name}_scale16", f"{name}_zero_point16"
        return wide_type

    def _weights(self, graph, by_name, levels: Mapping[str, str]) -> bool:
        """Rewire the weights of each weight key in `levels` (see the module); True when any went int16."""
        wide = False
        added = {init.name for init in graph.initializer}
        for key, level in levels.items():
            if not key.startswith(WEIGHTS) or level == "int8":
                continue
            if level not in ("int16", "float"):
                raise ValueError(f"unknown precision {level!r} for {key}; choose from int8, int16, float")
            node = by_name[key[len(WEIGHTS):]]
            for index, dq in self.weights[node.name]:
                original = original_weight(dq.input[0])
                value = numpy_helper.to_array(self.float_weights[original])
                name = f"{original}_{'float' if level == 'float' else 'int16'}"
                if name not in added:
                    added.add(name)
                    if level == "float":
                        graph.initializer.append(numpy_helper.from_array(value, name))
                    else:
                        per_channel = numpy_helper.to_array(self.inits[dq.input[1]]).size > 1
                        graph.node.insert(0, _int16_weights(graph, value, name, dq, per_channel))
                node.input[index] = name if level == "float" else f"{name}_dequantized"
                wide |= level == "int16"
        return wide

    def _float_weights(self, graph) -> None:
        """Conv/MatMul/Gemm with only float activation inputs read their float weights."""
        made = {out: node for node in graph.node for out in node.output}
        inits = {init.name for init in graph.initializer}
        added = set(inits)
        for node in graph.node:
            if node.op_type not in COMPUTE:
                continue
            sources = [made.get(name) for name in node.input if name]
            weights = [i for i, src in enumerate(sources) if src is not None and src.op_type == "DequantizeLinear"
                       and src.input[0] in inits]
            activations = [src for i, src in enumerate(sources) if i not in weights]
            if any(src is not None and src.op_type == "DequantizeLinear" for src in activations) or not weights:
                continue
            for i in weights:
                original = original_weight(made[node.input[i]].input[0])
                value = self.float_weights.get(original)
                if value is None:
                    continue
                name = f"{original}_float"
                if name not in added:
                    graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(value), name))
                    added.add(name)
                node.input[i] = name


def weight_key(node: str) -> str:
    """The `edit` key of a conv/matmul node's weights."""
    return WEIGHTS + node


def original_weight(name: str) -> str:
    """The FP32 initializer a quantized weight initializer was made from."""
    return name.removesuffix("_quantized").removesuffix("_int16")


def quantized_weights(qdq: onnx.ModelProto, fp32: onnx.ModelProto, ops: tuple[str, ...]) -> list[tuple]:
    """[(node, its weights' DequantizeLinear, the quantized initializer, the float initializer it
    was made from)] for each `ops` node of `qdq` whose second input dequantizes an initializer
    (with initializer scale and zero point) quantized from a same-shaped one of `fp32`."""
    inits = {i.name: i for i in qdq.graph.initializer}
    floats = {i.name: i for i in fp32.graph.initializer}
    made = {out: n for n in qdq.graph.node for out in n.output}
    found = []
    for node in qdq.graph.node:
        dq = made.get(node.input[1]) if node.op_type in ops and len(node.input) > 1 else None
        if dq is None or dq.op_type != "DequantizeLinear" or not all(
                name in inits for name in dq.input[:3] if name):
            continue
        quantized, source = inits[dq.input[0]], floats.get(original_weight(dq.input[0]))
        if source is not None and tuple(source.dims) == tuple(quantized.dims):
            found.append((node, dq, quantized, source))
    return found


def _int16_weights(graph, value: np.ndarray, name: str, dq, per_channel: bool) -> onnx.NodeProto:
    """Add `value` quantized symmetric int16 (per channel on `dq`'s axis when per_channel) as
    initializer `name`; returns the com.microsoft DequantizeLinear that reads it."""
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1) % max(value.ndim, 1)
    reduce = tuple(a for a in range(value.ndim) if a != axis) if per_channel else None
    peak = np.abs(value).max(axis=reduce) if value.size else np.zeros(1, np.float32)
    scale = np.where(peak > 0, peak / 32767.0, 1.0).astype(np.float32)
    shape = [-1 if a == axis else 1 for a in range(value.ndim)] if per_channel else []
    q = np.clip(np.round(value / scale.reshape(shape)), -32767, 32767).astype(np.int16)
    graph.initializer.extend([numpy_helper.from_array(q, name), numpy_helper.from_array(scale, f"{name}_scale"),
                              numpy_helper.from_array(np.zeros(scale.shape, np.int16), f"{name}_zero_point")])
    attributes = {"axis": axis} if per_channel else {}
    return helper.make_node("DequantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"],
                            [f"{name}_dequantized"], f"{name}_dequantize", domain=CONTRIB, **attributes)
