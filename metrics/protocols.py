"""Named evaluation protocols: every choice that changes a number is fixed here, by name.

A result row carries its protocol name and settings; rows with different protocols (or backbone
provenance) are never ranked together (``metrics.provenance``). Where each choice comes
from: BasicSR's metrics (XPixelGroup/BasicSR ``basicsr/metrics``: PSNR/SSIM, crop, Y channel, FID
statistics), the GFP-GAN and VQFR papers with VQFR's ``metric_paper`` scripts (TencentARC/VQFR:
LPIPS-VGG, the ArcFace identity angle), pytorch-fid (mseitzer/pytorch-fid) and the ``lpips``
package (richzhang/PerceptualSimilarity), Panini-Net's mmediting configs (jianzhangcs/panini).

Shared conventions (all protocols):
- images are decoded once with ``core.imageio.read_image`` (8-bit RGB; grayscale files are
  replicated to RGB, alpha dropped, 16-bit rounded — documented conversions);
- PSNR/SSIM/MS-SSIM in float64 on [0,255] values (BasicSR formulas), per image, then the mean;
- LPIPS: ``lpips`` 0.1 linear heads from the wheel, input RGB in [-1,1], at evaluation size;
- FID/KID: pytorch-fid's InceptionV3 pool3 (2048-d), input [0,1] RGB, bilinear resize to 299
  inside the net (``align_corners=False``, no antialias) — the "legacy_pytorch" convention;
  Fréchet distance by symmetric eigendecomposition / SVD (``metrics.functional``); KID with the
  cubic polynomial kernel, ``kid_subsets`` subsets of ``min(kid_subset_size, N)``; KID's
  reference is always the GT set (precomputed stats carry no features);
- MS-SSIM: RGB, data_range 255, 5 scales with the standard weights when min side > 160, else the
  largest L with min side > 10*2^(L-1) and the first L weights renormalised (64 px -> 3 scales);
- ``deg_facenet``: facenet-pytorch InceptionResnetV1 (VGGFace2 weights), whole image resized to
  160 px (bilinear, antialias), ``(255x - 127.5)/128``; ``deg_arcface18``: ArcFace ResNet-18
  (VQFR), ``cv2`` RGB->gray, ``cv2.resize`` 128 px INTER_LINEAR, ``(x - 127.5)/127.5``;
  ``deg_dlib``: dlib's ResNet descriptor (``metrics/dlib_face.py``: 5-point predictor started
  from a fixed face box, no detector, 150 px chip); angle = ``degrees(arccos(cos))``; pairs
  below ``identity_exclude_below_deg`` are excluded from the mean and counted (VQFR) — for every
  ``deg_*`` metric alike;
- ``lmd_dlib68``: mean distance over dlib's 68 landmarks (same fixed box), pixels at the
  evaluation size; not VQFR's LMD;
- ``niqe`` (no reference; ``metrics/niqe.py``): BasicSR ``calculate_niqe`` — BT.601 Y rounded,
  ``crop_border`` crop, ``niqe_block`` px tiles, the pristine parameters. Images with fewer than
  2 tiles cannot be scored; ``niqe_upscale`` > 1 first enlarges the rounded Y by MATLAB bicubic
  (and rounds again): the built-in tier's 64 px faces become 192 px (2x2 tiles of 96 px). On
  64 px faces native-size 32 px tiles did not rise with degradation (GT 9.7, ladder 8.0-8.3)
  while the x3 upscale did (GT 11.0, ladder 12.9 -> 17.6; real photos at 64 px 8.3 -> 18.9);
- bootstrap: ``bootstrap_samples`` resamples of the images with replacement
  (``np.random.default_rng(bootstrap_seed)``), percentile 95% CI of the mean.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Optional

from core.errors import FRBenchError

from metrics import METRICS

# Metrics any protocol may add on request (same definitions everywhere).
_EXTRAS = tuple(METRICS)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    metrics: tuple[str, ...]           # computed when no subset is asked for
    color: Literal["rgb", "y"]         # for ``psnr``/``ssim``/``ms_ssim`` (``*_y`` are always Y)
    crop_border: int
    size: Optional[int]                # evaluation size (square); None = native (GT) size
    resize: Literal["none", "bicubic"]  # "none": a size mismatch is an error
    lpips_net: Literal["alex", "vgg"]
    lpips_version: str
    fid_ref: str                       # "gt" or a weights name of a precomputed stats file
    fid_dims: int
    kid_subsets: int
    kid_subset_size: int
    identity_exclude_below_deg: Optional[float]
    bootstrap_samples: int
    bootstrap_seed: int
    published_comparable: bool         # can this protocol's numbers match a paper's at all?
    niqe_block: int = 96               # NIQE tile side (the pristine model's patch size)
    niqe_upscale: int = 1              # MATLAB-bicubic enlargement of Y before NIQE (1 = none)
    msssim_scales: str = "auto: 5 if min side > 160 else largest L with min side > 10*2^(L-1); weights renormalised"
    lineage: str = ""
    #: metrics computed and shown but never ranked on under this protocol, with the measured
    #: reason (a ranking policy, not a computation setting: ignored by the comparability check)
    unranked: tuple[tuple[str, str], ...] = ()

    def settings(self) -> dict:
        """Every setting as a plain dict (written to summary.json)."""
        return dataclasses.asdict(self)

    def select(self, metrics: Optional[list[str] | tuple[str, ...]]) -> list[str]:
        """Validate a requested subset (None = the protocol's own set); keeps request order."""
        if metrics is None:
            return list(self.metrics)
        out = []
        for m in metrics:
            m = m.strip()
            if not m:
                continue
            if m not in _EXTRAS:
                raise FRBenchError(f"unknown metric '{m}' (known: {', '.join(_EXTRAS)})")
            if m not in out:
                out.append(m)
        if not out:
            raise FRBenchError("no metrics selected")
        return out


PROTOCOLS: dict[str, Protocol] = {
    "gfpgan_celeba_test": Protocol(
        name="gfpgan_celeba_test",
        description="GFPGAN/VQFR/PMRF CelebA-Test table (evaluation.md §1): 512 px, RGB PSNR/SSIM "
                    "(BasicSR, crop 0), LPIPS-VGG v0.1 [-1,1], FID vs FFHQ-512 statistics "
                    "(inception_FFHQ_512), NIQE (BasicSR, Y, crop 0, 96 px blocks), Deg = "
                    "ArcFace-18 angle in degrees excluding <1° (deg_dlib likewise)",
        metrics=("psnr", "ssim", "lpips", "fid", "niqe", "deg_arcface18"),
        color="rgb", crop_border=0, size=512, resize="none",
        lpips_net="vgg", lpips_version="0.1",
        fid_ref="fid_stats_ffhq512", fid_dims=2048, kid_subsets=100, kid_subset_size=1000,
        identity_exclude_below_deg=1.0, bootstrap_samples=1000, bootstrap_seed=0,
        published_comparable=True,
        lineage="BasicSR psnr_ssim.py, niqe.py; VQFR metric_paper (without its forced mean/var "
                "correction); PMRF evaluation/"),
    "panini": Protocol(
        name="panini",
        description="Panini-Net (AAAI 2022) tables: RGB PSNR at the output size (mmedit, crop 0), "
                    "LPIPS v0.1 alex (GLEAN lineage; Panini's variant is undocumented), "
                    "FID/KID vs the GT set (Panini's FID protocol is not public)",
        metrics=("psnr", "lpips", "fid", "kid"),
        color="rgb", crop_border=0, size=None, resize="none",
        lpips_net="alex", lpips_version="0.1",
        fid_ref="gt", fid_dims=2048, kid_subsets=100, kid_subset_size=1000,
        identity_exclude_below_deg=None, bootstrap_samples=1000, bootstrap_seed=0,
        published_comparable=True,
        lineage="jianzhangcs/panini configs (PSNR); GLEAN issue #11 (LPIPS alex)"),
    "builtin": Protocol(
        name="builtin",
        description="Built-in offline tier: 64 px synthetic faces, RGB PSNR/SSIM/MS-SSIM (3 "
                    "scales at 64 px), LPIPS-VGG v0.1 (the face-restoration lineage's net), "
                    "FID/KID vs the GT set, FaceNet and dlib identity angles, dlib 68-point "
                    "landmark distance, NIQE on Y enlarged x3 (MATLAB bicubic) to 192 px; never "
                    "comparable with published numbers",
        metrics=("psnr", "ssim", "ms_ssim", "lpips", "fid", "kid", "deg_facenet", "deg_dlib",
                 "lmd_dlib68", "niqe"),
        color="rgb", crop_border=0, size=64, resize="none",
        lpips_net="vgg", lpips_version="0.1",
        fid_ref="gt", fid_dims=2048, kid_subsets=100, kid_subset_size=1000,
        identity_exclude_below_deg=None, bootstrap_samples=1000, bootstrap_seed=0,
        published_comparable=False, niqe_upscale=3,
        lineage="frbench built-in default",
        unranked=(("deg_dlib",
                   "dlib's identity descriptor does not separate the drawn built-in faces: two "
                   "different faces are 20 degrees apart, a face and its own 2x down-up copy "
                   "19 degrees (docs/metrics-dlib-niqe.md)"),)),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise FRBenchError(f"unknown protocol '{name}' (known: {', '.join(sorted(PROTOCOLS))})") \
            from None
