"""Channel-group activation scales: a conv/matmul split by input channels, each group its own INT8 scale (issue #13)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.backends.onnx.channel_groups import SEP, group_channels
from edgekit.debug.scoring import Budget, Evaluator

WIDE = (3, 11)  # the input channels 40x and 120x wider than the other 14


def _spread(rng, shape, axis):
    """Normal inputs whose WIDE channels (on `axis`) are 40x and 120x wider."""
    x = rng.normal(0, 1, shape).astype(np.float32)
    scale = np.ones(shape[axis], np.float32)
    scale[list(WIDE)] = (40.0, 120.0)
    return x * scale.reshape([-1 if a == axis % len(shape) else 1 for a in range(len(shape))])


def _model(path, op: str):
    """x (16 channels, two of them wide) -> Conv 1x1 (16 -> 8) or MatMul (16 -> 8) -> Relu."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (8, 16, 1, 1) if op == "Conv" else (16, 8)).astype(np.float32)
    w[(slice(None), list(WIDE)) if op == "Conv" else list(WIDE)] *= 0.5  # the wide channels matter, not more
    shape, out = ([1, 16, 6, 6], [1, 8, 6, 6]) if op == "Conv" else ([1, 10, 16], [1, 10, 8])
    nodes = [helper.make_node(op, ["x", "w"], ["y"], "mix"), helper.make_node("Relu", ["y"], ["out"], "act")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out)],
                              [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path, shape


def _feeds(shape, count, seed):
    rng = np.random.default_rng(seed)
    return [{"x": _spread(rng, shape, 1 if len(shape) == 4 else -1)} for _ in range(count)]


@pytest.fixture(params=["Conv", "MatMul"])
def mixed(request, tmp_path):
    from edgekit.backends.onnx.ladder import OnnxLadder
    from edgekit.runtime.onnx import OnnxRunner

    path, shape = _model(tmp_path / "mix.onnx", request.param)
    ladder = OnnxLadder(path, lambda: iter(_feeds(shape, 24, 1)))
    feeds = _feeds(shape, 16, 2)
    reference = OnnxRunner(path, 1)
    yield ladder, Evaluator(feeds, [reference.run(f) for f in feeds], [None] * len(feeds))
    ladder.close()


def _error(ladder, evaluator, levels) -> float:
    runner = ladder.runner(ladder.build(levels), 1)
    return float(np.mean([np.square(runner.run(f)["out"] - r["out"]).mean()
                          for f, r in zip(evaluator.feeds, evaluator.reference)]))


def test_groups_partition_the_channels_and_set_the_wide_ones_apart():
    low = -np.ones(16)
    high = np.ones(16)
    high[list(WIDE)] = (40.0, 120.0)
    groups, gain = group_channels(low, high, np.ones(16), groups=4)
    assert sorted(np.concatenate(groups).tolist()) == list(range(16))
    assert [g.tolist() for g in groups] == [[c for c in range(16) if c not in WIDE], [3], [11]]  # no needless cut
    assert gain == pytest.approx(16 * 121 ** 2 / (14 * 2 ** 2 + 41 ** 2 + 121 ** 2))  # spans 2, 41, 121 vs 121
    high[:8] = np.arange(2.0, 10.0)
    assert len(group_channels(low, high, np.ones(16), groups=4)[0]) == 4
    assert len(group_channels(low, high, np.ones(16), groups=32)[0]) <= 16


def test_channel_groups_cut_the_int8_error_and_stay_w8a8(mixed):
    ladder, evaluator = mixed
    unit = ladder.graph.unit_of["x"]
    assert ladder.group_units() == [unit]  # channel groups cut its INT8 noise >= GROUP_GAIN times
    int8, grouped, int16 = (_error(ladder, evaluator, levels)
                            for levels in ({}, {unit: "groups"}, {unit: "int16"}))
    # one scale over +-360 leaves the narrow channels ~2.8 per step: the groups give them their own
    assert grouped < int8 / 8, (int8, grouped)
    assert grouped < 4 * int16, (grouped, int16)
    rows = ladder.layer_map(ladder.build({unit: "groups"}), {})
    assert {row["precision"] for row in rows} == {"W8A8"} and all(SEP in row["layer"] for row in rows)
    whole = ladder.layer_map(ladder.build({}), {})
    assert sum(row["macs"] for row in rows) == whole[0]["macs"] > 0
    assert ladder.off_w8a8_macs({unit: "groups"}) == 0
    graph = onnx.load_from_string(ladder.build({unit: "groups"})).graph
    quantize = [n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"]
    assert "x" not in quantize and sum(SEP in q for q in quantize) == len(rows) > 1  # the whole-tensor Q/DQ went
    assert "mix" not in {n.name for n in graph.node}


def test_a_reader_with_raised_weights_is_not_split(mixed):
    from edgekit.backends.onnx.qdq_edit import weight_key

    ladder, _ = mixed
    unit = ladder.graph.unit_of["x"]
    rows = ladder.layer_map(ladder.build({unit: "groups", weight_key("mix"): "int16"}), {})
    assert [(row["layer"], row["precision"]) for row in rows] == [("mix", "W16A8")]


def test_a_recipe_carries_the_channel_ranges(mixed):
    ladder, evaluator = mixed
    unit = ladder.graph.unit_of["x"]
    ladder.channel_ranges()
    recipe = ladder.recipe()
    assert "channel_tensors=1" in repr(recipe) and "channel_ranges" not in repr(recipe)
    assert "regrouped=1" in repr(recipe) and "group_weights" not in repr(recipe)
    other = recipe.open()
    try:
        assert other.build({unit: "groups"}) == ladder.build({unit: "groups"})
    finally:
        other.close()


def test_the_descent_ends_w8a8_with_channel_groups(mixed):
    """A budget plain INT8 misses (26 dB) and the channel groups meet (38 dB): the descent from all
    int16 ends with every MAC W8A8."""
    from edgekit.debug.ladder import ladder_details, run_ladder

    ladder, evaluator = mixed
    unit = ladder.graph.unit_of["x"]
    result, ranking = run_ladder(ladder, evaluator, Budget(min_sqnr_db=30), measure_latency=False)
    assert not result.steps[0].met and result.met, [(s.phase, s.accuracy.get("sqnr_db")) for s in result.steps]
    assert result.best.precisions == {unit: "groups"}
    assert [row.low for row in ranking if row.node == unit] == ["groups"]  # ranked, and lowered, with its groups
    details = ladder_details(ladder, evaluator, result, ranking)
    assert details["mac_share"] == {"W8A8": 1.0}


def test_a_relu_folded_into_a_graph_output_stays_at_int16_and_float(mixed):
    """onnxruntime renames the tensor it quantizes before a graph output and folds the Relu into its
    range: int16 keeps exactly that range (no negative step) and float puts the Relu back."""
    ladder, evaluator = mixed
    every = {u.id: "int16" for u in ladder.graph.units}
    for levels in (every, {u: "float" for u in every}):
        runner = ladder.runner(ladder.build(levels), 1)
        assert min(float(runner.run(f)["out"].min()) for f in evaluator.feeds) == 0.0


def test_channel_groups_off_leaves_one_scale_per_tensor(tmp_path):
    """int8.channel_groups: false (recipe) -> the ladder offers no channel-group units."""
    from edgekit.backends.onnx.ladder import OnnxLadder
    from edgekit.recipe.schema import Int8

    assert Int8().channel_groups and not Int8(channel_groups=False).channel_groups
    path, shape = _model(tmp_path / "mix.onnx", "Conv")
    ladder = OnnxLadder(path, lambda: iter(_feeds(shape, 24, 1)), channel_groups=False)
    try:
        assert ladder.group_units() == []
    finally:
        ladder.close()


def test_each_group_gets_int8_weight_scales_of_its_own(mixed):
    """The split conv/matmul's groups read GPTQ-rounded INT8 weights on one scale per output
    channel and group (the group's peak |w| / 127), which lowers the error of shared-scale slices."""
    from edgekit.backends.onnx.channel_groups import REGROUPED

    ladder, evaluator = mixed
    unit = ladder.graph.unit_of["x"]
    graph = onnx.load_from_string(ladder.build({unit: "groups"})).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    made = {out: n for n in graph.node for out in n.output}
    w = numpy_helper.to_array(ladder.fp32.graph.initializer[0])
    parts = [n for n in graph.node if SEP in n.name and n.op_type in ("Conv", "MatMul")]
    assert len(parts) > 1
    for part in parts:
        dq = made[part.input[1]]
        channels = inits[f"{part.name}_channels"]
        out_axis = 0 if part.op_type == "Conv" else 1
        assert dq.input[0].endswith(REGROUPED) and dq.attribute[0].i == out_axis
        peak = np.abs(np.take(w, channels, axis=1 - out_axis)).max(axis=tuple(a for a in range(w.ndim) if a != out_axis))
        np.testing.assert_allclose(inits[dq.input[1]], peak / 127, rtol=1e-6)
        assert np.abs(inits[dq.input[0]]).max() == 127
    regrouped = _error(ladder, evaluator, {unit: "groups"})
    ladder.groups._weights, ladder._cache = {}, {}  # the same groups over slices of the shared weights
    assert regrouped < _error(ladder, evaluator, {unit: "groups"})


def test_regrouped_weights_for_other_groups_are_refused(mixed):
    from edgekit.backends.onnx.channel_groups import split_reader

    ladder, _ = mixed
    integers, scales = ladder.groups.weights()["mix"]
    graph = onnx.ModelProto()
    graph.CopyFrom(ladder.plain.model)
    tensor = next(iter(ladder.channel_ranges()))
    with pytest.raises(ValueError, match="made for other channel groups"):
        split_reader(graph.graph, "mix", tensor, ladder.channel_ranges()[tensor],
                     weights=(integers, np.random.default_rng(0).uniform(0.5, 1, scales.shape).astype(np.float32)))
