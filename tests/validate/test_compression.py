"""Is it really compressed? MAC shares and op kinds of real INT8 artifacts, and the flags."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.inspect import inspect_onnx
from edgekit.backends.onnx.quantize import quantize_qdq
from edgekit.pipeline.gates import flag_artifacts
from edgekit.report.schema import ArtifactEntry
from edgekit.validate.latency import summarize_latencies


def _matmul_model(under_if: bool, runtime_condition: bool = False) -> onnx.ModelProto:
    """x [1, 16] -> MatMul 16x32 -> Relu -> MatMul 32x8, at top level or inside both branches of an If."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 32)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (32, 8)).astype(np.float32), "w2")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])

    def body(suffix):
        return [helper.make_node("MatMul", ["x", "w1"], [f"h{suffix}"]),
                helper.make_node("Relu", [f"h{suffix}"], [f"r{suffix}"]),
                helper.make_node("MatMul", [f"r{suffix}", "w2"], [f"y{suffix}"])]
    if not under_if:
        nodes = body("")
        nodes[-1].output[0] = "y"
        graph = helper.make_graph(nodes, "plain", [x], [y], inits)
    else:
        branches = [helper.make_graph(body(s), f"branch{s}", [], [helper.make_tensor_value_info(
            f"y{s}", TensorProto.FLOAT, [1, 8])]) for s in ("_a", "_b")]
        nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=branches[0], else_branch=branches[1])]
        if runtime_condition:  # cond = sum(x) > 0: no pass can fold it
            inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
            nodes[:0] = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
                         helper.make_node("Greater", ["total", "zero"], ["cond"])]
        else:
            inits.append(numpy_helper.from_array(np.array(True), "cond"))
        graph = helper.make_graph(nodes, "iffy", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _quantized(tmp_path, under_if):
    fp32, int8 = tmp_path / f"m{under_if}.onnx", tmp_path / f"m{under_if}_int8.onnx"
    onnx.save(_matmul_model(under_if), str(fp32))
    rng = np.random.default_rng(1)
    samples = [{"x": rng.normal(0, 1, (1, 16)).astype(np.float32)} for _ in range(8)]
    quantize_qdq(fp32, int8, lambda: iter(samples))
    return inspect_onnx(int8)


def test_onnx_qdq_artifact_reports_int8_macs(tmp_path):
    counts, dtypes, summary = _quantized(tmp_path, under_if=False)
    assert counts["QuantizeLinear"] >= 1 and dtypes and all(k.split("/")[0] in ("int8", "uint8") for k in dtypes)
    assert summary["macs"] == 16 * 32 + 32 * 8 and summary["mac_share"] == {"int8": 1.0}
    assert summary["ops"] == {"quantized": 2, "conversion": 8}  # the Relu folds into the quantized MatMul


def test_int8_onnx_with_everything_under_if_is_flagged(tmp_path):
    counts, dtypes, summary = _quantized(tmp_path, under_if=True)
    assert "QuantizeLinear" not in counts and dtypes == {"float32/float32": 4}
    assert summary["mac_share"] == {"float32": 1.0} and summary["compute_ops"] == {"float32": 4}
    entry = _entry("int8", 1.0, compression=summary)
    notes = flag_artifacts([entry])
    assert entry.flags == ["int8_quantized_nothing"]
    assert "quantized nothing: 0% of conv/matmul MACs" in notes[0]


def _entry(precision, p50, target="onnx", compression=None):
    return ArtifactEntry(name=f"m_{precision}.{target}", path="m", format=target, target=target, precision=precision,
                         bytes=1, size_ratio=1.0, sha256="0", compression=compression or {},
                         latency=summarize_latencies([p50] * 5, warmup_runs=0))


def test_int8_slower_than_fp32_is_flagged_with_both_numbers():
    fast, slow = _entry("fp32", 0.69, "tflite"), _entry("int8", 1.235, "tflite")
    notes = flag_artifacts([fast, slow])
    assert slow.flags == ["int8_slower_than_fp32"] and fast.flags == []
    assert notes == ["m_int8.tflite: INT8 host p50 1.235 ms is above FP32's 0.690 ms (1.79x)"]
    assert flag_artifacts([fast, _entry("int8", 0.5, "tflite")]) == []


def test_compress_flags_an_onnx_int8_that_quantized_nothing(tmp_path, edgekit_cli):
    import json

    model = tmp_path / "iffy.onnx"
    onnx.save(_matmul_model(under_if=True, runtime_condition=True), str(model))
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "batch.npz", x=np.random.default_rng(3).normal(0, 1, (24, 1, 16)).astype(np.float32))
    out = tmp_path / "out"
    result = edgekit_cli("compress", model, "--int8", "-c", data, "--out", out, "--runs", "3", "--quiet")
    assert result.code == 0, result.err
    report = json.loads((out / "report.json").read_text())
    int8 = next(a for a in report["artifacts"] if a["precision"] == "int8")
    assert "int8_quantized_nothing" in int8["flags"] and int8["compression"]["mac_share"] == {"float32": 1.0}
    assert any("iffy_int8.onnx: INT8 artifact quantized nothing" in n for n in report["notes"])
    assert "int8_quantized_nothing" in (out / "report.md").read_text()


def test_a_search_met_within_sampling_noise_is_flagged_with_its_bound():
    """1.0 agreement on 66 samples cannot tell 0.99 from 0.95 (measured: a TensorRT classifier search
    met 0.99 on 66 lines, then agreed on 0.955 of 600 fresh ones); 0.995 on 5000 can."""
    from edgekit.debug.scoring import Budget, confidence

    budget = Budget(min_agreement=0.99, min_sequence_match=0.9)
    bounds = confidence(budget, {"top1_agreement": 1.0, "sequence_match": 0.95, "sqnr_db": 30.0}, 66)
    assert set(bounds) == {"top1_agreement", "sequence_match"}
    assert bounds["top1_agreement"]["lower_95"] == 0.945  # Wilson: 66 / (66 + 1.96^2)
    assert confidence(budget, {"top1_agreement": 0.995}, 5000)["top1_agreement"]["lower_95"] > 0.99
    entry = _entry("int8", 1.0)
    entry.details = {"fallback": {"met": True, "confidence": {**bounds, "candidates": 46}}}
    notes = flag_artifacts([entry])
    assert entry.flags == ["met_within_noise", "met_within_noise"]
    assert notes[0] == ("m_int8.onnx: the search met top1_agreement >= 0.99 with 1 on 66 held-out samples (the "
                        "search's own samples, after 46 candidates); the 95% lower bound is 0.945: more validation "
                        "samples would tell whether it holds")
    entry.details["fallback"]["confidence"].update(candidates=2, confirmed=True)
    assert "with 1 on 66 held-out samples (2 step(s) confirmed on held-out samples the search did not use)" \
        in flag_artifacts([entry])[0]
    entry.details["fallback"]["confidence"] = {**confidence(budget, {"top1_agreement": 0.995}, 5000),
                                               "candidates": 46}
    assert flag_artifacts([entry]) == [] and entry.flags == []


def test_float_near_ties_past_what_the_budget_lets_differ_are_flagged():
    """A sample whose float decision is a near tie flips under quantization noise of any size (on
    600 rendered lines the PaddleOCR recognizer has 70 with a position whose top two classes are
    < 0.05 apart): where there are more of them than the floor lets differ, single samples decide."""
    from edgekit.debug.scoring import Budget
    from edgekit.pipeline.fallback_stage import near_tie_record
    from edgekit.validate import task_metrics

    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.0, (40, 1, 12, 6))
    logits[..., 0] += 6.0  # a dominant blank, far from any tie
    tied = [3, 7, 11, 20, 33]
    logits[tied, 0, 5, 2] = logits[tied, 0, 5, 0] - 0.02  # one near-tie timestep each
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.flatnonzero(task_metrics.near_ties(probs, -1)).tolist() == tied
    assert np.flatnonzero(task_metrics.near_ties(logits, -1)).tolist() == tied  # logits: the same margins
    assert not task_metrics.near_ties(probs, -1, margin=0.01).any()
    reference = [{"probs": p.astype(np.float32)} for p in probs]
    record = near_tie_record(Budget(min_sequence_match=0.95), reference, None, 24)
    assert record == {"metric": "sequence_match", "limit": 0.95, "margin": 0.05,
                      "search": {"samples": 24, "near_ties": 4, "may_differ": 1},
                      "confirmation": {"samples": 16, "near_ties": 1, "may_differ": 0}}
    assert near_tie_record(Budget(min_sqnr_db=30.0), reference, None, 24) is None  # no per-sample floor
    entry = _entry("int8", 1.0)
    entry.details = {"fallback": {"met": True, "near_ties": record}}
    assert flag_artifacts([entry]) == [
        "m_int8.onnx: 4 of the search's 24 held-out samples are float near ties (top two classes < 0.05 apart "
        "in log-probability somewhere: any quantization noise may flip them), and sequence_match >= 0.95 lets 1 "
        "differ: steps near the budget are decided by single samples; more held-out samples narrow it"]
    assert entry.flags == ["near_ties_decide"]
    record["search"]["may_differ"] = 4
    assert flag_artifacts([entry]) == [] and entry.flags == []
