"""onnxruntime Runner: CPU execution provider, deterministic session options."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import CalibrationDataError, MissingDependencyError, ModelError, condense
from edgekit.runtime.base import Runner, TensorSpec

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(int32)": "int32",
    "tensor(int64)": "int64", "tensor(bool)": "bool",
}  # fmt: skip


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime is not installed: pip install 'edgekit[onnx]'") from None
    return onnxruntime


def session_options(threads: int | None = None):
    """Sequential execution, `threads` intra-op threads (default: onnxruntime's), deterministic."""
    ort = _ort()
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = int(threads or 0)
    options.use_deterministic_compute = True
    options.log_severity_level = 3
    return options


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))


class OnnxRunner(Runner):
    """Runs one .onnx file on onnxruntime's CPU provider with `threads` threads (default: all)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        ort = _ort()
        self.path = str(path)
        self.threads = threads
        try:
            self.session = ort.InferenceSession(self.path, session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelError(f"onnxruntime cannot load it: {condense(err)}", path) from None
        self.inputs = [_spec(arg) for arg in self.session.get_inputs()]
        self.outputs = [_spec(arg) for arg in self.session.get_outputs()]
        self._feeds: dict[str, np.ndarray] = {}
        self._results: list[np.ndarray] = []

    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        expected = {spec.name for spec in self.inputs}
        if set(feeds) != expected:
            raise CalibrationDataError(f"inputs {sorted(feeds)} do not match the model's {sorted(expected)}", self.path)
        self._feeds = {spec.name: np.asarray(feeds[spec.name]).astype(spec.dtype, copy=False) for spec in self.inputs}

    def invoke(self) -> None:
        try:
            self._results = self.session.run(None, self._feeds)
        except Exception as err:
            raise CalibrationDataError(f"inference failed: {condense(err)}", self.path) from None

    def get_outputs(self) -> dict[str, np.ndarray]:
        return {
            spec.name: (r.astype(np.float32) if r.dtype.kind == "f" else r)
            for spec, r in zip(self.outputs, self._results)
        }
