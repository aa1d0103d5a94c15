"""Issue #10 bug 3, TensorFlow side: an RNN state [2, batch, H] gets its unknown batch (axis 1) = 1."""

from __future__ import annotations

import numpy as np

from edgekit.model.checks import check_model_path
from edgekit.sources.tensorflow import SIGNATURE, export_fixed_savedmodel, load_fixed


def test_the_state_batch_on_axis_1_becomes_1(tmp_path):
    import tensorflow as tf

    class Cell(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(np.full((4, 3), 0.1, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([2, None, 3], tf.float32, name="state")])
        def serve(self, x, state):
            h = tf.tanh(x @ self.w + state[0])
            return {"h": h, "stateN": tf.stack([h, state[1]])}

    cell = Cell()
    tf.saved_model.save(cell, str(tmp_path / "cell"), signatures={SIGNATURE: cell.serve})
    exported = export_fixed_savedmodel(check_model_path(tmp_path / "cell"), tmp_path / "work", {})
    assert exported.fixed_dims == {"x": {"from": "?x4", "to": "1x4"},
                                   "state": {"from": "2x?x3", "to": "2x1x3", "batch_axis": "1"}}
    outputs = load_fixed(exported.saved_dir).signatures[SIGNATURE](
        x=tf.ones([1, 4]), state=tf.zeros([2, 1, 3]))
    assert outputs["stateN"].shape == (2, 1, 3)
