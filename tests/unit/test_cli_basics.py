"""The CLI shell: --help stays light, exit codes come from one place, recipes list and validate."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("tensorflow", "onnxruntime", "tf2onnx", "keras", "onnx")


@pytest.mark.parametrize("args", [["--help"], ["compress", "--help"], ["recipes"], ["bench", "--help"]])
def test_help_paths_import_no_heavy_framework(args):
    code = (
        "import sys\nfrom edgekit.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\nassert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_shipped_recipe_validates():
    from edgekit.recipe.loader import load_recipe, preset_names

    names = preset_names()
    assert {"mobile_int8", "generic_int8", "fp16", "digits_int8"} <= set(names)
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        recipe, origin = load_recipe(str(path))
        assert recipe.precisions[0] == "fp32" and origin == str(path)


def test_recipes_command_lists_and_shows(edgekit_cli):
    listing = edgekit_cli("recipes")
    assert listing.code == 0 and "mobile_int8" in listing.out
    shown = edgekit_cli("recipes", "show", "mobile_int8")
    assert shown.code == 0 and "resize:" in shown.out and "max_validation_samples" in shown.out
    missing = edgekit_cli("recipes", "show", "nope")
    assert missing.code == 5 and "no such recipe" in missing.err


@pytest.mark.parametrize("text,needle", [
    ("calibration:\n  num_sample: 3\n", "unknown key 'calibration.num_sample'"),
    ("gates:\n  min_agreement: lots\n", "gates.min_agreement"),
    ("precisions: [int4]\n", "precisions.0"),
    ("- a\n- b\n", "must be a mapping"),
    ("preprocess: {mean: [1, 2, 3]}\n", "mean and std must be given together"),
])
def test_recipe_errors_name_file_and_key(tmp_path, edgekit_cli, text, needle):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    result = edgekit_cli("compress", tmp_path / "missing.keras", "--recipe", recipe)
    assert result.code == 5
    assert result.err.startswith(f"edgekit: error: {recipe}: ") and needle in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_usage_errors_exit_2(edgekit_cli, tmp_path):
    assert edgekit_cli("compress").code == 2
    assert edgekit_cli("nonsense").code == 2
    bad = edgekit_cli("compress", tmp_path, "--input-shape", "x:1xAx3")
    assert bad.code == 2 and "--input-shape" in bad.err


def test_precision_flags_add_to_recipe(tmp_path):
    from edgekit.cli.compress import build_overrides
    from edgekit.recipe.loader import load_recipe

    opts = {k: None for k in ("target", "input_shape", "scale", "offset", "color", "layout", "mean", "std",
                              "resize", "calibration", "labels", "num_calibration", "calibration_method",
                              "io_dtype", "threads", "runs", "warmup", "max_accuracy_drop", "min_agreement",
                              "max_size", "max_latency_ms", "min_sqnr", "no_fallback", "max_float_layers")}
    opts.update(int8=False, fp16=True, dynamic=False, target=(), input_shape=())
    recipe, _ = load_recipe("generic_int8", build_overrides(opts))
    assert recipe.precisions == ["fp32", "fp16", "int8"]


def test_wheel_carries_the_presets(tmp_path):
    """A non-editable install finds the presets: the wheel holds recipes/*.yaml as edgekit/presets."""
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src"  # a copy: building in place would write build/ into the checkout
    shutil.copytree(ROOT / "edgekit", source / "edgekit", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "recipes", source / "recipes")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("edgekit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()
                   if name.startswith("edgekit/presets/")}
    assert shipped == {p.name: p.read_bytes() for p in (ROOT / "recipes").glob("*.yaml")}
