"""Cross-backend comparison: the same held-out inputs through several artifacts, output by output.

The first artifact is the reference. Inputs and outputs are matched by name, else by position;
layouts that differ by a permutation (NHWC vs NCHW) are transposed to each model's own layout.
An output PASSes when every element satisfies |test - ref| <= atol + rtol * |ref|.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from edgekit.errors import CalibrationDataError, UsageError, condense
from edgekit.backends import open_runner
from edgekit.validate import metrics

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
_LAYOUTS = {4: [(0, 2, 3, 1), (0, 3, 1, 2)], 3: [(0, 2, 1)], 5: [(0, 2, 3, 4, 1), (0, 4, 1, 2, 3)]}


def iter_samples(data_dir: str | Path) -> Iterator[tuple[str, dict[str, np.ndarray] | np.ndarray]]:
    """(file name, sample) for each .npy (one array) / .npz (name -> array) file, sorted by name."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CalibrationDataError("not a directory of .npy/.npz samples", data_dir)
    files = sorted(p for p in data_dir.iterdir() if p.suffix in (".npy", ".npz") and p.is_file())
    if not files:
        raise CalibrationDataError("no .npy or .npz samples", data_dir)
    for path in files:
        try:
            if path.suffix == ".npy":
                yield path.name, np.load(path, allow_pickle=False)
            else:
                with np.load(path, allow_pickle=False) as archive:
                    yield path.name, {name: archive[name] for name in archive.files}
        except (ValueError, OSError, EOFError) as err:
            raise CalibrationDataError(f"unreadable sample ({condense(err)})", path) from None


def fit_layout(array: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """`array` as `shape` (-1 = any): as is, with a batch axis added, or transposed NHWC<->NCHW."""
    candidates = [array] if array.ndim == len(shape) else []
    if array.ndim == len(shape) - 1:
        candidates.append(array[None])
    for candidate in list(candidates):
        candidates += [candidate.transpose(p) for p in _LAYOUTS.get(candidate.ndim, [])]
    for candidate in candidates:
        if all(want in (-1, got) for want, got in zip(shape, candidate.shape)):
            return candidate
    raise CalibrationDataError(f"sample of shape {list(array.shape)} does not fit input shape {list(shape)}")


def _feeds(sample, runner, where: str) -> dict[str, np.ndarray]:
    specs = runner.inputs
    if isinstance(sample, np.ndarray):
        if len(specs) != 1:
            raise CalibrationDataError(f"{where}: one array, but the model takes {len(specs)} inputs")
        arrays = [sample]
    elif set(sample) == {s.name for s in specs}:
        arrays = [sample[s.name] for s in specs]
    elif len(sample) == len(specs):
        arrays = list(sample.values())  # names differ across backends: match by position
    else:
        raise CalibrationDataError(f"{where}: inputs {sorted(sample)} do not match {[s.name for s in specs]}")
    try:
        return {s.name: fit_layout(np.asarray(a), s.shape) for s, a in zip(specs, arrays)}
    except CalibrationDataError as err:
        raise CalibrationDataError(f"{where}: {err}") from None


def align_outputs(reference: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`outputs` keyed and laid out like `reference`: matched by name, else by position; NHWC/NCHW fitted."""
    names = list(reference)
    if set(names) == set(outputs):
        matched = {n: outputs[n] for n in names}
    elif len(outputs) == len(names):
        matched = dict(zip(names, outputs.values()))
    else:
        raise UsageError(f"outputs differ: {names} vs {list(outputs)}")
    return {n: o if o.shape == reference[n].shape else fit_layout(o, reference[n].shape) for n, o in matched.items()}


@dataclass
class OutputComparison:
    """Metrics of one output of one artifact against the reference, over all samples."""

    artifact: str
    output: str
    max_abs_error: float
    max_rel_error: float
    cosine: float
    sqnr_db: float
    top1_agreement: float | None
    passed: bool

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Comparison:
    reference: str
    samples: int
    atol: float
    rtol: float
    outputs: list[OutputComparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict:
        return {"reference": self.reference, "samples": self.samples, "atol": self.atol, "rtol": self.rtol,
                "passed": self.passed, "outputs": [o.to_dict() for o in self.outputs]}  # fmt: skip


def _within(ref: np.ndarray, test: np.ndarray, atol: float, rtol: float) -> bool:
    return bool(np.all(np.abs(test - ref) <= atol + rtol * np.abs(ref)))


def compare_artifacts(
    paths: Sequence[str | Path], data_dir: str | Path, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
    threads: int | None = 1, per_output: Mapping[str, tuple[float, float]] | None = None,
) -> Comparison:  # fmt: skip
    """Run every sample of `data_dir` through each artifact; compare each to the first."""
    if len(paths) < 2:
        raise UsageError("compare needs at least two artifacts")
    runners = [open_runner(p, threads) for p in paths]
    collected: dict[tuple[int, str], tuple[list, list]] = {}
    count = 0
    for name, sample in iter_samples(data_dir):
        ref_out = runners[0].run(_feeds(sample, runners[0], name))
        for index, runner in enumerate(runners[1:], start=1):
            for out_name, test in align_outputs(ref_out, runner.run(_feeds(sample, runner, name))).items():
                ref = ref_out[out_name]
                refs, tests = collected.setdefault((index, out_name), ([], []))
                refs.append(ref.astype(np.float64))
                tests.append(test.astype(np.float64))
        count += 1
    result = Comparison(reference=str(paths[0]), samples=count, atol=atol, rtol=rtol)
    for (index, out_name), (refs, tests) in collected.items():
        ref, test = np.concatenate([r.ravel() for r in refs]), np.concatenate([t.ravel() for t in tests])
        result.outputs.append(OutputComparison(
            artifact=str(paths[index]), output=out_name,
            max_abs_error=metrics.max_abs_error(ref, test), max_rel_error=metrics.max_rel_error(ref, test),
            cosine=metrics.cosine(ref, test), sqnr_db=metrics.sqnr_db(ref, test),
            top1_agreement=metrics.top1_agreement(refs, tests) if metrics.is_class_scores(refs[0].shape) else None,
            passed=_within(ref, test, *(per_output or {}).get(out_name, (atol, rtol))),
        ))  # fmt: skip
    return result
