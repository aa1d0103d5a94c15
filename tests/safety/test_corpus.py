"""The malformed-input corpus through the CLI: never a signal, never a hang, always one line and a
documented exit code. Counts per category are printed (-s) and recorded as test properties."""

from __future__ import annotations

import collections
import json

import pytest

from tests.safety.corpus import Bases, generate
from tests.safety.runner import problems, run_pool, run_process

CASE_TIMEOUT = 180  # seconds per case (the first heavy one imports TensorFlow in a child)
HEAVY_SAMPLE = 1  # heavy cases per category in the default run; all of them under -m slow


@pytest.fixture(scope="module")
def corpus(gray_keras, gray_savedmodel, good_out, good_images, tmp_path_factory):
    bases = Bases(gray_keras, gray_savedmodel, good_out[0] / "model_fp32.tflite", good_images)
    return generate(tmp_path_factory.mktemp("corpus"), bases)


def _heavy_sample(cases, per_category: int):
    taken = collections.Counter()
    chosen = []
    for case in cases:
        if case.heavy and taken[case.category] < per_category:
            taken[case.category] += 1
            chosen.append(case)
    return chosen


def _report(cases, results, record_property, title: str) -> None:
    table = collections.defaultdict(collections.Counter)
    for case in cases:
        result = results[case.id]
        row = table[case.category]
        row["cases"] += 1
        row["heavy" if case.heavy else "light"] += 1
        row[f"exit {result.code}" if not (result.hung or result.signal) else "crash/hang"] += 1
        row["seconds"] += round(result.seconds, 1)
    print(f"\n{title}: {len(cases)} cases")
    for category, row in sorted(table.items()):
        print(f"  {category:<11} " + ", ".join(f"{k}={v:g}" for k, v in sorted(row.items())))
    record_property(title.replace(" ", "_"), json.dumps({k: dict(v) for k, v in table.items()}, sort_keys=True))


def _assert_all_answered(cases, results) -> None:
    failures = {case.id: problems(case, results[case.id]) for case in cases}
    failures = {k: v for k, v in failures.items() if v}
    assert not failures, json.dumps(failures, indent=1)


def test_corpus_is_big_and_varied(corpus):
    assert len(corpus) >= 200
    kinds = collections.Counter(case.category for case in corpus)
    for category in ("keras", "savedmodel", "onnx", "tflite", "npy", "npz", "image", "labels", "recipe"):
        assert kinds[category] >= 3, kinds


def test_corpus_light_cases_and_a_heavy_sample(corpus, record_property):
    """Every case the cheap checks answer (no TensorFlow), plus a sample that loads the model."""
    light = [case for case in corpus if not case.heavy]
    selected = light + _heavy_sample(corpus, HEAVY_SAMPLE)
    results = run_pool(selected, workers=2, timeout=CASE_TIMEOUT)
    _report(selected, results, record_property, "corpus default run")
    _assert_all_answered(selected, results)
    loaded = [case.id for case in light if results[case.id].heavy_imports]
    assert not loaded, f"cheap-check failures that imported a heavy framework: {loaded}"


def test_corpus_real_processes(corpus, record_property):
    """One light case per category as a real `python -m edgekit` process: same answers."""
    firsts = {}
    for case in corpus:
        if not case.heavy:
            firsts.setdefault(case.category, case)
    results = {case.id: run_process(case, CASE_TIMEOUT) for case in firsts.values()}
    _report(list(firsts.values()), results, record_property, "corpus real processes")
    _assert_all_answered(list(firsts.values()), results)


@pytest.mark.slow
def test_corpus_every_heavy_case(corpus, record_property):
    heavy = [case for case in corpus if case.heavy]
    results = run_pool(heavy, workers=2, timeout=CASE_TIMEOUT)
    _report(heavy, results, record_property, "corpus heavy cases")
    _assert_all_answered(heavy, results)
