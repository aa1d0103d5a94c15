"""Which units of the ONNX precision ladder take channel-group scales, and what their splits need.

`GroupPlan(plain, fp32, calibration)` measures each once, on demand:
- `units()`: the units of `plain` (the INT8 build's `QdqGraph`) whose channel groups give some
  conv/matmul reader at least GROUP_GAIN (2) times less INT8 noise at its input than one scale;
- `ranges()`: per channel (low, high) of every tensor a reader could be split by, on the float
  model over the first CHANNEL_SAMPLES (256) calibration samples;
- `weights()`: the split readers' regrouped INT8 weights (a scale per output channel and group,
  GPTQ-rounded: `weight_rounding.round_groups`, the first GROUP_WEIGHT_SAMPLES (128) samples).
A plan opened elsewhere without calibration samples takes `ranges` and `weights` as measured.
"""

from __future__ import annotations

import functools
import itertools

from edgekit.errors import UsageError

CHANNEL_SAMPLES = 256
GROUP_WEIGHT_SAMPLES = 128
GROUP_GAIN = 2.0  # channel groups must cut a reader's input INT8 noise this many times to be worth their nodes


class GroupPlan:
    """plain: the INT8 QdqGraph; fp32: the float ModelProto; calibration: factory of feeds (None
    elsewhere: then ranges and weights come measured); enabled: False leaves `units` empty."""

    def __init__(self, plain, fp32, calibration, *, enabled: bool = True, ranges: dict | None = None,
                 weights: dict | None = None):
        self.plain, self.fp32, self.calibration, self.enabled = plain, fp32, calibration, enabled
        self._units: list[str] | None = None if enabled else []
        self._ranges, self._weights = ranges, weights

    @functools.cached_property
    def _splittable(self) -> dict[str, dict[str, int]]:
        """Unit id -> `QdqGraph.groupable` of the units that have any."""
        return {u.id: t for u in self.plain.units if (t := self.plain.groupable(u.id))}

    @functools.cached_property
    def _splits(self) -> dict[str, list[tuple]]:
        """Unit id -> [(reader, tensor, its channel groups, their noise gain)] of each splittable
        conv/matmul reader (`channel_groups.reader_groups`; needs `ranges`)."""
        from edgekit.backends.onnx.channel_groups import reader_groups

        g, ranges = self.plain, self.ranges()
        return {unit: [(r, t, *reader_groups(g.inits, g.made, g.made_by_name[r], ranges[t]))
                       for t in tensors for r in g.units_by_id[unit].readers if g.split_axis(r, t) is not None]
                for unit, tensors in self._splittable.items()}

    def units(self) -> list[str]:
        """The units whose readers channel groups serve (see the module), in graph order."""
        if self._units is None:
            self._units = [unit for unit, splits in self._splits.items()
                           if any(gain >= GROUP_GAIN for *_, gain in splits)]
        return self._units

    def ranges(self) -> dict:
        """Tensor -> (low, high) per channel (see the module)."""
        if self._ranges is None:
            from edgekit.backends.onnx.channel_groups import channel_ranges

            wanted = {t: a for tensors in self._splittable.values() for t, a in tensors.items()}
            self._ranges = channel_ranges(self.fp32, wanted, self._feeds(CHANNEL_SAMPLES)) if wanted else {}
        return self._ranges

    def weights(self) -> dict:
        """Reader -> its regrouped (INT8 integers, scales) (see the module)."""
        if self._weights is None:
            from edgekit.backends.onnx.weight_rounding import round_groups

            readers = {reader: (tensor, groups) for unit in self.units()
                       for reader, tensor, groups, _ in self._splits[unit] if len(groups) > 1}
            self._weights = round_groups(self.plain.model, self.fp32, readers,
                                         list(self._feeds(GROUP_WEIGHT_SAMPLES))) if readers else {}
        return self._weights

    def measured(self) -> tuple[dict | None, dict | None]:
        """(ranges, weights) as far as measured: once the ranges are, the weights are made too."""
        if self._ranges is not None:
            self.weights()
        return self._ranges, self._weights

    def _feeds(self, count: int):
        if self.calibration is None:
            raise UsageError("channel groups need the calibration samples")
        return itertools.islice(self.calibration(), count)
