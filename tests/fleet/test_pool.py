"""The local process pool: results as files + entries, device resources never shared, a dead
worker retried then reported, Ctrl-C stops every worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edgekit.executor import Task
from edgekit.executor.pool import PoolExecutor
from tests.fleet import pool_tasks


def _intervals(log: Path) -> list[tuple[float, float]]:
    return sorted(tuple(map(float, p.read_text().split())) for p in log.iterdir())


def test_results_come_back_as_entries_and_files_and_a_device_is_never_shared(tmp_path):
    shared, free = tmp_path / "shared", tmp_path / "free"
    shared.mkdir(), free.mkdir()
    tasks = [Task(f"k{i}", f"dev{i}", pool_tasks.stamp, (str(shared), f"d{i}", 0.3), {"device:phone": 1})
             for i in range(3)]
    tasks += [Task(f"f{i}", f"free{i}", pool_tasks.stamp, (str(free), f"f{i}", 0.3)) for i in range(2)]
    with PoolExecutor(2) as pool:
        outcomes = pool.map(tasks)
    assert [o.result.entry["label"] for o in outcomes] == ["d0", "d1", "d2", "f0", "f1"]
    assert [o.result.files for o in outcomes][0] == {"out.txt": b"d0"}
    device_runs = _intervals(shared)
    assert all(end <= start for (_, end), (start, _) in zip(device_runs, device_runs[1:]))


def test_a_dead_worker_is_retried_then_reported_and_the_others_complete(tmp_path):
    tasks = [Task("a", "die-once", pool_tasks.die_once, (str(tmp_path / "marker"),)),
             Task("b", "always-die", pool_tasks.always_die, (str(tmp_path / "marker"),)),
             Task("c", "bad-model", pool_tasks.fail),
             Task("d", "fine", pool_tasks.stamp, (str(tmp_path), "fine", 0.0))]
    with PoolExecutor(2) as pool:
        a, b, c, d = pool.map(tasks)
    assert a.result.entry == {"survived": True}
    assert b.result is None and "worker process died" in b.error and b.exit_code == 1
    assert c.result is None and c.exit_code == 3 and c.error == "m.keras: not a model"
    assert d.result.entry == {"label": "fine"}


def test_maps_from_two_threads_share_one_pool(tmp_path):
    """A search's lanes map from two threads at once, from the start: one pool, the same workers."""
    import threading

    with PoolExecutor(2) as pool:
        start, results = threading.Barrier(2, timeout=30), {}

        def lane(name):
            start.wait()
            results[name] = pool.map([Task(f"{name}{i}", f"{name}{i}", pool_tasks.pid) for i in range(4)])

        threads = [threading.Thread(target=lane, args=(n,)) for n in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    workers = {o.result.entry["pid"] for n in "ab" for o in results[n]}
    assert sorted(results) == ["a", "b"] and len(workers) <= 2


DRIVER = """
import sys
from edgekit.executor import Task
from edgekit.executor.pool import PoolExecutor
from tests.fleet import pool_tasks
pool = PoolExecutor(2)
try:
    pool.map([Task(str(i), str(i), pool_tasks.sleep_forever, (sys.argv[1],)) for i in range(4)])
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_stops_every_worker_within_seconds(tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], env=env, cwd=root)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:  # both workers are busy
        time.sleep(0.1)
    workers = [int(p.name) for p in tmp_path.iterdir()]
    assert len(workers) == 2
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)  # the driver only: it must stop the workers itself
    assert proc.wait(timeout=30) == 130
    assert time.perf_counter() - sent < 10
    time.sleep(0.5)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


THREAD_DRIVER = """
import sys, threading
from edgekit.executor import Task
from edgekit.executor.pool import PoolExecutor
from tests.fleet import pool_tasks
pool = PoolExecutor(1)
first = []
starter = threading.Thread(target=lambda: first.extend(pool.map([Task("a", "a", pool_tasks.pid)])))
starter.start()
starter.join()  # the thread that spawned the worker has ended
print(first[0].result.entry["pid"], pool.map([Task("b", "b", pool_tasks.pid)])[0].result.entry["pid"], flush=True)
pool.map([Task("c", "c", pool_tasks.sleep_forever, (sys.argv[1],))])
"""


def test_a_worker_outlives_the_thread_that_started_it_and_dies_with_the_process(tmp_path):
    """Lanes start a pool from a background thread: PR_SET_PDEATHSIG would kill its workers when
    that thread ends; they watch the parent process instead, and still die when it is SIGKILLed."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-c", THREAD_DRIVER, str(tmp_path)], env=env, cwd=root,
                            stdout=subprocess.PIPE, text=True)
    first, second = proc.stdout.readline().split()
    assert first == second  # the same worker, alive after its starter thread ended
    deadline = time.monotonic() + 120
    while not (tmp_path / first).exists() and time.monotonic() < deadline:  # busy in sleep_forever
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no cleanup in the parent at all
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(int(first)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(int(first))


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_a_result_half_written_by_a_stopped_worker_does_not_hold_the_process(tmp_path):
    """A worker stopped while it sends a result back leaves a partial message in the result pipe:
    after Ctrl-C the pool's manager thread must end (the interpreter joins it at exit), not wait
    for the rest of that message."""
    import struct

    with PoolExecutor(1) as pool:
        pool.map([Task("w", "warm", pool_tasks.stamp, (str(tmp_path), "warm", 0.0))])
        executor = pool._pool
        manager = executor._executor_manager_thread
        writer = executor._result_queue._writer
        os.write(writer.fileno(), struct.pack("!i", 1000) + b"partial")  # a header, then 7 of its 1000 bytes
        time.sleep(0.5)  # not a synchronization: the manager blocks in its read either way
        pool._shutdown(kill=True)
        manager.join(timeout=30)
        assert not manager.is_alive()
