"""Per-layer INT8 error of a TFLite model via tf.lite.experimental.QuantizationDebugger.

The debug model (`TfliteSelective.debug_model()`) carries a NumericVerify op after every
quantized op, fed with the op's dequantized INT8 output and the output of a float copy of the op
run on the same (quantized) input, so each tensor's error is that op's own (per-layer mode).
The debugger runs it on held-out samples; a `layer_direct_compare_metrics` hook receives
(float, quantized, scale, zero point) per NumericVerify and sample, and edgekit accumulates
RMSE, RMSE/scale, max abs, cosine, SQNR and the channel range ratio (`layer_error`).
NumericVerify output names are 'NumericVerify/<quantized tensor name>:<index>'.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgekit.validate.layer_error import ErrorAccumulator, LayerError
from edgekit.backends.tflite.selective import TfliteSelective, _quiet
from edgekit.errors import ConversionError, condense

PREFIX = "NumericVerify/"


def _tensor_of(verify_name: str) -> str:
    name = verify_name[len(PREFIX):] if verify_name.startswith(PREFIX) else verify_name
    return name.rsplit(":", 1)[0]


def _ordered(feeds: dict[str, np.ndarray], details: list[dict]) -> list[np.ndarray]:
    """Feeds in the interpreter's input order ('serving_default_image:0' takes feeds['image'])."""
    ordered = []
    for detail in details:
        base = detail["name"].split(":")[0].removeprefix("serving_default_")
        key = base if base in feeds else next(k for k in feeds if k in detail["name"])
        ordered.append(np.asarray(feeds[key], np.float32))
    return ordered


def tflite_layer_errors(selective: TfliteSelective, feeds: Sequence[dict[str, np.ndarray]]) -> list[LayerError]:
    """Error per quantized tensor on `feeds`, in graph order, labelled with source layers."""
    import tensorflow as tf

    calls: list[tuple[np.ndarray, np.ndarray, float, int]] = []

    def record(float_value, quant_value, scale, zero_point):
        calls.append((np.array(float_value), np.array(quant_value), float(scale), int(zero_point)))
        return 0.0

    debug_model = selective.debug_model()
    options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={"edgekit": record})
    with _quiet():
        details = tf.lite.Interpreter(model_content=debug_model).get_input_details()
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_options=options,
            debug_dataset=lambda: (_ordered(f, details) for f in feeds))
        try:
            debugger.run()
        except (ValueError, RuntimeError) as err:
            raise ConversionError(f"QuantizationDebugger failed: {condense(err)}") from None
    # layer_statistics is filled in the debugger's NumericVerify order: the order of `calls`.
    return _summarize(selective, list(debugger.layer_statistics), calls)


def _summarize(selective: TfliteSelective, verify_names: list[str], calls) -> list[LayerError]:
    """Calls come sample by sample, in `verify_names` order (the debugger's loop)."""
    if len(calls) % max(len(verify_names), 1):
        raise ConversionError("QuantizationDebugger returned an unexpected number of tensor pairs")
    accumulators = [ErrorAccumulator() for _ in verify_names]
    grids: list[tuple[float, tuple[float, float]]] = [(0.0, (0.0, 0.0))] * len(verify_names)
    for i, (float_value, quant_value, scale, zero_point) in enumerate(calls):
        slot = i % len(verify_names)
        dequantized = (quant_value.astype(np.float64) - zero_point) * scale
        accumulators[slot].add(float_value, dequantized)
        info = np.iinfo(quant_value.dtype) if quant_value.dtype.kind in "iu" else np.iinfo(np.int8)
        grids[slot] = (scale, ((info.min - zero_point) * scale, (info.max - zero_point) * scale))
    positions = {n.id: n for n in selective.nodes()}
    errors = []
    for slot, name in enumerate(verify_names):
        tensor = _tensor_of(name)
        node = positions.get(tensor) or _closest(tensor, positions)
        layer = node.layer if node else selective.layer_of(tensor)
        errors.append(accumulators[slot].summary(
            node.id if node else tensor, layer, node.op_type if node else "?",
            node.index if node else 10**6 + slot, grids[slot][0], grids[slot][1]))
    return sorted(errors, key=lambda e: e.position)


def _closest(tensor: str, nodes: dict):
    """The calibrated node whose name the debug tensor name extends or trims (a digit suffix)."""
    for node_id, node in nodes.items():
        if tensor.startswith(node_id) or node_id.startswith(tensor):
            return node
    return None
