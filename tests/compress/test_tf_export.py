"""The fixed-shape SavedModel export: only the signature's variables are saved, and a signature
that captures other resources (a lookup table) falls back to saving the whole loaded object."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.model.checks import check_model_path
from edgekit.sources.tensorflow import SIGNATURE, export_fixed_savedmodel, load_fixed


def _save(tmp_path, with_table: bool):
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([[1.0, 2.0, 3.0, 4.0]])
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(tf.constant([0, 1]), tf.constant([10.0, 20.0])), 0.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            y = x * self.w
            if with_table:
                y = y + self.table.lookup(tf.constant(1))
            return {"y": y}

    module = Scale()
    path = tmp_path / ("table" if with_table else "plain")
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.serve})
    return path


@pytest.mark.parametrize("with_table", [False, True])
def test_export_fixes_the_batch_and_keeps_the_outputs(tmp_path, with_table, monkeypatch):
    import tensorflow as tf

    source = _save(tmp_path, with_table)
    saves, save = [], tf.saved_model.save
    monkeypatch.setattr(tf.saved_model, "save", lambda *a, **k: saves.append(1) or save(*a, **k))
    exported = export_fixed_savedmodel(check_model_path(source), tmp_path / "work", {})
    assert len(saves) == (2 if with_table else 1)  # variables only; the table needs the whole object
    assert exported.fixed_dims == {"x": {"from": "?x4", "to": "1x4"}}
    x = np.array([[1.0, 1.0, 1.0, 1.0]], np.float32)
    y = load_fixed(exported.saved_dir).signatures[SIGNATURE](x=tf.constant(x))["y"].numpy()
    np.testing.assert_allclose(y, x * [1, 2, 3, 4] + (20.0 if with_table else 0.0))
