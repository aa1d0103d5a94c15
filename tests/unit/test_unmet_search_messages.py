"""An unmet fallback search names what its best point kept off INT8: float layers, and on the
precision ladder its int16 units and the MAC share per precision."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgekit.debug.fallback import FallbackResult, Step, raise_if_unmet
from edgekit.debug.scoring import Budget
from edgekit.errors import GateFailed
from edgekit.pipeline.compress import _gate_failures


def _step(precisions: dict) -> Step:
    floats = [k for k, v in precisions.items() if v == "float"]
    return Step("climb", floats, floats, {"sqnr_db": 23.2}, 100, None, False, 1.8, 5.0, precisions=precisions)


def test_the_exit_10_line_counts_int16_units_beside_float_layers():
    best = _step({"a": "int16", "b": "int16", "c": "float"})
    result = FallbackResult(Budget(min_sqnr_db=25), "ladder", [best], best, False, b"", stopped="time budget")
    with pytest.raises(GateFailed) as err:
        raise_if_unmet(result)
    assert "1 float layer(s) ['c'] and 2 int16 unit(s) with sqnr_db=23.2 (time budget)" in str(err.value)


def test_the_report_gate_failure_gives_the_ladder_mac_shares():
    gate = SimpleNamespace(gate="min_sqnr_db", detail="23.2 < 25", passed=False)
    fallback = {"met": False, "float_layers": ["c"], "stopped": "time budget",
                "ladder": {"mac_share": {"W8A16": 0.944, "W8A8": 0.028, "float": 0.028}}}
    entry = SimpleNamespace(name="model_int8.onnx", gates=[gate], details={"fallback": fallback})
    assert _gate_failures([entry])[-1] == ("model_int8.onnx: best fallback point kept ['c'] in float, conv/matmul "
                                           "MACs W8A16 94.4%, W8A8 2.8%, float 2.8% (time budget)")
