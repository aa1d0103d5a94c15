"""Gates on the primary output's headline, and the default collapse guard."""

from __future__ import annotations

import pytest

from edgekit.pipeline.gates import evaluate_gates
from edgekit.recipe.schema import Gates
from edgekit.report.schema import ArtifactEntry
from edgekit.validate.evaluate import AccuracyReport


def entry(precision="int8", **acc):
    fields = dict(samples=10, primary_output="ctc", primary_role="sequence", max_abs_error=0.1, cosine=0.99,
                  sqnr_db=20.0, worst_group="rows 0-9", worst_group_sqnr_db=20.0, outputs={})
    fields.update(acc)
    return ArtifactEntry(name=f"m_{precision}.tflite", path="m", format="tflite", target="tflite",
                         precision=precision, bytes=10, size_ratio=1.0, sha256="0",
                         accuracy=AccuracyReport(**fields))


def by_gate(results):
    return {g.gate: g for g in results}


def test_min_sequence_match_gate_reads_the_sequence_output():
    gates = Gates(min_sequence_match=0.9)
    passed = by_gate(evaluate_gates(entry(top1_agreement=0.99, sequence_match=0.95), gates, False))
    assert passed["min_sequence_match"].passed and passed["min_sequence_match"].value == 0.95
    missed = by_gate(evaluate_gates(entry(top1_agreement=0.99, sequence_match=0.6), gates, False))
    assert not missed["min_sequence_match"].passed
    wrong = by_gate(evaluate_gates(entry(primary_role="scores", top1_agreement=0.99), gates, False))
    assert not wrong["min_sequence_match"].passed
    assert "needs a sequence output; primary output `ctc` is scores" in wrong["min_sequence_match"].detail


def test_collapse_guard_floors_and_switch():
    ok = by_gate(evaluate_gates(entry(top1_agreement=0.94, sequence_match=0.9), Gates(), False))
    assert ok["collapse_guard"].passed
    collapsed = by_gate(evaluate_gates(entry(top1_agreement=0.94, sequence_match=0.3), Gates(), False))
    assert not collapsed["collapse_guard"].passed
    assert "output `ctc` sequence match 0.3 < floor 0.5" in collapsed["collapse_guard"].detail
    rows = by_gate(evaluate_gates(entry(primary_role="boxes", box_f1=0.2, worst_group="rows 4-83",
                                        worst_group_sqnr_db=1.2), Gates(), False))["collapse_guard"]
    assert rows.detail.startswith("output `ctc` rows 4-83 SQNR (dB) 1.2 < floor 3") and "box F1" in rows.detail
    labels = by_gate(evaluate_gates(entry(top1_agreement=0.9, accuracy=0.3, reference_accuracy=0.8),
                                    Gates(), False))["collapse_guard"]
    assert not labels.passed and "accuracy (float 0.8) 0.3 < floor 0.4" in labels.detail
    assert "collapse_guard" not in by_gate(evaluate_gates(entry(sequence_match=0.1), Gates(collapse_guard=False),
                                                          False))
    assert "collapse_guard" not in by_gate(evaluate_gates(entry("fp32", sequence_match=0.1), Gates(), True))
    assert "collapse_guard" not in by_gate(evaluate_gates(entry("dynamic", sequence_match=0.1), Gates(), False))


def test_gate_flags_become_recipe_overrides():
    from edgekit.cli.options import gate_overrides
    from edgekit.recipe.loader import load_recipe

    opts = {"min_sequence_match": 0.9, "min_map_iou": None, "min_box_f1": 0.7, "no_collapse_guard": True,
            "primary_output": "speech"}
    recipe, _ = load_recipe(None, gate_overrides(opts))
    g = recipe.gates
    assert (g.min_sequence_match, g.min_map_iou, g.min_box_f1, g.collapse_guard) == (0.9, None, 0.7, False)
    assert recipe.outputs["speech"].primary and recipe.outputs["speech"].role is None
    assert Gates().collapse_guard  # on by default


def test_two_primary_outputs_are_a_recipe_error():
    from edgekit.errors import RecipeError
    from edgekit.recipe.loader import parse_recipe

    with pytest.raises(RecipeError, match="only one output can be primary"):
        parse_recipe("outputs:\n  a: {primary: true}\n  b: {primary: true}\n", "r.yaml")


def test_a_fallback_choice_refuted_on_unseen_samples_fails_although_the_whole_split_passes():
    gates = Gates(min_sequence_match=0.97)
    artifact = entry(top1_agreement=0.995, sequence_match=0.976)  # 1.0 searched, 0.952 unseen: 0.976 overall
    artifact.details = {"fallback": {"final_confirmation": {"samples": 62, "met": False, "shortfall": 1.8,
                                                            "accuracy": {"sequence_match": 0.952}}}}
    results = by_gate(evaluate_gates(artifact, gates, False))
    assert results["min_sequence_match"].passed and not results["fallback_confirmation"].passed
    assert results["fallback_confirmation"].detail == ("the search's choice missed its budget by 1.8 on 62 held-out "
                                                       "samples it did not use (sequence_match 0.952)")
    artifact.details["fallback"]["final_confirmation"].update(met=True, shortfall=0.0)
    assert "fallback_confirmation" not in by_gate(evaluate_gates(artifact, gates, False))
