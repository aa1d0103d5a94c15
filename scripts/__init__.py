"""Runnable tooling beside the package, importable as `scripts` from the repository root.

- `scripts.models`: the model and data builders tests, the demo and the benchmarks share (tests and
  benchmarks import them; they import neither).
- `scripts.bench`: the benchmarks, run as `python -m scripts.bench` and `python -m scripts.bench.fallback`.
"""
