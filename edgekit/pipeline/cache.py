"""Content-addressed build cache: an unchanged rebuild copies the cached output, converting nothing.

Key = sha256 over: the model's content, every calibration file's content (by relative path,
independent of listing order), the resolved recipe, the target list, and the versions of edgekit
and each backend. No framework is imported to compute it. Entries are whole output directories,
written atomically; the least recently used are evicted past the size cap.

Location: $EDGEKIT_CACHE_DIR, else $XDG_CACHE_HOME/edgekit, else ~/.cache/edgekit.
Size cap: $EDGEKIT_CACHE_MAX_BYTES (default 2 GiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import edgekit
from edgekit.errors import UsageError
from edgekit.fsutil import atomic_output_dir, sha256_file, sha256_tree

COMPLETE = ".complete"
DEFAULT_MAX_BYTES = 2 << 30
BACKENDS = ("tensorflow-cpu", "tensorflow", "ai-edge-litert", "tflite-runtime", "onnx", "onnxruntime",
            "tf2onnx", "numpy", "torch", "onnxscript")
DATA_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".npy", ".npz", ".csv"}


def cache_dir() -> Path:
    if os.environ.get("EDGEKIT_CACHE_DIR"):
        return Path(os.environ["EDGEKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgekit"


def max_bytes() -> int:
    raw = os.environ.get("EDGEKIT_CACHE_MAX_BYTES", "")
    if not raw:
        return DEFAULT_MAX_BYTES
    if not raw.isdigit():
        raise UsageError(f"EDGEKIT_CACHE_MAX_BYTES must be a whole number of bytes, not '{raw}'")
    return int(raw)


def backend_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"edgekit": edgekit.__version__}
    for dist in BACKENDS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def _data_digest(folder: Path) -> dict[str, str]:
    root = folder.resolve()
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in DATA_SUFFIXES and path.is_file() and path.resolve().is_relative_to(root):
            digests[path.relative_to(folder).as_posix()] = sha256_file(path)
    return digests


def cache_key(model_path: Path, recipe_json: dict, targets: list[str], extra_files: list[Path] = ()) -> str:
    """The cache key of one compress run (see the module docstring)."""
    source = recipe_json.get("calibration", {}).get("source")
    material = {
        "model": sha256_tree(model_path),
        "data": _data_digest(Path(source)) if source and Path(source).is_dir() else {},
        "extra": {str(p): sha256_file(p) for p in extra_files if Path(p).is_file()},
        "recipe": recipe_json,
        "targets": targets,
        "versions": backend_versions(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass
class CacheEntry:
    key: str
    path: Path
    bytes: int
    last_used: float


def _entries(root: Path) -> list[CacheEntry]:
    entries = []
    for folder in root.iterdir() if root.is_dir() else []:
        marker = folder / COMPLETE
        if folder.is_dir() and marker.is_file():
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            entries.append(CacheEntry(folder.name, folder, size, marker.stat().st_mtime))
    return sorted(entries, key=lambda e: e.last_used)


def lookup(key: str) -> Path | None:
    """The complete cached output for `key` (its use time refreshed), or None."""
    folder = cache_dir() / key
    marker = folder / COMPLETE
    if not marker.is_file():
        return None
    os.utime(marker)
    return folder


def copy_out(entry: Path, stage: Path) -> None:
    """Copy a cached output into a staging directory (copies, never links: outputs stay editable)."""
    for item in sorted(entry.iterdir()):
        if item.name != COMPLETE:
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, stage / item.name)


def store(key: str, output: Path) -> None:
    """Save a complete output directory under `key`, then evict least recently used entries."""
    root = cache_dir()
    with atomic_output_dir(root / key) as stage:
        copy_out(output, stage)
        (stage / COMPLETE).write_text(json.dumps({"created": time.time()}))
    evict(max_bytes())


def evict(limit: int) -> list[str]:
    """Remove least recently used entries until the cache is at most `limit` bytes."""
    entries = _entries(cache_dir())
    total = sum(e.bytes for e in entries)
    removed = []
    for entry in entries:
        if total <= limit:
            break
        shutil.rmtree(entry.path, ignore_errors=True)
        total -= entry.bytes
        removed.append(entry.key)
    return removed


def info() -> dict:
    entries = _entries(cache_dir())
    return {"path": str(cache_dir()), "entries": len(entries), "bytes": sum(e.bytes for e in entries),
            "max_bytes": max_bytes()}


def clear() -> int:
    """Remove every entry; returns how many there were."""
    entries = _entries(cache_dir())
    for entry in entries:
        shutil.rmtree(entry.path, ignore_errors=True)
    return len(entries)
