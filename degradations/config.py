"""params.yaml sections ``data`` and ``testsets`` (owned by degradations/)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataConfig:
    """HQ sources (filled in by the foundation work)."""


@dataclass
class TestsetsConfig:
    """The fixed degraded test sets (filled in by the foundation work)."""
