"""A malformed-input corpus, generated at test time (nothing binary is committed).

`generate(root, bases)` writes 250+ bad inputs under `root` (truncated, empty, bit-flipped,
wrong magic, absurd shapes, huge declared dims, zip/decompression bombs, deep nesting, YAML
alias bombs, non-UTF-8, symlinks out, FIFOs) for every input edgekit reads: `.keras`,
SavedModel dirs, `.onnx`, `.tflite` (an output format: refused as input), `.npy`, `.npz`,
images, labels.csv and recipes. Each becomes a `Case`: the `edgekit compress` arguments and the
exit codes it may answer. Seeded: the same corpus every run.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FAST = ["--runs", "1", "--warmup", "0", "--quiet", "--no-cache"]
MODEL, DATA, RECIPE = frozenset({3, 6}), frozenset({4}), frozenset({5})


@dataclass(frozen=True)
class Bases:
    """Good inputs the corpus mutates: an 8x8x1 .keras, its SavedModel, a .tflite, good images."""

    keras: Path
    savedmodel: Path
    tflite: Path
    images: Path


@dataclass
class Case:
    """One corpus entry: `edgekit compress ARGV`; `codes` it may exit with (0 too if may_succeed)."""

    id: str
    category: str
    argv: list[str]
    codes: frozenset
    may_succeed: bool = False  # e.g. a bit flip inside a weight: the file may still be valid
    heavy: bool = False  # gets past the cheap checks: needs the model loaded (TensorFlow)
    out: str = ""
    extra: dict = field(default_factory=dict)


class Corpus:
    """Collects cases while writing their files under `root`."""

    def __init__(self, root: Path, bases: Bases):
        self.root, self.bases = root, bases
        self.rng = random.Random(20240607)
        self.cases: list[Case] = []

    def path(self, category: str, name: str) -> Path:
        folder = self.root / category
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def add(self, category: str, name: str, args: list, codes=MODEL, *, may_succeed=False, heavy=False,
            calibration: Path | None = None, model: Path | None = None):
        out = self.root / "out" / f"{category}-{name}"
        argv = [str(model or self.bases.keras), *map(str, args)]
        if calibration is not None:
            argv += ["-c", str(calibration), "--color", "grayscale"]
        argv += ["--out", str(out), *FAST]
        self.cases.append(Case(f"{category}/{name}", category, argv, frozenset(codes), may_succeed, heavy,
                               str(out)))

    def model_file(self, category: str, name: str, data: bytes, *, may_succeed=False, extra_args=()):
        path = self.path(category, name)
        path.write_bytes(data)
        self.add(category, name, list(extra_args), may_succeed=may_succeed, heavy=_passes_checks(path),
                 model=path)

    def data_dir(self, category: str, name: str, files: dict[str, bytes], *, may_succeed=False,
                 with_images: int = 0) -> Path:
        folder = self.path(category, name)
        folder.mkdir()
        for i, image in enumerate(sorted(self.bases.images.glob("*.png"))[:with_images]):
            (folder / f"good_{i}.png").write_bytes(image.read_bytes())
        for fname, data in files.items():
            (folder / fname).write_bytes(data)
        self.add(category, name, [], DATA, may_succeed=may_succeed, heavy=_passes_precheck(folder),
                 calibration=folder)
        return folder

    # mutations -------------------------------------------------------------------------------
    def truncations(self, data: bytes) -> list[tuple[str, bytes]]:
        cuts = sorted({1, 4, 16, 64, len(data) // 4, len(data) // 2, 3 * len(data) // 4, len(data) - 22,
                       len(data) - 1})
        return [(f"truncated-{c}", data[:c]) for c in cuts if 0 < c < len(data)]

    def bitflips(self, data: bytes, count: int) -> list[tuple[str, bytes]]:
        out = []
        for i in range(count):
            flipped = bytearray(data)
            for _ in range(1 + i % 3):
                pos = self.rng.randrange(len(data))
                flipped[pos] ^= 1 << self.rng.randrange(8)
            out.append((f"bitflip-{i}", bytes(flipped)))
        return out

    def noise(self, count: int, size: int = 512) -> list[tuple[str, bytes]]:
        return [(f"random-{i}", self.rng.randbytes(size)) for i in range(count)]


def _passes_precheck(folder: Path) -> bool:
    """False when the model-free calibration precheck refuses the folder (no TensorFlow needed)."""
    from edgekit.calibration.sources import precheck_calibration
    from edgekit.errors import EdgekitError

    try:
        precheck_calibration(folder)
    except EdgekitError:
        return False
    return True


def _passes_checks(path: Path) -> bool:
    from edgekit.errors import EdgekitError
    from edgekit.model.checks import check_model_path

    try:
        check_model_path(path)
    except EdgekitError:
        return False
    return True


# .keras ----------------------------------------------------------------------------------------
def _zip(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def keras_cases(c: Corpus) -> None:
    good = c.bases.keras.read_bytes()
    with zipfile.ZipFile(c.bases.keras) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for name, data in [("empty", b""), ("wrong-magic", b"XX" + good[2:]), ("text", b"model weights\n"),
                       ("empty-zip", _zip({})), *c.truncations(good), *c.bitflips(good, 12), *c.noise(3)]:
        c.model_file("keras", f"{name}.keras", data)

    def variant(name: str, may_succeed=False, **changes) -> None:
        c.model_file("keras", f"{name}.keras", _zip({**members, **changes}), may_succeed=may_succeed)

    c.model_file("keras", "no-config.keras", _zip({k: v for k, v in members.items() if k != "config.json"}))
    variant("config-not-json", **{"config.json": b"{not json"})
    variant("config-list", **{"config.json": b"[1, 2, 3]"})
    variant("config-deep", **{"config.json": b"[" * 100_000 + b"]" * 100_000})
    variant("config-nonutf8", **{"config.json": b"\xff\xfe{\x00}"})
    lam = json.loads(json.dumps(config))
    lam["config"]["layers"][1]["class_name"] = "Lambda"
    variant("lambda", **{"config.json": json.dumps(lam).encode()})
    for module in ("evil_module", "keras_evil.layers", "os"):
        custom = json.loads(json.dumps(config))
        custom["config"]["layers"][1]["module"] = module
        variant(f"custom-{module}", **{"config.json": json.dumps(custom).encode()})
    func = json.loads(json.dumps(config))
    func["config"]["layers"][-1]["config"]["activation"] = {
        "module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}
    variant("function-eval", **{"config.json": json.dumps(func).encode()})
    unknown = json.loads(json.dumps(config))
    unknown["config"]["layers"][1]["class_name"] = "NoSuchLayer"
    variant("unknown-layer", **{"config.json": json.dumps(unknown).encode()})
    variant("escaping-member", **{"../../evil.txt": b"x"})
    variant("weights-not-hdf5", **{"model.weights.h5": b"not an hdf5 file" * 10})
    h5 = members["model.weights.h5"]
    variant("weights-truncated", **{"model.weights.h5": h5[: len(h5) // 2]})
    for name, data in c.bitflips(h5[8:], 4):
        variant(f"weights-{name}", True, **{"model.weights.h5": h5[:8] + data})  # may hit only weights
    bomb = _zip({**members, "padding.bin": bytes(8 << 20)}, zipfile.ZIP_DEFLATED)
    c.model_file("keras", "zip-bomb.keras", bomb)
    c.model_file("keras", "declared-huge.keras", _forge_declared_size(_zip(members), 0xFFFFFFF0))


def _forge_declared_size(data: bytes, size: int) -> bytes:
    """Patch every central-directory entry to declare `size` uncompressed bytes."""
    out = bytearray(data)
    start = 0
    while (pos := out.find(b"PK\x01\x02", start)) >= 0:
        out[pos + 24: pos + 28] = struct.pack("<I", size)
        start = pos + 4
    return bytes(out)


# SavedModel, ONNX, TFLite and other model paths ------------------------------------------------
def savedmodel_cases(c: Corpus) -> None:
    pb = (c.bases.savedmodel / "saved_model.pb").read_bytes()

    def saved(name: str, pb_bytes: bytes | None, *, pbtxt: bytes | None = None, may_succeed=False,
              drop_variables=False, mutate=None) -> None:
        folder = c.path("savedmodel", name)
        folder.mkdir()
        variables = c.bases.savedmodel / "variables"
        if not drop_variables:
            (folder / "variables").mkdir()
            for item in variables.iterdir():
                (folder / "variables" / item.name).write_bytes(item.read_bytes())
        if pb_bytes is not None:
            (folder / "saved_model.pb").write_bytes(pb_bytes)
        if pbtxt is not None:
            (folder / "saved_model.pbtxt").write_bytes(pbtxt)
        if mutate:
            mutate(folder)
        c.add("savedmodel", name, [], may_succeed=may_succeed, heavy=_passes_checks(folder), model=folder)

    saved("no-pb", None)
    saved("empty-pb", b"")
    for name, data in [*c.truncations(pb), *c.noise(2)]:
        saved(f"pb-{name}", data)
    for name, data in c.bitflips(pb, 8):
        saved(f"pb-{name}", data, may_succeed=True)
    saved("pbtxt-nonutf8", None, pbtxt=b"\xff\xfe\xfa meta_graphs {")
    saved("pbtxt-garbage", None, pbtxt=b"meta_graphs { this is not a proto }\n")
    saved("pb-is-dir", None, mutate=lambda f: (f / "saved_model.pb").mkdir())
    saved("no-variables", pb, drop_variables=True)
    index = (c.bases.savedmodel / "variables" / "variables.index").read_bytes()
    saved("index-truncated", pb, mutate=lambda f: (f / "variables" / "variables.index").write_bytes(index[:40]))
    saved("index-random", pb, mutate=lambda f: (f / "variables" / "variables.index").write_bytes(
        c.rng.randbytes(len(index))))
    saved("symlink-out", pb, mutate=lambda f: (f / "assets").symlink_to(c.root))
    folder = c.path("savedmodel", "plain-dir")
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"\0" * 64)
    c.add("savedmodel", "plain-dir", [], model=folder)


def onnx_model_bytes() -> bytes:
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 3], np.linspace(-1, 1, 192).tolist())
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [weight, helper.make_tensor("shape", TensorProto.INT64, [2], [1, 64])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def onnx_cases(c: Corpus) -> None:
    good = onnx_model_bytes()
    for name, data in [("empty", b""), ("text", b"ir_version: 8\n"), ("json", b'{"graph": {}}'),
                       ("no-graph", b"\x08\x08"), ("field-99", good + b"\x98\x06\x01"),
                       ("huge-length", b"\x08\x08\x3a\xff\xff\xff\xff\x07"), *c.truncations(good), *c.noise(3)]:
        c.model_file("onnx", f"{name}.onnx", data)
    for name, data in c.bitflips(good, 8):
        c.model_file("onnx", f"{name}.onnx", data, may_succeed=True)


def other_model_cases(c: Corpus) -> None:
    tfl = c.bases.tflite.read_bytes()
    for name, data in [("valid", tfl), ("truncated", tfl[:100]), ("random", c.rng.randbytes(300))]:
        c.model_file("tflite", f"{name}.tflite", data)
    c.model_file("tflite", "empty.tflite", b"")
    c.model_file("other", "legacy.h5", c.rng.randbytes(256))
    c.model_file("other", "legacy-trusted.h5", c.rng.randbytes(256), extra_args=["--trust-model"])
    for name in ("model.pt", "model.pb", "model", "model.zip"):
        c.model_file("other", name, c.rng.randbytes(128))
    fifo = c.path("other", "fifo.keras")
    os.mkfifo(fifo)
    c.add("other", "fifo.keras", [], model=fifo)
    dev = c.path("other", "devzero.keras")
    dev.symlink_to("/dev/zero")
    c.add("other", "devzero.keras", [], model=dev)
    folder = c.path("other", "dir.keras")
    folder.mkdir()
    c.add("other", "dir.keras", [], model=folder)
    c.add("other", "missing.keras", [], model=c.path("other", "missing.keras"))


# calibration data ----------------------------------------------------------------------------
def npy_bytes(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy file with a hand-written header (so it can lie)."""
    raw = header.encode("latin1")
    length_format = "<H" if version[0] == 1 else "<I"
    prefix = 6 + 2 + struct.calcsize(length_format)
    pad = (-(prefix + len(raw) + 1)) % 64
    raw = raw + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(raw)) + raw + data


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _header(descr: str, shape) -> str:
    return f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"


def npy_cases(c: Corpus) -> None:
    good = _npy(np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32))
    crafted = {
        "pickled": _npy(np.array([{"a": 1}, None], dtype=object)),
        "object-header": npy_bytes(_header("|O", (2,)), b"\x80\x04N."),
        "huge-dims": npy_bytes(_header("<f4", (10**12, 8, 8, 1)), bytes(256)),
        "overflow-dims": npy_bytes(_header("<f4", (2**40, 2**40, 2**40)), bytes(64)),
        "negative-dims": npy_bytes(_header("<f4", (-1, 8, 8, 1)), bytes(256)),
        "many-dims": npy_bytes(_header("<f4", (1,) * 40), bytes(4)),
        "declared-more": npy_bytes(_header("<f4", (100, 8, 8, 1)), bytes(256)),
        "declared-less": npy_bytes(_header("<f4", (1, 8, 8, 1)), bytes(4096)),
        "unicode": _npy(np.array(["a", "b"])),
        "structured": _npy(np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")])),
        "complex": _npy(np.zeros((8, 8, 1), np.complex64)),
        "bool": _npy(np.zeros((8, 8, 1), bool)),
        "int32": _npy(np.zeros((8, 8, 1), np.int32)),
        "nan": _npy(np.full((8, 8, 1), np.nan, np.float32)),
        "inf": _npy(np.full((2, 8, 8, 1), np.inf, np.float32)),
        "nan-in-second-sample": _npy(np.stack([np.zeros((8, 8, 1)), np.full((8, 8, 1), np.nan)]).astype(np.float32)),
        "float64-overflow": _npy(np.full((8, 8, 1), 1e300)),
        "zero-samples": _npy(np.zeros((0, 8, 8, 1), np.float32)),
        "wrong-shape": _npy(np.zeros((3, 3, 1), np.float32)),
        "wrong-channels": _npy(np.zeros((8, 8, 3), np.float32)),
        "scalar": _npy(np.float32(1.0)),
        "header-not-dict": npy_bytes("[1, 2, 3]", bytes(16)),
        "header-syntax": npy_bytes("{'descr': '<f4', 'shape': (8,8", bytes(16)),
        "header-extra-key": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 8, 1), 'x': 1}",
                                      bytes(256)),
        "header-huge": npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 8, 1), }" + " " * 20000,
                                 bytes(256), (2, 0)),
        "header-call": npy_bytes("{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': ()}"),
        "version-3": npy_bytes(_header("<f4", (8, 8, 1)), bytes(256), (3, 0)),
        "version-9": npy_bytes(_header("<f4", (8, 8, 1)), bytes(256), (9, 9)),
        "wrong-magic": b"\x93NUMPX" + good[6:],
        "empty": b"",
    }
    for name, data in [*crafted.items(), *c.truncations(good), *c.noise(3)]:
        c.data_dir("npy", name, {"sample.npy": data})
    for name, data in c.bitflips(good, 6):
        c.data_dir("npy", name, {"sample.npy": data}, may_succeed=True)


def npz_cases(c: Corpus) -> None:
    zeros = np.zeros((2, 8, 8, 1), np.float32)
    good = _npy(zeros)
    lying = npy_bytes(_header("<f4", (2**31, 8, 8, 1)), bytes(512))
    crafted = {
        "pickled": _zip({"image.npy": _npy(np.array([None, {"x": 1}], dtype=object))}),
        "missing-key": _zip({"pixels.npy": good}),
        "huge-declared": _zip({"image.npy": lying}, zipfile.ZIP_DEFLATED),
        "declared-size-forged": _forge_declared_size(_zip({"image.npy": good}), 0xFFFFFFF0),
        "labels-float": _zip({"image.npy": good, "labels.npy": _npy(np.array([0.5, 1.5]))}),
        "labels-count": _zip({"image.npy": good, "labels.npy": _npy(np.array([1, 2, 3]))}),
        "labels-pickled": _zip({"image.npy": good, "labels.npy": _npy(np.array([None, 1], dtype=object))}),
        "member-garbage": _zip({"image.npy": b"garbage" * 20}),
        "nan": _zip({"image.npy": _npy(np.full((2, 8, 8, 1), np.nan, np.float32))}),
        "too-many-members": _zip({f"m{i}.npy": b"" for i in range(1100)}),
        "not-zip": b"not a zip archive at all",
        "empty-zip": _zip({}),
        "empty": b"",
        "truncated": _zip({"image.npy": good})[:150],
    }
    for name, data in crafted.items():
        c.data_dir("npz", name, {"sample.npz": data})
    for name, data in c.bitflips(_zip({"image.npy": good}), 4):
        c.data_dir("npz", name, {"sample.npz": data}, may_succeed=True)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, extra: bytes = b"", depth: int = 8, color: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    idat = zlib.compress(b"\0" * (min(width, 64) + 1) * min(height, 64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _image(array: np.ndarray, mode: str, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def image_cases(c: Corpus) -> None:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)
    png, jpeg = _image(pixels, "L", "PNG"), _image(pixels, "L", "JPEG")
    bmp_bomb = bytearray(_image(pixels, "L", "BMP"))
    bmp_bomb[18:26] = struct.pack("<ii", 100_000, 100_000)
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(cmyk, format="JPEG")
    crafted = {
        "bomb.png": _png(30_000, 30_000),
        "bomb-bmp.bmp": bytes(bmp_bomb),
        "zero-size.png": _png(0, 0),
        "text-bomb.png": _png(8, 8, _png_chunk(b"zTXt", b"k\0\0" + zlib.compress(bytes(64 << 20)))),
        "bad-depth.png": _png(8, 8, depth=7),
        "wrong-size.png": _image(np.zeros((9, 9), np.uint8), "L", "PNG"),
        "gif-named-png.png": _image(pixels, "L", "GIF"),
        "tiff-named-png.png": _image(pixels, "L", "TIFF"),
        "eps-named-jpg.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n",
        "svg-named-png.png": b"<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'/>",
        "text.png": b"hello",
        "empty.png": b"",
        "bmp-truncated.bmp": _image(pixels, "L", "BMP")[:40],
    }
    mode_variants = {
        "rgba.png": _image(np.zeros((8, 8, 4), np.uint8), "RGBA", "PNG"),
        "la.png": _image(np.zeros((8, 8, 2), np.uint8), "LA", "PNG"),
        "palette.png": _palette_png(pixels),
        "16bit.png": _image(pixels.astype(np.uint16) * 257, None, "PNG"),
        "1bit.png": _image(pixels > 128, "1", "PNG"),
        "cmyk.jpg": cmyk.getvalue(),
    }
    for name, data in crafted.items():
        c.data_dir("image", name.replace(".", "-"), {name: data})
    for name, data in mode_variants.items():
        c.data_dir("image", f"mode-{name.replace('.', '-')}", {name: data}, may_succeed=True)
    for fmt, good in (("png", png), ("jpg", jpeg)):
        for name, data in [*c.truncations(good), *c.noise(2, 300)]:
            c.data_dir("image", f"{fmt}-{name}", {f"img.{fmt}": data})
        for name, data in c.bitflips(good, 5):
            c.data_dir("image", f"{fmt}-{name}", {f"img.{fmt}": data}, may_succeed=True)


def _palette_png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels, mode="L").convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def labels_cases(c: Corpus) -> None:
    good = "filename,label\n" + "".join(f"good_{i}.png,{i % 3}\n" for i in range(3))
    crafted = {
        "nonutf8": b"filename,label\ngood_0.png,\xff\xfe\n",
        "nul": b"filename,label\ngood_0.png,1\x00\n",
        "huge-field": b"filename,label\n" + b"a" * 200_000 + b",1\n",
        "not-int": b"filename,label\ngood_0.png,1\ngood_1.png,cat\n",
        "negative": b"filename,label\ngood_0.png,-3\n",
        "one-column": b"filename,label\ngood_0.png\n",
        "huge-int": b"filename,label\ngood_0.png,1\ngood_1.png," + b"9" * 5000 + b"\n",
        "oversized": b"x,1\n" * (5 << 20),
    }
    for name, data in crafted.items():
        c.data_dir("labels", name, {"labels.csv": data}, with_images=3)
    for name, data in c.bitflips(good.encode(), 3):
        c.data_dir("labels", name, {"labels.csv": data}, with_images=3, may_succeed=True)


def link_cases(c: Corpus) -> None:
    """Calibration dirs whose only samples lie outside them (or are not files): nothing to read."""
    secret = c.path("links", "outside-secret.npy")
    secret.write_bytes(_npy(np.zeros((8, 8, 1), np.float32)))
    setups = {
        "file-out": lambda f: (f / "a.npy").symlink_to(secret),
        "passwd-out": lambda f: (f / "passwd.png").symlink_to("/etc/passwd"),
        "dir-to-root": lambda f: (f / "root").symlink_to("/"),
        "loop": lambda f: (f / "loop").symlink_to(f),
        "dangling": lambda f: (f / "gone.npy").symlink_to(f / "nowhere.npy"),
        "fifo": lambda f: os.mkfifo(f / "pipe.npy"),
        "dir-named-npy": lambda f: (f / "d.npy").mkdir(),
    }
    for name, setup in setups.items():
        folder = c.data_dir("links", name, {})
        setup(folder)


# recipes -------------------------------------------------------------------------------------
def recipe_cases(c: Corpus) -> None:
    good = (Path(__file__).resolve().parents[2] / "recipes" / "generic_int8.yaml").read_bytes()
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    texts = {
        "empty": b"", "whitespace": b"  \n\n", "comments": b"# nothing\n", "null": b"~\n",
        "list": b"- a\n- b\n", "scalar": b"42\n", "string": b"just text\n",
        "nonutf8": b"name: \xff\xfe\n", "utf16": "name: x\n".encode("utf-16"),
        "nul": b"name: a\x00b\n", "tabs": b"calibration:\n\tnum_samples: 3\n",
        "deep-map": b"a: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n",
        "deep-list": b"[" * 20000 + b"]" * 20000,
        "deep-25": ("x:\n" + "".join("  " * i + "k:\n" for i in range(1, 25)) + "  " * 25 + "1\n").encode(),
        "billion-laughs": laughs.encode(),
        "wide-alias": ("a: &a " + json.dumps(list(range(5000))) + "\nb: [" + ", ".join(["*a"] * 50) + "]\n").encode(),
        "unknown-top": b"precisons: [int8]\n", "unknown-nested": b"preprocess:\n  colour: rgb\n",
        "wrong-type-int": b"calibration:\n  num_samples: lots\n", "wrong-type-map": b"preprocess: [1, 2]\n",
        "wrong-type-list": b"precisions: {int8: true}\n", "wrong-enum": b"precisions: [int4]\n",
        "negative": b"validation:\n  runs: -5\n", "zero-dim": b"input_shapes:\n  image: [1, 0, 8, 1]\n",
        "python-tag": b"name: !!python/object/apply:os.system ['id']\n",
        "python-name": b"name: !!python/name:os.system\n", "custom-tag": b"name: !secret x\n",
        "huge-int": b"calibration:\n  num_samples: " + b"9" * 5000 + b"\n",
        "nan": b"preprocess:\n  scale: .nan\n", "inf": b"gates:\n  max_latency_ms: .inf\n",
        "bad-date": b"name: 2024-13-45\n", "date": b"name: 2024-01-01\n",
        "int-key": b"1: 2\n", "null-key": b"~: 2\n", "complex-key": b"? [a, b]\n: 1\n",
        "control-key": b"\"a\\nb\\u0007\": 1\n", "long-key": b"k" * 5000 + b": 1\n",
        "two-documents": b"name: a\n---\nname: b\n", "merge-bad": b"<<: 5\n",
        "mean-no-std": b"preprocess:\n  mean: [1, 2, 3]\n", "std-zero": b"preprocess:\n  mean: [1]\n  std: [0]\n",
        "oversized": b"# pad\n" * 200_000,
    }
    for name, data in texts.items():
        path = c.path("recipe", f"{name}.yaml")
        path.write_bytes(data)
        c.add("recipe", name, ["--recipe", path], RECIPE, heavy=_recipe_valid(path),
              calibration=c.bases.images)
    for name, data in [*c.truncations(good), *c.bitflips(good, 6)]:
        path = c.path("recipe", f"{name}.yaml")
        path.write_bytes(data)
        c.add("recipe", name, ["--recipe", path], RECIPE, may_succeed=True, heavy=_recipe_valid(path),
              calibration=c.bases.images)


def _recipe_valid(path: Path) -> bool:
    from edgekit.errors import RecipeError
    from edgekit.recipe.loader import load_recipe

    try:
        load_recipe(str(path))
    except RecipeError:
        return False
    return True


def generate(root: Path, bases: Bases) -> list[Case]:
    """Write the corpus under `root`; return its cases (ids are unique)."""
    corpus = Corpus(root, bases)
    for make in (keras_cases, savedmodel_cases, onnx_cases, other_model_cases, npy_cases, npz_cases,
                 image_cases, labels_cases, link_cases, recipe_cases):
        make(corpus)
    ids = [case.id for case in corpus.cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return corpus.cases
