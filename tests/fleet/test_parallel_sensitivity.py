"""The sensitivity ranking measured here and on pool workers equals the serial one (a real TFLite model)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow  # the pool worker imports TensorFlow and calibrates its own backend: ~40 s loaded
def test_pool_ranking_equals_serial(tiny_keras, tmp_path):
    from edgekit.backends.tflite.selective import TfliteSelective
    from edgekit.debug.parallel import OnExecutor, TfliteSession
    from edgekit.debug.scoring import Evaluator
    from edgekit.debug.sensitivity import measure_sensitivity
    from edgekit.debug.sensitivity import serial as in_process
    from edgekit.executor.pool import PoolExecutor
    from edgekit.model.checks import check_model_path
    from edgekit.sources.tensorflow import export_fixed_savedmodel, reference_fn

    exported = export_fixed_savedmodel(check_model_path(tiny_keras), tmp_path, {})
    rng = np.random.default_rng(0)
    name = exported.inputs[0].name
    feeds = [{name: rng.random((1, 16, 16, 3), dtype=np.float32)} for _ in range(24)]
    reference = reference_fn(exported.saved_dir)
    evaluator = Evaluator(feeds[16:], [reference(f) for f in feeds[16:]], [None] * 8)
    calibration = feeds[:16]
    backend = TfliteSelective(exported.saved_dir, lambda: iter(calibration))
    ran = []  # the candidates the workers measured
    try:
        serial, base = measure_sensitivity(backend, evaluator)
        with PoolExecutor(2) as pool:
            session = TfliteSession(str(exported.saved_dir), calibration, evaluator)
            many = OnExecutor(pool, session, in_process(backend, evaluator))
            assert many.lanes.wait_ready(300)  # the workers measure from the first batch on
            remote = many._remote
            many._remote = lambda sets: ran.extend(sets) or remote(sets)
            pooled, pooled_base = measure_sensitivity(backend, evaluator, evaluate_many=many)
    finally:
        backend.close()
    assert len(serial) >= 2 and ran
    assert [r.to_dict() for r in pooled] == [r.to_dict() for r in serial]
    assert pooled_base == base
