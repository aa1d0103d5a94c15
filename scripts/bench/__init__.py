"""Benchmarks: edgekit against the raw libraries it wraps, measured in one run (`python -m
scripts.bench`, see scripts/bench/run.py) and the float fallback (`python -m scripts.bench.fallback`)."""
