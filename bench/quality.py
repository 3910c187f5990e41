"""Quality self-check shared by ``bench.panini_quality`` and ``bench.baselines_quality``: does a
trained method beat its bicubic-upsampled LQ input on held-out built-in faces?

    python -m bench.quality [--params params.yaml] [--checkpoints DIR] [--hq DIR] [--n 24]
                            [--methods NAME ...] [--train] [--theta] [--threads 1]
                            [--json out.json]

With ``--train`` each method is first trained by the shared trainer for its params budget
(``methods.<name>.steps`` x ``batch_size``) into ``--checkpoints`` (default
``train.checkpoint_dir``; the prior / DRE checkpoints must be there for the methods that use
them). The held-out HQ faces (``data/hq/test``) are degraded with each method's training preset,
seeded by (preset, overrides, image id), so every method sharing a preset sees the same LQ. Each
method's restoration and the bicubic-upsampled LQ (the "LQ input" row) are scored against the HQ:
PSNR and SSIM (RGB, 8-bit quantised, ``metrics.functional``) and LPIPS (lpips 0.1 VGG, linear
heads from the wheel, backbone random-init with a fixed seed: the built-in tier's provenance, NOT
comparable with published LPIPS). ``--theta`` adds Panini-Net's GAN-prior usage ratio (Table 4) on
the ``panini_ladder`` preset: the same image, sigma, noise and q at every level, only r changing.
A quick self-check; the suite's own numbers come from ``frbench evaluate``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np


def lpips_randinit(seed: int = 0):
    """lpips 0.1 VGG with the wheel's linear heads and a seeded random-init VGG16 backbone
    (no download)."""
    import types
    import warnings
    from unittest import mock

    import lpips
    import lpips.pretrained_networks as pn
    import torch
    import torchvision.models.vgg as tvv

    def feats(*_a, **_k):
        return types.SimpleNamespace(features=tvv.make_layers(tvv.cfgs["D"], batch_norm=False))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), \
            mock.patch.object(pn.tv, "vgg16", feats):
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        lp = lpips.LPIPS(pretrained=True, net="vgg", version="0.1", pnet_rand=True, verbose=False)
    return lp.eval()


def quantise(t):
    """[-1,1] NCHW tensor -> the 8-bit values it would be saved as, float64 NCHW in [0,255]."""
    import torch

    from core.imageio import to_uint8
    a = t.detach().clamp(-1, 1).add(1).mul(0.5).permute(0, 2, 3, 1).cpu().numpy()
    return torch.from_numpy(to_uint8(a).astype(np.float64)).permute(0, 3, 1, 2)


def scores(y, gt, lp) -> dict:
    """Mean PSNR / SSIM / random-init LPIPS of restorations ``y`` against ``gt`` (both [-1,1])."""
    import torch

    from metrics.functional import psnr, ssim
    a, b = quantise(y), quantise(gt)
    with torch.no_grad():
        lpv = float(lp((a / 127.5 - 1).float(), (b / 127.5 - 1).float()).mean())
    return {"psnr": round(float(psnr(a, b).mean()), 3), "ssim": round(float(ssim(a, b).mean()), 4),
            "lpips_randinit_vgg": round(lpv, 4)}


def degraded(params, preset_name: str, overrides: dict | None, files, hqs):
    """The seeded LQ of ``hqs`` under a preset: one draw per (preset, overrides, image id)."""
    import torch

    from degradations import get_preset
    from core.imageio import to_tensor
    from core.seeding import rng_for
    preset = get_preset(preset_name, overrides or None)
    key = json.dumps([preset_name, overrides or {}], sort_keys=True)
    lq = []
    for f, hq in zip(files, hqs):
        p = preset.sample(rng_for(params.seed, "baselines-quality", key, f.stem), hq.shape[0])
        lq.append(to_tensor(preset.apply(hq, p)))
    return torch.cat(lq)


def ladder_theta(model, params, files, hqs, factors) -> dict:
    """Mean theta of ``model`` at each ``panini_ladder`` level (one parameter draw per image)."""
    import torch

    from degradations import get_preset
    from core.imageio import to_tensor
    from core.seeding import rng_for
    ladder = get_preset("panini_ladder", {"factors": list(factors)})
    theta = {}
    for level in ladder.levels:
        xs = [to_tensor(ladder.apply(hq, ladder.sample(
            rng_for(params.seed, "panini-quality", "ladder", f.stem), hq.shape[0], level=level)))
            for f, hq in zip(files, hqs)]
        with torch.no_grad():
            theta[level] = round(float(model.theta(torch.cat(xs)).mean()), 4)
    return theta


def main(argv=None, *, default_methods=("panini",), default_theta=False,
         description: str | None = None) -> int:
    ap = argparse.ArgumentParser(description=description or __doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--hq", default="data/hq/test")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--methods", nargs="*", default=list(default_methods))
    ap.add_argument("--train", action="store_true", help="train each method first")
    ap.add_argument("--theta", action=argparse.BooleanOptionalAction, default=default_theta,
                    help="Panini's theta on the panini_ladder levels")
    ap.add_argument("--ladder-factors", nargs="*", type=int, default=[2, 4, 8, 16])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from methods.base import resize
    from methods.trainer import load_for_inference, train
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params
    from core.errors import FRBenchError
    from core.imageio import list_images, read_image, to_float, to_tensor

    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    unknown = [m for m in args.methods if m not in (params.methods or {})]
    if unknown:
        raise FRBenchError(f"{args.params}: no methods entry {unknown} (have "
                           f"{sorted(params.methods or {})})")
    ck_root = Path(args.checkpoints or params.train.checkpoint_dir)
    if args.train:
        params = dataclasses.replace(params, train=dataclasses.replace(
            params.train, checkpoint_dir=str(ck_root), sample_every=0, log_every=0), mlflow=None)
    files = list_images(args.hq)[: args.n]
    hqs = [to_float(read_image(f)) for f in files]
    gt = torch.cat([to_tensor(a) for a in hqs])
    lp = lpips_randinit()
    rows = {}
    for name in args.methods:
        ck = ck_root / name / "model.pt"
        train_s = None
        if args.train:
            t0 = time.perf_counter()
            train(build_trainee(name, params), params, ck_root / name, show_progress=False)
            train_s = round(time.perf_counter() - t0, 1)
        if not ck.is_file():
            print(f"{name:14s} no checkpoint at {ck}; skipped", flush=True)
            continue
        m = build_trainee(name, params)
        load_for_inference(m, ck)
        m.eval()
        x = degraded(params, m.train_preset, m.train_overrides, files, hqs)
        with torch.no_grad():
            out = torch.cat([m.restore(x[i:i + 8]) for i in range(0, len(x), 8)])
            bic = resize(x, m.out_size).clamp(-1, 1)
        res = {"method": scores(out, gt, lp), "lq_bicubic": scores(bic, gt, lp),
               "train_s": train_s, "lq_size": m.lq_size, "preset": m.train_preset}
        a, b = res["method"], res["lq_bicubic"]
        res["beats_lq_psnr"] = a["psnr"] > b["psnr"]
        res["beats_lq_lpips"] = a["lpips_randinit_vgg"] < b["lpips_randinit_vgg"]
        if args.theta and hasattr(m, "theta") and getattr(m.cfg, "variant", None) == "mfr":
            res["theta_ladder"] = ladder_theta(m, params, files, hqs, args.ladder_factors)
        rows[name] = res
        print(f"{name:14s} PSNR {a['psnr']:6.2f} SSIM {a['ssim']:.4f} LPIPS "
              f"{a['lpips_randinit_vgg']:.4f} | LQ bicubic ({m.lq_size} px) PSNR {b['psnr']:6.2f} "
              f"SSIM {b['ssim']:.4f} LPIPS {b['lpips_randinit_vgg']:.4f} | beats LQ: PSNR "
              f"{res['beats_lq_psnr']}, LPIPS {res['beats_lq_lpips']}"
              + (f" | train {train_s} s" if train_s is not None else "")
              + (f" | theta {res['theta_ladder']}" if "theta_ladder" in res else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
