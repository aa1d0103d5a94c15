"""Channel-group activation scales: one conv/matmul split by input channels, each group with its own INT8 scale.

A tensor whose channels span very different ranges (a squeeze-excite gate's output, an attention
projection's input) shares one INT8 scale badly: the widest channels set the step for all. Per
channel activation scales cannot run in integer arithmetic (the scale would vary along the
reduction), but a conv/matmul is a sum over its input channels, so it splits exactly:

    y = W x + b = sum_g W[:, g] x[g] + b

`split_reader` rewrites one reader of a quantized tensor in a QDQ graph as G (default GROUPS, 8)
Gather -> QuantizeLinear -> DequantizeLinear -> Conv/MatMul branches, one per channel group
(each group's own INT8 scale from the calibrated per-channel ranges, never wider than the tensor's
own grid), by default over slices of the same INT8 weights (same scales and values),
summed (the bias once, on the first group); with `weights` (regrouped: `weight_rounding.round_groups`)
each group reads INT8 weights on a scale per output channel of its own. Every multiply-accumulate
stays int8 x int8: W8A8 on any backend that runs a QDQ conv/matmul in INT8 (TensorRT;
onnxruntime's CPU runs the group convs through its float kernels, as their outputs are not
requantized).

`group_channels` picks the groups: channels sorted by the span of their range, cut into
contiguous groups minimizing sum over groups of (group span)^2 x (the squared weights those
channels feed), the INT8 rounding noise each group adds to the output. `channel_ranges` measures
the per-channel ranges on the float model. Group nodes are named `<reader><SEP><k>`.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgekit.backends.onnx.graph import attribute, dequantize

GROUPS = 8
SEP = "/channel_group_"
REGROUPED = "_regrouped_weights"  # a group's weights requantized on scales of its own


def reader_axis(node: onnx.NodeProto, inits: Mapping[str, onnx.TensorProto], made: Mapping) -> int | None:
    """The channel axis of `node`'s first input that its INT8 constant weights reduce over (Conv
    with group 1: 1; MatMul with 2-D weights: -1), or None where it cannot be split."""
    weights = _weight_dq(node, inits, made)
    if weights is None:
        return None
    per_channel = inits[weights.input[1]].dims not in ([], [1]) if weights.input[1] in inits else False
    if node.op_type == "Conv" and attribute(node, "group", 1) == 1:
        along = attribute(weights, "axis", 1) % len(inits[weights.input[0]].dims) == 1
        return None if per_channel and along else 1
    if node.op_type == "MatMul" and len(inits[weights.input[0]].dims) == 2:
        return None if per_channel and attribute(weights, "axis", 1) % 2 == 0 else -1
    return None


def _weight_dq(node, inits, made) -> onnx.NodeProto | None:
    """The DequantizeLinear of `node`'s INT8 constant weights (input 1), else None."""
    dq = made.get(node.input[1]) if len(node.input) > 1 else None
    if dq is None or dq.op_type != "DequantizeLinear" or dq.domain not in ("", "ai.onnx"):
        return None
    data = inits.get(dq.input[0])
    if data is None or data.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
        return None
    return dq


def channel_ranges(fp32: onnx.ModelProto, wanted: Mapping[str, int], feeds: Iterable[dict]) -> dict:
    """{tensor: (low, high)} per channel on its axis (`wanted`: tensor -> axis), min/max over
    `feeds` on the float model."""
    from edgekit.backends.onnx.graph import float_values

    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for values in float_values(fp32, list(wanted), feeds):
        for name, x in values.items():
            axis = wanted[name] % x.ndim
            rest = tuple(a for a in range(x.ndim) if a != axis)
            low, high = x.min(axis=rest).astype(np.float64), x.max(axis=rest).astype(np.float64)
            if name in found:
                low, high = np.minimum(found[name][0], low), np.maximum(found[name][1], high)
            found[name] = (low, high)
    return found


def group_channels(low: np.ndarray, high: np.ndarray, weight: np.ndarray, groups: int = GROUPS,
                   symmetric: bool = False) -> tuple[list[np.ndarray], float]:
    """(channel index arrays, one per group: at most `groups`, each non-empty, neighbours that
    would cost no more as one merged; the INT8 noise of one scale over that of the groups, >= 1;
    see the module)."""
    low, high = np.minimum(low, 0.0), np.maximum(high, 0.0)
    span = np.maximum(-low, high) if symmetric else high - low
    order = np.argsort(span, kind="stable")
    low, high, weight = low[order], high[order], weight[order]
    n, g = len(order), min(groups, len(order))
    # cost[i, j]: the noise of one group of sorted channels i..j (inclusive)
    cost = np.full((n, n), np.inf)
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    for i in range(n):
        hi, lo = np.maximum.accumulate(high[i:]), np.minimum.accumulate(low[i:])
        width = np.maximum(-lo, hi) if symmetric else hi - lo
        cost[i, i:] = width ** 2 * (cum[i + 1:] - cum[i])
    best = cost[0].copy()  # best[j]: channels 0..j in k groups
    cuts = []
    for _ in range(1, g):
        options = best[:-1, None] + cost[1:, :]  # the last group i+1..j after 0..i (inf: j <= i)
        start = np.argmin(options, axis=0)
        cuts.append(start)
        best = options[start, np.arange(n)]
    bounds, end = [], n - 1
    for start in reversed(cuts):
        first = int(start[end]) + 1
        bounds.append((first, end))
        end = first - 1
    bounds.append((0, end))
    merged = [bounds.pop()]
    for first, last in reversed(bounds):  # neighbours that cost no more as one group stay one (fewer nodes)
        if cost[merged[-1][0], last] <= (cost[merged[-1][0], merged[-1][1]] + cost[first, last]) * (1 + 1e-9):
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return [np.sort(order[a:b + 1]) for a, b in merged], float(cost[0, n - 1] / max(best[n - 1], 1e-300))


def _input_grid(inits, made, node) -> tuple[np.ndarray, np.ndarray, bool]:
    """(scale, zero point, symmetric) of the INT8 Q that `node`'s first input is read through."""
    q = made[made[node.input[0]].input[0]]
    scale, zero = (numpy_helper.to_array(inits[name]).reshape(-1) for name in q.input[1:3])
    return scale, zero, zero.dtype == np.int8 and int(zero[0]) == 0


def _plan(inits, made, node, ranges: tuple[np.ndarray, np.ndarray], groups: int) -> tuple:
    """(channel groups, their noise gain, low, high): the per-channel ranges clipped to the
    tensor's own grid, grouped against the squared weights each channel feeds."""
    scale, zero, symmetric = _input_grid(inits, made, node)
    info = np.iinfo(zero.dtype)
    grid_low, grid_high = ((bound - float(zero[0])) * float(scale[0]) for bound in (info.min, info.max))
    weights = dequantize(_weight_dq(node, inits, made), inits)
    w_axis = 1 if node.op_type == "Conv" else 0  # the weights' input-channel axis
    energy = np.square(weights).sum(axis=tuple(a for a in range(weights.ndim) if a != w_axis))
    low, high = np.maximum(ranges[0], grid_low), np.minimum(ranges[1], grid_high)  # never wider than the grid
    return (*group_channels(low, high, energy, groups, symmetric), low, high)


def reader_groups(inits, made, node: onnx.NodeProto, ranges: tuple[np.ndarray, np.ndarray],
                  groups: int = GROUPS) -> tuple[list[np.ndarray], float]:
    """(the channel groups `split_reader` cuts `node`'s input into, how many times less INT8 noise
    (weighted by the squared weights each channel feeds) they give it than its one scale);
    inits, made: of its QDQ graph."""
    return _plan(inits, made, node, ranges, groups)[:2]


def split_reader(graph: onnx.GraphProto, reader: str, tensor: str, ranges: tuple[np.ndarray, np.ndarray],
                 groups: int = GROUPS, weights: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """Replace node `reader` (reading `tensor` through its INT8 Q/DQ; `reader_axis` not None) in
    `graph` by its channel-group branches (see the module); returns the new conv/matmul names
    (none, and `graph` unchanged, where one group is as good as several). weights (default none:
    slices of the reader's own): (INT8 integers, scales), weight-shaped, made for these groups with
    one scale per output channel and group (`weight_rounding.round_groups`); their initializers
    end in REGROUPED."""
    inits = {i.name: i for i in graph.initializer}
    made = {out: n for n in graph.node for out in n.output}
    at, node = next((i, n) for i, n in enumerate(graph.node) if n.name == reader)
    chosen, _, low, high = _plan(inits, made, node, ranges, groups)
    if len(chosen) < 2:  # one scale serves every channel as well: nothing to split
        return []
    scale, zero, symmetric = _input_grid(inits, made, node)
    weights_dq = _weight_dq(node, inits, made)
    w = numpy_helper.to_array(inits[weights_dq.input[0]])
    w_axis, axis = (1 if node.op_type == "Conv" else 0), reader_axis(node, inits, made)
    names, partials, added = [], [], []
    for k, channels in enumerate(chosen):
        name = f"{reader}{SEP}{k}"
        g_scale, g_zero = _grid(low[channels].min(), high[channels].max(), zero.dtype, symmetric)
        index, qs, qz = (f"{name}_{s}" for s in ("channels", "scale", "zero_point"))
        graph.initializer.extend([numpy_helper.from_array(channels.astype(np.int64), index),
                                  numpy_helper.from_array(np.asarray(g_scale, scale.dtype), qs),
                                  numpy_helper.from_array(np.asarray(g_zero, zero.dtype), qz)])
        wq, w_dq = _group_weights(graph, name, channels, w_axis, weights_dq, w, weights)
        inputs = [f"{name}_dq", w_dq.output[0]] + ([node.input[2]] if k == 0 and len(node.input) > 2 else [])
        partials.append(f"{name}_out")
        added += [helper.make_node("Gather", [tensor, index], [f"{name}_in"], f"{name}_gather", axis=axis),
                  helper.make_node("QuantizeLinear", [f"{name}_in", qs, qz], [f"{name}_q"], f"{name}_quantize"),
                  helper.make_node("DequantizeLinear", [f"{name}_q", qs, qz], [f"{name}_dq"], f"{name}_dequantize"),
                  w_dq,
                  helper.make_node(node.op_type, inputs, [partials[-1]], name,
                                   **{a.name: helper.get_attribute_value(a) for a in node.attribute})]
        names.append(name)
    added.append(helper.make_node("Sum", partials, [node.output[0]], f"{reader}{SEP}sum"))
    del graph.node[at]
    for offset, new in enumerate(added):
        graph.node.insert(at + offset, new)
    return names


def _group_weights(graph, name: str, channels: np.ndarray, w_axis: int, weights_dq, shared: np.ndarray,
                   regrouped: tuple[np.ndarray, np.ndarray] | None) -> tuple[str, onnx.NodeProto]:
    """(initializer, DequantizeLinear) of one group's INT8 weights: a slice of the `shared` ones on
    their own scales, or of the `regrouped` ones on the group's scale per output channel."""
    dq_name = f"{name}_weights_dequantize"
    if regrouped is None:
        wq = f"{name}_weights"
        graph.initializer.append(numpy_helper.from_array(np.take(shared, channels, axis=w_axis), wq))
        return wq, helper.make_node("DequantizeLinear", [wq, *weights_dq.input[1:]], [f"{wq}_dq"], dq_name,
                                    **{a.name: helper.get_attribute_value(a) for a in weights_dq.attribute})
    integers, scales = (np.take(a, channels, axis=w_axis) for a in regrouped)
    out_axis = 1 - w_axis  # Conv weights (out, in, ...), MatMul (in, out)
    per_output = np.moveaxis(scales, out_axis, 0).reshape(scales.shape[out_axis], -1)
    if not np.all(per_output == per_output[:, :1]):
        raise ValueError(f"the regrouped weights of {name!r} were made for other channel groups")
    wq = f"{name}{REGROUPED}"
    graph.initializer.extend([numpy_helper.from_array(integers, wq),
                              numpy_helper.from_array(per_output[:, 0].copy(), f"{wq}_scale"),
                              numpy_helper.from_array(np.zeros(len(per_output), np.int8), f"{wq}_zero_point")])
    return wq, helper.make_node("DequantizeLinear", [wq, f"{wq}_scale", f"{wq}_zero_point"], [f"{wq}_dq"],
                                dq_name, axis=out_axis)


def _grid(low: float, high: float, dtype, symmetric: bool) -> tuple[float, int]:
    """(scale, zero point) of an 8-bit grid over [low, high] (0 included)."""
    low, high = min(low, 0.0), max(high, 0.0)
    info = np.iinfo(dtype)
    if symmetric:
        peak = max(-low, high)
        return (peak / info.max if peak > 0 else 1.0), 0
    scale = (high - low) / (info.max - info.min) if high > low else 1.0
    return scale, int(np.clip(round(info.min - low / scale), info.min, info.max))
