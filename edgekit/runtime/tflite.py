"""The TFLite interpreter: ai-edge-litert first, tflite_runtime where only that exists."""

from __future__ import annotations

from edgekit.errors import MissingDependencyError


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


def runtime_version() -> str:
    """'ai-edge-litert X' or 'tflite-runtime X' of the runtime interpreter_class() uses."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("ai-edge-litert", "tflite-runtime"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def load_interpreter(model_path: str, threads: int | None = None):
    """An allocated Interpreter for `model_path` using `threads` CPU threads (default: runtime's)."""
    interpreter = interpreter_class()(model_path=str(model_path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter
