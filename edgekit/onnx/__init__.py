"""The ONNX / TensorRT family of artifacts: load, export, fuse, quantize, TensorRT plans.

Heavy libraries (onnx, onnxruntime, tf2onnx) are imported inside the modules that need them;
importing this package imports none of them. The entry points for the compress pipeline are
`edgekit.onnx.artifacts.build_onnx_artifacts` and `edgekit.onnx.artifacts.build_tensorrt_plan`.
"""
