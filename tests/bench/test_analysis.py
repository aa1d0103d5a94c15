"""Throttling evidence, INT8/FP32 pairing, gates and exit precedence on constructed rows."""

from __future__ import annotations

import pytest

from edgekit.bench import analysis
from edgekit.bench.schema import Row
from edgekit.errors import DeviceInconclusive, DeviceToolError, GateFailed, HostKeyRefused
from edgekit.validate.latency import summarize_latencies


def row(device, artifact, precision, fmt="tflite", p50=None, status="ok"):
    latency = summarize_latencies([p50] * 5, warmup_runs=0) if p50 is not None else None
    return Row(device=device, artifact=artifact, format=fmt, precision=precision, sha256="0" * 64,
               status=status, latency=latency)


def test_throttling_by_slowdown_in_sustained_mode():
    steady = [1.0] * 100
    slowing = [1.0] * 50 + [1.3] * 50
    assert analysis.throttling({}, {}, steady, True).detected is False
    verdict = analysis.throttling({}, {}, slowing, True)
    assert verdict.detected and verdict.slowdown == pytest.approx(1.3)
    assert analysis.throttling({}, {}, slowing, False).detected is None  # nothing to judge
    assert analysis.throttling({}, {}, slowing[:10], True).slowdown is None


def test_throttling_by_temperature_rise():
    verdict = analysis.throttling({"cpu": 40.0, "gpu": 35.0}, {"cpu": 52.5, "gpu": 36.0}, [1.0], False)
    assert verdict.detected and verdict.temp_rise_c == 12.5 and "12.5 C" in verdict.reason
    assert analysis.throttling({"cpu": 40.0}, {"cpu": 45.0}, [1.0], False).detected is False


def test_speedups_pair_same_format_first():
    rows = [row("a", "m_fp32.onnx", "fp32", "onnx", 4.0), row("a", "m_fp32.tflite", "fp32", p50=3.0),
            row("a", "m_int8.tflite", "int8", p50=1.5), row("a", "q_int8.onnx", "int8", "onnx", 2.0),
            row("b", "m_int8.tflite", "int8", p50=1.0),  # no fp32 on b: no pair
            row("c", "m_fp32.tflite", "fp32", status="inconclusive"),
            row("c", "m_int8.tflite", "int8", p50=1.0)]
    ups = {(u.device, u.int8_artifact): u for u in analysis.speedups(rows)}
    assert set(ups) == {("a", "m_int8.tflite"), ("a", "q_int8.onnx")}
    assert ups[("a", "m_int8.tflite")].speedup == 2.0 and ups[("a", "q_int8.onnx")].speedup == 2.0


def test_gates_mark_rows():
    rows = [row("a", "f.tflite", "fp32", p50=3.0), row("a", "i.tflite", "int8", p50=2.0)]
    ups = analysis.speedups(rows)
    results = analysis.apply_gates(rows, ups, 2.5, "p50_ms", 2.0)
    assert [r.passed for r in results] == [False, True, False]
    assert [r.status for r in rows] == ["gate_failed", "gate_failed"]
    assert "speed-up 1.5x" in rows[1].error


@pytest.mark.parametrize("statuses, error", [
    (["ok", "skipped"], None),
    (["ok", "inconclusive"], DeviceInconclusive),
    (["inconclusive", "host_key_refused"], HostKeyRefused),
    (["host_key_refused", "tool_failed"], DeviceToolError),
    (["inconclusive", "gate_failed", "tool_failed"], GateFailed),
])
def test_exit_precedence(statuses, error):
    rows = [row(f"d{i}", "m.tflite", "fp32", status=s) for i, s in enumerate(statuses)]
    got = analysis.failure(rows)
    assert (got is None) if error is None else type(got) is error
    assert analysis.overall(rows)[1] == (0 if error is None else error.exit_code)


def test_emulated_rows_have_no_speedups_and_no_latency_gates():
    rows = [row("qemu", "f.tflite", "fp32", p50=3.0), row("qemu", "i.tflite", "int8", p50=2.9)]
    for emulated in rows:
        emulated.emulated = "qemu-user 10.0 aarch64"
    ups = analysis.speedups(rows)
    assert ups == [] and analysis.apply_gates(rows, ups, 0.001, "p50_ms", 2.0) == []
    assert [r.status for r in rows] == ["ok", "ok"]
