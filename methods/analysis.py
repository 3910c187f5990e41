"""Panini-Net analysis on folders: Table 4's theta per degradation level.

``ladder_theta(method, lq_dir)``: LQ files named ``<level>_<id>.png`` (the ``panini_ladder`` test
set layout of degradations/builder.py) -> ``{level: {"theta": mean over images, "n": count,
"per_image": {id: theta}}}``; theta = mean of the last (highest-resolution) DAFI block's GAN-prior
mask m1 (paper-tables.md, Table 4), computed on the LQ resized to the method's LQ size.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from core.errors import FRBenchError
from core.imageio import list_images, read_image, to_float, to_tensor


@torch.no_grad()
def ladder_theta(method, lq_dir: str | Path, batch_size: int = 16) -> dict:
    if not hasattr(method, "theta"):
        raise FRBenchError(f"{method.name}: theta is defined for Panini-Net (DAFI) only")
    files = list_images(lq_dir)
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        level, sep, _ = f.stem.partition("_")
        if not sep:
            raise FRBenchError(f"{f}: expected '<level>_<id>.png' (a panini_ladder test set)")
        groups[level].append(f)
    method.eval()
    out = {}
    for level in sorted(groups):
        per = {}
        fs = groups[level]
        for i in range(0, len(fs), batch_size):
            chunk = fs[i:i + batch_size]
            x = torch.cat([to_tensor(to_float(read_image(f))) for f in chunk])
            from methods.base import resize
            t = method.theta(resize(x, method.lq_size))
            per.update({f.stem.partition("_")[2]: float(v) for f, v in zip(chunk, t)})
        out[level] = {"theta": sum(per.values()) / len(per), "n": len(per), "per_image": per}
    return out
