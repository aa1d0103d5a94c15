"""The TFLite interpreter: ai-edge-litert first, tflite_runtime where only that exists."""

from __future__ import annotations

import logging

import numpy as np

from edgekit.errors import MissingDependencyError
from edgekit.quiet import native_stderr_captured
from edgekit.runtime.base import Runner, TensorSpec


def interpreter_class():
    """Return the Interpreter class of the best installed LiteRT runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise MissingDependencyError(
                "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime)"
            ) from None
    return Interpreter


def load_interpreter(model_path: str, threads: int | None = None):
    """An allocated Interpreter for `model_path` using `threads` CPU threads (default: runtime's)."""
    with native_stderr_captured() as log:  # e.g. "INFO: Created TensorFlow Lite XNNPACK delegate"
        interpreter = interpreter_class()(model_path=str(model_path), num_threads=threads)
        interpreter.allocate_tensors()
    if log and log[0].strip():
        logging.getLogger("edgekit").debug("%s: %s", model_path, log[0].strip())
    return interpreter


def _quantize(array: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and scale > 0 and not np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(array / scale + zero_point), info.min, info.max).astype(dtype)
    return array.astype(dtype, copy=False)


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if np.issubdtype(array.dtype, np.integer) and scale > 0:
        return (array.astype(np.float32) - zero_point) * scale
    return array


class TfliteRunner(Runner):
    """Runs a .tflite file through its first signature (or raw tensors when it has none).

    threads: CPU threads for the interpreter (default: the runtime's choice).
    """

    def __init__(self, model_path: str, threads: int | None = None):
        self.path = str(model_path)
        self.interpreter = load_interpreter(self.path, threads)
        signatures = self.interpreter.get_signature_list()
        if signatures:
            key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
            runner = self.interpreter.get_signature_runner(key)
            self._in = dict(runner.get_input_details())
            self._out = dict(runner.get_output_details())
        else:
            self._in = {d["name"]: d for d in self.interpreter.get_input_details()}
            self._out = {d["name"]: d for d in self.interpreter.get_output_details()}
        self.inputs = [_spec(n, d) for n, d in self._in.items()]
        self.outputs = [_spec(n, d) for n, d in self._out.items()]

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        for name, detail in self._in.items():
            self.interpreter.set_tensor(detail["index"], _quantize(np.asarray(feeds[name]), detail))

    def invoke(self) -> None:
        self.interpreter.invoke()

    def get_outputs(self) -> dict[str, np.ndarray]:
        return {
            name: _dequantize(self.interpreter.get_tensor(detail["index"]), detail)
            for name, detail in self._out.items()
        }


def _spec(name: str, detail: dict) -> TensorSpec:
    scale, zero_point = detail["quantization"]
    quantization = (float(scale), int(zero_point)) if scale > 0 else None
    return TensorSpec(name, tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]).name, quantization)
