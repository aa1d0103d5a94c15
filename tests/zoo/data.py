"""Realistic data for the zoo's models, built offline from files that ship in packages.

- `write_photos(folder, photos, count, size)`: square crops of real photos (scikit-image's sample
  photos and matplotlib's grace_hopper.jpg) at random positions, scales and mirrorings.
- `write_file_features(folder, per_type)`: magika's input (the first and last 1024 bytes of a
  file, whitespace-stripped, padded with 256) for real files of this Python install, as int32
  `.npy`, with labels.csv (the type its extension says, as an index of magika's label space).
- `write_word_lines(folder, count)`: 320x48 rendered text lines for the SVTR recognizer, with the
  text of each in texts.json.
- `speech_like(seconds, seed)`: 16 kHz synthetic speech-like audio (a glottal pulse train with a
  gliding pitch through vowel formant filters, in syllables, with pauses and background noise);
  no speech recording ships in a wheel we use, so this is synthetic, not real speech.
"""

from __future__ import annotations

import json
import random
import sysconfig
from pathlib import Path

import numpy as np
from scripts.models import text_lines


# extension -> magika label, for files of this Python install (no .wav or .toml: the installed ones are
# mostly deliberately malformed test files, e.g. scipy's)
MAGIKA_TYPES = {
    ".py": "python", ".json": "json", ".png": "png", ".so": "elf", ".html": "html", ".txt": "txt",
    ".csv": "csv", ".pyc": "pythonbytecode", ".h": "c", ".js": "javascript", ".css": "css",
    ".svg": "svg", ".ttf": "ttf", ".pdf": "pdf", ".npy": "npy", ".md": "markdown",
    ".yaml": "yaml", ".xml": "xml", ".sh": "shell", ".gz": "gzip", ".jpg": "jpeg",
}  # fmt: skip


def write_photos(folder: Path, photos: list[Path], count: int, size: int, seed: int = 0) -> Path:
    """`count` size x size RGB PNG crops of `photos` (crop side 40-100% of the short side)."""
    from PIL import Image, ImageOps

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images = [Image.open(p).convert("RGB") for p in photos]
    for i in range(count):
        image = images[i % len(images)]
        side = int(min(image.size) * rng.uniform(0.4, 1.0))
        x, y = rng.randint(0, image.width - side), rng.randint(0, image.height - side)
        crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.BILINEAR)
        (ImageOps.mirror(crop) if rng.random() < 0.5 else crop).save(folder / f"photo{i:04d}.png")
    return folder


def grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def magika_features(data: bytes, beg: int = 1024, end: int = 1024, block: int = 4096, pad: int = 256):
    """magika's v2 features (magika.py `_extract_features_from_seekable`): int32 [beg + end]."""
    head, tail = data[:block].lstrip()[:beg], data[-block:].rstrip()
    tail = tail[max(0, len(tail) - end):]
    out = np.full(beg + end, pad, np.int32)
    out[: len(head)] = np.frombuffer(head, np.uint8)
    out[beg + end - len(tail):] = np.frombuffer(tail, np.uint8)
    return out


def _install_files() -> list[Path]:
    roots = {Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])}
    return sorted(p for root in roots for p in root.rglob("*") if p.suffix in MAGIKA_TYPES and p.is_file())


def write_file_features(folder: Path, labels_space: list[str], per_type: int = 12, seed: int = 0) -> Path:
    """Up to `per_type` real files per MAGIKA_TYPES extension (16 bytes or more), as .npy + labels.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[Path]] = {}
    for path in _install_files():
        by_type.setdefault(path.suffix, []).append(path)
    rng, rows = random.Random(seed), []
    for suffix, paths in sorted(by_type.items()):
        chosen = [p for p in rng.sample(paths, min(len(paths), 4 * per_type)) if p.stat().st_size >= 16]
        for n, path in enumerate(chosen[:per_type]):
            name = f"{suffix[1:]}{n:02d}.npy"
            np.save(folder / name, magika_features(path.read_bytes()))
            rows.append(f"{name},{labels_space.index(MAGIKA_TYPES[suffix])}")
    (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    return folder


def write_word_lines(folder: Path, count: int, seed: int = 2) -> Path:
    """`count` 320x48 white RGB lines of 1-3 words of Python docstrings, texts in texts.json."""
    from PIL import Image, ImageDraw, ImageFont

    folder.mkdir(parents=True, exist_ok=True)
    words = text_lines._words()
    rng, texts = random.Random(seed), {}
    for i in range(count):
        text = " ".join(rng.sample(words, rng.randint(1, 3)))
        font = ImageFont.load_default(size=rng.randint(26, 34))
        line = Image.new("RGB", (max(320, int(font.getlength(text)) + 16), 48), "white")
        ImageDraw.Draw(line).text((8, 24), text, fill="black", font=font, anchor="lm")
        name = f"line{i:04d}.png"
        (line if line.width == 320 else line.resize((320, 48), Image.BILINEAR)).save(folder / name)
        texts[name] = text
    (folder / "texts.json").write_text(json.dumps(texts, indent=0))
    return folder


def speech_like(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    """float32 mono audio in [-1, 1]: syllables of vowels (0.15-0.3 s) in phrases, pauses between."""
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    audio = rng.normal(0, 0.003, total)  # room noise
    formants = [(730, 1090), (270, 2290), (300, 870), (530, 1840), (660, 1720), (440, 1020)]  # a i u e ae o
    t = int(rng.uniform(0.3, 0.8) * rate)
    while t < total:
        for _ in range(rng.integers(3, 9)):  # one phrase
            n = int(rng.uniform(0.15, 0.3) * rate)
            if t + n >= total:
                break
            pitch = rng.uniform(90, 230) * np.linspace(1.1, 0.9, n)
            phase = np.cumsum(2 * np.pi * pitch / rate)
            voiced = sum(np.sin(k * phase) / k for k in range(1, 30))  # a sawtooth-like glottal source
            f1, f2 = formants[rng.integers(len(formants))]
            syllable = _resonate(_resonate(voiced, f1, rate), f2, rate)
            syllable *= np.sin(np.linspace(0, np.pi, n)) ** 0.5
            audio[t:t + n] += 0.3 * syllable / (np.abs(syllable).max() + 1e-9)
            t += n + int(rng.uniform(0.01, 0.06) * rate)
        t += int(rng.uniform(0.4, 1.2) * rate)  # pause
    return np.clip(audio, -1, 1).astype(np.float32)


def _resonate(x: np.ndarray, freq: float, rate: int, bandwidth: float = 90.0) -> np.ndarray:
    """A two-pole resonator (one formant)."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / rate)
    return lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * freq / rate), r * r], x)


def stream_vad(session, audio: np.ndarray, rate: int = 16000) -> tuple[np.ndarray, list[dict]]:
    """Run silero-vad over `audio` the way its OnnxWrapper does (512-sample chunks after 64 samples of
    context, the state fed back); return (speech probability per chunk, the feed of every chunk)."""
    state, context = np.zeros((2, 1, 128), np.float32), np.zeros(64, np.float32)
    probs, feeds = [], []
    for start in range(0, len(audio) - 511, 512):
        chunk = audio[start:start + 512]
        feed = {"input": np.concatenate([context, chunk])[None], "state": state, "sr": np.array(rate, np.int64)}
        prob, state = session.run(None, feed)
        probs.append(float(prob.reshape(-1)[0]))
        feeds.append(feed)
        context = chunk[-64:]
    return np.array(probs), feeds


def write_document_pages(folder: Path, count: int, photos: list[Path], seed: int = 3) -> Path:
    """`count` 608x800 white document pages: a title, paragraphs, a figure (a photo) with a caption
    and a ruled table, in random order and sizes, rendered with Pillow's font."""
    from PIL import Image, ImageDraw, ImageFont

    folder.mkdir(parents=True, exist_ok=True)
    words, rng = text_lines._words(), random.Random(seed)
    images = [Image.open(p).convert("RGB") for p in photos]
    say = lambda n: " ".join(rng.sample(words, n))  # noqa: E731
    for i in range(count):
        page = Image.new("RGB", (608, 800), "white")
        draw, y = ImageDraw.Draw(page), rng.randint(30, 60)
        draw.text((50, y), say(rng.randint(2, 5)).title(), fill="black", font=ImageFont.load_default(size=30))
        y += 60
        blocks = rng.sample(["text", "text", "figure", "table"], 4)
        for block in blocks:
            if y > 700:
                break
            if block == "text":
                for _ in range(rng.randint(3, 8)):
                    draw.text((50, y), say(rng.randint(6, 9))[:62], fill="black", font=ImageFont.load_default(size=15))
                    y += 20
            elif block == "figure":
                h = min(rng.randint(120, 220), 760 - y)
                w = rng.randint(200, 500)
                page.paste(images[rng.randrange(len(images))].resize((w, h)), ((608 - w) // 2, y))
                draw.text(((608 - w) // 2, y + h + 6), "Figure %d. %s" % (rng.randint(1, 9), say(4)), fill="black",
                          font=ImageFont.load_default(size=13))  # fmt: skip
                y += h + 30
            else:
                rows, cols = rng.randint(3, 6), rng.randint(2, 4)
                rows = min(rows, max(1, (760 - y) // 22))
                width = 500 // cols
                for r in range(rows + 1):
                    draw.line((50, y + 22 * r, 50 + width * cols, y + 22 * r), fill="black")
                for c in range(cols + 1):
                    draw.line((50 + width * c, y, 50 + width * c, y + 22 * rows), fill="black")
                for r in range(rows):
                    for c in range(cols):
                        draw.text((55 + width * c, y + 22 * r + 4), say(1)[:12], fill="black",
                                  font=ImageFont.load_default(size=13))  # fmt: skip
                y += 22 * rows + 25
            y += rng.randint(10, 30)
        page.save(folder / f"page{i:03d}.png")
    return folder
