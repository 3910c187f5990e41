"""The 'LQ input' reference row: bicubic upsampling of the LQ to the output size (no training)."""
from __future__ import annotations

from methods.base import Method, resize


class Bicubic(Method):
    """(B,3,lq,lq) [-1,1] -> bicubic (align_corners=False, no antialias when enlarging) to
    (B,3,out,out), clamped to [-1,1]. ``steps`` is 0: the trainer only writes a checkpoint."""

    def __init__(self, name: str, cfg, params=None):
        super().__init__(name, "bicubic", cfg, params)

    @property
    def steps(self) -> int:
        return 0

    def forward(self, lq):
        self.check_input(lq)
        return resize(lq, self.out_size).clamp(-1, 1)

    def generator_modules(self):
        return {}

    def make_optimizers(self):
        return {}
