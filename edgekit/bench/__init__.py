"""On-device benchmarking: discover artifacts, run the harness on devices, judge, report.

`artifacts` (what to run) -> `runner` (devices in parallel) -> `analysis` (throttling, speed-ups,
gates, exit status) -> `render` (bench.json / bench.md / bench.html with `plots`).
"""
