"""Does Panini-Net beat its (bicubic-upsampled) input after the built-in training budget?

    python -m bench.panini_quality [--params params.yaml] [--checkpoints DIR] [--hq DIR] [--n 24]

Degrades held-out HQ faces with each method's training preset (seeded, ``rng_for(seed,
"panini-quality", method, id)``), restores them with the trained checkpoints, and prints PSNR
(RGB, 8-bit quantised outputs) and LPIPS (lpips 0.1 VGG, linear heads from the wheel, backbone
random-init with a fixed seed: the built-in tier's provenance, NOT comparable with published
LPIPS) for the method and for the bicubic-upsampled LQ. Then theta (Table 4) for the MFR model on
the ``panini_ladder`` preset at each level (same image, same sigma/noise/q, only r changing).
Quick self-check only; the suite's numbers come from ``frbench evaluate``.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np


def _lpips_model(seed: int = 0):
    import warnings
    import types
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--hq", default="data/hq/test")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--methods", nargs="*", default=["panini", "panini_catconv", "panini_sr"])
    ap.add_argument("--ladder-factors", nargs="*", type=int, default=[2, 4, 8, 16])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from degradations import get_preset
    from methods.base import resize
    from methods.trainer import load_for_inference
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params
    from pipeline.imageio import list_images, read_image, to_float, to_tensor, to_uint8
    from pipeline.seeding import rng_for

    params = load_params(args.params)
    ck_root = Path(args.checkpoints or params.train.checkpoint_dir)
    files = list_images(args.hq)[: args.n]
    hqs = [to_float(read_image(f)) for f in files]
    lp = _lpips_model()
    rows = {}

    def q8(t):  # [-1,1] tensor -> 8-bit quantised float in [0,1]
        a = t.clamp(-1, 1).add(1).mul(0.5).permute(0, 2, 3, 1).numpy()
        return to_uint8(a).astype(np.float64) / 255

    for name in args.methods:
        if not (ck_root / name / "model.pt").is_file():
            continue
        m = build_trainee(name, params)
        load_for_inference(m, ck_root / name / "model.pt")
        m.eval()
        preset = get_preset(m.train_preset, m.train_overrides or None)
        lq = []
        for f, hq in zip(files, hqs):
            p = preset.sample(rng_for(params.seed, "panini-quality", name, f.stem), hq.shape[0])
            lq.append(preset.apply(hq, p))
        x = torch.cat([to_tensor(a) for a in lq])
        gt = torch.cat([to_tensor(a) for a in hqs])
        with torch.no_grad():
            out = torch.cat([m.restore(x[i:i + 8]) for i in range(0, len(x), 8)])
            bic = resize(x, m.out_size).clamp(-1, 1)
        res = {}
        for label, y in (("method", out), ("bicubic", bic)):
            a, b = q8(y), q8(gt)
            mse = ((a - b) ** 2).reshape(len(a), -1).mean(1)
            psnr = float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12))))
            yq = torch.from_numpy(a).permute(0, 3, 1, 2).float() * 2 - 1
            gq = torch.from_numpy(b).permute(0, 3, 1, 2).float() * 2 - 1
            with torch.no_grad():
                lpv = float(lp(yq, gq).mean())
            res[label] = {"psnr": round(psnr, 3), "lpips_randinit_vgg": round(lpv, 4)}
        rows[name] = res
        print(f"{name:16s} PSNR {res['method']['psnr']:.2f} (bicubic LQ {res['bicubic']['psnr']:.2f})"
              f"  LPIPS {res['method']['lpips_randinit_vgg']:.4f} (bicubic LQ "
              f"{res['bicubic']['lpips_randinit_vgg']:.4f})", flush=True)

    if (ck_root / "panini" / "model.pt").is_file():
        m = build_trainee("panini", params)
        load_for_inference(m, ck_root / "panini" / "model.pt")
        m.eval()
        ladder = get_preset("panini_ladder", {"factors": args.ladder_factors})
        theta = {}
        for level in ladder.levels:
            xs = []
            for f, hq in zip(files, hqs):
                p = ladder.sample(rng_for(params.seed, "panini-quality", "ladder", f.stem),
                                  hq.shape[0], level=level)
                xs.append(to_tensor(ladder.apply(hq, p)))
            theta[level] = round(float(m.theta(torch.cat(xs)).mean()), 4)
        rows["theta_ladder"] = theta
        print("theta (panini_ladder):", theta)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
