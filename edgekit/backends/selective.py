"""What the sensitivity ranking and the fallback search need from a target (TFLite, ONNX).

A backend lists the quantizable nodes of the model in graph order and builds the model with a
chosen set of nodes kept in float. Node ids are the backend's own (TFLite: the op's output
tensor name in the calibrated model, which is what `denylisted_nodes` matches; ONNX: the node
name, which is what `nodes_to_exclude` matches); `layer` is the source layer it came from.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from edgekit.runtime.base import Runner


@dataclass(frozen=True)
class QuantNode:
    """One quantizable op: `id` (what the quantizer matches, unique), its op type and `layer`: a
    unique name for people (the Keras layer name when known, else a full graph name)."""

    id: str
    op_type: str
    layer: str
    index: int


class Backend(Protocol):
    target: str
    suffix: str

    def nodes(self) -> list[QuantNode]:
        """Quantizable nodes in graph order."""

    def build(self, float_nodes: Sequence[str] = ()) -> bytes:
        """The INT8 model with `float_nodes` (node ids) kept in float."""

    def quantization(self, float_nodes: Sequence[str] = ()) -> dict:
        """The quantizer settings the build of `float_nodes` used (recorded in each fallback step)."""

    def runner(self, model: bytes, threads: int | None = None) -> Runner:
        """A Runner over built model bytes."""


def keras_layer(scope: str | None, known: Iterable[str]) -> str | None:
    """The Keras layer a TF scope ends in: 'model_1/conv_1' -> 'conv' when 'conv' is in `known`
    (Keras 3 traces a model a second time to export it, so every scope gains a '_1' suffix);
    None when the scope ends in no known layer name."""
    if not scope:
        return None
    name = scope.rstrip("/").rsplit("/", 1)[-1]
    known = set(known)
    if name in known:
        return name
    stripped = re.sub(r"_\d+$", "", name)
    return stripped if stripped in known else None


def unique_layers(nodes: Sequence[QuantNode]) -> list[QuantNode]:
    """`nodes` with unique `layer` labels: a label several nodes share (one Keras layer's Conv and
    Relu) is shown with each node's full id beside it, 'conv1 (model/conv1/Relu)'."""
    counts = Counter(n.layer for n in nodes)
    return [n if counts[n.layer] == 1 or n.layer == n.id else replace(n, layer=f"{n.layer} ({n.id})")
            for n in nodes]


class TempModelFiles:
    """Model bytes written to files in one private temporary directory (runners need paths)."""

    def __init__(self, suffix: str):
        self._dir = tempfile.TemporaryDirectory(prefix="edgekit-debug-")
        self._suffix = suffix
        self._count = 0

    def write(self, model: bytes) -> Path:
        self._count += 1
        path = Path(self._dir.name) / f"model_{self._count}{self._suffix}"
        path.write_bytes(model)
        return path

    def path(self, name: str) -> Path:
        """A path in the directory (not created)."""
        return Path(self._dir.name) / name

    def close(self) -> None:
        self._dir.cleanup()
