import math

import numpy as np
import pytest

from edgekit.validate import metrics


def test_identical_arrays():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert metrics.max_abs_error(a, a) == 0.0
    assert metrics.max_rel_error(a, a) == 0.0
    assert metrics.cosine(a, a) == pytest.approx(1.0)
    assert metrics.sqnr_db(a, a) == math.inf
    assert metrics.top1_agreement([a], [a]) == 1.0


def test_known_values():
    ref = np.array([1.0, -2.0, 4.0])
    test = np.array([1.5, -2.0, 3.0])
    assert metrics.max_abs_error(ref, test) == pytest.approx(1.0)
    assert metrics.max_rel_error(ref, test) == pytest.approx(0.5)
    noise = 0.25 + 1.0
    assert metrics.sqnr_db(ref, test) == pytest.approx(10 * math.log10(21.0 / noise))
    assert metrics.cosine(ref, -ref) == pytest.approx(-1.0)
    assert metrics.max_rel_error(np.array([0.0]), np.array([1.0])) == math.inf


def test_zero_vectors_and_shape_mismatch():
    z = np.zeros(4)
    assert metrics.cosine(z, z) == 1.0
    assert metrics.cosine(z, np.ones(4)) == 0.0
    assert metrics.sqnr_db(z, np.ones(4)) == -math.inf
    with pytest.raises(ValueError):
        metrics.max_abs_error(np.zeros(3), np.zeros(4))


def test_top1_agreement_counts_rows_across_batches():
    ref = [np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0.3, 0.7]])]
    test = [np.array([[0.2, 0.8], [0.1, 0.9]]), np.array([[0.4, 0.6]])]
    assert metrics.top1_agreement(ref, test) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        metrics.top1_agreement([], [])


def test_log_prob_noise_on_the_classes_in_contention():
    ref = np.array([[0.5, 0.5, 0.0], [0.1, 0.9, 0.0]])
    test = np.array([[0.25, 0.75, 0.0], [0.0, 1.0, 0.0]])  # class 0 of row 1 rounded to 0: clipped at 1e-4
    expected = [math.log(0.5) ** 2, math.log(1.5) ** 2, math.log(1e-4 / 0.1) ** 2, math.log(1 / 0.9) ** 2]
    assert metrics.log_prob_noise(ref, test) == pytest.approx(np.mean(expected))
    assert metrics.log_prob_noise(ref, ref) == 0.0
    assert metrics.log_prob_noise(ref * 3, test) is None  # logits, not probabilities
    assert metrics.log_prob_noise(ref[:, :1], test[:, :1]) is None  # one class


def test_compare_reports_log_prob_noise_of_probability_outputs_only():
    from edgekit.validate.evaluate import compare

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 1, 10, 7))  # [batch 1, timesteps, classes] per sample
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    noisy = probs * np.exp(rng.normal(0, 0.01, probs.shape))
    noisy /= noisy.sum(-1, keepdims=True)
    ref = [{"prob": p.astype(np.float32)} for p in probs]
    report = compare(ref, [{"prob": p.astype(np.float32)} for p in noisy], [None] * 4)
    assert report.primary_role == "sequence" and 0 < report.log_prob_noise < 1e-3
    logit_ref = [{"logits": x.astype(np.float32)} for x in logits]
    assert compare(logit_ref, logit_ref, [None] * 4).log_prob_noise is None
