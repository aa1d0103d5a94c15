"""Stage: fixed SavedModel -> TFLite flatbuffer for one precision (fp32, fp16, dynamic, int8).

int8 is full-integer post-training quantization: int8 weights and activations, calibrated on a
streamed representative dataset; inputs/outputs stay float unless `io_dtype` says int8/uint8.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from edgekit.errors import ConversionError, UsageError, condense
from edgekit.quiet import native_stderr_captured, native_stdout_to_stderr
from edgekit.recipe.schema import Int8
from edgekit.sources.tensorflow import SIGNATURE, import_tensorflow

CalibrationFactory = Callable[[], Iterator[dict[str, np.ndarray]]]


def build_tflite(saved_dir: Path, precision: str, calibration: CalibrationFactory | None = None,
                 int8: Int8 | None = None, denylist_ops: tuple[str, ...] = ()) -> bytes:
    """Convert with tf.lite.TFLiteConverter; returns the flatbuffer bytes."""
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_dir), signature_keys=[SIGNATURE])
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if calibration is None:
            raise UsageError("INT8 needs calibration data: pass --calibration DIR (or set it in the recipe)")
        int8 = int8 or Int8()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[int8.io_dtype]
        converter.inference_input_type = io
        converter.inference_output_type = io
        converter._experimental_disable_per_channel = not int8.per_channel
    elif precision != "fp32":
        raise UsageError(f"unknown precision {precision}")
    try:
        with native_stderr_captured() as chatter, native_stdout_to_stderr(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            flatbuffer = bytes(converter.convert())
    except Exception as err:  # the converter raises ConverterError, RuntimeError, ValueError...
        raise ConversionError(f"TFLite {precision} conversion failed: {converter_error(err)}", saved_dir) from None
    if chatter and chatter[0].strip():
        logging.getLogger("edgekit").debug("converter (%s): %s", precision, chatter[0].strip())
    return flatbuffer


def converter_error(err: Exception) -> str:
    """The converter's first meaningful error line (it prints whole MLIR dumps)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for line in lines:
        if "error:" in line:
            return condense(line.split("error:", 1)[1])
    return condense(err)
