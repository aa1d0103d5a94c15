"""ONNX INT8 (QDQ) static quantization with onnxruntime, fed by a streamed calibration source.

Defaults: QDQ format, per-channel symmetric INT8 weights, UINT8 asymmetric activations (INT8
symmetric with `symmetric_activations=True`, which TensorRT requires), minmax calibration.
Samples are read in chunks of `chunk` (default 16): onnxruntime's calibrator keeps only one
chunk of intermediate outputs before merging it into its ranges/histograms, so memory does not
grow with the number of samples.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from edgekit.errors import CalibrationDataError, ConversionError, RecipeError, condense

SampleFactory = Callable[[], Iterator[Mapping[str, np.ndarray]]]
METHODS = ("minmax", "entropy", "percentile")


class StreamingReader:
    """An onnxruntime CalibrationDataReader over `factory()`, re-created on rewind.

    Checks every sample against the model inputs (`inputs`: name -> numpy dtype): names must
    match exactly, values must be finite; errors are CalibrationDataError naming the sample.
    Implements `set_range` and `__len__` so onnxruntime calibrates chunk by chunk: `__len__` is
    the sample count rounded up to a multiple of `chunk` (onnxruntime needs it divisible), so the
    last chunk is just shorter; `count()` is the real number of samples.
    """

    def __init__(
        self, factory: SampleFactory, inputs: Mapping[str, np.dtype], *, chunk: int = 16, source: str = "calibration"
    ):
        self._factory = factory
        self.chunk = chunk
        self._inputs = dict(inputs)
        self._source = source
        self._iterator: Iterator | None = None
        self._position = 0
        self._end: int | None = None
        self._length: int | None = None

    def __len__(self) -> int:
        return -(-self.count() // self.chunk) * self.chunk

    def count(self) -> int:
        if self._length is None:
            self._length = sum(1 for _ in self._factory())
            if self._length == 0:
                raise CalibrationDataError("no calibration samples", self._source)
        return self._length

    def rewind(self) -> None:
        self._iterator, self._position = None, 0

    def set_range(self, start_index: int, end_index: int) -> None:
        if self._iterator is None or self._position > start_index:
            self.rewind()
            self._iterator = iter(self._factory())
        while self._position < start_index:
            next(self._iterator)
            self._position += 1
        self._end = end_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._end is not None and self._position >= self._end:
            return None
        if self._iterator is None:
            self._iterator = iter(self._factory())
        sample = next(self._iterator, None)
        if sample is None:
            return None
        self._position += 1
        return self.check(sample, self._position - 1)

    def check(self, sample: Mapping[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
        where = f"{self._source} sample {index}"
        if set(sample) != set(self._inputs):
            raise CalibrationDataError(
                f"{where} has inputs {sorted(sample)}, but the model's inputs are {sorted(self._inputs)}"
            )
        feed = {}
        for name, dtype in self._inputs.items():
            array = np.asarray(sample[name])
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise CalibrationDataError(f"{where}: input {name!r} has NaN or inf values")
            feed[name] = array.astype(dtype, copy=False)
        return feed


def model_inputs(path: str | Path) -> dict[str, np.dtype]:
    """Input name -> numpy dtype of an ONNX file (initializers excluded)."""
    import onnx

    return graph_inputs(onnx.load(str(path), load_external_data=False).graph)


def graph_inputs(graph) -> dict[str, np.dtype]:
    """Input name -> numpy dtype of an ONNX graph (initializers excluded)."""
    from onnx import helper

    inits = {init.name for init in graph.initializer}
    return {
        value.name: np.dtype(helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        for value in graph.input
        if value.name not in inits
    }


ELEMENTWISE = ("Mul", "Add", "Sub", "Div")


def _per_channel_constants(graph) -> dict[str, int]:
    """Constant inputs of elementwise ops that vary along one axis (a per-channel scale or shift,
    e.g. from activation smoothing) -> that axis: quantized per channel, every value exact, where
    one per-tensor grid would round the small channels off."""
    import onnx
    from onnx import numpy_helper

    inits = {init.name: init for init in graph.initializer}
    found = {}
    for node in graph.node:
        for name in node.input if node.op_type in ELEMENTWISE else ():
            init = inits.get(name)
            if init is None or init.data_type != onnx.TensorProto.FLOAT:
                continue
            wide = [axis for axis, dim in enumerate(init.dims) if dim > 1]
            if len(wide) == 1 and np.unique(numpy_helper.to_array(init)).size > 1:
                found[name] = wide[0]
    return found


def quantize_qdq(
    fp32_path: str | Path,
    out_path: str | Path,
    calibration_factory: SampleFactory,
    *,
    method: str = "minmax",
    per_channel: bool = True,
    symmetric_activations: bool = False,
    nodes_to_exclude: Sequence[str] = (),
    percentile: float = 99.999,
    chunk: int = 16,
    ranges_cache: str | Path | None = None,
    weight_rounding: str = "nearest",
    rounding_cache: str | Path | None = None,
) -> dict:
    """Quantize `fp32_path` to a QDQ INT8 model at `out_path`; return the settings used.

    `ranges_cache` (default none): a JSON file where onnxruntime keeps the calibrated activation
    ranges; when it exists they are reused instead of calibrating again (one calibration, many
    builds that differ only in excluded nodes). Ignored by onnxruntime versions without it.
    `weight_rounding` (default "nearest"): "gptq" re-rounds the INT8 weights on the calibration
    samples (`weight_rounding.round_weights`; `rounding_cache`: its .npz of rounded integers, reused
    when it exists).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}  # fmt: skip
    if method not in methods:
        raise RecipeError(f"unknown calibration method {method!r}; choose one of {list(METHODS)}")
    import onnx

    from edgekit.backends.onnx.exclusions import auto_excluded as find_auto_excluded

    graph = onnx.load(str(fp32_path), load_external_data=False).graph  # read once: inputs, exclusions, constants
    reader = StreamingReader(calibration_factory, graph_inputs(graph), chunk=chunk)
    total = reader.count()
    excluded = list(nodes_to_exclude)
    auto_excluded = find_auto_excluded(graph, per_channel)
    excluded += [name for name in auto_excluded if name not in excluded]
    activation = QuantType.QInt8 if symmetric_activations else QuantType.QUInt8
    extra = {
        "ActivationSymmetric": symmetric_activations,
        "WeightSymmetric": True,
        "CalibStridedMinMax": chunk,
        "CalibTensorRangeSymmetric": symmetric_activations,
    }
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    overrides = _per_channel_constants(graph)
    if overrides:
        extra["TensorQuantOverrides"] = {name: [{"axis": axis, "quant_type": QuantType.QInt8}]
                                         for name, axis in overrides.items()}
    cache = {}
    if ranges_cache is not None and "calibration_cache_path" in inspect.signature(quantize_static).parameters:
        cache["calibration_cache_path"] = str(ranges_cache)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints progress to stdout
            quantize_static(
                str(fp32_path),
                str(out_path),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=activation,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[method],
                nodes_to_exclude=excluded,
                extra_options=extra,
                **cache,
            )
    except (CalibrationDataError, RecipeError):
        raise
    except Exception as err:  # onnxruntime raises bare ValueError/RuntimeError/Fail
        raise ConversionError(f"onnxruntime quantization failed: {condense(err)}",
                              fp32_path) from None  # fmt: skip
    rounding = "nearest"
    if weight_rounding == "gptq":
        from edgekit.backends.onnx.weight_rounding import round_weights

        qdq = onnx.load(str(out_path))
        rounding = round_weights(qdq, Path(fp32_path), calibration_factory,
                                 cache=Path(rounding_cache) if rounding_cache is not None else None)
        onnx.save(qdq, str(out_path))
    elif weight_rounding != "nearest":
        raise RecipeError(f"unknown weight rounding {weight_rounding!r}; choose gptq or nearest")
    return {
        "format": "QDQ",
        "weight_rounding": rounding,
        "method": method,
        "per_channel": per_channel,
        "weights": "int8 symmetric" + (" per-channel" if per_channel else " per-tensor"),
        "activations": "int8 symmetric" if symmetric_activations else "uint8 asymmetric",
        "calibration_samples": total,
        "calibration_chunk": chunk,
        "nodes_excluded": excluded,
        "nodes_excluded_auto": auto_excluded,
        **({"percentile": percentile} if method == "percentile" else {}),
    }


def rebuild_options(settings: Mapping) -> dict:
    """The `quantize_qdq` keyword arguments that repeat a build, from the settings it returned
    (method, per_channel, activation symmetry, calibration chunk, percentile); excluded nodes aside."""
    options = {"method": settings["method"], "per_channel": settings["per_channel"],
               "symmetric_activations": settings["activations"] == "int8 symmetric",
               "chunk": settings["calibration_chunk"]}
    if "percentile" in settings:
        options["percentile"] = settings["percentile"]
    if isinstance(settings.get("weight_rounding"), Mapping):
        options["weight_rounding"] = settings["weight_rounding"]["method"]
    return options


def convert_fp16(fp32_path: str | Path, out_path: str | Path, *, keep_io_types: bool = True) -> dict:
    """Write an FP16 copy of the model (inputs/outputs stay float32 by default); return settings.

    Uses onnxruntime's float16 converter (`onnxruntime.transformers.float16`), which keeps ops
    without FP16 kernels in float32 behind Cast nodes.
    """
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as err:
        from edgekit.errors import MissingDependencyError

        raise MissingDependencyError(f"FP16 conversion needs onnxruntime's float16 tools ({err})") from None
    model = onnx.load(str(fp32_path))
    try:
        half = convert_float_to_float16(model, keep_io_types=keep_io_types)
    except Exception as err:
        raise ConversionError(f"FP16 conversion failed: {condense(err)}", fp32_path) from None
    onnx.save(half, str(out_path))
    return {"precision": "fp16", "keep_io_types": keep_io_types}
