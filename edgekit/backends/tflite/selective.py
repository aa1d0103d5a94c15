"""TFLite selective INT8: calibrate once, then quantize with any set of nodes kept in float.

Uses `tf.lite.experimental.QuantizationDebugger` built from a converter: the converter
calibrates once (`_experimental_calibrate_only`), and each build sets new
`QuantizationDebugOptions(denylisted_nodes=..., denylisted_ops=...)` and calls
`get_nondebug_quantized_model()`, which re-runs only the MLIR quantizer on the calibrated model.

Node names (checked against TF 2.21): the quantizer matches `denylisted_nodes` exactly against
each op's location name, which is the op's output tensor name in the calibrated flatbuffer
(fused names included, e.g. 'model/relu/Relu6;model/conv/convolution;...'); `denylisted_ops`
takes TFLite builtin names ('CONV_2D'). `fully_quantize` is what makes the model's inputs and
outputs int8, so it is on only for `Int8.io_dtype == 'int8'` (float I/O by default, like
`build_tflite`).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Sequence

from edgekit.backends.selective import QuantNode, TempModelFiles, keras_layer, unique_layers
from edgekit.errors import ConversionError, UsageError
from edgekit.quiet import native_stderr_captured, native_stdout_to_stderr
from edgekit.recipe.schema import Int8
from edgekit.backends.tflite.build import CalibrationFactory, converter_error
from edgekit.sources.tensorflow import scope_of

# Ops that only move or reshape data: keeping them in float never helps accuracy.
LAYOUT_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "UNPACK", "RESHAPE", "SQUEEZE", "EXPAND_DIMS",
              "TRANSPOSE", "GATHER", "SLICE", "QUANTIZE", "DEQUANTIZE", "MAX_POOL_2D", "PAD"}
# The op in a fused name that names the layer ('conv/convolution', 'dense/MatMul', ...).
ANCHORS = ("convolution", "depthwise", "MatMul", "BiasAdd", "conv2d_transpose", "Conv2D")


@contextlib.contextmanager
def _quiet():
    """Native quantizer chatter (printed on every build) captured; tf.lite.Interpreter's deprecation
    warning (the debugger uses it) silenced: neither is the user's concern."""
    with native_stderr_captured(), native_stdout_to_stderr(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        yield


class TfliteSelective:
    """A calibrated model and a QuantizationDebugger over it.

    saved_dir: the fixed SavedModel (`export_fixed_savedmodel`); calibration: a factory of
    feeds dicts; int8: INT8 options (per-channel weights, I/O dtype float32 or int8);
    layer_names: known source layer names used to label nodes (default: TF scope names).
    """

    target = "tflite"
    suffix = ".tflite"

    def __init__(self, saved_dir: Path, calibration: CalibrationFactory, int8: Int8 | None = None,
                 layer_names: Sequence[str] = ()):
        from edgekit.sources.tensorflow import SIGNATURE, import_tensorflow

        tf = import_tensorflow()
        self.saved_dir = Path(saved_dir)
        self.int8 = int8 or Int8()
        if self.int8.io_dtype == "uint8":
            raise UsageError("selective INT8 (float fallback) supports float32 or int8 I/O, not uint8")
        self._layer_names = list(layer_names)
        self._files = TempModelFiles(self.suffix)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=[SIGNATURE])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter._experimental_disable_per_channel = not self.int8.per_channel
        self._tf = tf
        try:
            with _quiet():
                self.debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_options=self._options([], []))
        except Exception as err:
            raise ConversionError(f"TFLite calibration failed: {converter_error(err)}", saved_dir) from None
        self._nodes: list[QuantNode] | None = None

    @property
    def calibrated_model(self) -> bytes:
        """The float flatbuffer carrying calibrated min/max statistics."""
        return self.debugger.calibrated_model

    def _options(self, nodes: Sequence[str], ops: Sequence[str]):
        return self._tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(nodes) or None, denylisted_ops=list(ops) or None,
            fully_quantize=self.int8.io_dtype == "int8")

    def nodes(self) -> list[QuantNode]:
        """Quantizable ops of the calibrated model (layout-only ops left out), in graph order."""
        from edgekit.backends.tflite.inspect import read_ops

        if self._nodes is None:
            self._nodes = unique_layers([
                QuantNode(op.output_names[0], op.type, self.layer_of(op.output_names[0]), op.index)
                for op in read_ops(self.calibrated_model)
                if op.type not in LAYOUT_OPS and op.output_dtypes[:1] == ("float32",)
            ])
        return self._nodes

    def layer_of(self, tensor_name: str) -> str:
        """The source layer a TFLite tensor name comes from (its conv/matmul part when fused): the
        Keras layer name when known, else the op's full TF scope ('model/block2/conv')."""
        parts = [p for p in tensor_name.split(";") if scope_of(p)]
        if not parts:
            return f"output {tensor_name}" if tensor_name.startswith("StatefulPartitionedCall") else tensor_name
        anchored = [p for p in parts if any(a in p.rsplit("/", 1)[-1] for a in ANCHORS)]
        scope = scope_of((anchored or parts)[0])
        return keras_layer(scope, self._layer_names) or scope

    def build(self, float_nodes: Sequence[str] = (), float_ops: Sequence[str] = ()) -> bytes:
        """The INT8 flatbuffer with `float_nodes` (tensor names) and `float_ops` kept in float."""
        unknown = set(float_nodes) - {n.id for n in self.nodes()}
        if unknown:
            raise UsageError(f"unknown TFLite node(s) {sorted(unknown)[:3]}; see `edgekit debug` for names")
        try:
            with _quiet():
                self.debugger.options = self._options(float_nodes, float_ops)
                return bytes(self.debugger.get_nondebug_quantized_model())
        except Exception as err:
            raise ConversionError(f"TFLite selective quantization failed: {converter_error(err)}",
                                  self.saved_dir) from None

    def quantization(self, float_nodes: Sequence[str] = ()) -> dict:
        """The INT8 options every build uses (the float nodes aside)."""
        return {"per_channel": self.int8.per_channel, "io_dtype": self.int8.io_dtype}

    def debug_model(self) -> bytes:
        """The fully quantized model instrumented with NumericVerify ops (per-layer mode)."""
        with _quiet():
            self.debugger.options = self._options([], [])
            return bytes(self.debugger.get_debug_quantized_model())

    def runner(self, model: bytes, threads: int | None = None):
        from edgekit.runtime.tflite import TfliteRunner

        return TfliteRunner(str(self._files.write(model)), threads)

    def layer_errors(self, feeds):
        """Per-layer error of the INT8 model vs float on `feeds` (edgekit.validate.layer_error)."""
        from edgekit.backends.tflite.debugger import tflite_layer_errors

        return tflite_layer_errors(self, feeds)

    def close(self) -> None:
        self._files.close()
