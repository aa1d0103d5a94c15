"""Lanes: the caller measures alone while its workers start, then with them; results in order."""

from __future__ import annotations

import threading

import pytest

from edgekit.errors import EdgekitError
from edgekit.executor import Outcome, TaskResult
from edgekit.executor.lanes import Lanes


def _opened(work=None):
    return {}


class _Workers:
    """An executor whose start-up (the warm-up tasks) waits for `started`, or fails."""

    def __init__(self, fail: bool = False):
        self.started, self.fail, self.warm_tasks = threading.Event(), fail, 0

    def map(self, tasks, on_done=lambda o: None):
        assert self.started.wait(30)
        self.warm_tasks += len(tasks)
        if self.fail:
            return [Outcome(t, error="the worker could not import its framework", exit_code=1) for t in tasks]
        return [Outcome(t, result=TaskResult({}, {})) for t in tasks]


def _ready_lanes(workers: int) -> Lanes:
    executor = _Workers()
    executor.started.set()
    lanes = Lanes(executor, workers)
    lanes.warm_up(_opened)
    assert lanes.wait_ready(30)
    return lanes


def test_a_cold_pool_never_delays_the_caller():
    executor = _Workers()
    lanes = Lanes(executor, 2)
    lanes.warm_up(_opened)
    remote = []
    assert lanes.width == 1
    assert lanes.map(range(5), lambda i: i * i, remote.append) == [0, 1, 4, 9, 16]  # all here, none waited
    assert remote == [] and not lanes.ready
    executor.started.set()
    assert lanes.wait_ready(30) and lanes.width == 3 and executor.warm_tasks == 2
    lanes.warm_up(_opened)  # once only
    assert executor.warm_tasks == 2


def test_warm_workers_and_the_caller_share_the_items_in_order():
    lanes = _ready_lanes(2)
    local_took, remote_ran = threading.Event(), threading.Event()
    where = {}

    def local(i):  # each lane waits until the other has taken an item: both run
        where[i] = "here"
        local_took.set()
        assert remote_ran.wait(30)
        return i * i

    def remote(batch):
        where.update({i: "worker" for i in batch})
        assert local_took.wait(30)
        remote_ran.set()
        return [i * i for i in batch]

    assert lanes.map(list(range(9)), local, remote) == [i * i for i in range(9)]
    assert set(where) == set(range(9)) and {"here", "worker"} == set(where.values())


def test_a_failed_start_up_leaves_everything_to_the_caller():
    executor = _Workers(fail=True)
    executor.started.set()
    lanes = Lanes(executor, 1)
    lanes.warm_up(_opened)
    assert not lanes.wait_ready(30) and lanes.width == 1
    assert lanes.map([1, 2], lambda i: -i, lambda b: pytest.fail("no worker is ready")) == [-1, -2]


def test_a_workers_failure_gives_its_items_back_and_the_caller_stops_the_remote_lane(caplog):
    lanes = _ready_lanes(1)
    failed = threading.Event()

    def remote(batch):
        failed.set()
        raise EdgekitError("a ladder candidate failed: the worker process died")

    def local(i):
        failed.wait(30)
        return i * 10

    assert lanes.map(list(range(6)), local, remote) == [0, 10, 20, 30, 40, 50]  # all measured here
    assert "the workers failed (a ladder candidate failed: the worker process died)" in caplog.text
    assert not lanes.ready and lanes.width == 1  # later items stay here
    lanes._ready.set()
    with pytest.raises(EdgekitError, match="not a model"):  # failing here too: raised, as serially
        lanes.map([1, 2], lambda i: (_ for _ in ()).throw(EdgekitError("not a model")), remote)
    for lane in [t for t in threading.enumerate() if t.name == "edgekit-remote-lane"]:
        lane.join(30)  # their warnings are logged while caplog still listens
    taken, called = [], threading.Event()

    def interrupted(i):
        called.set()
        raise KeyboardInterrupt

    def counting(batch):
        taken.append(batch)
        assert called.wait(30)
        return list(batch)

    with pytest.raises(KeyboardInterrupt):
        lanes.map(list(range(50)), interrupted, counting)
    assert sum(len(b) for b in taken) < 50  # it stopped taking items


def test_the_workers_hold_two_guided_batches_at_once():
    """Two remote batches are in flight together (the workers' next one is queued while this
    process takes in the last), long ones first: 40 items, one worker -> batches of about 40 // 4."""
    lanes = _ready_lanes(1)
    both_in_flight, passed, lock, sizes = threading.Barrier(2, timeout=30), threading.Event(), threading.Lock(), []

    def remote(batch):
        with lock:
            sizes.append(len(batch))
            first_two = len(sizes) <= 2
        if first_two:
            both_in_flight.wait()  # breaks (and the items come back here) unless two are in flight
            passed.set()
        return [i * i for i in batch]

    def local(i):
        assert passed.wait(30)
        return i * i

    assert lanes.map(list(range(40)), local, remote) == [i * i for i in range(40)]
    assert lanes.ready and 7 <= min(sizes[:2]) <= max(sizes[:2]) <= 10
    assert sizes[-1] < sizes[0]


def test_on_workers_sends_one_task_per_worker_and_keeps_the_order():
    class Recording:
        tasks: list = []

        def map(self, tasks, on_done=lambda o: None):
            self.tasks = list(tasks)
            return [Outcome(t, result=TaskResult(t.func(*t.args, work=None), {})) for t in self.tasks]

    executor = Recording()
    assert Lanes(executor, 2).on_workers("x", lambda a, b, work: a * b, [(1, 2), (3, 4), (5, 6)]) == [2, 12, 30]
    assert len(executor.tasks) == 2


def test_with_two_items_and_one_worker_each_lane_takes_one():
    """A ladder asks for `width` (workers + 1) candidates at a time. The remote lanes used to start
    first and take both items, so the worker measured them one after the other while this
    process waited: pairs of recognizer candidates took 5.5 s instead of 2.8 s."""
    lanes = _ready_lanes(1)
    for _ in range(20):
        here, there = [], []
        assert lanes.map([1, 2], lambda i: here.append(i) or -i,
                         lambda batch: there.extend(batch) or [-i for i in batch]) == [-1, -2]
        assert (here, there) == ([1], [2])
