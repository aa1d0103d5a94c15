"""Which unknown dim of a model input is its batch, and input shapes from the calibration samples.

`batch_axes` finds each input's unknown batch: axis 0 when unknown, else the input's only unknown
dim when the model takes a dynamic batch (PyTorch's RNN state `[layers, batch, hidden]`).
With no --input-shape for an input whose other dims are unknown (dynamic H/W, say), the first
calibration sample decides: an image gives its size (or the recipe's resize) and the colour's
channel count in the recipe's layout; an .npy/.npz array gives its shape. The batch is 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from edgekit.calibration.preprocess import CHANNELS, layout_from_shape
from edgekit.calibration.sources import IMAGE_SUFFIXES, sample_files
from edgekit.recipe.schema import Recipe


def batch_axes(inputs: Mapping[str, Optional[Sequence[Optional[int]]]]) -> dict[str, int]:
    """Input name -> axis of its unknown batch (dims: None = unknown; inputs without one left out).

    Axis 0 when it is unknown. Otherwise the input's only unknown dim, when every other dim is
    known and the model takes a dynamic batch (some input's axis 0 is unknown): the `?` of an RNN
    state `[2, ?, 128]` next to an audio input `[?, ?]`. A model with a static batch keeps the
    rule that other unknown dims come from --input-shape or the calibration samples.
    """
    dynamic = any(dims and dims[0] is None for dims in inputs.values())
    axes = {}
    for name, dims in inputs.items():
        unknown = [i for i, d in enumerate(dims or []) if d is None]
        if unknown and (unknown[0] == 0 or (dynamic and len(unknown) == 1)):
            axes[name] = unknown[0]
    return axes


def fixed_record(old: str, new: str, batch_axis: Optional[int]) -> dict[str, str]:
    """The report's record of one fixed input; "batch_axis" names the axis when it is not 0."""
    record = {"from": old, "to": new}
    if batch_axis:
        record["batch_axis"] = str(batch_axis)
    return record


def _array_shape(path: Path, name: str) -> Optional[tuple[int, ...]]:
    try:
        if path.suffix.lower() == ".npy":
            return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
        with np.load(path, allow_pickle=False) as archive:
            return tuple(archive[name].shape) if name in archive.files else None
    except Exception:  # an unreadable file is reported by the calibration source, with its name
        return None


def _image_shape(path: Path, recipe: Recipe, dims) -> Optional[tuple[int, ...]]:
    from PIL import Image

    pp = recipe.preprocess
    layout, channels = pp.layout, CHANNELS[pp.color]
    implied = layout_from_shape(dims)  # the model's known channel dim, unless the user said otherwise
    if implied is not None and not {"layout", "color"} & pp.model_fields_set:
        layout, channels = implied
    if pp.resize is not None:
        height, width = pp.resize
    else:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:
            return None
    return (1, height, width, channels) if layout == "nhwc" else (1, channels, height, width)


def shape_from_calibration(recipe: Recipe, name: str, dims: Sequence[Optional[int]],
                           batch_axis: Optional[int] = 0) -> Optional[list[int]]:
    """The full shape for input `name` (dims: None = unknown) from the first calibration sample.

    Its `batch_axis` (default 0; None: none found) becomes 1. An array of the input's rank is
    one sample (or N stacked on axis 0), rank - 1 lacks the batch axis, rank + 1 has a leading
    sample axis.
    """
    source = recipe.calibration.source
    if source is None or not Path(source).is_dir():
        return None
    first = next(iter(sample_files(Path(source))), None)
    if first is None:
        return None
    rank = len(dims)
    if first.suffix.lower() in IMAGE_SUFFIXES:
        image = _image_shape(first, recipe, dims) if rank == 4 and batch_axis in (0, None) else None
        shape = None if image is None else list(image)
    else:
        found = _array_shape(first, name)
        if found is None or len(found) not in (rank - 1, rank, rank + 1):
            return None
        if len(found) == rank - 1:  # one sample without its batch axis (axis 0 when none was found)
            axis = batch_axis or 0
            shape = [*found[:axis], 1, *found[axis:]]
        else:
            shape = list(found[len(found) - rank:])
            if len(found) == rank and dims[0] is not None:
                shape[0] = dims[0]  # N samples stacked on a static axis 0
    if shape is None or len(shape) != rank:
        return None
    if batch_axis is not None:
        shape[batch_axis] = 1
    if any(d is not None and d != s for d, s in zip(dims, shape)):
        return None
    return [int(d) for d in shape]
