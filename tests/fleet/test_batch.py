"""`edgekit batch FLEET.yaml` on the local pool: the fleet report, the cache, a failed entry,
a bad fleet file, and Ctrl-C at random points (slow)."""

from __future__ import annotations

import json
import os
import random
import sys

import pytest

from scripts.models.fleet import write_fleet
from tests.signals import interrupt_at, random_point, steps


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    write_fleet(folder, 2, devices=["local"])
    return folder


def test_batch_writes_the_fleet_report_and_reuses_the_cache(fleet_dir, tmp_path, edgekit_cli, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    fleet = fleet_dir / "fleet.yaml"
    first = edgekit_cli("batch", fleet, "--out", tmp_path / "out", "--jobs", "2")
    assert first.code == 0, first.err
    document = json.loads((tmp_path / "out" / "fleet.json").read_text())
    assert [m["name"] for m in document["models"]] == ["m0", "m1"]
    for model in document["models"]:
        assert model["status"] == "ok" and not model["cached"]
        assert {a["precision"] for a in model["artifacts"]} == {"fp32", "int8"}
        assert [r["status"] for r in model["bench"]["local"]["rows"]] == ["ok", "ok"]
        assert (tmp_path / "out" / "models" / model["name"] / "bench-local" / "bench.json").is_file()
    md = (tmp_path / "out" / "fleet.md").read_text()
    assert "| m0 | model_int8.tflite |" in md and "local p50 ms" in md
    assert '<img alt="accuracy drop vs latency per model"' in (tmp_path / "out" / "fleet.html").read_text()
    again = edgekit_cli("batch", fleet, "--out", tmp_path / "out", "--json")
    assert again.code == 0, again.err
    assert [m["cached"] for m in json.loads(again.out)["models"]] == [True, True]
    assert "| m0 (from the cache) |" in (tmp_path / "out" / "fleet.md").read_text()


def test_a_broken_model_is_refused_before_any_task_runs(fleet_dir, tmp_path, edgekit_cli):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    fleet = write_fleet(tmp_path, 0, models=[fleet_dir / "models" / "m0.keras", broken])
    result = edgekit_cli("batch", fleet, "--out", tmp_path / "out", "--jobs", "2")
    assert result.code == 3, result.err  # before any task: the model is checked up front
    assert "broken.keras" in result.err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("models: []\n", "models: List should have at least 1 item"),
    ("models: [{path: a.keras, recipy: x}]\n", "unknown key 'models.0.recipy'"),
    ("models: [{path: a.keras}, {path: b/a.keras}]\n", "two models are named 'a'"),
])
def test_a_bad_fleet_file_is_one_line_exit_5(tmp_path, edgekit_cli, text, message):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text)
    result = edgekit_cli("batch", fleet)
    assert result.code == 5
    assert f"{fleet}: " in result.err and message in result.err


def test_devices_ray_resources_prints_the_json_for_ray_start(tmp_path, edgekit_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "devices.yaml").write_text("version: 1\ndevices:\n  pixel7: {kind: adb, address: 1A2B}\n")
    result = edgekit_cli("devices", "ray-resources", "pixel7", "local")
    assert result.code == 0 and json.loads(result.out) == {"device:pixel7": 1, "device:local": 1}
    unknown = edgekit_cli("devices", "ray-resources", "orin")
    assert unknown.code == 2 and "unknown device 'orin'" in unknown.err


@pytest.mark.slow
def test_sigint_at_20_random_points_of_a_batch(fleet_dir, tmp_path):
    """20 SIGINTs (to the process group, as a terminal sends it) at a random progress line of a
    batch plus a random part of the time to the next one: exit 130 within 10 s with the previous
    fleet output, or 0 with the new one when it came after the commit."""
    out = tmp_path / "out"
    env = dict(os.environ, EDGEKIT_CACHE_DIR=str(tmp_path / "cache"))
    argv = [sys.executable, "-m", "edgekit", "batch", str(fleet_dir / "fleet.yaml"), "--out", str(out),
            "--jobs", "2", "--no-cache"]
    points = steps(argv, env)
    before = (out / "fleet.json").read_bytes()
    rng = random.Random(14)
    codes = []
    for _ in range(20):
        code, took, err = interrupt_at(argv, env, *random_point(rng, points))
        codes.append(code)
        assert took < 10, err
        assert code in (0, 130), err
        if code == 130:
            assert (out / "fleet.json").read_bytes() == before
        before = (out / "fleet.json").read_bytes()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgekit-")]
    print(f"\nbatch SIGINT at 20 random points: {codes.count(130)} x 130, {codes.count(0)} x 0 (after the commit)")
    assert codes.count(130) >= 15
