"""TensorFlow (SavedModel directory or .keras file) -> ONNX with tf2onnx.

The opset defaults to `DEFAULT_OPSET` (17, supported by onnxruntime >= 1.14 and TensorRT >= 8.6)
and is recorded. Keras files are loaded with `safe_mode=True` (no arbitrary lambdas). tf2onnx
failures are condensed to one line naming the failing op when its message names one.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.errors import ConversionError, MissingDependencyError, ModelError, condense

DEFAULT_OPSET = 17
_OP_PATTERNS = (
    re.compile(r"[Uu]nsupported ops?:? *[\[(]?['\"]?([\w/.:-]+)"),
    re.compile(r"[Oo]p(?:erator)? (?:type )?['\"]?([A-Z][\w]+)['\"]? (?:is )?not supported"),
    re.compile(r"tf2onnx\.tfonnx: Failed to convert node ['\"]?([^'\"\s]+)['\"]? \(fct=.*?\) *\n?.*?op_type:? *['\"]?(\w+)"),
)


def condense_error(text: str) -> str:
    """One line from a tf2onnx failure: the failing op when named, else the last error line."""
    for pattern in _OP_PATTERNS:
        match = pattern.search(text)
        if match:
            return f"tf2onnx cannot convert op {' / '.join(g for g in match.groups() if g)}"
    return f"tf2onnx failed: {condense(text, last=True)}"


def _tf2onnx():
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as err:
        raise MissingDependencyError(f"exporting to ONNX needs tensorflow and tf2onnx ({err.name}): "
                                     "pip install 'edgekit[onnx,tflite]'") from None  # fmt: skip
    return tf, tf2onnx


def export_to_onnx(source: str | Path, out_path: str | Path, *, opset: int = DEFAULT_OPSET) -> dict:
    """Convert a SavedModel dir or .keras file to ONNX at `out_path`; return {"opset", "source", ...}."""
    import contextlib
    import io
    import logging

    source, out_path = Path(source), Path(out_path)
    tf, tf2onnx = _tf2onnx()
    is_keras = source.suffix == ".keras"
    if not (source.is_dir() and (source / "saved_model.pb").is_file()) and not (is_keras and source.is_file()):
        raise ModelError("not a SavedModel directory (saved_model.pb) or a .keras file", source)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    tf_logger = logging.getLogger("tf2onnx")
    tf_logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            if is_keras:
                try:
                    model = tf.keras.models.load_model(str(source), safe_mode=True, compile=False)
                except Exception as err:
                    raise ModelError(f"cannot load Keras model: {condense(err)}", source) from None
                specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
                fn = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0]))
                tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset, output_path=str(out_path))
            else:
                from tf2onnx import tf_loader

                graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
                    str(source), None, None, "serve", ["serving_default"], return_tensors_to_rename=True)
                tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs,
                                               opset=opset, tensors_to_rename=renames,
                                               output_path=str(out_path))  # keeps the signature's names
    except (ModelError, MissingDependencyError):
        raise
    except Exception as err:
        raise ConversionError(condense_error(f"{captured.getvalue()}\n{err}"), source) from None
    finally:
        tf_logger.removeHandler(handler)
    return {"source": str(source), "exporter": f"tf2onnx {tf2onnx.__version__}", "opset": opset}
