"""params.yaml sections ``prior``, ``dre``, ``train`` and ``methods`` (owned by methods/)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PriorConfig:
    """StyleGAN2 prior (filled in by the Panini-Net work)."""


@dataclass
class DREConfig:
    """Degradation representation encoder pretraining (filled in by the Panini-Net work)."""


@dataclass
class TrainConfig:
    """Shared trainer settings (filled in by the Panini-Net work)."""


def parse_methods(value, where):
    """``methods:`` -> {name: <per-architecture config dataclass>}."""
    return dict(value or {})
