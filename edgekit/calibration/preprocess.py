"""Image -> model input array, as the recipe's `preprocess` section says.

Images are untrusted: only PNG, JPEG and BMP decoders are used (whatever the file's suffix), the
size in the header is checked before decoding (limit 50 Mpixel; the model's HxW unless a resize is
configured), and any decoder failure becomes a CalibrationDataError naming the file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.errors import CalibrationDataError
from edgekit.recipe.schema import Preprocess
from edgekit.runtime.base import TensorSpec

MAX_IMAGE_PIXELS = 50_000_000
MAX_IMAGE_BYTES = 256 << 20
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its CRC
DECODERS = ["PNG", "JPEG", "BMP"]
CHANNELS = {"grayscale": 1, "rgb": 3, "bgr": 3}


def layout_from_shape(shape) -> tuple[str, int] | None:
    """(layout, channels) a 4-D image input's shape implies (None = unknown dim), or None if it says nothing.

    1 or 3 channels on the last axis -> nhwc, else on axis 1 -> nchw; 4 channels likewise, after.
    """
    if len(shape) != 4:
        return None
    for wanted in ((1, 3), (4,)):
        for layout, channels in (("nhwc", shape[3]), ("nchw", shape[1])):
            if channels in wanted:
                return layout, channels
    return None


def image_geometry(spec: TensorSpec, pp: Preprocess, origin) -> tuple[int, int, int]:
    """(height, width, channels) the input expects, checked against the colour setting."""
    if len(spec.shape) != 4:
        raise CalibrationDataError(
            f"images need a 4-D model input, but '{spec.name}' has shape {list(spec.shape)}", origin)
    _, a, b, c = spec.shape
    height, width, channels = (a, b, c) if pp.layout == "nhwc" else (b, c, a)
    if channels == 4:
        raise CalibrationDataError(
            f"model input '{spec.name}' has 4 channels ({pp.layout}, RGBA?): images feed only 1- or 3-channel "
            "inputs; give .npy/.npz samples instead", origin)
    if channels != CHANNELS[pp.color]:
        raise CalibrationDataError(
            f"model input '{spec.name}' has {channels} channel(s) ({pp.layout}) but preprocess.color "
            f"is {pp.color}", origin)
    if pp.resize is not None and tuple(pp.resize) != (height, width):
        raise CalibrationDataError(
            f"preprocess.resize {pp.resize[0]}x{pp.resize[1]} does not match model input '{spec.name}' "
            f"({height}x{width})", origin)
    for key, values in (("mean", pp.mean), ("std", pp.std)):
        if values is not None and len(values) not in (1, channels):
            raise CalibrationDataError(
                f"preprocess.{key} has {len(values)} values but the model input has {channels} channel(s)", origin)
    return height, width, channels


def _check_size(path: Path, size: tuple[int, int], want: tuple[int, int], resized: bool) -> None:
    """Refuse an image whose (width, height) is not the model's (before decoding, when not resized)."""
    if not resized and tuple(size) != want:
        raise CalibrationDataError(
            f"image is {size[1]}x{size[0]} but the model takes {want[1]}x{want[0]}; "
            "set preprocess.resize (or --resize)", path)
    if resized and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise CalibrationDataError(f"image has more than {MAX_IMAGE_PIXELS} pixels", path)


def _has_png_end(path: Path) -> bool:
    """Pillow decodes a PNG cut after its last IDAT; a missing IEND still means a partial copy."""
    with open(path, "rb") as handle:
        handle.seek(max(path.stat().st_size - 4096, 0))
        return PNG_END in handle.read()


def load_image(path: Path, spec: TensorSpec, pp: Preprocess) -> np.ndarray:
    """Decode, convert colour, resize (if configured), normalize and lay out one image (batch 1)."""
    return normalize_image(decode_image(path, spec, pp), spec, pp)


def decode_image(path: Path, spec: TensorSpec, pp: Preprocess) -> np.ndarray:
    """The image as float32 HxWxC pixels 0..255 (RGB or gray, resized if configured), checked."""
    from PIL import Image

    height, width, _ = image_geometry(spec, pp, path)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise CalibrationDataError(f"image file larger than {MAX_IMAGE_BYTES >> 20} MiB", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=DECODERS) as img:
                _check_size(path, img.size, (width, height), pp.resize is not None)
                if img.format == "PNG" and not _has_png_end(path):
                    raise CalibrationDataError("truncated PNG (no IEND chunk)", path)
                img = img.convert("L" if pp.color == "grayscale" else "RGB")
                if pp.resize is not None:
                    method = getattr(Image.Resampling, pp.resize_method.upper())
                    img = img.resize((pp.resize[1], pp.resize[0]), method)
                array = np.asarray(img, dtype=np.float32)
    except CalibrationDataError:
        raise
    except Image.UnidentifiedImageError:
        raise CalibrationDataError("not a PNG, JPEG or BMP image", path) from None
    except Exception as err:  # Pillow's decoders raise many types on corrupt files
        raise CalibrationDataError(f"cannot decode image ({err.__class__.__name__})", path) from None
    _check_size(path, (array.shape[1], array.shape[0]), (width, height), False)
    return array[:, :, None] if array.ndim == 2 else array


def normalize_image(array: np.ndarray, spec: TensorSpec, pp: Preprocess) -> np.ndarray:
    """decode_image's pixels -> the model input (batch 1): colour order, scale/offset, mean/std, layout."""
    if pp.color == "bgr":
        array = array[:, :, ::-1]
    array = array * pp.scale + pp.offset
    if pp.mean is not None:
        array = (array - np.asarray(pp.mean, np.float32)) / np.asarray(pp.std, np.float32)
    if pp.layout == "nchw":
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array[None], dtype=np.dtype(spec.dtype))
