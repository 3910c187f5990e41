"""params.yaml sections ``evaluate`` and ``weights`` (owned by metrics/)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WeightsConfig:
    """Where pretrained files come from (filled in by the evaluation work)."""


@dataclass
class EvaluateConfig:
    """Evaluation protocol choice (filled in by the evaluation work)."""
