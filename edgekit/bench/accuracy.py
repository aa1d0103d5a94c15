"""On-device accuracy: device outputs vs the host run of the FP32 reference on the same inputs.

Inputs: `BUILD/validation_inputs.npz` when the build has one, else `--inputs NPZ` (arrays by
input name; (N, ...) arrays are N samples of a batch-1 input). The reference of an artifact is
the FP32 artifact of the same format (else of any format), run once on this host by the same
harness.py the devices run, so inputs are fed identically. Metrics per output (aligned by name,
else by order): max abs error, cosine, SQNR (dB; None when not finite: identical outputs) and top-1 agreement
(outputs with a class axis), from `edgekit.validate.metrics`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgekit.bench.artifacts import HARNESS_FORMATS, Artifact
from edgekit.bench.schema import Accuracy, OutputAccuracy
from edgekit.errors import UsageError

VALIDATION_INPUTS = "validation_inputs.npz"
HOST_TIMEOUT_S = 600.0


def resolve_inputs(build: Path, explicit: Path | None) -> Path:
    """The .npz for --accuracy: BUILD/validation_inputs.npz, else --inputs; UsageError if neither."""
    candidate = build / VALIDATION_INPUTS if build.is_dir() else build.parent / VALIDATION_INPUTS
    if candidate.is_file():
        return candidate
    if explicit is not None:
        return explicit
    raise UsageError(f"--accuracy needs held-out inputs: no {VALIDATION_INPUTS} in the build, "
                     "pass --inputs NPZ", build)


def reference_for(artifact: Artifact, artifacts: list[Artifact]) -> Artifact | None:
    """The FP32 artifact to compare against: same format first, else any the harness runs."""
    fp32 = [a for a in artifacts if a.precision == "fp32" and a.format in HARNESS_FORMATS]
    same = [a for a in fp32 if a.format == artifact.format]
    return (same or fp32 or [None])[0]


class HostReferences:
    """FP32 reference outputs computed on this host, once per reference artifact."""

    def __init__(self, inputs: Path, harness: Path):
        self.inputs, self.harness = inputs, harness
        self._dir = Path(tempfile.mkdtemp(prefix="edgekit-reference-"))
        self._done: dict[str, tuple[Path | None, str | None]] = {}
        self._lock = threading.Lock()  # devices run in threads; each artifact runs here once

    def outputs(self, reference: Artifact) -> tuple[Path | None, str | None]:
        """(outputs .npz, None) or (None, why the host run failed); any artifact, run once."""
        with self._lock:
            if reference.name not in self._done:
                self._done[reference.name] = self._run(reference)
            return self._done[reference.name]

    def _run(self, reference: Artifact) -> tuple[Path | None, str | None]:
        from edgekit.devices.base import ProcessTimeout, run_process

        out = self._dir / f"{reference.sha256[:16]}.npz"
        argv = [sys.executable, str(self.harness), str(reference.path), "--inputs", str(self.inputs),
                "--outputs", str(out), "--runs", "1", "--warmup", "0"]
        try:
            code, stdout, _, _ = run_process(argv, HOST_TIMEOUT_S)
        except ProcessTimeout:
            return None, f"host reference {reference.name} timed out after {HOST_TIMEOUT_S:g}s"
        if code != 0:
            return None, f"host reference {reference.name}: {harness_error(stdout)}"
        return out, None

    def close(self) -> None:
        import shutil

        shutil.rmtree(self._dir, ignore_errors=True)


def harness_error(stdout: str) -> str:
    """The "error" of the harness's JSON line (the last one that parses)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            return str(json.loads(line).get("error") or "no error message")
        except (ValueError, AttributeError):
            continue
    return "no JSON on stdout"


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _align(ref: dict, test: dict) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if set(ref) <= set(test):
        return [(name, ref[name], test[name]) for name in ref]
    if len(ref) == len(test):
        return [(name, ref[name], value) for name, value in zip(ref, test.values(), strict=True)]
    raise ValueError(f"outputs differ: reference has {sorted(ref)}, device has {sorted(test)}")


def compare(reference: Artifact, ref_path: Path, device_path: Path, inputs: Path) -> Accuracy:
    """Accuracy of the device outputs against the host reference outputs."""
    from edgekit.validate import metrics

    ref, test = _load(ref_path), _load(device_path)
    results, samples = [], None
    for name, a, b in _align(ref, test):
        if a.shape != b.shape:
            raise ValueError(f"output {name!r}: reference shape {list(a.shape)}, device {list(b.shape)}")
        samples = samples or (int(a.shape[0]) if a.ndim else 1)
        sqnr = metrics.sqnr_db(a, b)
        top1 = metrics.top1_agreement([a], [b]) if metrics.is_class_scores(a.shape) else None
        results.append(OutputAccuracy(
            name=name, max_abs_error=round(metrics.max_abs_error(a, b), 6),
            cosine=round(metrics.cosine(a, b), 6),
            sqnr_db=round(sqnr, 3) if np.isfinite(sqnr) else None,
            top1_agreement=None if top1 is None else round(top1, 6)))
    return Accuracy(reference=f"{reference.name} on the host", inputs=inputs.name, samples=samples,
                    outputs=results)
