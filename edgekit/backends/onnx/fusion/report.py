"""What a fusion pass did: fused node groups, and op counts before/after for the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FusedGroup:
    """One rewrite: `nodes` (names, in graph order) were replaced by `result`."""

    pass_name: str
    nodes: tuple[str, ...]
    result: str

    def to_dict(self) -> dict:
        return {"pass": self.pass_name, "nodes": list(self.nodes), "result": self.result}


@dataclass
class FusionReport:
    """Op counts by type before and after, and every fused group, in the order applied."""

    ops_before: dict[str, int]
    ops_after: dict[str, int]
    groups: list[FusedGroup] = field(default_factory=list)

    def counts_by_pass(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for group in self.groups:
            counts[group.pass_name] = counts.get(group.pass_name, 0) + 1
        return counts

    def to_dict(self) -> dict:
        return {
            "ops_before": self.ops_before,
            "ops_after": self.ops_after,
            "nodes_before": sum(self.ops_before.values()),
            "nodes_after": sum(self.ops_after.values()),
            "fusions": self.counts_by_pass(),
            "groups": [group.to_dict() for group in self.groups],
        }
