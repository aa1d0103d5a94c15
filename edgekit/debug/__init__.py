"""INT8 debugging: per-layer error, measured sensitivity, accuracy-aware float fallback.

Data flow, one module each: `selective` / `onnx_selective` (a backend, see `backend`: the
quantizable nodes, and a build with a chosen float set) -> `scoring` (budget, validation of one
built model) -> `tflite_debugger` / `onnx_debugger` (per-tensor error against float, summarized
by `layer_error`) -> `sensitivity` (end-to-end error per layer) -> `fallback` (the search) ->
`report` (Markdown, HTML). `calibration_checks` warns on unrepresentative calibration data;
`session` runs it all for `edgekit debug`. TensorFlow and onnxruntime are imported lazily.
"""
