"""Text-line images for PaddleOCR's pretrained ONNX models (what the rapidocr-onnxruntime wheel
ships): rendered here with Pillow's bundled font from words of Python's own docstrings, so nothing
is downloaded. The text-direction classifier's task is telling upright lines from lines turned 180
degrees; its float model gets these right, so accuracy on them means something.

- `paddle_models()`: the wheel's models folder (found without importing the package, which
  needs OpenCV), or None when it is not installed (scripts/setup.sh installs it, --no-deps).
- `write_text_lines(folder, count, seed)`: 192x48 RGB PNGs, every other one turned, + labels.csv.
- `write_text_pages(folder, count, seed)`: 256x256 pages of four lines each, for the detector.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
from pathlib import Path
from typing import Optional

CLASSIFIER = "ch_ppocr_mobile_v2.0_cls_infer.onnx"  # MobileNetV3, paddle2onnx, opset 11
DETECTOR = "ch_PP-OCRv4_det_infer.onnx"  # PP-OCRv4 DBNet, opset 12


def paddle_models() -> Optional[Path]:
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def _words() -> list[str]:
    text = " ".join(module.__doc__ or "" for module in (json, csv, argparse))
    return [word for word in text.split() if word.isalpha()]


def text_line(text: str, size: int, rotate: bool):
    """A 192x48 white RGB image with `text` in black, turned 180 degrees when `rotate`."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    width = int(font.getlength(text)) + 16
    line = Image.new("RGB", (width, 48), "white")
    ImageDraw.Draw(line).text((8, 24), text, fill="black", font=font, anchor="lm")
    if width > 192:
        line = line.resize((192, 48))
    canvas = Image.new("RGB", (192, 48), "white")
    canvas.paste(line, (0, 0))
    return canvas.rotate(180) if rotate else canvas


def write_text_lines(folder: Path, count: int = 300, seed: int = 0) -> Path:
    """`count` text lines, every other one upside down, with labels.csv (0 upright, 1 turned)."""
    folder.mkdir(parents=True, exist_ok=True)
    words, rng = _words(), random.Random(seed)
    rows = []
    for i in range(count):
        text = " ".join(rng.sample(words, rng.randint(1, 4)))
        text_line(text, rng.randint(20, 32), rotate=bool(i % 2)).save(folder / f"line{i:04d}.png")
        rows.append(f"line{i:04d}.png,{i % 2}")
    (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    return folder


def write_text_pages(folder: Path, count: int = 40, seed: int = 1) -> Path:
    """`count` 256x256 white pages with four upright text lines each."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    words, rng = _words(), random.Random(seed)
    for i in range(count):
        page = Image.new("RGB", (256, 256), "white")
        for row in range(4):
            page.paste(text_line(" ".join(rng.sample(words, 2)), 24, False), (rng.randint(0, 60), 10 + 60 * row))
        page.save(folder / f"page{i:03d}.png")
    return folder
