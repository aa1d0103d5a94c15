"""Cheap, safe checks of a model path before any framework parses it (no TensorFlow import).

Every model file gets a size and magic check; protobuf files (saved_model.pb, .onnx) get a walk
of their top-level wire format, so truncated or bit-flipped files fail here instead of inside a
native parser. `.keras` archives are checked for zip bombs (declared sizes), unsafe member names,
and what would run arbitrary code on load (Lambda layers, custom objects); legacy HDF5 is refused
too, unless the user trusts the model. `.tflite` is an output format and refused as an input. PyTorch inputs (`.pt2`, entry points) are
recognized here: a `.pt2` is checked as an archive like `.keras`, an entry point
(`package.module:function`) needs trust; pickled `.pt`/`.pth` checkpoints are refused.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from edgekit.errors import ModelError, condense

MAX_MODEL_BYTES = 16 << 30  # any single model file
MAX_PROTO_BYTES = 2**31 - 1  # protobuf's hard limit for one message
MAX_CONFIG_BYTES = 64 << 20
MAX_ARCHIVE_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 16 << 30  # sum of a .keras archive's declared member sizes
MAX_RATIO = 200  # declared/compressed size of one member beyond which it is a zip bomb
MAX_SAVEDMODEL_FILES = 100_000
ZIP_MAGIC = b"PK\x03\x04"
PT2, ENTRY = "pt2", "torch-entry"  # PyTorch formats: a torch.export archive, package.module:function
_ENTRY_POINT = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_MODULES = ("keras", "tf_keras")
CODE_CLASSES = ("Lambda", "TFOpLambda", "__lambda__")
# Top-level fields and their wire types: SavedModel {1: schema version, 2: meta graphs};
# onnx.ModelProto {1 ir_version, 2-4/6 strings, 5 model_version, 7 graph, 8 opset_import, ...}.
SAVED_MODEL_FIELDS = {1: 0, 2: 2}
ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


@dataclass(frozen=True)
class ModelFile:
    """A model path that passed the checks, and its format: savedmodel | keras | onnx | pt2 |
    torch-entry (path is then the entry point's text, package.module:function)."""

    path: Path
    format: str


def check_model_path(path: str | Path, trust: bool = False) -> ModelFile:
    """Identify the model format and refuse unsafe or malformed inputs with a one-line error."""
    path = Path(path)
    if not path.exists() and is_entry_point(str(path)):
        return check_entry_point(str(path), trust)
    try:
        info = path.stat()
    except OSError as err:
        problem = "does not exist" if isinstance(err, FileNotFoundError) else f"cannot read ({err.strerror})"
        raise ModelError(problem, path) from None
    if stat.S_ISDIR(info.st_mode):
        _check_savedmodel_dir(path)
        return ModelFile(path, "savedmodel")
    _check_regular_file(path, info, MAX_MODEL_BYTES)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        _check_keras_archive(path, trust)
        return ModelFile(path, "keras")
    if suffix in (".h5", ".hdf5"):
        if not trust:
            raise ModelError("legacy HDF5 Keras models can run code on load; pass --trust-model", path)
        check_magic(path, HDF5_MAGIC, "not an HDF5 file (bad magic)")
        return ModelFile(path, "keras")
    if suffix == ".onnx":
        _check_proto(path, ONNX_FIELDS, "ONNX model", required=7)
        return ModelFile(path, "onnx")
    if suffix == ".pt2":
        return check_pt2_archive(path)
    if suffix in (".pt", ".pth"):
        raise ModelError("a pickled PyTorch checkpoint runs code on load and holds no graph: give a "
                         "torch.export archive (.pt2, torch.export.save) or an entry point "
                         "package.module:function with --trust-model", path)
    if suffix == ".tflite":
        raise ModelError("a .tflite file is an output of edgekit, not an input: give the source model "
                         "(a SavedModel dir, .keras, .onnx, .pt2 or package.module:function)", path)
    raise ModelError("unsupported model format (expected a SavedModel dir, .keras, .onnx, .pt2 or "
                     "package.module:function)", path)


def _check_regular_file(path: Path, info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ModelError("not a regular file", path)
    if info.st_size == 0:
        raise ModelError("file is empty", path)
    if info.st_size > limit:
        raise ModelError(f"file is {info.st_size} bytes, over the {limit}-byte limit", path)


def check_magic(path: Path, magic: bytes, problem: str) -> None:
    with open(path, "rb") as handle:
        if handle.read(len(magic)) != magic:
            raise ModelError(problem, path)


def _check_savedmodel_dir(path: Path) -> None:
    """saved_model.pb(txt) present and well-formed; nothing inside links out of the directory."""
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    if not (pb.exists() or pbtxt.exists()):
        raise ModelError("directory is not a SavedModel (no saved_model.pb)", path)
    root = path.resolve()
    count = 0
    for folder, dirs, files in os.walk(path):
        count += len(dirs) + len(files)
        for name in dirs + files:
            item = Path(folder) / name
            if item.is_symlink() and not item.resolve().is_relative_to(root):
                raise ModelError("SavedModel contains a symlink pointing outside its directory (refused)", item)
        if count > MAX_SAVEDMODEL_FILES:
            raise ModelError(f"SavedModel directory holds more than {MAX_SAVEDMODEL_FILES} files", path)
    chosen = pb if pb.exists() else pbtxt
    _check_regular_file(chosen, chosen.stat(), MAX_PROTO_BYTES)
    if chosen is pb:
        _check_proto(pb, SAVED_MODEL_FIELDS, "SavedModel", required=2)
        return
    try:
        with open(pbtxt, "rb") as handle:
            handle.read(MAX_CONFIG_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError("saved_model.pbtxt is not UTF-8 text", pbtxt) from None


def _check_proto(path: Path, fields: dict[int, int], kind: str, required: int) -> None:
    """Walk a protobuf file's top-level fields: known numbers, right wire types, in-bounds lengths."""
    info = path.stat()
    _check_regular_file(path, info, MAX_PROTO_BYTES)
    seen = set()
    with open(path, "rb") as handle:
        try:
            for number, wire_type in _wire_fields(handle, info.st_size):
                if fields.get(number) != wire_type:
                    raise ValueError(f"unexpected field {number} (wire type {wire_type})")
                seen.add(number)
        except ValueError as err:
            raise ModelError(f"not a valid {kind} (truncated, corrupt or wrong file type: {err})", path) from None
    if required not in seen:
        raise ModelError(f"not a valid {kind} (its graph is missing)", path)


def _varint(handle: BinaryIO) -> int:
    value = 0
    for shift in range(0, 70, 7):
        byte = handle.read(1)
        if not byte:
            raise ValueError("ends inside a varint")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    raise ValueError("varint longer than 10 bytes")


def _wire_fields(handle: BinaryIO, size: int) -> Iterator[tuple[int, int]]:
    """(field number, wire type) of each top-level field; ValueError where the bytes cannot be one."""
    while handle.tell() < size:
        key = _varint(handle)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire_type == 0:
            _varint(handle)
        elif wire_type in (1, 5):
            skip = 8 if wire_type == 1 else 4
            if handle.tell() + skip > size:
                raise ValueError("ends inside a fixed-size field")
            handle.seek(skip, os.SEEK_CUR)
        elif wire_type == 2:
            length = _varint(handle)
            if handle.tell() + length > size:
                raise ValueError(f"field {number} declares {length} bytes past the end of the file")
            handle.seek(length, os.SEEK_CUR)
        else:
            raise ValueError(f"wire type {wire_type}")
        yield number, wire_type


def _check_keras_archive(path: Path, trust: bool) -> None:
    check_magic(path, ZIP_MAGIC, "not a valid .keras file (not a zip archive: corrupt or truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            check_zip_members(path, members, ".keras")
            names = {m.filename for m in members}
            if "config.json" not in names:
                raise ModelError("not a valid .keras file (no config.json inside)", path)
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelError("config.json inside the .keras file is implausibly large", path)
            bad = archive.testzip()
            if bad is not None:
                raise ModelError(f"corrupt or truncated .keras file (bad CRC in {bad})", path)
            if "model.weights.h5" in names:
                with archive.open("model.weights.h5") as weights:
                    if weights.read(len(HDF5_MAGIC)) != HDF5_MAGIC:
                        raise ModelError("corrupt .keras file (model.weights.h5 is not HDF5)", path)
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, RecursionError,
            NotImplementedError) as err:
        raise ModelError(f"corrupt or truncated .keras file ({one_line(err)})", path) from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelError("not a valid .keras file (config.json is not a model config)", path)
    if not trust:
        problem = find_unsafe_layer(config)
        if problem:
            raise ModelError(f"{problem}; refused (pass --trust-model to load it anyway)", path)


def one_line(err: BaseException) -> str:
    text = condense(" ".join(str(err).split()), 100)
    return f"{err.__class__.__name__}: {text}" if text else err.__class__.__name__


def check_zip_members(path: Path, members: list[zipfile.ZipInfo], kind: str) -> None:
    """Refuse zip bombs (declared sizes and ratios), too many members and escaping names; `kind`
    names the archive in the message (".keras", ".pt2")."""
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ModelError(f"{kind} archive has more than {MAX_ARCHIVE_MEMBERS} members", path)
    total = 0
    for member in members:
        name = PurePosixPath(member.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts:
            raise ModelError(f"{kind} archive member '{member.filename[:80]!r}' escapes the archive (refused)", path)
        total += member.file_size
        if member.file_size > (1 << 20) and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise ModelError(f"{kind} archive member '{member.filename[:80]}' is a zip bomb "
                             f"({member.file_size} bytes from {member.compress_size})", path)
    if total > MAX_UNPACKED_BYTES:
        raise ModelError(f"{kind} archive unpacks to {total} bytes, over the {MAX_UNPACKED_BYTES}-byte limit", path)


def _is_keras_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in KERAS_MODULES)


def find_unsafe_layer(config, depth: int = 0) -> str | None:
    """Describe the first Lambda layer or custom object in a Keras config, or None."""
    if depth > 200:
        return "model config nested implausibly deep"
    if isinstance(config, dict):
        class_name = config.get("class_name")
        module = config.get("module")
        inner = config.get("config")
        layer_name = inner.get("name") if isinstance(inner, dict) else None
        if class_name in CODE_CLASSES:
            return f"contains a Lambda layer '{str(layer_name or '?')[:80]}' (arbitrary Python code)"
        if isinstance(module, str) and class_name and not _is_keras_module(module):
            return f"contains custom object {str(class_name)[:80]} from module '{module[:80]}'"
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


def is_entry_point(text: str) -> bool:
    """`package.module:function` (dotted identifiers, one colon, one identifier)."""
    return bool(_ENTRY_POINT.match(text))


def check_entry_point(text: str, trust: bool) -> ModelFile:
    """An entry point runs the user's code: refused without --trust-model (nothing imported here)."""
    if not trust:
        raise ModelError("a Python entry point runs its module's code to build the model; "
                         "pass --trust-model to run it", text)
    return ModelFile(Path(text), ENTRY)


def check_pt2_archive(path: Path) -> ModelFile:
    """A torch.export archive: a zip with sane members and a `*/archive_format` marker."""
    check_magic(path, ZIP_MAGIC, "not a valid .pt2 file (not a zip archive: corrupt or truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            check_zip_members(path, members, ".pt2")
            if not any(m.filename.endswith("archive_format") for m in members):
                raise ModelError("not a torch.export archive (no archive_format member: saved with "
                                 "torch.export.save?)", path)
            bad = archive.testzip()
            if bad is not None:
                raise ModelError(f"corrupt or truncated .pt2 file (bad CRC in {bad})", path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise ModelError(f"corrupt or truncated .pt2 file ({one_line(err)})", path) from None
    return ModelFile(path, PT2)
