"""`edgekit batch` on a real two-node Ray cluster on this machine (ray.cluster_utils.Cluster):
4 tiny models x 2 loopback devices (the ssh and adb fixtures). Each device is a custom resource
of one node, so its benches run only there; the artifacts are byte-identical to a local-pool run."""

from __future__ import annotations

import json
import sys

import pytest

from tests.bench.conftest import ssh_entry
from tests.devices.conftest import sshd  # noqa: F401 (fixture)
from tests.devices.fake_adbd import adb_server, fake_device_factory  # noqa: F401 (fixtures)
from scripts.models.fleet import write_fleet

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # about 2-3 minutes on 2 shared cores (two Ray nodes, 16 builds)


@pytest.fixture(scope="module")
def ray_cluster(adb_server):  # noqa: F811 - the adb server's port is in the environment the nodes inherit
    from ray.cluster_utils import Cluster

    from edgekit.executor.ray import device_resource

    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {device_resource("board"): 1}, "object_store_memory": 80 << 20})
    phone_node = c.add_node(num_cpus=1, resources={device_resource("phone"): 1}, object_store_memory=80 << 20)
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, {"board": c.head_node.node_id, "phone": phone_node.node_id}
    finally:
        ray.shutdown()
        c.shutdown()


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """device name -> the node id that holds its resource."""
    return ray_cluster[1]


def _artifacts(folder) -> dict[str, bytes]:
    """Every artifact and its sidecar, by model: what must not depend on where it was built."""
    found = {}
    for model in sorted((folder / "models").iterdir()):
        manifest = json.loads((model / "manifest.json").read_text())
        for entry in manifest["artifacts"]:
            for name in (entry["name"], entry["name"].rsplit(".", 1)[0] + ".json"):
                found[f"{model.name}/{name}"] = (model / name).read_bytes()
    return found


def test_fleet_on_two_ray_nodes_matches_the_local_pool(cluster, sshd, fake_device_factory, tmp_path):  # noqa: F811
    from edgekit.executor.pool import PoolExecutor
    from edgekit.executor.ray import RayExecutor
    from edgekit.fleet.run import run_fleet

    phone = fake_device_factory()
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(json.dumps({"version": 1, "devices": {
        "board": ssh_entry(sshd, tmp_path / "board-workdir"), "phone": {"kind": "adb", "address": phone.serial, "python": sys.executable}}}))
    fleet = write_fleet(tmp_path, 4, devices=["board", "phone"], inventory=str(inventory))

    on_ray = run_fleet(fleet, tmp_path / "ray", RayExecutor(), use_cache=False)
    with PoolExecutor(2) as pool:
        local = run_fleet(fleet, tmp_path / "pool", pool, use_cache=False)

    assert on_ray["executor"] == "ray" and local["executor"] == "pool"
    for model in on_ray["models"]:
        assert model["status"] == "ok", model
        for device, node in cluster.items():
            bench = model["bench"][device]
            assert bench["status"] == "ok", bench
            assert bench["host"] == node  # ran on the node holding device:NAME, nowhere else
            assert [r["status"] for r in bench["rows"]] == ["ok"] * len(model["artifacts"]), bench
    assert len({m["host"] for m in on_ray["models"]}) == 2  # the builds spread over both nodes
    ray_files, pool_files = _artifacts(tmp_path / "ray"), _artifacts(tmp_path / "pool")
    assert len(ray_files) == 16
    assert ray_files == pool_files


def test_a_killed_ray_worker_is_retried_then_reported_and_the_others_complete(cluster, tmp_path):
    from edgekit.executor import Task
    from edgekit.executor.ray import RayExecutor
    from tests.fleet import pool_tasks

    tasks = [Task("a", "die-once", pool_tasks.die_once, (str(tmp_path / "marker"),)),
             Task("b", "always-die", pool_tasks.always_die, (str(tmp_path / "marker"),)),
             Task("c", "bad-model", pool_tasks.fail),
             Task("d", "fine", pool_tasks.stamp, (str(tmp_path), "fine", 0.0))]
    a, b, c, d = RayExecutor().map(tasks)
    assert a.result.entry == {"survived": True}  # Ray retried it on a fresh worker
    assert b.result is None and "Ray worker died" in b.error and b.exit_code == 1
    assert c.result is None and c.exit_code == 3 and c.error == "m.keras: not a model"
    assert d.result.entry == {"label": "fine"} and d.result.files == {"out.txt": b"fine"}


DRIVER = """
import sys
from edgekit.executor import Task
from edgekit.executor.ray import RayExecutor
from tests.fleet import pool_tasks
try:
    RayExecutor(sys.argv[1]).map([Task(str(i), str(i), pool_tasks.sleep_forever, (sys.argv[2],)) for i in range(2)])
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_cancels_every_ray_task_within_seconds(ray_cluster, tmp_path):
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, ray_cluster[0].address, str(tmp_path)],
                            env=dict(os.environ, PYTHONPATH=str(root)), cwd=root)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:  # both tasks run, one per node
        time.sleep(0.2)
    workers = [int(p.name) for p in tmp_path.iterdir()]
    assert len(workers) == 2
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert time.perf_counter() - sent < 10
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
