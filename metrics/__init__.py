"""Evaluation: PSNR/SSIM/MS-SSIM/LPIPS/FID/KID/identity angles/landmark distance/NIQE under
named protocols.

Entry points: ``METRICS`` (specs), ``metrics.protocols.PROTOCOLS``,
``metrics.evaluate.evaluate_folders`` / ``Evaluator``, ``metrics.provenance.check_comparable``.
``needs`` names the weight files a metric uses (keys of ``metrics.weights.KNOWN``; "lpips" = the
protocol's LPIPS backbone); its provenance is recorded under the same names in summary.json.
Metrics with ``needs_gt=False`` (NIQE) also score folders that have no ground truth.
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
    needs_gt: bool = True              # False: no-reference (scores a folder without GT)


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
    "deg_dlib": MetricSpec("deg_dlib", False, "image", ("dlib_shape5", "dlib_resnet_v1"),
                           "identity angle (degrees), dlib ResNet descriptor, 5-point alignment "
                           "from a fixed face box"),
    "lmd_dlib68": MetricSpec("lmd_dlib68", False, "image", ("dlib_shape68",),
                             "mean distance (px at evaluated size) over dlib's 68 landmarks; "
                             "not VQFR's LMD (AWing, 98 WFLW points)"),
    "niqe": MetricSpec("niqe", False, "image", ("niqe_pris_params",),
                       "NIQE (BasicSR calculate_niqe: Y, rounded, 96 px blocks, pristine params)",
                       needs_gt=False),
}
