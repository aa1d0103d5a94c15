"""Calibration checks, per-tensor metrics, budgets and selective builds, on real arrays/models."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.calibration.checks import calibration_warnings
from edgekit.validate.layer_error import ErrorAccumulator
from edgekit.debug.scoring import Budget
from edgekit.errors import UsageError
from edgekit.validate.evaluate import AccuracyReport


def _feeds(n, constant=False, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"image": np.full((1, 8, 8, 1), 0.5, np.float32) if constant else rng.random((1, 8, 8, 1), np.float32)}


def test_calibration_warnings_few_and_constant_samples():
    assert calibration_warnings(_feeds(120)) == []
    few = calibration_warnings(_feeds(20))
    assert len(few) == 1 and "only 20 calibration sample" in few[0]
    const = calibration_warnings(_feeds(150, constant=True))
    assert len(const) == 1 and "'image' is nearly constant" in const[0]


def test_calibration_warning_names_clipped_tensor():
    acc = ErrorAccumulator()
    ref = np.linspace(-1, 9, 100).reshape(1, 10, 10)
    acc.add(ref, np.clip(ref, -1, 3))
    error = acc.summary("model/conv/convolution", "conv", "CONV_2D", 0, 4 / 255, (-1.0, 3.0))
    warnings = calibration_warnings(_feeds(120), [error])
    assert len(warnings) == 1 and "'conv'" in warnings[0] and "model/conv/convolution" in warnings[0]


def test_error_accumulator_matches_numpy():
    rng = np.random.default_rng(1)
    acc = ErrorAccumulator()
    refs, tests = [], []
    for _ in range(5):
        ref = rng.normal(size=(1, 4, 4, 3))
        ref[..., 0] *= 100  # an outlier channel
        test = ref + rng.normal(scale=0.1, size=ref.shape)
        acc.add(ref, test)
        refs.append(ref), tests.append(test)
    ref, test = np.concatenate(refs), np.concatenate(tests)
    error = acc.summary("n", "l", "CONV_2D", 0, 0.05)
    assert error.rmse == pytest.approx(np.sqrt(np.mean((ref - test) ** 2)), rel=1e-6)
    assert error.rmse_over_scale == pytest.approx(error.rmse / 0.05, rel=1e-4)
    assert error.max_abs_error == pytest.approx(np.max(np.abs(ref - test)), rel=1e-6)
    assert error.sqnr_db == pytest.approx(10 * np.log10(np.sum(ref**2) / np.sum((ref - test) ** 2)), abs=1e-3)
    assert error.scale_outlier and error.channel_range_ratio > 16


def _acc(drop=None, agreement=None, sqnr=None):
    return AccuracyReport(samples=10, top1_agreement=agreement, accuracy_drop_pts=drop, max_abs_error=0.0,
                          cosine=1.0, sqnr_db=sqnr, outputs={})


def test_budget():
    with pytest.raises(UsageError):
        Budget()
    budget = Budget(max_accuracy_drop=1.0, min_sqnr_db=20)
    assert budget.met(_acc(drop=0.5, sqnr=25.0)) and not budget.met(_acc(drop=2.0, sqnr=25.0))
    assert budget.shortfall(_acc(drop=2.0, sqnr=15.0)) == pytest.approx(6.0)
    with pytest.raises(UsageError, match="labels"):
        budget.met(_acc(sqnr=30.0))
    assert Budget(min_agreement=0.99).shortfall(_acc(agreement=0.97)) == pytest.approx(2.0)


class _Backend:
    """Float sets -> model bytes, for run_fallback; the SQNR of each set comes from `score`."""

    def __init__(self, names):
        from edgekit.backends.selective import QuantNode

        self._nodes = [QuantNode(n, "Conv", f"layer_{n}", i) for i, n in enumerate(names)]

    def nodes(self):
        return self._nodes

    def build(self, float_nodes=()):
        return ",".join(sorted(float_nodes)).encode()

    def quantization(self, float_nodes):
        return {"per_channel": True}


class _Evaluator:
    def __init__(self, score):
        self.score = score

    def subset(self, count):
        return self

    def accuracy(self, backend, model: bytes):
        return _acc(sqnr=self.score(set(filter(None, model.decode().split(",")))))


def _fallback(score, names="ABCD", evaluator=_Evaluator, **kwargs):
    from edgekit.debug.fallback import run_fallback
    from edgekit.debug.sensitivity import NodeSensitivity

    backend = _Backend(list(names))
    ranking = [NodeSensitivity(n.id, n.layer, n.op_type, n.index) for n in backend.nodes()]
    return run_fallback(backend, evaluator(score), Budget(min_sqnr_db=25.0), ranking=ranking,
                        measure_latency=False, **kwargs)


def test_fallback_keeps_a_pair_that_helps_only_together():
    result = _fallback(lambda s: 30.0 if {"A", "B"} <= s else 16.0)
    assert result.met and result.float_nodes == ["A", "B"]


def test_unmet_fallback_prunes_the_nodes_that_made_it_worse():
    # C hurts (errors interact): greedy adds A, B, C, D; the prune drops C and B
    result = _fallback(lambda s: 16 + 5 * ("A" in s) - ("B" in s) - 7 * ("C" in s) + 2 * ("D" in s),
                       max_float_layers=4)
    assert not result.met and sorted(result.float_nodes) == ["A", "D"] and result.best.accuracy["sqnr_db"] == 23
    assert [s.phase for s in result.steps].count("prune") == 4


def test_a_small_integer_setting_held_constant_is_not_a_calibration_warning():
    rng = np.random.default_rng(0)
    feeds = [{"audio": rng.normal(size=(1, 64)).astype(np.float32), "sr": np.array(16000, np.int64),
              "gain": np.full((1, 4), 0.5, np.float32)} for _ in range(120)]
    warnings = calibration_warnings(feeds)
    assert not any("'sr'" in w for w in warnings)
    assert any("'gain' is nearly constant" in w for w in warnings)


class _Lanes:
    """A ranking `evaluate_many` whose `builds` measures 3 float sets per call (the workers' lanes)."""

    def __init__(self, backend, evaluator):
        self.backend, self.evaluator, self.batches = backend, evaluator, []
        self.width = 1

    def __call__(self, float_sets):
        return [self.evaluator.accuracy(self.backend, self.backend.build(s)) for s in float_sets]

    def builds(self, evaluator):
        outer = self

        class Builds:
            width = 3

            def __call__(self, float_sets):
                outer.batches.append([list(s) for s in float_sets])
                return [(outer.backend.build(s), evaluator.accuracy(outer.backend, outer.backend.build(s)))
                        for s in float_sets]

        return Builds()


@pytest.mark.parametrize("score", [
    lambda s: 30.0 if {"B", "C"} <= s else 16.0,  # met by a pair that helps only together
    lambda s: 16 + 5 * ("A" in s) - ("B" in s) - 7 * ("C" in s) + 2 * ("D" in s) + 3 * ("E" in s),  # unmet
])
def test_greedy_and_prune_in_batches_record_the_serial_steps(score):
    from edgekit.debug.fallback import run_fallback

    def search(parallel):
        backend = _Backend(list("ABCDE"))
        lanes = []

        def many(evaluator):
            lanes.append(_Lanes(backend, evaluator))
            return lanes[-1]

        result = run_fallback(backend, _Evaluator(score), Budget(min_sqnr_db=25.0), measure_latency=False,
                              max_float_layers=5, parallel=many if parallel else None)
        steps = [(s.phase, s.float_nodes, s.accuracy, s.met) for s in result.steps]
        return steps, result.float_nodes, result.model, result.stopped, (lanes[0].batches if lanes else [])

    serial, batched = search(False), search(True)
    assert batched[:4] == serial[:4] and [s[0] for s in serial[0]].count("greedy") >= 2
    assert batched[4] and all(len(b) <= 3 for b in batched[4]) and max(len(b) for b in batched[4]) == 3


class _Unseen(_Evaluator):
    """The confirmation's samples: 25 of them, scored by their own `score`."""

    feeds = [None] * 25


class _Seen(_Unseen):
    feeds = [None] * 30


def test_confirmation_walks_back_to_the_cheapest_choice_that_holds_on_unseen_samples():
    # the search's samples meet with A alone; the unseen ones need A and B
    result = _fallback(lambda s: 30.0 if "A" in s else 16.0, names="BACD",
                       confirm=_Unseen(lambda s: 30.0 if {"A", "B"} <= s else 20.0), evaluator=_Seen)
    assert result.met and result.float_nodes == ["B", "A"]
    confirmed = [(s.float_nodes, s.confirmation["met"]) for s in result.steps if s.confirmation]
    assert confirmed == [(["B", "A"], True), (["A"], False)]  # measured in cost order: [A] first
    assert result.confirmation == {"search_samples": 30, "samples": 25, "steps_confirmed": 2}


@pytest.mark.parametrize("needed, chosen, measured", [
    (4, ("B", "C", "D", "A"), {("A",): False, ("B", "C", "D", "A"): True, ("B", "A"): False, ("B", "C", "A"): False}),
    (3, ("B", "C", "A"), {("A",): False, ("B", "C", "D", "A"): True, ("B", "A"): False, ("B", "C", "A"): True}),
    (2, ("B", "A"), {("A",): False, ("B", "C", "D", "A"): True, ("B", "A"): True}),
])
def test_a_refuted_choice_bisects_the_met_steps_for_the_cheapest_that_holds_unseen(needed, chosen, measured):
    # met on the search's samples: [A], [B A], [B C A], [B C D A]; the unseen ones need `needed` float
    result = _fallback(lambda s: 30.0 if "A" in s else 16.0, names="BCDA",
                       confirm=_Unseen(lambda s: 30.0 if len(s) >= needed else 20.0), evaluator=_Seen)
    assert result.met and tuple(result.float_nodes) == chosen and result.best.confirmation["met"]
    assert {tuple(s.float_nodes): s.confirmation["met"] for s in result.steps if s.confirmation} == measured


def test_the_greedy_float_set_grows_past_a_prefix_the_unseen_samples_refute():
    result = _fallback(lambda s: 30.0 if "A" in s else 16.0, names="ABCD",
                       confirm=_Unseen(lambda s: 30.0 if {"A", "B"} <= s else 20.0), evaluator=_Seen)
    assert result.met and result.float_nodes == ["A", "B"] and result.stopped == "budget met"
    assert [(s.phase, s.float_nodes) for s in result.steps][1:3] == [("greedy", ["A"]), ("greedy", ["A", "B"])]


def test_plain_int8_refuted_on_unseen_samples_is_searched_and_an_unconfirmed_choice_fails_loudly():
    from edgekit.debug.fallback import raise_if_unmet
    from edgekit.errors import GateFailed

    result = _fallback(lambda s: 30.0, confirm=_Unseen(lambda s: 30.0 if "A" in s else 20.0), evaluator=_Seen)
    assert result.met and result.float_nodes == ["A"] and result.steps[0].confirmation["met"] is False
    result = _fallback(lambda s: 30.0 if "A" in s else 16.0, confirm=_Unseen(lambda s: 20.0), evaluator=_Seen)
    assert not result.met and "not confirmed on 25 held-out samples the search did not use" in result.stopped
    with pytest.raises(GateFailed, match=r"sqnr_db=30.0 on the search's samples, but sqnr_db=20.0 on 25 held-out"):
        raise_if_unmet(result)


def test_split_for_confirmation_needs_20_samples_on_each_side():
    from edgekit.debug.confirm import split_for_confirmation
    from edgekit.debug.scoring import Evaluator

    def evaluator(n):
        return Evaluator([{"x": i} for i in range(n)], [{"y": i} for i in range(n)], [None] * n)

    search, confirm = split_for_confirmation(evaluator(86), 0.5)
    assert [f["x"] for f in search.feeds] == list(range(43)) and [r["y"] for r in search.reference] == list(range(43))
    assert [r["y"] for r in confirm.reference] == list(range(43, 86))
    assert split_for_confirmation(evaluator(39), 0.5)[1] is None and split_for_confirmation(evaluator(86), 0)[1] is None


class _LadderBackend:
    """Precision maps -> model bytes, for the ladder's search."""

    def unit_macs(self):
        return {u: 10 for u in "abcd"}

    def build(self, levels=None):
        return ",".join(sorted(k for k, v in (levels or {}).items() if v != "int8")).encode()

    def label(self, key):
        return key

    def quantization(self, levels=None):
        return {}


def test_the_ladders_grid_goes_on_past_a_point_the_unseen_samples_refute():
    import time

    from edgekit.debug.ladder import _Search

    search = _Search(_LadderBackend(), _Seen(lambda s: 30.0 if len(s) >= 2 else 16.0), Budget(min_sqnr_db=25.0),
                     time.monotonic() + 60, lambda s: None, confirm=_Unseen(lambda s: 30.0 if len(s) >= 3 else 20.0))
    grid = [{u: "int16" for u in "abcd"[:n]} for n in range(1, 5)]
    steps = search.try_first_confirmed("descend", grid)
    assert [(len(s.precisions), s.met, s.confirmation and s.confirmation["met"]) for s in steps] == [
        (1, False, None), (2, True, False), (3, True, True)]
