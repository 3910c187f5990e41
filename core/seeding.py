"""Stable, order-independent seeding: never global RNG state.

Each random draw comes from a generator seeded by a stable hash of its identifying parts,
e.g. ``rng_for(seed, set_name, image_id)``, so results do not depend on order or worker count.
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: object) -> int:
    """64-bit seed from the sha256 of the parts' ``repr`` joined by NUL (stable across runs/platforms)."""
    h = hashlib.sha256("\x00".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "little")


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy PCG64 generator seeded from ``stable_seed(*parts)``."""
    return np.random.Generator(np.random.PCG64(stable_seed(*parts)))


def torch_generator(*parts: object, device: str = "cpu"):
    """A ``torch.Generator`` seeded from ``stable_seed(*parts)`` (63-bit, torch wants int64)."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(stable_seed(*parts) & 0x7FFF_FFFF_FFFF_FFFF)
    return g
