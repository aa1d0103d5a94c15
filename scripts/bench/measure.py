"""Process measurement for the benchmarks: wall time, timestamped stderr lines and the memory of a
child's whole process tree (/proc), edgekit's stage times from its progress lines, and the
`python -m scripts.bench --child KIND` jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.models import ROOT


@dataclass
class Measured:
    """One child process: wall time, its timestamped stderr lines, memory of its process tree."""

    argv: list[str]
    rc: int
    wall_s: float
    tree_peak_mb: float
    max_process_mb: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    stdout: str = ""

    def tail(self, n: int = 5) -> str:
        return " | ".join(text for _, text in self.lines[-n:])


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (children of all its threads, recursively)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def tree_memory_kb(pid: int) -> tuple[int, dict[int, int]]:
    """(sum of VmRSS over `pid` and its descendants, {pid: VmHWM}) in kB; gone processes count 0."""
    total, peaks = 0, {}
    for member in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM")))
        total += int(fields.get("VmRSS", "0 kB").split()[0])
        peaks[member] = int(fields.get("VmHWM", "0 kB").split()[0])
    return total, peaks


def run_measured(argv: list[str], env: dict, sample_s: float = 0.02) -> Measured:
    """Run argv; timestamp each stderr line; every `sample_s` sum the tree's RSS (simultaneous peak)
    and read each process's own peak (VmHWM: kernel-tracked, so spikes between samples count).

    Not wait4's ru_maxrss: a child forked from this (large) process reports this process's RSS.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []
    out: list[str] = []
    tree_peak, process_peak = [0], {}
    done = threading.Event()

    def read_err():
        for line in proc.stderr:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    def sample():
        while not done.is_set():
            total, peaks = tree_memory_kb(proc.pid)
            tree_peak[0] = max(tree_peak[0], total)
            for member, peak in peaks.items():
                process_peak[member] = max(process_peak.get(member, 0), peak)
            done.wait(sample_s)

    threads = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=sample, daemon=True),
               threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)]
    for t in threads:
        t.start()
    proc.wait()
    wall = time.perf_counter() - start
    done.set()
    for t in threads:
        t.join(10)
    biggest = max(process_peak.values(), default=0)
    return Measured(list(argv), proc.returncode, wall, tree_peak[0] / 1024, biggest / 1024, lines, "".join(out))


STEPS = (("checking the build cache", "cache"), ("loading model", "load"),
         ("validating calibration data", "data"), ("running the float reference", "reference"),
         ("building ", "convert"), ("validating ", "validate"), ("writing report", "report"))
NOT_IN_RAW = ("reference", "validate", "report")


def stage_times(lines: list[tuple[float, str]], wall_s: float) -> dict[str, float]:
    """Seconds per stage from edgekit's progress lines ('edgekit: INFO: <step>'); 'start' is
    everything before the first step, the last step runs until the process exits."""
    marks = [(0.0, "start")]
    for t, text in lines:
        if not text.startswith("edgekit: INFO: "):
            continue
        step = text[len("edgekit: INFO: "):]
        stage = next((name for prefix, name in STEPS if step.startswith(prefix)), None)
        if stage is not None:
            marks.append((t, stage))
    times: dict[str, float] = {}
    for (t0, stage), (t1, _) in zip(marks, marks[1:] + [(wall_s, "")]):
        times[stage] = round(times.get(stage, 0.0) + max(t1 - t0, 0.0), 3)
    return times


def python_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def child(kind: str, job: dict, workdir: Path, env: dict) -> tuple[dict, Measured]:
    """Run `python -m scripts.bench --child KIND` on `job`; returns (its result JSON, the measured process)."""
    job_path, result_path = workdir / f"{kind}.job.json", workdir / f"{kind}.result.json"
    job_path.write_text(json.dumps(job))
    result_path.unlink(missing_ok=True)
    measured = run_measured([sys.executable, "-m", "scripts.bench", "--child", kind, str(job_path),
                             str(result_path)], env)
    if measured.rc != 0 or not result_path.is_file():
        raise RuntimeError(f"{kind} child failed (exit {measured.rc}): {measured.tail()}")
    return json.loads(result_path.read_text()), measured
