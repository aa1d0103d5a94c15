"""The Target contract every backend implements, and what a build hands the pipeline.

A Target turns a prepared source into artifacts (`build`), runs them on the host (`runner`),
embeds the preprocessing contract in them (`embed_contract`), describes them (`inspect`) and,
where it can keep chosen layers in float, gives the selective builder that `edgekit debug` and
compress's float fallback both search with (`selective`). `edgekit.backends` is the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Sequence

if TYPE_CHECKING:  # types only: backends never import the layers above them
    from edgekit.preprocessing.contract import InputContract
    from edgekit.recipe.schema import Recipe
    from edgekit.runtime.base import Runner
    from edgekit.sources.base import PreparedSource

CalibrationFactory = Callable[[], Any]  # () -> iterable of feeds dicts; None: no calibration data


@dataclass
class Built:
    """One artifact built in the staging directory, before validation."""

    name: str
    target: str
    precision: str
    path: Path
    details: dict = field(default_factory=dict)
    op_counts: dict = field(default_factory=dict)
    compute_dtypes: dict = field(default_factory=dict)
    compression: dict = field(default_factory=dict)  # edgekit.validate.compression.summarize
    origin: Optional[Path] = None  # the float model it was built from, where a later step needs it


@dataclass(frozen=True)
class BuildContext:
    """What a build may use besides the source and the recipe.

    stage: where artifacts are written; workdir: scratch space of the run; on_step: progress;
    device: the device that builds engines (TensorRT) or None, device_entry its inventory entry
    (where its tools are); validation: (feeds, reference
    outputs, labels, roles) of the held-out split; upstream: the BuildResult of the target this
    one builds from (`Target.upstream`); dependency_only: built only as another target's input
    (its float artifact alone).
    """

    stage: Path
    workdir: Path
    on_step: Callable[[str], None] = lambda step: None
    device: Any = None
    device_entry: Any = None
    validation: Optional[tuple] = None
    upstream: Optional["BuildResult"] = None
    dependency_only: bool = False


@dataclass
class BuildResult:
    """The artifacts of one target, its fusion report (report.json's `fusion[target]`, or None),
    report notes, and facts a downstream target reads (e.g. the calibration method chosen)."""

    built: list[Built] = field(default_factory=list)
    fusion: Optional[dict] = None
    notes: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


class Target(Protocol):
    """One backend. name: what `--target` says; formats: artifact suffixes it owns (runner,
    embedding and inspection dispatch on them); precisions: what it builds; needs: the source form
    it builds from ("savedmodel" | "onnx"); upstream: the target whose float artifact it builds
    from (None: the source itself); baseline: the target whose fp32 artifact is this one's size
    and accuracy reference (default: itself); uses_device: it builds on the run's device (TensorRT
    engines); runs_on_host: its artifacts run here."""

    name: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    needs: str
    upstream: Optional[str]
    baseline: str
    uses_device: bool
    runs_on_host: bool

    def build(self, source: "PreparedSource", recipe: "Recipe", calibration: Optional[CalibrationFactory],
              ctx: BuildContext) -> BuildResult:
        """Every artifact of the recipe's precisions this target builds, written into ctx.stage."""

    def runner(self, path: Path, threads: Optional[int] = None) -> Optional["Runner"]:
        """A host Runner for one of its artifacts (None: this format does not run on the host)."""

    def inspect(self, path: Path) -> tuple[dict, dict, dict]:
        """(op counts, conv/matmul compute dtypes, compression summary) of one artifact."""

    def embed_contract(self, path: Path, contract: "InputContract") -> None:
        """Write the preprocessing contract into the artifact (atomically); no-op where unsupported."""

    def selective(self, source: "PreparedSource", calibration: CalibrationFactory, recipe: "Recipe",
                  ctx: BuildContext, built: Sequence[Built] = ()):
        """A SelectiveBuilder (edgekit.backends.selective) over the same graph the plain INT8 build
        quantized (`built`: this run's artifacts of this target, when there are some); None where
        the target keeps no layer in float."""

    def finish(self, built: Sequence[Built], ctx: BuildContext) -> list[str]:
        """After the float fallback chose the final artifacts (`built`: this target's): whatever
        depends on them (TensorRT: calibration cache, precision record, the engine on ctx.device);
        returns report notes."""


def with_inventory(target: Target, built: Built) -> Built:
    """`built` with its op counts, compute dtypes and compression read from the file."""
    built.op_counts, built.compute_dtypes, built.compression = target.inspect(built.path)
    return built
