"""Calibration sources: a directory of images or .npy/.npz files, streamed one sample at a time.

A source lists `SampleRef`s (cheap) and loads each one on demand as {input name: array}, so
memory does not grow with the number of samples. Nothing is unpickled; symlinks that point out of
the directory are skipped.
"""

from __future__ import annotations

import csv
import logging
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
        if not self.folder.exists():
            raise CalibrationDataError("calibration directory does not exist", self.folder)
        if not self.folder.is_dir():
            raise CalibrationDataError("calibration source must be a directory", self.folder)
        labels_path = Path(labels_csv) if labels_csv else self.folder / "labels.csv"
        self.labels = read_labels(labels_path) if labels_path.is_file() else {}
        self.refs = self._discover()
        if not self.refs:
            raise CalibrationDataError(
                "no samples found (expected .png/.jpg/.bmp images or .npy/.npz files)", self.folder)

    def _files(self) -> Iterator[Path]:
        root = self.folder.resolve()
        for path in sorted(self.folder.rglob("*")):
            suffix = path.suffix.lower()
            if suffix not in IMAGE_SUFFIXES | ARRAY_SUFFIXES:
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                log.warning("%s: symlink points outside the calibration directory; skipped", path)
                continue
            if path.is_file():
                yield path

    def _discover(self) -> list[SampleRef]:
        refs = []
        for path in self._files():
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
        counts = {_sample_count(path, arrays[s.name], s) for s in self.inputs}
        if len(counts) != 1:
            raise CalibrationDataError("inputs hold different numbers of samples", path)
        count = counts.pop()
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
            arrays = _open_arrays(ref.path, self.inputs)
            feeds = {}
            for spec in self.inputs:
                array = arrays[spec.name]
                if array.ndim == len(spec.shape):
                    array = array[ref.index: ref.index + 1] if array.shape[0] > 1 else array
                else:
                    array = array[None]
                feeds[spec.name] = np.array(array, dtype=np.dtype(spec.dtype))
        for spec in self.inputs:
            if not np.all(np.isfinite(feeds[spec.name])):
                raise CalibrationDataError(
                    f"sample {ref.key} has NaN or Inf values in input '{spec.name}'", ref.path)
        return feeds

    def stream(self, refs: Iterable[SampleRef]) -> Iterator[dict[str, np.ndarray]]:
        """Load `refs` one at a time."""
        for ref in refs:
            yield self.load(ref)


def _open_arrays(path: Path, inputs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays of an .npy (single-input models) or .npz (keys = input names), memory-mapped/lazy."""
    try:
        if path.suffix.lower() == ".npy":
            if len(inputs) != 1:
                raise CalibrationDataError(
                    f"the model has {len(inputs)} inputs; use .npz files keyed by input name", path)
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            return {inputs[0].name: _check_dtype(path, array, inputs[0])}
        with np.load(path, allow_pickle=False) as npz:
            missing = [s.name for s in inputs if s.name not in npz.files]
            if missing:
                raise CalibrationDataError(
                    f"missing array(s) {missing} (the model's inputs are {[s.name for s in inputs]})", path)
            wanted = [s.name for s in inputs] + [k for k in ("labels", "label") if k in npz.files]
            arrays = {k: npz[k] for k in wanted}
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise CalibrationDataError("contains pickled Python objects; refused", path) from None
        raise CalibrationDataError(f"not a valid numpy file ({str(err)[:120]})", path) from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise CalibrationDataError(f"cannot read numpy file ({err.__class__.__name__})", path) from None
    for spec in inputs:
        _check_dtype(path, arrays[spec.name], spec)
    return arrays


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
    sample_shape = tuple(spec.shape[1:])
    if tuple(array.shape) == tuple(spec.shape) or tuple(array.shape) == sample_shape:
        return 1 if tuple(array.shape) == sample_shape else array.shape[0]
    if array.ndim == len(spec.shape) and tuple(array.shape[1:]) == sample_shape:
        if array.shape[0] > MAX_SAMPLES_PER_FILE:
            raise CalibrationDataError(f"declares {array.shape[0]} samples; limit is {MAX_SAMPLES_PER_FILE}", path)
        return int(array.shape[0])
    raise CalibrationDataError(
        f"array shape {list(array.shape)} does not fit model input '{spec.name}' "
        f"{list(spec.shape)} (one sample, or N samples stacked on axis 0)", path)


def read_labels(path: Path) -> dict[str, int]:
    """labels.csv: `filename,label` rows (a header row is allowed); labels are class indices."""
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
                    labels[name] = int(value)
                except ValueError:
                    if lineno == 1:
                        continue  # header
                    raise CalibrationDataError(
                        f"line {lineno}: label '{value[:40]}' is not an integer class index", path) from None
    except UnicodeDecodeError:
        raise CalibrationDataError("labels file is not UTF-8 text", path) from None
    return labels
