"""What to benchmark: the artifacts of a compress output directory (or one artifact file).

With `manifest.json` ({"schema_version": 1, "artifacts": [{name, format, precision, sha256, bytes}]})
its artifacts are taken in order and each file's size and sha256 are checked against it. Without
one, every *.tflite / *.onnx file in the directory is taken (sorted), precision guessed from the
name (int8, fp16, fp32, dynamic) else "unknown". TensorRT plans (*.plan, *.engine: built on a
device by `compress --device`, so never in the manifest) are added after them; a plan `S.plan`
beside `S_trt_int8.onnx` is that model's INT8 engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgekit.errors import ModelError
from edgekit.fsutil import sha256_file

FORMATS = {".tflite": "tflite", ".onnx": "onnx", ".plan": "trt-plan", ".engine": "trt-plan"}
HARNESS_FORMATS = ("tflite", "onnx")
_PRECISION_WORDS = [("int8", "int8"), ("uint8", "int8"), ("qdq", "int8"), ("fp16", "fp16"),
                    ("float16", "fp16"), ("fp32", "fp32"), ("float32", "fp32"), ("float", "fp32"),
                    ("dynamic", "dynamic")]


class Artifact(BaseModel):
    """One file to benchmark."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[^/\\\x00]+$")
    format: Literal["tflite", "onnx", "trt-plan"]
    precision: Literal["fp32", "fp16", "int8", "dynamic", "unknown"]
    target: Optional[Literal["tflite", "onnx", "tensorrt"]] = None  # compress manifests name it
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    path: Path | None = Field(None, exclude=True)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # other keys belong to the compress command

    schema_version: Literal[1]
    edgekit_version: str | None = None
    artifacts: list[Artifact] = Field(min_length=1)


def guess_precision(name: str) -> str:
    """'model_int8.tflite' -> 'int8'; names with no precision word -> 'unknown'."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    return next((precision for word, precision in _PRECISION_WORDS if word in words), "unknown")


def _from_file(path: Path) -> Artifact:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModelError("not a .tflite/.onnx/.plan artifact", path)
    return Artifact(name=path.name, format=fmt, precision=guess_precision(path.name),
                    sha256=sha256_file(path), bytes=path.stat().st_size, path=path)


def _from_manifest(directory: Path, manifest_path: Path) -> list[Artifact]:
    try:
        manifest = Manifest.model_validate(json.loads(manifest_path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"unreadable manifest ({err})", manifest_path) from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ModelError(f"{where}: {first['msg']}", manifest_path) from None
    artifacts = []
    for entry in manifest.artifacts:
        path = directory / entry.name
        if not path.is_file():
            raise ModelError(f"manifest lists {entry.name}, which is missing", manifest_path)
        size, digest = path.stat().st_size, sha256_file(path)
        if size != entry.bytes or digest != entry.sha256:
            raise ModelError(f"{entry.name} does not match its manifest sha256/size (changed "
                             "after the build?)", manifest_path)
        artifacts.append(entry.model_copy(update={"path": path}))
    return artifacts


def discover(target: str | Path) -> list[Artifact]:
    """Artifacts of a build directory or a single artifact file; ModelError when there are none."""
    target = Path(target)
    if target.is_file():
        return [_from_file(target)]
    if not target.is_dir():
        raise ModelError("no such build directory or artifact", target)
    manifest = target / "manifest.json"
    if manifest.is_file():
        artifacts = _from_manifest(target, manifest)
    else:
        artifacts = [_from_file(path) for path in sorted(
            p for p in target.iterdir() if p.is_file() and p.suffix.lower() in (".tflite", ".onnx"))]
    artifacts += [_plan(path) for path in sorted(
        p for p in target.iterdir() if p.is_file() and p.suffix.lower() in (".plan", ".engine"))]
    if not artifacts:
        raise ModelError("no manifest.json and no .tflite/.onnx/.plan files", target)
    return artifacts


def _plan(path: Path) -> Artifact:
    artifact = _from_file(path)
    if artifact.precision == "unknown" and (path.parent / f"{path.stem}_trt_int8.onnx").is_file():
        artifact.precision = "int8"
    artifact.target = "tensorrt"
    return artifact
