"""The ONNX precision ladder on small built models: QDQ graph edits and the search (issue #13)."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.debug.scoring import Budget, Evaluator


def _head(path, seed: int = 0, batch=1):
    """A YOLO-style head: a shared Conv+Relu trunk, box rows in pixels (x 300) and class-sigmoid rows
    concatenated on the channel axis, then a Reshape to [1, 4 + 3 classes, 64 anchors] (so the
    Concat is not a graph output, which the default exclusions would keep float)."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.normal(0, 0.4, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.4, (4, 8, 1, 1)).astype(np.float32), "wbox"),
             numpy_helper.from_array(rng.normal(0, 0.4, (3, 8, 1, 1)).astype(np.float32), "wcls"),
             numpy_helper.from_array(np.array(300.0, np.float32), "pixels")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["t"], "trunk", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["t"], ["r"], "trunk_relu"),
             helper.make_node("Conv", ["r", "wbox"], ["b0"], "box_conv"),
             helper.make_node("Sigmoid", ["b0"], ["b1"], "box_sigmoid"),
             helper.make_node("Mul", ["b1", "pixels"], ["box"], "box_pixels"),
             helper.make_node("Conv", ["r", "wcls"], ["c0"], "cls_conv"),
             helper.make_node("Sigmoid", ["c0"], ["cls"], "cls_sigmoid"),
             helper.make_node("Concat", ["box", "cls"], ["head"], "head_concat", axis=1),
             helper.make_node("Reshape", ["head", "rows"], ["out"], "head_rows")]
    inits.append(numpy_helper.from_array(np.array([1, 7, 64], np.int64), "rows"))
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 7, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def _feeds(count: int, seed: int):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(count)]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """(OnnxLadder of the head, quantized once for the module; Evaluator on 16 held-out inputs)."""
    from edgekit.backends.onnx.ladder import OnnxLadder
    from edgekit.runtime.onnx import OnnxRunner

    path = _head(tmp_path_factory.mktemp("ladder") / "head.onnx")
    ladder = OnnxLadder(path, lambda: iter(_feeds(24, 1)))
    reference = OnnxRunner(path, 1)
    feeds = _feeds(16, 2)
    yield ladder, Evaluator(feeds, [reference.run(f) for f in feeds], [None] * len(feeds))
    ladder.close()


def _class_error(ladder, evaluator, levels) -> float:
    runner = ladder.runner(ladder.build(levels), 1)
    return max(float(np.abs(runner.run(f)["out"][:, 4:] - r["out"][:, 4:]).max())
               for f, r in zip(evaluator.feeds, evaluator.reference))


def test_edits_keep_the_range_at_int16_and_match_float_when_float(head):
    ladder, evaluator = head
    every = {u.id: "float" for u in ladder.graph.units}
    runner = ladder.runner(ladder.build(every), 1)
    for feed, ref in zip(evaluator.feeds, evaluator.reference):
        np.testing.assert_allclose(runner.run(feed)["out"], ref["out"], atol=2e-4)  # the folded Relu is back
    concat = ladder.graph.unit_of["head"]
    int8, int16 = (_class_error(ladder, evaluator, levels) for levels in ({}, {concat: "int16"}))
    # one INT8 scale over 0..300 pixels and 0..1 scores: a class step of ~1.2; int16 is 257x finer there
    assert int8 > 0.3 and int16 < int8 / 10, (int8, int16)  # the rest: the trunk and sigmoids at INT8


def test_heterogeneous_concat_is_found_from_ranges_and_ranked_first(head):
    from edgekit.debug.ladder import run_ladder
    from edgekit.debug.ladder_rank import rank_units

    ladder, evaluator = head
    found = ladder.heterogeneous()
    assert [f[2] for f in found] == ["head_concat"] and found[0][1] >= 100
    ranking = rank_units(ladder, evaluator)
    assert ranking[0].node == ladder.graph.unit_of["head"] and "head_concat" in ranking[0].heterogeneous
    result, _ = run_ladder(ladder, evaluator, Budget(min_box_f1=0.95), measure_latency=False)
    plain, final = result.steps[0].accuracy, result.best.accuracy
    print(f"yolo head: box F1 plain {plain['box_f1']}, ladder {final['box_f1']} ({result.best.precisions})")
    assert plain["primary_role"] == "boxes" and plain["box_f1"] < 0.95 and result.met, (plain, final)
    assert result.best.precisions.get(ladder.graph.unit_of["head"]) in ("int16", "float")
    assert _class_error(ladder, evaluator, result.best.precisions) < 0.1


def test_layer_map_counts_macs_per_precision(head):
    ladder, _ = head
    trunk_input = ladder.graph.unit_of["x"]
    rows = {r["layer"]: r for r in ladder.layer_map(ladder.build({trunk_input: "int16"}), {trunk_input: 0.5})}
    assert rows["trunk"]["precision"] == "W8A16" and rows["trunk"]["sensitivity"] == 0.5
    assert rows["box_conv"]["precision"] == "W8A8" and rows["trunk"]["macs"] == 8 * 8 * 8 * 27
    floated = {r["layer"]: r for r in ladder.layer_map(ladder.build({trunk_input: "float"}), {})}
    assert floated["trunk"]["precision"] == "float"


def test_macs_are_counted_with_a_dynamic_batch(tmp_path):
    """A dynamic batch (tf2onnx's unk__) left every MAC count 0: `edgekit debug` kept all int16."""
    from edgekit.backends.onnx.ladder import OnnxLadder

    ladder = OnnxLadder(_head(tmp_path / "dynamic.onnx", batch="N"), lambda: iter(_feeds(4, 1)))
    try:
        assert ladder.unit_macs()[ladder.graph.unit_of["x"]] == 8 * 8 * 8 * 27
    finally:
        ladder.close()


@pytest.mark.slow
def test_search_on_an_executor_is_the_serial_search(head, monkeypatch):
    """executor=: the rankings' and the descent grid's candidates run on worker processes (each
    opens the ladder from its picklable recipe once) beside this one; the steps and the result
    are the serial ones."""
    from edgekit.debug.ladder import run_ladder
    from edgekit.executor import open_executor

    ladder, evaluator = head
    budget = Budget(min_box_f1=0.95)

    def search(executor=None):
        result, ranking = run_ladder(ladder, evaluator, budget, measure_latency=False, executor=executor)
        steps = [(s.phase, s.precisions, s.accuracy, s.met, s.shortfall, s.quantization) for s in result.steps]
        return steps, result.best.precisions, result.model, [r.to_dict() for r in ranking]

    class Counted:  # the pool, counting the candidates that ran in its workers
        def __init__(self, pool):
            self.pool, self.jobs, self.hosts = pool, pool.jobs, []

        def map(self, tasks, on_done=lambda o: None):
            outcomes = self.pool.map(tasks, on_done)
            self.hosts += [o.result.host for o in outcomes if o.result is not None and o.task.name != "worker start-up"]
            return outcomes

        def share(self, obj):
            return self.pool.share(obj)

    serial = search()
    monkeypatch.setenv("EDGEKIT_WAIT_FOR_WORKERS", "1")  # the workers measure from the first batch on
    with open_executor(2) as pool:
        executor = Counted(pool)
        parallel = search(executor)
    assert len(serial[0]) >= 4 and parallel == serial
    # this process takes the first candidate of every batch (edgekit.executor.lanes), so on this
    # small search the workers get one task: what matters is that they ran some, not here
    assert executor.hosts and not any(h.endswith(f":{os.getpid()}") for h in executor.hosts)


def _cancelling_conv(path):
    """x -> Conv(k) -> Relu -> Conv(w) -> out, where k's 3x3 kernels have weights of +-1000 that
    sum to about 1 (an edge-like filter on a smooth input): per-channel INT8 rounds each weight by
    up to 1000/254, far more than the response itself. int16 activations cannot help; only float
    weights do."""
    rng = np.random.default_rng(3)
    k = np.array([[1000.0, -996.9, 1003.1], [-1002.6, 2.4, -998.3], [997.7, -1001.2, 996.7]], np.float32)
    kernels = np.stack([k * s for s in (1.0, -1.0, 0.5, 2.0)])[:, None]  # [4, 1, 3, 3]
    inits = [numpy_helper.from_array(kernels, "k"),
             numpy_helper.from_array(rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32), "w")]
    nodes = [helper.make_node("Conv", ["x", "k"], ["e"], "edge"),
             helper.make_node("Relu", ["e"], ["r"], "edge_relu"),
             helper.make_node("Conv", ["r", "w"], ["out"], "mix")]
    graph = helper.make_graph(nodes, "cancel", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2, 6, 6])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@contextlib.contextmanager
def _ladder_on(path, calibration: list, feeds: list, **options):
    """(OnnxLadder of `path` calibrated on `calibration` (options: OnnxLadder's), Evaluator on
    `feeds` against float)."""
    from edgekit.backends.onnx.ladder import OnnxLadder
    from edgekit.runtime.onnx import OnnxRunner

    ladder = OnnxLadder(path, lambda: iter(calibration), **options)
    try:
        reference = OnnxRunner(path, 1)
        yield ladder, Evaluator(feeds, [reference.run(f) for f in feeds], [None] * len(feeds))
    finally:
        ladder.close()


def test_the_float_rung_finds_a_conv_whose_int8_weights_cost_the_output(tmp_path):
    from edgekit.debug.ladder_rank import rank_float, rank_units
    from edgekit.debug.parallel_ladder import Candidates

    def smooth(count, seed):
        rng = np.random.default_rng(seed)
        return [{"x": (1 + 1e-4 * rng.normal(0, 1, (1, 1, 8, 8))).astype(np.float32)} for _ in range(count)]

    with _ladder_on(_cancelling_conv(tmp_path / "cancel.onnx"), smooth(16, 1), smooth(16, 2)) as (ladder, evaluator):
        feeds = evaluator.feeds
        noise = ladder.weight_noise(feeds, evaluator.ranking_noise)
        assert noise["x"] > 0.1 and noise["x"] > 100 * noise["r"], noise  # the edge conv's weights, not mix's
        every = {u: "int16" for u in ladder.units}
        ranking = rank_units(ladder, evaluator)
        assert rank_float(ladder, evaluator, Candidates(ladder), every, ranking)[0] == "x"
        row = next(r for r in ranking if r.node == "x")
        assert row.weight_noise == noise["x"] and row.float_gain > 0.1


def _outlier_weights(path):
    """x[1, 8, 8, 8] -> Conv(a, 1x1) -> Relu -> Conv(b, 3x3, pad 1) -> out. Each output channel of
    `a` has a weight of 100 on input channel 0, which the inputs leave near 0 (a dead channel), and
    weights of +-0.5 elsewhere: per-channel INT8 steps of 100/127 round the weights that matter to
    0 or 0.79, while every activation is well spread over its INT8 range."""
    rng = np.random.default_rng(5)
    a = rng.choice([-0.5, -0.3, 0.3, 0.5], (8, 8, 1, 1)).astype(np.float32)
    a[:, 0] = 100.0
    inits = [numpy_helper.from_array(a, "a"),
             numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "a"], ["h"], "mix"),
             helper.make_node("Relu", ["h"], ["r"], "mix_relu"),
             helper.make_node("Conv", ["r", "b"], ["out"], "spatial", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "outlier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _dead_channel_inputs(count, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (count, 1, 8, 8, 8)).astype(np.float32)
    x[:, :, 0] *= 1e-4  # the dead channel
    return [{"x": f} for f in x]


def test_the_weight_rung_fixes_int8_weights_and_keeps_the_rest_w8a8(tmp_path):
    """INT8 weights ruin one conv while its activations are fine: without channel groups the
    descent from W16A16 keeps only that conv's weights int16 (W16A8) and every other MAC W8A8.
    Before the weight rung int16 left weights INT8 and only float (WfA... or a float unit) could fix it."""
    from edgekit.backends.onnx.qdq_edit import weight_key
    from edgekit.debug.ladder import ladder_details, run_ladder

    model = _outlier_weights(tmp_path / "outlier.onnx")
    calibration, held_out = _dead_channel_inputs(32, 1), _dead_channel_inputs(32, 2)
    with _ladder_on(model, calibration, held_out, channel_groups=False) as (ladder, evaluator):
        only_weights = evaluator.accuracy(ladder, ladder.build({weight_key("mix"): "int16"}))
        assert only_weights.sqnr_db > 32, only_weights.sqnr_db  # int16 weights, INT8 activations: fixed
        result, ranking = run_ladder(ladder, evaluator, Budget(min_sqnr_db=28), measure_latency=False)
        plain = result.steps[0].accuracy["sqnr_db"]
        details = ladder_details(ladder, evaluator, result, ranking)
        precision = {row["layer"]: row["precision"] for row in details["layers"]}
        print(f"outlier weights: SQNR plain {plain:.1f} dB, ladder {result.best.accuracy['sqnr_db']:.1f} dB, "
              f"{result.best.precisions}, {details['mac_share']}")
        assert plain < 25 and result.met, (plain, result.best.accuracy)
        groups = {row.node: row.weights for row in ranking}
        assert groups == {"x": [weight_key("mix")], "r": [weight_key("spatial")]}, groups  # each with its readers'
        assert precision == {"mix": "W16A8", "spatial": "W8A8"}, precision
        assert "split" in [s.phase for s in result.steps if s.met]  # the group {x, mix's weights}, split
        assert details["mac_share"]["W8A8"] > 0.85


def test_regrouped_weights_keep_the_outlier_weights_conv_w8a8(tmp_path):
    """The same conv with channel groups: the dead input channel (its weights x100) gets an INT8
    weight scale of its own, so the whole model stays W8A8 and meets the budget the W16A8 point met."""
    from edgekit.debug.ladder import ladder_details, run_ladder

    model = _outlier_weights(tmp_path / "outlier.onnx")
    with _ladder_on(model, _dead_channel_inputs(32, 1), _dead_channel_inputs(32, 2)) as (ladder, evaluator):
        unit = ladder.graph.unit_of["x"]
        shared = evaluator.accuracy(ladder, ladder.build({unit: "groups"})).sqnr_db
        result, ranking = run_ladder(ladder, evaluator, Budget(min_sqnr_db=28), measure_latency=False)
        details = ladder_details(ladder, evaluator, result, ranking)
        print(f"outlier weights, regrouped: SQNR {result.best.accuracy['sqnr_db']:.1f} dB, {result.best.precisions}")
        assert result.met and result.best.precisions == {unit: "groups"}, result.best.precisions
        assert details["mac_share"] == {"W8A8": 1.0}
        assert ladder.quantization(result.best.precisions)["regrouped_weights"] == ["mix"]
        ladder.groups._weights = {}  # the same groups over slices of the shared INT8 weights
        ladder._cache.clear()
        plain_slices = evaluator.accuracy(ladder, ladder.build({unit: "groups"})).sqnr_db
        assert shared > plain_slices + 10 and plain_slices < 28, (shared, plain_slices)


def test_int16_keeps_the_values_the_int8_zero_point_rounding_cut_off(tmp_path):
    """onnxruntime rounds a uint8 zero point to an integer, which moves the grid's low end up to
    half a step above the calibrated minimum (here -0.35 -> -0.339). int16 over exactly that range
    clipped every value at a plateau below it (5% of them, like hardswish's -0.375 minimum on the
    recognizer, where 30-47% of some tensors sat there): one INT8 step of error that int16 kept."""
    from edgekit.backends.onnx.qdq_edit import weight_key

    def plateau(count, seed):
        rng = np.random.default_rng(seed)
        return [{"x": np.maximum(rng.uniform(-1, 12, (1, 4, 8, 8)), -0.35).astype(np.float32)} for _ in range(count)]

    w = numpy_helper.from_array(np.eye(4, dtype=np.float32)[:, :, None, None], "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["out"], "copy")], "plateau",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    path = tmp_path / "plateau.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with _ladder_on(path, plateau(8, 1), plateau(4, 2)) as (ladder, evaluator):
        low, _ = ladder.graph.range("x")
        assert low > -0.35 + 0.005, low  # the INT8 grid does not reach the plateau
        runner = ladder.runner(ladder.build({**{u: "int16" for u in ladder.units}, weight_key("copy"): "int16"}), 1)
        error = max(float(np.abs(runner.run(f)["out"] - f["x"]).max()) for f in evaluator.feeds)
        assert error < 1e-3, error
