"""What a target stage hands the pipeline: one artifact built in the staging directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Built:
    """One artifact built in the staging directory, before validation."""

    name: str
    target: str
    precision: str
    path: Path
    details: dict = field(default_factory=dict)
    op_counts: dict = field(default_factory=dict)
    compute_dtypes: dict = field(default_factory=dict)
    compression: dict = field(default_factory=dict)  # edgekit.validate.compression.summarize
