"""Graph fusion passes over ONNX models, one module per pass; `runner.fuse` runs them all.

Each pass has the signature `run(model) -> list[FusedGroup]`, mutates the model it is given
(the runner hands it a private copy) and reports every group of nodes it replaced.
"""
