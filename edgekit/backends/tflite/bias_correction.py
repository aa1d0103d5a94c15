"""Empirical bias correction of an INT8 TFLite flatbuffer (see edgekit.transforms.bias_correction).

Each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op of the INT8 model with an int32 bias is
matched by its output tensor name to the float TFLite model's tensor (the converter names both
alike); both are read on calibration samples (`experimental_preserve_all_tensors`), and the mean
per-channel shift (last axis) is added to the int32 bias buffer. TFLite fuses the activation into
the op, so the shift is measured after it (a fused ReLU hides the negative side: the correction is
then partial, never overshooting); `rounds` passes (default 3) absorb upstream corrections.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgekit.transforms.bias_correction import ShiftMeter, corrected_int_bias

OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
SAMPLES = 256
ROUNDS = 3


def _interpreter(model: bytes):
    import warnings

    from edgekit.runtime.tflite import interpreter_class

    with warnings.catch_warnings():  # "experimental_preserve_all_tensors is for debugging": it is
        warnings.simplefilter("ignore")
        interpreter = interpreter_class()(model_content=bytes(model), experimental_preserve_all_tensors=True,
                                          num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _feed_value(feed: dict, tensor_name: str, single: bool) -> np.ndarray:
    """The feed of a TFLite input tensor ('serving_default_image:0' for the signature input 'image')."""
    for key in (tensor_name, tensor_name.split(":")[0].removeprefix("serving_default_")):
        if key in feed:
            return feed[key]
    if single and len(feed) == 1:
        return next(iter(feed.values()))
    raise KeyError(f"no calibration input for TFLite input {tensor_name!r} (have {sorted(feed)})")


def _read(interpreter, feed: dict, names: list[str]) -> list[np.ndarray]:
    details = {d["name"]: d for d in interpreter.get_tensor_details()}
    inputs = interpreter.get_input_details()
    for inp in inputs:
        value = _feed_value(feed, inp["name"], len(inputs) == 1)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max)
        interpreter.set_tensor(inp["index"], np.asarray(value).astype(inp["dtype"]))
    interpreter.invoke()
    out = []
    for name in names:
        d = details[name]
        value = interpreter.get_tensor(d["index"])
        if value.dtype != np.float32:
            scale, zero = d["quantization"]
            value = (value.astype(np.float32) - zero) * scale
        out.append(value)
    return out


def _bias_ops(model) -> dict[str, tuple[int, int]]:
    """output tensor name -> (bias tensor index, bias buffer index) of the INT8 model's ops."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.subgraphs[0]
    found = {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        if kind not in OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
            continue
        bias = graph.tensors[op.inputs[2]]
        if bias.type == schema.TensorType.INT32 and bias.quantization is not None and bias.buffer > 0:
            found[graph.tensors[op.outputs[0]].name.decode()] = (op.inputs[2], bias.buffer)
    return found


def correct_biases_tflite(float_model: bytes, int8_model: bytes, calibration, *, samples: int = SAMPLES,
                          rounds: int = ROUNDS) -> tuple[bytes, dict]:
    """(INT8 flatbuffer with corrected biases, {"layers", "samples", "rounds", "max_shift"}).

    float_model: the FP32 flatbuffer of the same source; calibration: a callable returning a fresh
    iterator of {input name: array} (the first `samples`, default 256, are used).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(int8_model))
    graph = model.subgraphs[0]
    reference_interpreter = _interpreter(float_model)
    known = {d["name"] for d in reference_interpreter.get_tensor_details()}
    targets = {name: where for name, where in _bias_ops(model).items() if name in known}
    names = list(targets)
    feeds = list(itertools.islice(calibration(), samples))
    reference = [_read(reference_interpreter, f, names) for f in feeds]
    first_shift = 0.0
    for round_index in range(rounds if names else 0):
        interpreter = _interpreter(flatbuffer_utils.convert_object_to_bytearray(model))
        meters = {name: ShiftMeter(axis=-1) for name in names}
        for feed, ref in zip(feeds, reference):
            for name, r, q in zip(names, ref, _read(interpreter, feed, names)):
                meters[name].update(r, q)
        for name in names:
            tensor_index, buffer_index = targets[name]
            shift = meters[name].shift()
            if round_index == 0:
                first_shift = max(first_shift, float(np.max(np.abs(shift))))
            buffer = model.buffers[buffer_index]
            bias = np.frombuffer(bytes(bytearray(buffer.data)), dtype="<i4")
            scale = np.asarray(graph.tensors[tensor_index].quantization.scale, np.float64)
            buffer.data = np.frombuffer(corrected_int_bias(bias, scale, shift).astype("<i4").tobytes(), np.uint8)
    record = {"layers": len(names), "samples": len(feeds), "rounds": rounds, "max_shift": first_shift}
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), record
