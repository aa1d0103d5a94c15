"""Run corpus cases: a pool of in-process CLI workers with a watchdog, or one real process each.

A worker that dies (a signal from a native crash) or stops answering within `timeout` seconds
is killed and replaced; the case it was running is recorded as a crash or a hang.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tests.conftest import ROOT

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


@dataclass
class Result:
    id: str
    code: Optional[int]
    stderr: str = ""
    seconds: float = 0.0
    signal: Optional[str] = None  # the worker or process died from this signal
    hung: bool = False
    heavy_imports: list[str] = field(default_factory=list)


def _signal_name(returncode: int) -> Optional[str]:
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class _Worker:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.safety.worker"], cwd=ROOT, env=ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)

    def run(self, case, timeout: float) -> tuple[Result, bool]:
        """(result, worker still usable)."""
        start = time.monotonic()
        self.proc.stdin.write(json.dumps({"id": case.id, "argv": ["compress", *case.argv]}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return Result(case.id, None, seconds=time.monotonic() - start, hung=True), False
        line = self.proc.stdout.readline()
        if not line:
            returncode = self.proc.wait()
            return Result(case.id, returncode, seconds=time.monotonic() - start,
                          signal=_signal_name(returncode) or f"worker exited {returncode}"), False
        data = json.loads(line)
        return Result(data["id"], data["code"], data["stderr"], data["seconds"],
                      heavy_imports=data["heavy_imports"]), True

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def run_pool(cases, workers: int = 2, timeout: float = 120.0) -> dict[str, Result]:
    """Run `cases` on `workers` in-process CLI workers; a dead or hung worker is replaced."""
    todo: queue.Queue = queue.Queue()
    for case in cases:
        todo.put(case)
    results: dict[str, Result] = {}

    def drain() -> None:
        worker = None
        while True:
            try:
                case = todo.get_nowait()
            except queue.Empty:
                break
            worker = worker or _Worker()
            result, usable = worker.run(case, timeout)
            results[case.id] = result
            if not usable:
                worker = None
        if worker:
            worker.close()

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_process(case, timeout: float = 120.0) -> Result:
    """The case as a real `python -m edgekit compress ...` process."""
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "edgekit", "compress", *case.argv], cwd=ROOT, env=ENV,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result(case.id, None, seconds=time.monotonic() - start, hung=True)
    return Result(case.id, proc.returncode, proc.stderr, time.monotonic() - start,
                  signal=_signal_name(proc.returncode))


def problems(case, result: Result) -> list[str]:
    """What is wrong with `result` for `case` (empty when it is answered as documented)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgekit: error: ")]
    found = []
    if result.hung:
        found.append(f"hung past {result.seconds:.0f} s")
    elif result.signal:
        found.append(f"died: {result.signal}")
    elif result.code == 0:
        if not case.may_succeed:
            found.append("exit 0 for garbage")
        if errors:
            found.append("exit 0 with an error line")
    else:
        if result.code not in case.codes:
            found.append(f"exit {result.code} not in {sorted(case.codes)}")
        if len(errors) != 1:
            found.append(f"{len(errors)} 'edgekit: error:' lines")
        if "Traceback" in result.stderr:
            found.append("traceback on stderr")
        if Path(case.out).exists():
            found.append("a failed run created its output directory")
    if found:
        found.append("stderr: " + " | ".join(result.stderr.strip().splitlines()[-3:])[:400])
    return found
