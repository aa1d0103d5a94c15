"""`--ray ADDRESS` through the CLI, on a real local Ray head (loopback): `batch` of two tiny models
(the builds run as Ray tasks on that cluster and equal a local-pool run's), and the searches of
`compress` and `debug` (their candidates on the cluster give the in-process result)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.models.fleet import write_fleet

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # a Ray head and 4 builds: about a minute on 2 shared cores
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def head():
    """A one-node Ray cluster (its own raylet and GCS processes): (address, node id)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "object_store_memory": 80 << 20})
    try:
        yield cluster.address, cluster.head_node.node_id
    finally:
        cluster.shutdown()


def _batch(*args, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", "batch", *map(str, args)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _artifacts(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "models").rglob("*.tflite"))}


def test_batch_ray_address_from_the_cli(head, tmp_path):
    address, node = head
    fleet = write_fleet(tmp_path, 2)
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGEKIT_CACHE_DIR=str(tmp_path / "cache"))
    on_ray = _batch(fleet, "--out", tmp_path / "ray", "--ray", address, "--no-cache", "--quiet", env=env)
    assert on_ray.returncode == 0, on_ray.stderr
    document = json.loads((tmp_path / "ray" / "fleet.json").read_text())
    assert document["executor"] == "ray"
    assert [(m["status"], m["host"]) for m in document["models"]] == [("ok", node)] * 2  # Ray tasks on the head
    local = _batch(fleet, "--out", tmp_path / "pool", "--jobs", "2", "--no-cache", "--quiet", env=env)
    assert local.returncode == 0, local.stderr
    assert _artifacts(tmp_path / "ray") == _artifacts(tmp_path / "pool") and len(_artifacts(tmp_path / "ray")) == 4


def test_batch_ray_at_an_address_with_no_cluster_is_a_usage_error(tmp_path):
    fleet = write_fleet(tmp_path, 1)
    result = _batch(fleet, "--out", tmp_path / "out", "--ray", "127.0.0.1:1", "--quiet",
                    env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)  # ray.init alone retried for minutes
    assert result.returncode == 2, result.stderr
    assert "--ray 127.0.0.1:1: cannot join the Ray cluster" in result.stderr and not (tmp_path / "out").exists()


def test_compress_ray_runs_the_fallback_candidates_on_the_cluster(head, tmp_path):
    from scripts.models.hostile import save_hostile
    from tests.conftest import DIGITS_DATA
    from tests.fleet.test_search_jobs import RECIPE, fallback_of

    model = save_hostile(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGEKIT_PARALLEL_MIN_S="0", EDGEKIT_WAIT_FOR_WORKERS="1")
    runs = {}
    for label, flags in (("ray", ["--ray", head[0]]), ("serial", ["--jobs", "1"])):
        out = tmp_path / label
        result = subprocess.run([sys.executable, "-m", "edgekit", "compress", str(model), "--int8", "-c", str(DIGITS_DATA),
                                 "--color", "grayscale", "-t", "tflite", "--max-accuracy-drop", "1.0", "--out", str(out),
                                 "--runs", "2", "--no-cache", "--recipe", str(recipe), *flags],
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert ("sensitivity candidates here and on the ray (2 workers)" in result.stderr) == (label == "ray"), \
            result.stderr
        runs[label] = fallback_of(out)
    assert runs["ray"] == runs["serial"]


def test_debug_ray_ranks_on_the_cluster_as_in_process(head, tmp_path):
    """`edgekit debug --ray ADDRESS` (ONNX target): the ranking's candidates measured by this process
    and the cluster's workers equal the in-process ranking."""
    from scripts.models.hostile import save_hostile
    from tests.conftest import DIGITS_DATA

    model = save_hostile(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGEKIT_PARALLEL_MIN_S="0", EDGEKIT_WAIT_FOR_WORKERS="1")
    rankings = {}
    for label, flags in (("ray", ["--ray", head[0]]), ("serial", ["--jobs", "1"])):
        out = tmp_path / label
        result = subprocess.run([sys.executable, "-m", "edgekit", "debug", str(model), "-c", str(DIGITS_DATA),
                                 "--color", "grayscale", "-t", "onnx", "--out", str(out), *flags],
                                env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert ("sensitivity candidates here and on the ray (2 workers)" in result.stderr) == (label == "ray"), \
            result.stderr
        rankings[label] = [{k: v for k, v in r.items() if k not in ("node", "layer")}
                           for r in json.loads((out / "debug.json").read_text())["ranking"]]
    assert rankings["ray"] == rankings["serial"] and len(rankings["serial"]) >= 5
