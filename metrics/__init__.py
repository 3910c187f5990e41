"""Evaluation: PSNR/SSIM/MS-SSIM/LPIPS/FID/KID/identity angle under named protocols.

Entry points: ``METRICS`` (specs), ``metrics.protocols.PROTOCOLS``,
``metrics.evaluate.evaluate_folders`` / ``Evaluator``, ``metrics.provenance.check_comparable``.
NIQE is not implemented: a faithful port (BasicSR's MATLAB-matching version with the pristine
parameter file and MATLAB bicubic imresize) did not fit; no approximate NIQE is offered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    level: Literal["image", "set"]     # per-image (mean + CI) or set-level (FID/KID)
    needs: tuple[str, ...]             # weight names (metrics.weights.KNOWN); "lpips" = protocol's net
    description: str


METRICS: dict[str, MetricSpec] = {
    "psnr": MetricSpec("psnr", True, "image", (), "PSNR in dB (BasicSR; protocol colour/crop)"),
    "ssim": MetricSpec("ssim", True, "image", (), "SSIM (BasicSR/skimage Gaussian 11/1.5, valid)"),
    "psnr_y": MetricSpec("psnr_y", True, "image", (), "PSNR on BT.601 Y (BasicSR test_y_channel)"),
    "ssim_y": MetricSpec("ssim_y", True, "image", (), "SSIM on BT.601 Y"),
    "ms_ssim": MetricSpec("ms_ssim", True, "image", (), "RGB MS-SSIM, data_range 255"),
    "lpips": MetricSpec("lpips", False, "image", ("lpips",), "LPIPS v0.1 (protocol's net)"),
    "fid": MetricSpec("fid", False, "set", ("inception_fid",), "FID, 2048-d pytorch-fid Inception"),
    "kid": MetricSpec("kid", False, "set", ("inception_fid",), "KID (unbiased, cubic kernel) vs GT"),
    "deg_facenet": MetricSpec("deg_facenet", False, "image", ("facenet_vggface2",),
                              "identity angle (degrees), FaceNet VGGFace2"),
    "deg_arcface18": MetricSpec("deg_arcface18", False, "image", ("arcface18_vqfr",),
                                "identity angle (degrees), VQFR ArcFace ResNet-18"),
}
