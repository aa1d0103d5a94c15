"""Runtimes that execute artifacts on the host; `open_runner` picks one by file type."""

from __future__ import annotations

from pathlib import Path


def open_runner(path: str | Path, threads: int | None = None):
    """A Runner for a .tflite (LiteRT) or .onnx (onnxruntime) file."""
    if Path(path).suffix == ".tflite":
        from edgekit.runtime.tflite import TfliteRunner

        return TfliteRunner(str(path), threads)
    from edgekit.runtime.onnx import OnnxRunner

    return OnnxRunner(str(path), threads)
