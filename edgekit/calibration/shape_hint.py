"""Input shapes from the calibration samples, for models whose inputs have unknown dims.

With no --input-shape for an input whose dims beyond the batch are unknown (dynamic H/W, say),
the first calibration sample decides: an image gives its size (or the recipe's resize) and the
colour's channel count in the recipe's layout; an .npy/.npz array gives its shape. The batch is 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from edgekit.calibration.preprocess import CHANNELS, layout_from_shape
from edgekit.calibration.sources import IMAGE_SUFFIXES, sample_files
from edgekit.recipe.schema import Recipe


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


def shape_from_calibration(recipe: Recipe, name: str, dims: Sequence[Optional[int]]) -> Optional[list[int]]:
    """The full shape for input `name` (dims: None = unknown) from the first calibration sample."""
    source = recipe.calibration.source
    if source is None or not Path(source).is_dir():
        return None
    first = next(iter(sample_files(Path(source))), None)
    if first is None:
        return None
    rank = len(dims)
    if first.suffix.lower() in IMAGE_SUFFIXES:
        shape = _image_shape(first, recipe, dims) if rank == 4 else None
    else:
        found = _array_shape(first, name)
        if found is None:
            return None
        shape = (1, *found[1:]) if len(found) == rank else (1, *found) if len(found) == rank - 1 else None
    if shape is None or any(d is not None and d != s for d, s in zip(dims[1:], shape[1:])):
        return None
    return [int(d) for d in shape]
