"""params.yaml sections ``data`` and ``testsets`` (owned by degradations/).

``data``: where HQ faces come from. ``source: synthetic`` draws the built-in faces
(``frbench synth-faces``) with each split's ``n``/``seed``; ``source: folder`` imports each split's
``folder`` (optionally filtered by ``list``, first ``n`` images, ``n: 0`` = all) resized to ``size``.
Either way the HQ split lands in ``data/hq/<split>/`` (stage ``hq_train`` / ``hq_test``).

``testsets``: ``names`` (the list DVC's foreach iterates) and, per name, the preset, number of
HQ test images, seed and preset overrides (see ``degradations/presets.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from core.errors import FRBenchError


@dataclass
class SplitConfig:
    """One HQ split. ``n``: synthetic faces to draw, or the first n folder images (0 = all)."""
    n: int
    seed: int = 0
    folder: Optional[str] = None
    list: Optional[str] = None


@dataclass
class DataConfig:
    source: Literal["synthetic", "folder"]
    size: int
    train: SplitConfig
    test: SplitConfig
    nonsquare: Literal["crop", "error"] = "crop"
    workers: int = 1

    def validate(self, where: str) -> None:
        if self.size < 16:
            raise FRBenchError(f"params: {where}.size: must be >= 16, got {self.size}")
        if self.workers < 1:
            raise FRBenchError(f"params: {where}.workers: must be >= 1, got {self.workers}")
        for name in ("train", "test"):
            s = getattr(self, name)
            if s.seed < 0:
                raise FRBenchError(f"params: {where}.{name}.seed: must be >= 0, got {s.seed}")
            if s.n < 0 or (self.source == "synthetic" and s.n < 1):
                raise FRBenchError(f"params: {where}.{name}.n: must be >= 1 for synthetic faces "
                                   "(>= 0 for folders, 0 = all)")
            if self.source == "folder" and not s.folder:
                raise FRBenchError(f"params: {where}.{name}.folder: required when "
                                   f"{where}.source is 'folder'")


@dataclass
class ExternalPair:
    """An LQ/GT folder pair taken as it is (``degradations/external.py``)."""
    lq: str
    gt: str


@dataclass
class TestsetConfig:
    """One fixed test set: built (``preset``, a key of PRESETS; ``n`` HQ test images, 0 = all;
    ``seed`` and ``overrides`` of the preset's knobs) or ``external`` (an LQ/GT folder pair
    taken as it is, e.g. the released CelebA-Test archive; ``n`` = the first n pairs, 0 = all)."""
    preset: Optional[str] = None
    n: int = 0
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    external: Optional[ExternalPair] = None


@dataclass
class TestsetsConfig:
    names: list[str]
    sets: dict[str, TestsetConfig]
    out_dir: str = "data/testsets"
    src: str = "data/hq/test"
    workers: int = 1

    def validate(self, where: str) -> None:
        from degradations.presets import get_preset  # numpy/cv2 only, no torch

        for name in self.names:
            if name not in self.sets:
                raise FRBenchError(f"params: {where}.names: '{name}' has no entry under "
                                   f"{where}.sets (have: {', '.join(sorted(self.sets))})")
        if self.workers < 1:
            raise FRBenchError(f"params: {where}.workers: must be >= 1, got {self.workers}")
        for name, s in self.sets.items():
            if s.n < 0:
                raise FRBenchError(f"params: {where}.sets.{name}.n: must be >= 0")
            if s.seed < 0:
                raise FRBenchError(f"params: {where}.sets.{name}.seed: must be >= 0, got {s.seed}")
            if (s.preset is None) == (s.external is None):
                raise FRBenchError(f"params: {where}.sets.{name}: give either 'preset' (a built "
                                   "set) or 'external' ({lq, gt} folders), not both")
            if s.external is not None:
                if s.overrides:
                    raise FRBenchError(f"params: {where}.sets.{name}.overrides: an external set "
                                       "applies no degradation")
                continue
            try:
                get_preset(s.preset, s.overrides)
            except FRBenchError as e:
                raise FRBenchError(f"params: {where}.sets.{name}: {e}") from None
