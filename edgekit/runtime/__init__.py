"""Runtimes that execute artifacts on the host; `open_runner` picks one by file type."""

from __future__ import annotations

from pathlib import Path


def open_runner(path: str | Path, threads: int | None = None):
    """A Runner for a .tflite (LiteRT) or .onnx (onnxruntime) file; threads default: the runtime's."""
    from edgekit.errors import ModelError, UsageError

    path = Path(path)
    if not path.is_file():
        raise ModelError("no such model file", path)
    if path.suffix == ".tflite":
        from edgekit.runtime.tflite import TfliteRunner

        return TfliteRunner(str(path), threads)
    if path.suffix == ".onnx":
        from edgekit.runtime.onnx import OnnxRunner

        return OnnxRunner(path, threads)
    raise UsageError(f"cannot run {path.name}: expected a .tflite or .onnx file")
