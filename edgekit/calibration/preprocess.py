"""Image -> model input array, as the recipe's `preprocess` section says."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.errors import CalibrationDataError
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec

MAX_IMAGE_PIXELS = 50_000_000
CHANNELS = {"grayscale": 1, "rgb": 3, "bgr": 3}


def image_geometry(spec: TensorSpec, pp: Preprocess, origin) -> tuple[int, int, int]:
    """(height, width, channels) the input expects, checked against the colour setting."""
    if len(spec.shape) != 4:
        raise CalibrationDataError(
            f"images need a 4-D model input, but '{spec.name}' has shape {list(spec.shape)}", origin)
    _, a, b, c = spec.shape
    height, width, channels = (a, b, c) if pp.layout == "nhwc" else (b, c, a)
    if channels != CHANNELS[pp.color]:
        raise CalibrationDataError(
            f"model input '{spec.name}' has {channels} channel(s) ({pp.layout}) but preprocess.color "
            f"is {pp.color}", origin)
    return height, width, channels


def load_image(path: Path, spec: TensorSpec, pp: Preprocess) -> np.ndarray:
    """Decode, convert colour, resize (if configured), normalize and lay out one image (batch 1)."""
    from PIL import Image

    height, width, _ = image_geometry(spec, pp, path)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img = img.convert("L" if pp.color == "grayscale" else "RGB")
                if pp.resize is not None:
                    method = getattr(Image.Resampling, pp.resize_method.upper())
                    img = img.resize((pp.resize[1], pp.resize[0]), method)
                array = np.asarray(img, dtype=np.float32)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise CalibrationDataError(f"cannot decode image ({err.__class__.__name__})", path) from None
    if array.shape[:2] != (height, width):
        hint = "" if pp.resize is not None else "; set preprocess.resize (or --resize)"
        raise CalibrationDataError(
            f"image is {array.shape[0]}x{array.shape[1]} but the model takes {height}x{width}{hint}", path)
    if array.ndim == 2:
        array = array[:, :, None]
    if pp.color == "bgr":
        array = array[:, :, ::-1]
    array = array * pp.scale + pp.offset
    if pp.mean is not None:
        array = (array - np.asarray(pp.mean, np.float32)) / np.asarray(pp.std, np.float32)
    if pp.layout == "nchw":
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array[None], dtype=np.dtype(spec.dtype))
