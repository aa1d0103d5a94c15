"""The Ray executor: the same tasks on a Ray cluster (`pip install "edgekit[ray]"`).

`--ray auto` joins the cluster this machine belongs to (`ray start` ran here), `--ray ADDRESS`
that cluster (ray://host:10001 or host:6379). Each task asks for one CPU plus its custom resources:
a device bench asks for `device:NAME: 1`, which only the node that reaches the device holds (see
`device_resources`), so it runs there and never beside another task on that device. A task whose
worker dies is retried once by Ray, then reported failed with the reason. Ctrl-C cancels every
task (force: their workers are killed).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Callable, Iterable

from edgekit.errors import MissingDependencyError, UsageError, condense
from edgekit.executor.base import Outcome, Task, failure, run_task

RETRIES = 1
CONNECT_TIMEOUT_S = 5


def device_resource(name: str) -> str:
    """The Ray resource of an inventory device: 'device:pixel7'."""
    return f"device:{name}"


def device_resources(names: Iterable[str]) -> str:
    """The JSON for `ray start --resources` on the node that reaches these devices."""
    return json.dumps({device_resource(n): 1 for n in names}, sort_keys=True)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError('--ray needs Ray: pip install "edgekit[ray]"') from None
    return ray


def _check_reachable(address: str) -> None:
    """UsageError when nothing answers at a host:port address (ray.init would retry for minutes)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if address == "auto" or not host or not port.isdigit():
        return  # ray.init judges it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise UsageError(f"--ray {address}: cannot join the Ray cluster (nothing answers at {host}:{port}: "
                         f"{err.strerror or err})") from None


def _on_node(func, args):
    """Runs in a Ray worker: the task, with the node that ran it recorded."""
    import ray

    from edgekit import interrupts

    interrupts.restore_in_child()
    return run_task(func, args, host=ray.get_runtime_context().get_node_id())


@dataclass(frozen=True)
class RayShared:
    """An object in Ray's object store (see RayExecutor.share); each node fetches it once."""

    ref: object
    key: str

    def get(self):
        import ray

        return ray.get(self.ref)


class RayExecutor:
    """Run tasks on a Ray cluster (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str = "auto"):
        self.ray = _import_ray()
        if not self.ray.is_initialized():
            _check_reachable(address)
            try:
                self.ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise UsageError(f"--ray {address}: cannot join the Ray cluster ({condense(str(err))})") from None
        self._remote = self.ray.remote(max_retries=RETRIES, retry_exceptions=False)(_on_node)

    def map(self, tasks: Iterable[Task], on_done: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
        ray = self.ray
        tasks = list(tasks)
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i].cost)  # largest first
        refs = {self._remote.options(num_cpus=1, resources=dict(tasks[i].resources), name=tasks[i].name)
                .remote(tasks[i].func, tasks[i].args): i for i in order}
        outcomes: dict[int, Outcome] = {}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                for ref in done:
                    i = refs[ref]
                    outcomes[i] = self._outcome(tasks[i], ref)
                    on_done(outcomes[i])
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [outcomes[i] for i in range(len(tasks))]

    def _outcome(self, task: Task, ref) -> Outcome:
        ray = self.ray
        try:
            return Outcome(task, result=ray.get(ref))
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            return failure(task, cause if isinstance(cause, BaseException) else err)
        except ray.exceptions.RayError as err:  # the worker or its node died, past the retry
            return Outcome(task, error=f"the Ray worker died ({type(err).__name__}: "
                           f"{condense(str(err), 200)}); tried {RETRIES + 1} times", exit_code=1)

    @property
    def jobs(self) -> int:
        """The cluster's CPUs (tasks that can run at once)."""
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def share(self, obj) -> RayShared:
        """`obj` put once into the object store."""
        ref = self.ray.put(obj)
        return RayShared(ref, ref.hex())

    def close(self) -> None:
        pass  # the cluster outlives the run; ray.shutdown() only detaches this driver at exit

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
