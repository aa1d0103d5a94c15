"""Calibration sources: a directory of images or .npy/.npz files, streamed one sample at a time.

A source lists `SampleRef`s (cheap) and loads each one on demand as {input name: array}, so
memory does not grow with the number of samples. Files are untrusted: nothing is unpickled, every
.npy header (also inside .npz) is parsed and checked (dtype, shape, declared size against the real
size, limit 4 GiB per array) before any data is read, symlinks that point out of the directory and
non-regular files are skipped, and labels.csv is size-limited.
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from edgekit.calibration.preprocess import image_geometry, load_image
from edgekit.errors import CalibrationDataError
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec

log = logging.getLogger("edgekit")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
ARRAY_SUFFIXES = {".npy", ".npz"}
MAX_LABEL_BYTES = 16 << 20
MAX_SAMPLES_PER_FILE = 1_000_000
MAX_ARRAY_BYTES = 4 << 30
MAX_NPZ_MEMBERS = 1024
MAX_NDIM = 8
NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float; never objects, strings, structs


@dataclass(frozen=True)
class SampleRef:
    """One sample: `key` names it in reports and labels.csv (`file` or `file:index`)."""

    key: str
    path: Path
    index: Optional[int] = None
    label: Optional[int] = None


class CalibrationSource:
    """Samples in `folder` for a model with `inputs`; `labels_csv` defaults to folder/labels.csv."""

    def __init__(self, folder: str | Path, inputs: list[TensorSpec], preprocess: Preprocess,
                 labels_csv: str | Path | None = None):
        self.folder = Path(folder)
        self.inputs = inputs
        self.preprocess = preprocess
        self._cached: tuple[Optional[Path], dict[str, np.ndarray]] = (None, {})
        self.labels = _checked_folder(self.folder, labels_csv)
        self.refs = self._discover()
        if not self.refs:
            raise CalibrationDataError(NO_SAMPLES, self.folder)

    def _discover(self) -> list[SampleRef]:
        refs = []
        for path in sample_files(self.folder):
            rel = path.relative_to(self.folder).as_posix()
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                for spec in self.inputs:
                    image_geometry(spec, self.preprocess, path)
                if len(self.inputs) != 1:
                    raise CalibrationDataError("images can feed only single-input models; use .npz", path)
                refs.append(SampleRef(rel, path, None, self.labels.get(rel)))
            else:
                count, labels = self._array_count(path)
                for i in range(count):
                    key = rel if count == 1 else f"{rel}:{i}"
                    label = labels[i] if labels is not None else self.labels.get(key)
                    refs.append(SampleRef(key, path, i, label))
        return refs

    def _array_count(self, path: Path) -> tuple[int, Optional[list[int]]]:
        """How many samples an .npy/.npz holds (shapes checked), and its labels array if any."""
        arrays = _open_arrays(path, self.inputs)
        leading = [s.name for s in self.inputs if arrays[s.name].ndim == len(s.shape) + 1]
        if leading and len(leading) != len(self.inputs):
            without = [s.name for s in self.inputs if s.name not in leading]
            raise CalibrationDataError(
                f"arrays {leading} have a leading sample axis (input rank + 1) but {without} do not: "
                "give every array the sample axis, or store one sample per file", path)
        counts = {s.name: _sample_count(path, arrays[s.name], s) for s in self.inputs}
        if len(set(counts.values())) != 1:
            raise CalibrationDataError(f"inputs hold different numbers of samples ({counts})", path)
        count = next(iter(counts.values()))
        labels = arrays.get("labels", arrays.get("label"))
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if labels.size != count or not np.issubdtype(labels.dtype, np.integer):
                raise CalibrationDataError("'labels' must be integers, one per sample", path)
            labels = [int(v) for v in labels]
        return count, labels

    def load(self, ref: SampleRef) -> dict[str, np.ndarray]:
        """The sample as {input name: array with batch 1}, validated (shape, dtype, finite)."""
        if ref.path.suffix.lower() in IMAGE_SUFFIXES:
            feeds = {self.inputs[0].name: load_image(ref.path, self.inputs[0], self.preprocess)}
        else:
            if self._cached[0] != ref.path:  # .npz members are decompressed whole: keep one file's
                self._cached = (ref.path, _open_arrays(ref.path, self.inputs))
            arrays = self._cached[1]
            feeds = {}
            for spec in self.inputs:
                feeds[spec.name] = np.array(_one_sample(arrays[spec.name], spec, ref.index),
                                            dtype=np.dtype(spec.dtype))
        for spec in self.inputs:
            if not np.all(np.isfinite(feeds[spec.name])):
                raise CalibrationDataError(
                    f"sample {ref.key} has NaN or Inf values in input '{spec.name}'", ref.path)
        return feeds

    def stream(self, refs: Iterable[SampleRef]) -> Iterator[dict[str, np.ndarray]]:
        """Load `refs` one at a time."""
        for ref in refs:
            yield self.load(ref)


NO_SAMPLES = "no samples found (expected .png/.jpg/.bmp images or .npy/.npz files)"


def _checked_folder(folder: Path, labels_csv) -> dict[str, int]:
    """Check the directory and read its labels (labels_csv, default folder/labels.csv if inside)."""
    if not folder.exists():
        raise CalibrationDataError("calibration directory does not exist", folder)
    if not folder.is_dir():
        raise CalibrationDataError("calibration source must be a directory", folder)
    labels_path = Path(labels_csv) if labels_csv else folder / "labels.csv"
    if labels_csv is None and not _inside(labels_path, folder):
        log.warning("%s: symlink points outside the calibration directory; ignored", labels_path)
        return {}
    return read_labels(labels_path) if labels_path.is_file() else {}


def sample_files(folder: Path) -> Iterator[Path]:
    """Regular sample files under `folder`, sorted; never leaves it through a symlink."""
    found = []
    for parent, dirs, files in os.walk(folder):  # does not descend into symlinked dirs
        dirs.sort()
        for name in files:
            path = Path(parent) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES | ARRAY_SUFFIXES:
                continue
            if not _inside(path, folder):
                log.warning("%s: symlink points outside the calibration directory; skipped", path)
                continue
            if path.is_file():
                found.append(path)
    yield from sorted(found)


def precheck_calibration(folder: str | Path, labels_csv: str | Path | None = None) -> None:
    """The checks that need no model, run before any framework starts (fast failures): the
    directory, its labels, that it holds samples, and every .npy/.npz header (no pickles)."""
    folder = Path(folder)
    _checked_folder(folder, labels_csv)
    files = list(sample_files(folder))
    if not files:
        raise CalibrationDataError(NO_SAMPLES, folder)
    for path in files:
        try:
            if path.suffix.lower() == ".npy":
                with open(path, "rb") as handle:
                    _read_npy_header(path, handle, path.stat().st_size)
            elif path.suffix.lower() == ".npz":
                with zipfile.ZipFile(path) as archive:
                    if len(archive.infolist()) > MAX_NPZ_MEMBERS:
                        raise CalibrationDataError(f"more than {MAX_NPZ_MEMBERS} arrays in one .npz", path)
                    for info in archive.infolist():
                        with archive.open(info) as handle:
                            _read_npy_header(path, handle, info.file_size)
        except CalibrationDataError:
            raise
        except Exception as err:  # numpy's header parser raises SyntaxError, TokenError, ValueError...
            raise CalibrationDataError(f"not a valid numpy file ({_one_line(err)})", path) from None


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` (a link or not) resolves to a place inside `folder`."""
    return not path.is_symlink() or path.resolve().is_relative_to(folder.resolve())


def _open_arrays(path: Path, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays of an .npy (single-input models) or .npz (keys = input names), headers checked first."""
    try:
        if path.suffix.lower() == ".npy":
            if len(inputs) != 1:
                raise CalibrationDataError(
                    f"the model has {len(inputs)} inputs; use .npz files keyed by input name", path)
            with open(path, "rb") as handle:
                shape, dtype = _read_npy_header(path, handle, os.fstat(handle.fileno()).st_size)
            empty = 0 in shape  # numpy cannot memory-map zero bytes
            array = np.load(path, mmap_mode=None if empty else "r", allow_pickle=False)
            return {inputs[0].name: _check_dtype(path, array, inputs[0])}
        wanted = _check_npz(path, inputs)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in wanted}
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise CalibrationDataError("contains pickled Python objects; refused", path) from None
        raise CalibrationDataError(f"not a valid numpy file ({_one_line(err)})", path) from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
            RecursionError, MemoryError) as err:
        raise CalibrationDataError(f"cannot read numpy file ({err.__class__.__name__})", path) from None
    for spec in inputs:
        _check_dtype(path, arrays[spec.name], spec)
    return arrays


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:120] or err.__class__.__name__


def _read_npy_header(path: Path, handle, size: int) -> tuple[tuple[int, ...], np.dtype]:
    """Parse and check an .npy header without reading data: (shape, dtype); size = the member's bytes."""
    fmt = np.lib.format
    version = fmt.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(handle)
    else:
        raise CalibrationDataError(f"unsupported .npy format version {version}", path)
    if dtype.hasobject:
        raise CalibrationDataError("contains pickled Python objects; refused", path)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CalibrationDataError(f"dtype {dtype} is not a plain numeric type", path)
    if len(shape) > MAX_NDIM or any(d < 0 for d in shape):
        raise CalibrationDataError(f"implausible array shape {list(shape)[:MAX_NDIM + 1]}", path)
    nbytes = dtype.itemsize
    for dim in shape:
        nbytes *= dim
    if nbytes > MAX_ARRAY_BYTES:
        raise CalibrationDataError(f"array declares {nbytes} bytes; limit is {MAX_ARRAY_BYTES}", path)
    if handle.tell() + nbytes != size:
        raise CalibrationDataError(
            f"array header declares {nbytes} data bytes but the file holds {size - handle.tell()} "
            "(truncated or corrupt)", path)
    return tuple(shape), dtype


def _check_npz(path: Path, inputs: list[TensorSpec]) -> list[str]:
    """Check an .npz's members (count, names, every needed header) before numpy reads any data."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        if len(members) > MAX_NPZ_MEMBERS:
            raise CalibrationDataError(f"more than {MAX_NPZ_MEMBERS} arrays in one .npz", path)
        names = {name[:-4] if name.endswith(".npy") else name: name for name in members}
        missing = [s.name for s in inputs if s.name not in names]
        if missing:
            raise CalibrationDataError(
                f"missing array(s) {missing} (the model's inputs are {[s.name for s in inputs]})", path)
        wanted = [s.name for s in inputs] + [k for k in ("labels", "label") if k in names]
        for key in wanted:
            info = members[names[key]]
            with archive.open(info) as handle:
                _read_npy_header(path, handle, info.file_size)
    return wanted


def _check_dtype(path: Path, array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    want = np.dtype(spec.dtype)
    have = array.dtype
    if have.kind == "O":
        raise CalibrationDataError("contains pickled Python objects; refused", path)
    same_family = (np.issubdtype(have, np.floating) and np.issubdtype(want, np.floating)) or (
        np.issubdtype(have, np.integer) and np.issubdtype(want, np.integer))
    if not same_family:
        raise CalibrationDataError(
            f"dtype {have} does not match model input '{spec.name}' ({want})", path)
    return array


def _sample_count(path: Path, array: np.ndarray, spec: TensorSpec) -> int:
    """Samples in `array` for `spec`: one sample exactly as the model takes it; N samples on a
    leading sample axis (rank + 1); for a batch-1 input on axis 0, also N samples stacked on
    the batch axis, or one sample without it."""
    shape, have = tuple(spec.shape), tuple(array.shape)
    batch_first = len(shape) > 0 and shape[0] == 1
    if have == shape or (batch_first and have == shape[1:]):
        return 1
    if have[1:] == shape or (batch_first and array.ndim == len(shape) and have[1:] == shape[1:]):
        if have[0] > MAX_SAMPLES_PER_FILE:
            raise CalibrationDataError(f"declares {have[0]} samples; limit is {MAX_SAMPLES_PER_FILE}", path)
        return int(have[0])
    stacked = " or N samples stacked on axis 0" if batch_first else ""
    raise CalibrationDataError(
        f"array shape {list(have)} does not fit model input '{spec.name}' {list(shape)} (one sample "
        f"{list(shape)}, N samples with a leading sample axis [N, {', '.join(map(str, shape))}]{stacked})", path)


def _one_sample(array: np.ndarray, spec: TensorSpec, index: Optional[int]) -> np.ndarray:
    """Sample `index` of an array that `_sample_count` accepted, shaped as the model input."""
    shape = tuple(spec.shape)
    if tuple(array.shape) == shape:
        return array
    if array.ndim == len(shape) + 1:
        return array[index]
    if array.ndim == len(shape):
        return array[index: index + 1]
    return array[None]


def read_labels(path: Path) -> dict[str, int]:
    """labels.csv: `filename,label` rows (a header row is allowed); labels are class indices >= 0."""
    if path.stat().st_size > MAX_LABEL_BYTES:
        raise CalibrationDataError("labels file larger than 16 MiB", path)
    labels: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for lineno, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 2:
                    raise CalibrationDataError(f"line {lineno}: expected 'filename,label'", path)
                name, value = row[0].strip(), row[1].strip()
                try:
                    label = int(value)
                except ValueError:
                    if lineno == 1:
                        continue  # header
                    raise CalibrationDataError(
                        f"line {lineno}: label {value[:40]!r} is not an integer class index", path) from None
                if label < 0:
                    raise CalibrationDataError(f"line {lineno}: label {label} is negative", path)
                labels[name] = label
    except UnicodeDecodeError:
        raise CalibrationDataError("labels file is not UTF-8 text", path) from None
    except csv.Error as err:
        raise CalibrationDataError(f"not a valid CSV file ({_one_line(err)})", path) from None
    return labels
