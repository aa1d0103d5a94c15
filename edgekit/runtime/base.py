"""The runner contract every backend implements, so validation and latency code is shared."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """A named model input or output as the user sees it (float unless the model says so)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Optional[tuple[float, int]] = None  # (scale, zero point) of integer tensors


class Runner(abc.ABC):
    """Loads one artifact; `run` takes and returns float arrays keyed by tensor name.

    Quantized inputs/outputs are (de)quantized inside `run`, so callers compare like with like.
    For timing, `set_inputs` then `invoke` repeatedly: only the inference is measured.
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    @abc.abstractmethod
    def set_inputs(self, feeds: dict[str, np.ndarray]) -> None:
        """Bind inputs (float arrays, quantized here when the model takes integers)."""

    @abc.abstractmethod
    def invoke(self) -> None:
        """Run one inference on the bound inputs."""

    @abc.abstractmethod
    def get_outputs(self) -> dict[str, np.ndarray]:
        """Outputs of the last invoke, as float arrays (dequantized when integer)."""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """set_inputs + invoke + get_outputs."""
        self.set_inputs(feeds)
        self.invoke()
        return self.get_outputs()
