"""Graph fusion passes over ONNX models, one module per pass; `runner.fuse` runs them all.

Each pass has the signature `run(model) -> list[FusedGroup]` (fold_if also takes the inputs the
calibration holds constant), mutates the model it is given (the runner hands it a private copy)
and reports every group of nodes it replaced.
"""
