"""params.yaml sections ``evaluate`` and ``weights`` (owned by metrics/). Torch-free."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from core.errors import FRBenchError


@dataclass
class WeightsConfig:
    """Where pretrained files come from (see ``metrics/weights.py``).

    ``paths`` maps a weight name (a key of ``metrics.weights.KNOWN``, e.g. ``inception_fid``,
    ``vgg16``, ``alexnet``, ``facenet_vggface2``, ``arcface18_vqfr``, ``fid_stats_ffhq512``) to an
    explicit file, or null to search ``search_dirs`` then ``$TORCH_HOME/hub/checkpoints``.
    ``allow_random_init``: a backbone without weights is built with seeded random init
    (``random_init_seed``) and recorded as ``random-init:seed=N``; results are then never
    ``comparable_with_published``. ``allow_download``: let the libraries' own downloaders fetch
    missing files (never when ``FRBENCH_OFFLINE=1``)."""
    allow_random_init: bool
    allow_download: bool
    random_init_seed: int
    paths: dict[str, Optional[str]] = field(default_factory=dict)
    search_dirs: list[str] = field(default_factory=list)

    def validate(self, where: str) -> None:
        from metrics.weights import KNOWN
        unknown = sorted(set(self.paths) - set(KNOWN))
        if unknown:
            raise FRBenchError(f"params: unknown key '{where}.paths.{unknown[0]}' (known weights: "
                               f"{', '.join(sorted(KNOWN))})")


@dataclass
class EvaluateConfig:
    """How ``frbench evaluate`` / the pipeline's evaluation stage scores restored sets.

    ``protocol``: a name in ``metrics.protocols.PROTOCOLS`` (fixes colour space, crop, size, LPIPS
    net, FID reference, identity model, bootstrap). ``metrics``: a subset of the protocol's
    metrics, or null for all of them. ``batch_size``: images per network batch.
    ``bootstrap_samples``: null = the protocol's setting (CIs only; never changes means).
    ``cache_dir``: GT-side Inception features (``<cache_dir>/fid/<key>.npz``)."""
    protocol: str
    metrics: Optional[list[str]] = None
    batch_size: int = 8
    bootstrap_samples: Optional[int] = None
    cache_dir: str = "cache"

    def validate(self, where: str) -> None:
        from metrics.protocols import PROTOCOLS
        if self.protocol not in PROTOCOLS:
            raise FRBenchError(f"params: {where}.protocol: unknown protocol '{self.protocol}' "
                               f"(known: {', '.join(sorted(PROTOCOLS))})")
        if self.batch_size < 1:
            raise FRBenchError(f"params: {where}.batch_size must be >= 1")
        if self.bootstrap_samples is not None and self.bootstrap_samples < 0:
            raise FRBenchError(f"params: {where}.bootstrap_samples: must be >= 0 (or null), got "
                               f"{self.bootstrap_samples}")
        if self.metrics is not None:
            PROTOCOLS[self.protocol].select(self.metrics)  # raises on unknown names
