"""TensorRT's selective INT8: the ONNX layer-by-layer builder over the symmetric QDQ graph the
engine is built from. A node kept out of QDQ runs in FP16 on the engine (`--fp16`); TensorRT has
no int16 activations, so there is no W8A16 rung (no `ladder`)."""

from __future__ import annotations

from edgekit.backends.onnx.selective import OnnxSelective


class TensorrtSelective(OnnxSelective):
    target = "tensorrt"
