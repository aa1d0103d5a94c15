"""Stage: a TensorFlow model (SavedModel dir or .keras) -> a SavedModel with fixed input shapes.

Unknown dimensions are fixed for mobile: from `input_shapes` when given, else the unknown batch
(axis 0, or the axis `batch_axes` finds) = 1 and other unknown dims from the calibration samples.
The result has one `serving_default` signature with named inputs and outputs; every later
TensorFlow stage reads it, and `reference_fn` runs it as the float reference.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from edgekit.errors import ConversionError, ModelError, UsageError, condense
from edgekit.model.checks import ModelFile
from edgekit.quiet import native_stderr_captured
from edgekit.runtime.base import TensorSpec

SIGNATURE = "serving_default"
INTERNAL_SCOPES = {"batchnorm", "FusedBatchNormV3"}  # scopes TF adds inside one Keras layer
ShapeHint = Optional[Callable[[str, list, Optional[int]], Optional[list[int]]]]


@dataclass
class ExportedModel:
    """The fixed-shape SavedModel and what was fixed."""

    saved_dir: Path
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    fixed_dims: dict[str, dict] = field(default_factory=dict)


def import_tensorflow():
    """TensorFlow, quietly (its C++ logs go to stderr only at ERROR level)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_captured() as banner:  # absl/oneDNN start-up chatter
            import tensorflow as tf
        if banner and banner[0].strip():
            logging.getLogger("edgekit").debug("tensorflow: %s", banner[0].strip())
    except ImportError:
        from edgekit.errors import MissingDependencyError

        raise MissingDependencyError("TensorFlow is needed: pip install 'edgekit[tflite]'") from None
    tf.get_logger().setLevel("ERROR")
    return tf


def _fix_shape(name: str, shape, overrides: dict[str, list[int]], origin) -> tuple[int, ...]:
    dims = list(shape)
    if name in overrides:
        wanted = list(overrides[name])
        if len(wanted) != len(dims) or any(d is not None and d != w for d, w in zip(dims, wanted)):
            raise UsageError(f"--input-shape {name}:{'x'.join(map(str, wanted))} does not fit the "
                             f"model's shape {_show(dims)}", origin)
        return tuple(wanted)
    return tuple(1 if d is None else int(d) for d in dims)


def _show(dims) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _load_keras(model_file: ModelFile, trust: bool):
    import keras

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return keras.saving.load_model(str(model_file.path), safe_mode=not trust, compile=False)
    except Exception as err:  # keras raises many types for corrupt archives
        # keras wraps the cause ("Could not locate class 'X'") after its own advice: show the cause
        cause = str(err).rsplit("Exception encountered:", 1)[-1]
        raise ModelError(f"cannot load Keras model: {condense(cause or err)}", model_file.path) from None


def _keras_specs(model, tf) -> dict:
    return {t.name.split(":")[0]: tf.TensorSpec(t.shape, t.dtype) for t in model.inputs}


def _savedmodel_signature(model_file: ModelFile, tf):
    try:
        loaded = tf.saved_model.load(str(model_file.path))
    except Exception as err:
        raise ModelError(f"cannot load SavedModel: {condense(err)}", model_file.path) from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if not signatures:
        raise ModelError("SavedModel has no signatures to convert", model_file.path)
    return loaded, signatures.get(SIGNATURE) or signatures[sorted(signatures)[0]]


def _fixed_specs(specs: dict, input_shapes: dict, origin, tf, hint: ShapeHint = None) -> tuple[dict, dict]:
    """({name: fixed TensorSpec}, {name: {"from", "to"}} for the dims that were fixed).

    An unknown batch becomes 1; other unknown dims come from `input_shapes`, else from
    hint(name, dims) (the calibration samples), else it is a usage error.
    """
    unknown = set(input_shapes) - set(specs)
    if unknown:
        raise UsageError(f"--input-shape names unknown input(s) {sorted(unknown)}; "
                         f"the model's inputs are {sorted(specs)}", origin)
    from edgekit.calibration.shape_hint import batch_axes, fixed_record

    fixed, fixed_dims = {}, {}
    given = set(input_shapes)
    axes = batch_axes({name: spec.shape.as_list() if spec.shape.rank is not None else None
                       for name, spec in specs.items()})
    for name, spec in specs.items():
        dims = spec.shape.as_list() if spec.shape.rank is not None else None
        if dims is None:
            if name not in input_shapes:
                raise UsageError(f"input '{name}' has unknown rank; give --input-shape {name}:DIMS", origin)
            dims = [None] * len(input_shapes[name])
        axis = axes.get(name)
        if name not in input_shapes and any(d is None and i != axis for i, d in enumerate(dims)):
            guess = hint(name, dims, axis) if hint else None
            if guess is None:
                raise UsageError(f"input '{name}' has unknown dims ({_show(dims)}) beyond the batch: give "
                                 f"--input-shape {name}:DIMS or calibration samples of the right shape", origin)
            input_shapes = {**input_shapes, name: guess}
        shape = _fix_shape(name, dims, input_shapes, origin)
        if list(shape) != dims:
            fixed_dims[name] = fixed_record(_show(dims), _show(shape), None if name in given else axis)
        fixed[name] = tf.TensorSpec(shape, spec.dtype, name=name)
    return fixed, fixed_dims


def export_fixed_savedmodel(
    model_file: ModelFile, workdir: Path, input_shapes: dict[str, list[int]], trust: bool = False,
    hint: ShapeHint = None,
) -> ExportedModel:
    """Load the model and save `workdir/fixed_savedmodel` with every input shape fixed
    (hint(name, dims, batch_axis) -> shape proposes shapes for unknown non-batch dims; default none)."""
    tf = import_tensorflow()
    saved_dir = workdir / "fixed_savedmodel"
    try:
        if model_file.format == "keras":
            model = _load_keras(model_file, trust)
            fixed, fixed_dims = _fixed_specs(_keras_specs(model, tf), input_shapes, model_file.path, tf, hint)
            _save_keras(model, fixed, saved_dir, tf)
        elif model_file.format == "savedmodel":
            loaded, sig = _savedmodel_signature(model_file, tf)
            specs = dict(sig.structured_input_signature[1])
            fixed, fixed_dims = _fixed_specs(specs, input_shapes, model_file.path, tf, hint)
            _save_signature(loaded, sig, fixed, saved_dir, tf)
        else:
            raise ModelError(f"not a TensorFlow model ({model_file.format})", model_file.path)
    except (ValueError, TypeError, tf.errors.OpError) as err:
        raise ConversionError(f"cannot trace the model with fixed shapes: {condense(err)}",
                              model_file.path) from None
    signature = load_fixed(saved_dir).signatures[SIGNATURE]
    inputs = [TensorSpec(n, tuple(s.shape.as_list()), s.dtype.name)
              for n, s in sorted(signature.structured_input_signature[1].items())]
    outputs = [TensorSpec(n, tuple(s.shape.as_list()), s.dtype.name)
               for n, s in sorted(signature.structured_outputs.items())]
    return ExportedModel(saved_dir, inputs, outputs, fixed_dims)


def _save_signature(loaded, sig, fixed: dict, saved_dir: Path, tf) -> None:
    names = sorted(fixed)

    @tf.function(input_signature=[fixed[n] for n in names])
    def serve(*args):
        result = sig(**dict(zip(names, args)))
        return result if isinstance(result, dict) else {"output_0": result}

    module = tf.Module()
    module.serve = serve
    # Only what the signature uses: saving the whole loaded object doubles the export's size and
    # time (its every restored function is written again). Models whose signature captures
    # other resources (lookup tables...) are refused that way, and are saved whole.
    module.signature_variables = list(sig.variables)
    signatures = {SIGNATURE: serve.get_concrete_function()}
    try:
        tf.saved_model.save(module, str(saved_dir), signatures=signatures)
    except (AssertionError, ValueError):  # "Tried to export a function which references an untracked resource"
        shutil.rmtree(saved_dir, ignore_errors=True)
        module.loaded = loaded
        tf.saved_model.save(module, str(saved_dir), signatures=signatures)


def _save_keras(model, fixed: dict, saved_dir: Path, tf) -> None:
    """Keras 3 variables are tracked only by its own export archive: use it."""
    import keras

    order = [t.name.split(":")[0] for t in model.inputs]
    out_names = list(getattr(model, "output_names", None) or [])
    if len(out_names) != len(model.outputs):
        out_names = [f"output_{i}" for i in range(len(model.outputs))]

    def serve(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {n: tf.identity(v) for n, v in zip(out_names, result)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=[fixed[n] for n in order])
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(str(saved_dir))


@functools.lru_cache(maxsize=2)
def load_fixed(saved_dir: Path):
    """The fixed SavedModel, loaded once per process (export, reference and fusion stages share it)."""
    return import_tensorflow().saved_model.load(str(saved_dir))


def reference_fn(saved_dir: Path):
    """A callable feeds -> {output name: ndarray} running the fixed SavedModel in TensorFlow."""
    tf = import_tensorflow()
    loaded = load_fixed(saved_dir)
    signature = loaded.signatures[SIGNATURE]

    def run(feeds):
        result = signature(**{k: tf.constant(v) for k, v in feeds.items()})
        run.keepalive = loaded
        return {k: v.numpy() for k, v in result.items()}

    return run


def scope_of(name: str) -> str | None:
    """The layer scope of a TF op name ('model/conv_1/convolution' -> 'model/conv_1')."""
    parts = [p for p in name.split("/") if not p.startswith("StatefulPartitionedCall")]
    if len(parts) < 2:
        return None
    parts = parts[:-1]
    while len(parts) > 1 and parts[-1] in INTERNAL_SCOPES:
        parts = parts[:-1]
    return "/".join(parts)


def keras_layer_names(model_path: str | Path) -> list[str]:
    """Layer names from a .keras archive's config.json (read as JSON, nothing executed); [] if
    the path is not a .keras file or has no readable layer list."""
    import json
    import zipfile

    path = Path(model_path)
    if path.suffix != ".keras" or not path.is_file():
        return []
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > 64 << 20:
                return []
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    layers = (config.get("config") or {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return []
    return [str(layer.get("config", {}).get("name") or layer.get("name")) for layer in layers
            if isinstance(layer, dict)]


def prepare(model_file: ModelFile, workdir: Path, input_shapes: dict, trust: bool, hint: ShapeHint = None):
    """The PreparedSource of a SavedModel or .keras model: the fixed SavedModel, run by TensorFlow
    for the float reference (see `edgekit.sources.prepare`)."""
    from edgekit.sources.base import PreparedSource

    exported = export_fixed_savedmodel(model_file, workdir, input_shapes, trust, hint)
    return PreparedSource(model_file.format, exported.inputs, exported.outputs, reference_fn(exported.saved_dir),
                          exported.fixed_dims, saved_dir=exported.saved_dir,
                          layer_names=tuple(keras_layer_names(model_file.path)))
