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
