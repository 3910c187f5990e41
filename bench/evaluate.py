"""Benchmark: ``metrics.evaluate`` vs the reference tools run separately, on the same folders.

    python -m bench.evaluate [--pairs 16] [--size 512] [--lpips-net alex] [--threads N]

Anchors (each run on its own, as a researcher would chain them):
  1. scikit-image loop: per pair ``imread`` x2, ``peak_signal_noise_ratio``,
     ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
     data_range=255, channel_axis=2)``;
  2. ``lpips`` package: ``lpips.LPIPS(net=...)`` per pair (``lpips.load_image`` + ``im2tensor``),
     batch 1 as in its ``lpips_2dirs.py``;
  3. pytorch-fid: ``fid_score.calculate_fid_given_paths([restored, gt], 50, 'cpu', 2048)``.
Offline weights: every backbone is the same seeded random init for both sides. pytorch-fid would
download ``pt_inception-2015-12-05-6726825d.pth`` inside ``fid_inception_v3()``; we patch
``pytorch_fid.inception.fid_inception_v3`` (the module global its ``InceptionV3`` calls) with a
builder that makes the same structure and loads our random state dict; the lpips anchor is built
with ``pnet_rand=True`` and given our LPIPS state dict (backbone + the wheel's linear heads).

Ours: one ``Evaluator`` (nets built once), images decoded once, batched nets, float64
PSNR/SSIM. "cold" = first evaluation of a GT set (GT features computed); "warm" = a second method
scored against the same GT set (GT Inception features from ``cache/fid``, GT LPIPS/FaceNet
outputs from the evaluator's memory), which is what the pipeline does for every method after the
first. Reported: pairs/s for the matched metric set (psnr, ssim, lpips, fid) and for the full
built-in set (+ ms_ssim, kid, deg_facenet), and ratios against the anchors' combined time.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np


def make_pairs(root: Path, n: int, size: int) -> tuple[Path, Path]:
    from core.imageio import write_png
    from core.seeding import rng_for

    gt, res = root / "gt", root / "res"
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        rng = rng_for("bench.evaluate", i)
        f = rng.uniform(2, 8, 3)
        base = np.stack([np.sin(2 * np.pi * (f[c] * xx + f[(c + 1) % 3] * yy) + c) for c in range(3)], -1)
        g = np.clip((base * 0.4 + 0.5) * 255, 0, 255).astype(np.uint8)
        r = np.clip(g + rng.normal(0, 12, g.shape), 0, 255).astype(np.uint8)
        write_png(gt / f"{i:05d}.png", g)
        write_png(res / f"{i:05d}_00.png", r)
    return res, gt


def anchor_skimage(res: Path, gt: Path) -> float:
    from skimage.io import imread
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    t = time.perf_counter()
    p, s = [], []
    for g in sorted(gt.glob("*.png")):
        a, b = imread(g), imread(res / f"{g.stem}_00.png")
        p.append(peak_signal_noise_ratio(a, b, data_range=255))
        s.append(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255, channel_axis=2))
    return time.perf_counter() - t, float(np.mean(p)), float(np.mean(s))


def anchor_lpips(res: Path, gt: Path, net: str, state_dict: dict) -> float:
    import lpips
    import torch

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    model.load_state_dict(state_dict)
    t = time.perf_counter()
    vals = []
    with torch.no_grad():
        for g in sorted(gt.glob("*.png")):
            a = lpips.im2tensor(lpips.load_image(str(g)))
            b = lpips.im2tensor(lpips.load_image(str(res / f"{g.stem}_00.png")))
            vals.append(model(a, b).item())
    return time.perf_counter() - t, float(np.mean(vals))


def anchor_pytorch_fid(res: Path, gt: Path, inception_sd: dict) -> tuple[float, str, float]:
    import pytorch_fid.inception as pfi
    from pytorch_fid import fid_score

    from metrics.backbones import fid_inception_structure

    def offline_fid_inception_v3():
        inc = fid_inception_structure()
        inc.load_state_dict(inception_sd)
        return inc

    t_fd = []
    orig_fd = fid_score.calculate_frechet_distance

    def timed_fd(*a, **k):  # to report how much of the anchor is scipy's sqrtm
        t1 = time.perf_counter()
        try:
            return orig_fd(*a, **k)
        finally:
            t_fd.append(time.perf_counter() - t1)

    t = time.perf_counter()
    note = ""
    with mock.patch.object(pfi, "fid_inception_v3", offline_fid_inception_v3), \
            mock.patch.object(fid_score, "calculate_frechet_distance", timed_fd):
        try:
            v = fid_score.calculate_fid_given_paths([str(res), str(gt)], 50, "cpu", 2048,
                                                    num_workers=0)
            note = f"fid={v:.4f}"
        except ValueError as e:  # "Imaginary component" for rank-deficient covariances
            note = f"failed: {e}"
    return time.perf_counter() - t, note, sum(t_fd)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from metrics.backbones import build_lpips, inception_state_dict
    from metrics.config import WeightsConfig
    from metrics.evaluate import Evaluator
    from metrics.protocols import PROTOCOLS

    if args.threads:
        torch.set_num_threads(args.threads)
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    proto = dataclasses.replace(PROTOCOLS["builtin"], name=f"bench{args.size}", size=args.size,
                                lpips_net=args.lpips_net)
    matched = ["psnr", "ssim", "lpips", "fid"]
    full = list(proto.metrics)
    n = args.pairs
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res, gt = make_pairs(tmp, n, args.size)
        res2 = tmp / "res2"  # a second "method" against the same GT
        res2.mkdir()
        for p in res.iterdir():
            (res2 / p.name).write_bytes(p.read_bytes())

        lp, _ = build_lpips(args.lpips_net, w)
        lp_sd = lp.lp.state_dict()
        inc_sd, _ = inception_state_dict(w)
        t_sk, sk_psnr, sk_ssim = anchor_skimage(res, gt)
        t_lp, lp_val = anchor_lpips(res, gt, args.lpips_net, lp_sd)
        t_fid, fid_note, t_sqrtm = anchor_pytorch_fid(res, gt, inc_sd)
        t_anchor = t_sk + t_lp + t_fid
        t_anchor_nosq = t_anchor - t_sqrtm

        rows = []
        for label, mets in (("matched", matched), ("full", full)):
            ev = Evaluator(proto, mets, weights=w, device=args.device, batch_size=args.batch_size,
                           cache_dir=tmp / f"cache_{label}", bootstrap_samples=1000)
            t0 = time.perf_counter()
            s_cold = ev.evaluate(res, gt)
            t_cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            ev.evaluate(res2, gt)
            t_warm = time.perf_counter() - t0
            rows.append((label, mets, t_cold, t_warm, s_cold))

    print(f"\nbench.evaluate: {n} pairs at {args.size} px, LPIPS {args.lpips_net}, device "
          f"{args.device}, torch threads {torch.get_num_threads()}, random-init backbones")
    print(f"  anchors: skimage PSNR+SSIM {t_sk:6.2f} s | lpips {t_lp:6.2f} s | pytorch-fid "
          f"{t_fid:6.2f} s ({fid_note}; of which scipy sqrtm Fréchet {t_sqrtm:.2f} s)")
    print(f"  anchors combined {t_anchor:6.2f} s = {n / t_anchor:5.2f} pairs/s; without the sqrtm "
          f"step {t_anchor_nosq:6.2f} s = {n / t_anchor_nosq:5.2f} pairs/s")
    for label, mets, tc, tw, s in rows:
        print(f"  ours [{label}: {','.join(mets)}]")
        print(f"    cold {tc:6.2f} s = {n / tc:5.2f} pairs/s ({t_anchor / tc:4.2f}x anchors, "
              f"{t_anchor_nosq / tc:4.2f}x without sqrtm)")
        print(f"    warm (GT cached) {tw:6.2f} s = {n / tw:5.2f} pairs/s ({t_anchor / tw:4.2f}x "
              f"anchors, {t_anchor_nosq / tw:4.2f}x without sqrtm)")
    s = rows[0][4]
    print(f"  matched values: psnr {s['metrics']['psnr']['mean']:.4f}, ssim "
          f"{s['metrics']['ssim']['mean']:.5f}, lpips {s['metrics']['lpips']['mean']:.5f}, fid "
          f"{s['set_metrics']['fid']:.4f}")
    print(f"  anchor values:  psnr {sk_psnr:.4f}, ssim {sk_ssim:.5f}, lpips {lp_val:.5f}, "
          f"{fid_note}")


if __name__ == "__main__":
    main()
