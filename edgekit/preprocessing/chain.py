"""The normalization a graph applies to an input before its first real op, as one affine map.

Backend-neutral: a `GraphView` (TensorFlow or ONNX) lists the consumers of a tensor and
evaluates constant operands. The walk follows single-consumer chains of elementwise Mul/Div/
Add/Sub with constant (scalar or per-channel) operands, passing through Cast/Identity/Transpose,
and stops at the first other op: `x -> scale * x + offset` per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

import numpy as np

PASS_THROUGH = {"Cast", "Identity", "Transpose", "StopGradient"}
MUL, DIV, ADD, SUB = {"Mul"}, {"Div", "RealDiv"}, {"Add", "AddV2", "BiasAdd"}, {"Sub"}
# Input ranges a pixel pipeline commonly feeds, pixel 0..255 -> (lo, hi): (scale, offset).
RANGES = {"raw": (1.0, 0.0), "unit": (1 / 255, 0.0), "symmetric": (2 / 255, -1.0)}


@dataclass(frozen=True)
class Node:
    op: str
    name: str
    inputs: tuple[str, ...]
    output: str


class GraphView(Protocol):
    def consumers(self, tensor: str) -> list[Node]: ...
    def constant(self, tensor: str) -> Optional[np.ndarray]: ...


@dataclass
class Chain:
    """x -> scale * x + offset (per channel: arrays of 1 or C values) and the steps that make it."""

    scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(1))
    steps: list[tuple[str, str, float | list[float]]] = field(default_factory=list)  # (node, op, constant)

    @property
    def found(self) -> bool:
        return bool(self.steps)

    def describe(self) -> str:
        """'rescaling_1(scale=0.00392, offset=0)', one group per layer (path component) of the chain."""
        groups: dict[str, Chain] = {}
        for node, op, value in self.steps:
            parts = node.split("/")
            layer = parts[-2] if len(parts) > 1 else parts[0]
            groups.setdefault(layer, Chain()).apply(op, np.asarray(value, np.float64), node)
        return ", ".join(f"{layer}(scale={_fmt(c.scale)}, offset={_fmt(c.offset)})" for layer, c in groups.items())

    def apply(self, op: str, value: np.ndarray, node: str, constant_first: bool = False) -> None:
        if op in MUL:
            self.scale, self.offset = self.scale * value, self.offset * value
        elif op in DIV:
            self.scale, self.offset = self.scale / value, self.offset / value
        elif op in ADD:
            self.offset = self.offset + value
        elif op in SUB and constant_first:
            self.scale, self.offset = -self.scale, value - self.offset
        elif op in SUB:
            self.offset = self.offset - value
        shown = float(value.reshape(-1)[0]) if value.size == 1 else [float(v) for v in value]
        self.steps.append((node, op if not constant_first else f"{op}(c-x)", shown))

    def input_range(self) -> str:
        """Which RANGES entry the chain expects: the one it maps to a span nearest 2 (a normalized input)."""
        def distance(name: str) -> float:
            s, o = RANGES[name]
            lo, hi = self.scale * o + self.offset, self.scale * (255 * s + o) + self.offset
            span = float(np.mean(np.abs(hi - lo)))
            return abs(np.log(max(span, 1e-12) / 2.0))
        return min(RANGES, key=distance)


def _fmt(values: np.ndarray) -> str:
    flat = [float(f"{v:.3g}") for v in np.asarray(values).reshape(-1)]
    if len(set(flat)) == 1:
        return f"{flat[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in flat) + "]"


def _per_channel(value: np.ndarray, channels: int) -> Optional[np.ndarray]:
    value = np.asarray(value, np.float64)
    if value.size == 1:
        return value.reshape(1)
    if value.size == channels and max(value.shape) == channels:
        return value.reshape(-1)
    return None


def walk_chain(view: GraphView, tensor: str, channels: int, max_steps: int = 16) -> Chain:
    """The affine chain applied to `tensor` (an input) before the graph's first other op."""
    chain = Chain()
    for _ in range(max_steps * 4):
        consumers = view.consumers(tensor)
        if len(consumers) != 1:
            break
        node = consumers[0]
        if node.op in PASS_THROUGH:
            tensor = node.output
            continue
        if node.op not in MUL | DIV | ADD | SUB or len(node.inputs) != 2 or tensor not in node.inputs:
            break
        first = node.inputs[0] != tensor
        other = node.inputs[0] if first else node.inputs[1]
        value = view.constant(other)
        value = None if value is None else _per_channel(value, channels)
        if value is None or (first and node.op in DIV) or (node.op in DIV and np.any(value == 0)):
            break
        chain.apply(node.op, value, node.name, constant_first=first and node.op in SUB)
        tensor = node.output
        if len(chain.steps) >= max_steps:
            break
    return chain
