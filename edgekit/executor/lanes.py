"""The caller as one more lane: items measured in this process while an executor's warm workers take others.

A search's caller already holds its open backend; workers first import their framework and open
their own (seconds). `Lanes(executor, workers)` therefore starts them in the background
(`warm_up(opener, *args)`, once) and, until they are ready, measures every item here, so a cold pool never
delays a result and a short search costs no more than a serial one. Once they are ready, `map`
gives this thread one item at a time (the first before any batch leaves) and IN_FLIGHT background threads batches to the executor
(guided: a worker's share of a batch is 1/(2 x lanes) of what is left), all from the front of the
list, until none is left; results come back in the items' order (tasks are pure: the lane that ran
an item does not change its result). Workers that fail give their items back: this process
measures them and everything after. `width`: how many items a caller may usefully hand over at
once (1 until the workers are ready, then workers + 1); `on_workers` runs a batch on the workers,
one task per worker (what a `remote` lane calls). EDGEKIT_WAIT_FOR_WORKERS=1 makes `map` wait for
the warm-up instead, so that the workers measure from the first items on (tests and benchmarks that must exercise them).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from typing import Callable, Sequence

from edgekit.errors import condense
from edgekit.executor.base import Task, entries

log = logging.getLogger("edgekit")
WARM_UP = "worker start-up"  # the name of the warm-up tasks
IN_FLIGHT = 2  # batches handed to the workers at once: their next one waits queued while this
# process takes in the last (its candidates hold the GIL for milliseconds, so a round trip is slow)


def _each(func, argsets, work):
    return [func(*args, work=work) for args in argsets]


def _waits_for_workers() -> bool:
    return os.environ.get("EDGEKIT_WAIT_FOR_WORKERS") == "1"


class Lanes:
    """executor: an edgekit Executor; workers: the tasks it runs at once (its `jobs`)."""

    def __init__(self, executor, workers: int):
        self.executor, self.workers = executor, max(1, int(workers))
        self._ready = threading.Event()
        self._warming: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def width(self) -> int:
        waits = _waits_for_workers() and self._warming is not None
        return self.workers + 1 if self.ready or waits else 1

    def warm_up(self, opener: Callable, *args) -> None:
        """Start readying the workers in the background: `opener(*args, work=...)` once per worker
        (it opens that worker's backend); only the first call does anything. A failed warm-up
        leaves every item to this process."""
        if self._warming is not None:
            return
        tasks = [Task(f"open {i}", WARM_UP, opener, args) for i in range(self.workers)]

        def run():
            try:
                entries(self.executor.map(tasks), WARM_UP)
            except BaseException as err:  # noqa: BLE001 - logged; this process measures everything
                log.info("workers not used: %s", err)
                return
            self._ready.set()

        self._warming = threading.Thread(target=run, name="edgekit-warm-up", daemon=True)
        self._warming.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the workers are ready (True) or the warm-up ended without them or timed out (False)."""
        if self._warming is not None:
            self._warming.join(timeout)
        return self.ready

    def on_workers(self, what: str, func: Callable, argsets: Sequence[tuple]) -> list:
        """[func(*args, work=...) for each args] run on the executor's workers, in order; the first
        failure raises EdgekitError("a WHAT failed: ...")."""
        argsets = list(argsets)
        size = -(-len(argsets) // self.workers)  # one task (one round trip) per worker
        chunks = [argsets[i:i + size] for i in range(0, len(argsets), size)]
        done = entries(self.executor.map([Task(f"{what} {i}", f"{what} {i}", _each, (func, chunk))
                                          for i, chunk in enumerate(chunks)]), what)
        return [result for chunk in done for result in chunk]

    def map(self, items: Sequence, local: Callable, remote: Callable[[list], list]) -> list:
        """[local(item) or remote([item, ...])'s result for each item], in order (see the module
        docstring). When `remote` raises, its items go back to this process, which measures the
        rest and every later item alone (a candidate that fails here too raises here, as serially)."""
        items = list(items)
        if _waits_for_workers() and len(items) >= 2:
            self.wait_ready()
        if not self.ready or len(items) < 2:
            return [local(item) for item in items]
        results: list = [None] * len(items)
        pending, lock, stop = collections.deque(range(len(items))), threading.Lock(), threading.Event()

        def take(count: int | None = None) -> list[int]:
            """`count` items from the front; None: a remote batch, guided self-scheduling: each worker
            gets a 1/(2 x lanes) share of what is left (at least one item), so that round trips are
            few while the list is long and the last batches are short."""
            with lock:
                if count is None:
                    count = self.workers * max(1, len(pending) // (2 * (self.workers + 1)))
                return [pending.popleft() for _ in range(min(count, len(pending)))]

        def remote_lane():
            while not stop.is_set():
                batch = take()
                if not batch:
                    return
                try:
                    done = remote([items[i] for i in batch])
                except BaseException as err:  # noqa: BLE001 - this process takes the items back
                    with lock:
                        pending.extendleft(reversed(batch))
                    self._ready.clear()  # a broken pool restarts cold: not worth waiting for again
                    log.warning("the workers failed (%s): this process measures the rest", condense(str(err)))
                    return
                for i, result in zip(batch, done):
                    results[i] = result

        mine = take(1)  # before the remote lanes start: with 2 items they would take both
        threads = [threading.Thread(target=remote_lane, name="edgekit-remote-lane", daemon=True)
                   for _ in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        try:
            while True:
                if mine:
                    results[mine[0]] = local(items[mine[0]])
                    mine = take(1)
                    continue
                for thread in threads:
                    thread.join()  # the remote lanes' last batches, or their items given back
                if not pending:
                    return results
                mine = take(1)
        except BaseException:
            stop.set()  # Ctrl-C or a failure here: the remote lane takes nothing more
            raise
