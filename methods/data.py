"""Training data: HQ faces from a folder, turned into step-indexed batches.

A batch is a pure function of (seed, trainee name, step): for global sample index ``i`` of step
``s`` the HQ images are taken from a per-epoch permutation of the folder at stream position
``(s * global_batch + i) * images_per_sample + j`` and the sample's randomness comes from
``rng_for(seed, "train", name, s, i)``. Rank ``r`` of ``W`` processes builds the indices
``[r * B/W, (r+1) * B/W)``. So resuming, or changing the number of processes/workers, yields the
same samples.
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from core.errors import FRBenchError
from core.imageio import list_images, read_image, to_float
from core.seeding import rng_for

log = logging.getLogger(__name__)


class HQFolder:
    """HQ faces ``<dir>/*.png`` as float32 HWC [0,1] at ``size`` (resized with PIL bicubic
    when the files differ; logged once)."""

    def __init__(self, folder: str | Path, size: int):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FRBenchError(f"{self.folder}: HQ training folder not found (train.hq_dir); "
                               "build it first (dvc repro, or `frbench synth-faces`)")
        self.files = list_images(self.folder)
        self.size = size
        self._warned = False

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> np.ndarray:
        img = read_image(self.files[idx])
        if img.shape[0] != self.size or img.shape[1] != self.size:
            if not self._warned:
                log.info("%s: resizing HQ %dx%d -> %d", self.folder, img.shape[1], img.shape[0],
                         self.size)
                self._warned = True
            from PIL import Image
            img = np.asarray(Image.fromarray(img).resize((self.size, self.size), Image.BICUBIC))
        return to_float(img)


@lru_cache(maxsize=8)
def _perm(seed: int, name: str, epoch: int, n: int) -> np.ndarray:
    return rng_for(seed, "train", name, "perm", epoch).permutation(n)


def image_indices(seed: int, name: str, step: int, i: int, global_batch: int,
                  images_per_sample: int, n: int) -> list[int]:
    """Folder indices of the HQ images of global sample ``i`` at ``step``."""
    out = []
    for j in range(images_per_sample):
        pos = (step * global_batch + i) * images_per_sample + j
        out.append(int(_perm(seed, name, pos // n, n)[pos % n]))
    return out


class StepBatches:
    """Map-style dataset: ``ds[step]`` -> this rank's batch of that step (dict of tensors)."""

    def __init__(self, folder: HQFolder, sample_fn: Callable, *, seed: int, name: str,
                 global_batch: int, images_per_sample: int = 1, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise FRBenchError(f"batch_size {global_batch} is not divisible by the {world} "
                               "processes; pick a multiple")
        self.folder, self.sample_fn = folder, sample_fn
        self.seed, self.name = seed, name
        self.global_batch, self.ips = global_batch, images_per_sample
        self.rank, self.world = rank, world
        self.local = global_batch // world

    def indices(self, step: int) -> range:
        return range(self.rank * self.local, (self.rank + 1) * self.local)

    def __getitem__(self, step: int) -> dict:
        import torch

        samples = []
        for i in self.indices(step):
            idx = image_indices(self.seed, self.name, step, i, self.global_batch, self.ips,
                                len(self.folder))
            hqs = [self.folder[k] for k in idx]
            rng = rng_for(self.seed, "train", self.name, step, i)
            if getattr(self.sample_fn, "needs_ids", False):  # e.g. GFP-GAN's landmark lookup
                ids = [self.folder.files[k].stem for k in idx]
                samples.append(self.sample_fn(hqs, rng, ids=ids))
            else:
                samples.append(self.sample_fn(hqs, rng))
        return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}

    def __len__(self) -> int:  # not used for sampling; steps come from the sampler
        return 1 << 62
