"""Cheap, safe checks of a model path before any framework parses it (no TensorFlow import).

Refuses what would run arbitrary code on load (Keras Lambda layers, custom objects, legacy
HDF5) unless the user trusts the model.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ModelError

MAX_CONFIG_BYTES = 64 << 20
KERAS_MODULE_PREFIXES = ("keras", "tf_keras")


@dataclass(frozen=True)
class ModelFile:
    """A model path that passed the checks, and its format: savedmodel | keras | onnx."""

    path: Path
    format: str


def check_model_path(path: str | Path, trust: bool = False) -> ModelFile:
    """Identify the model format and refuse unsafe or malformed inputs with a one-line error."""
    path = Path(path)
    if not path.exists():
        raise ModelError("does not exist", path)
    if path.is_dir():
        if not any((path / n).is_file() for n in ("saved_model.pb", "saved_model.pbtxt")):
            raise ModelError("directory is not a SavedModel (no saved_model.pb)", path)
        return ModelFile(path, "savedmodel")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ModelError("file is empty", path)
    if suffix == ".keras":
        _check_keras_archive(path, trust)
        return ModelFile(path, "keras")
    if suffix in (".h5", ".hdf5"):
        if not trust:
            raise ModelError("legacy HDF5 Keras models can run code on load; pass --trust-model", path)
        return ModelFile(path, "keras")
    if suffix == ".onnx":
        with open(path, "rb") as handle:
            head = handle.read(1)
        if head != b"\x08":  # ModelProto starts with field 1 (ir_version), varint
            raise ModelError("not an ONNX model (bad magic: expected a ModelProto)", path)
        return ModelFile(path, "onnx")
    raise ModelError("unsupported model format (expected a SavedModel dir, .keras or .onnx)", path)


def _check_keras_archive(path: Path, trust: bool) -> None:
    if not zipfile.is_zipfile(path):
        raise ModelError("not a valid .keras file (not a zip archive: corrupt or truncated?)", path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelError("not a valid .keras file (no config.json inside)", path)
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelError("config.json inside the .keras file is implausibly large", path)
            bad = archive.testzip()
            if bad is not None:
                raise ModelError(f"corrupt .keras file (bad CRC in {bad})", path)
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RecursionError) as err:
        raise ModelError(f"corrupt .keras file ({err.__class__.__name__})", path) from None
    if not trust:
        problem = find_unsafe_layer(config)
        if problem:
            raise ModelError(f"{problem}; refused (pass --trust-model to load it anyway)", path)


def find_unsafe_layer(config, depth: int = 0) -> str | None:
    """Describe the first Lambda layer or custom object in a Keras config, or None."""
    if depth > 200:
        return "model config nested implausibly deep"
    if isinstance(config, dict):
        class_name = config.get("class_name")
        module = config.get("module")
        layer_name = (config.get("config") or {}).get("name") if isinstance(config.get("config"), dict) else None
        if class_name in ("Lambda", "TFOpLambda"):
            return f"contains a Lambda layer '{layer_name or '?'}' (arbitrary Python code)"
        if isinstance(module, str) and class_name and not module.startswith(KERAS_MODULE_PREFIXES):
            return f"contains custom object {class_name} from module '{module}'"
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = find_unsafe_layer(value, depth + 1)
        if found:
            return found
    return None
