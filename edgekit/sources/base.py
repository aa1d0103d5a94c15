"""What every model format in becomes: a frozen PreparedSource the targets build from.

A source knows its fixed-shape inputs/outputs, runs the float reference on the host, and gives
the forms targets need (`forms`: "savedmodel" for the TFLite converter, "onnx" for the ONNX
family; a TensorFlow model gives ONNX through tf2onnx on first use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from edgekit.runtime.base import TensorSpec

Reference = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class PreparedSource:
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    reference: Reference
    fixed_dims: dict[str, dict] = field(default_factory=dict)
    saved_dir: Optional[Path] = None   # the fixed SavedModel (TensorFlow sources)
    onnx_path: Optional[Path] = None   # the ONNX model (ONNX sources)
    layer_names: tuple[str, ...] = ()  # source layer names that label nodes in reports (Keras)
    export: Optional[dict] = None      # PyTorch sources: exporter, opset (onnx_path is their export)

    @property
    def forms(self) -> tuple[str, ...]:
        """The forms this source gives targets: "savedmodel" and/or "onnx"."""
        return (("savedmodel", "onnx") if self.saved_dir is not None else ()) + \
            (("onnx",) if self.saved_dir is None and self.onnx_path is not None else ())

    def onnx(self, workdir: Path, on_step: Callable[[str], None] = lambda s: None) -> Path:
        """The ONNX model: the source's own, or the SavedModel exported once into `workdir`."""
        if self.onnx_path is not None:
            return self.onnx_path
        exported = Path(workdir) / "model.onnx"
        if not exported.is_file():
            from edgekit.sources.tf2onnx_export import export_to_onnx

            on_step("exporting to ONNX (tf2onnx)")
            export_to_onnx(self.saved_dir, exported)
        return exported
