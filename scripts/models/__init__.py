"""Model and data builders shared by the tests, the demo and the benchmarks (nothing downloaded)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DIGITS_DATA = ROOT / "calibration_data" / "digits"
