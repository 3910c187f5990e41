"""Do the baselines (GPEN, GFP-GAN, pSp + ablations) beat their bicubic-upsampled input?

    python -m bench.baselines_quality [--params params.yaml] [--checkpoints DIR] [--hq DIR]
                                      [--n 24] [--methods gpen gfpgan psp ...] [--train]
                                      [--json out.json]

With ``--train`` each method is first trained with the shared trainer for its params budget
(``methods.<name>.steps``, = Panini's) into ``--checkpoints`` (default ``train.checkpoint_dir``;
needs the prior checkpoint there). Then the held-out HQ faces (``data/hq/test``) are degraded
with each method's training preset (seeded by preset and image id, so methods sharing a preset
see the same LQ),
restored, and scored against the HQ: PSNR and SSIM (RGB, 8-bit quantised, metrics.functional)
and LPIPS (lpips 0.1 VGG, linear heads from the wheel, backbone random-init with a fixed seed:
the built-in tier's provenance, NOT comparable with published LPIPS) — for the method and for
the bicubic-upsampled LQ (the "LQ input" row). Quick self-check; the suite's numbers come from
``frbench evaluate``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

DEFAULT = ["gpen", "gpen_noft", "gpen_nonoise", "gpen_noiseadd", "gfpgan", "gfpgan_sft", "psp"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoints", default=None)
    ap.add_argument("--hq", default="data/hq/test")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--methods", nargs="*", default=DEFAULT)
    ap.add_argument("--train", action="store_true", help="train each method first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import dataclasses

    import torch

    from bench.panini_quality import _lpips_model
    from degradations import get_preset
    from methods.base import resize
    from methods.trainer import load_for_inference, train
    from metrics.functional import psnr, ssim
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params
    from pipeline.imageio import list_images, read_image, to_float, to_tensor, to_uint8
    from pipeline.seeding import rng_for

    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    ck_root = Path(args.checkpoints or params.train.checkpoint_dir)
    if args.train:
        params = dataclasses.replace(params, train=dataclasses.replace(
            params.train, checkpoint_dir=str(ck_root), sample_every=0, log_every=0), mlflow=None)
    files = list_images(args.hq)[: args.n]
    hqs = [to_float(read_image(f)) for f in files]
    lp = _lpips_model()
    rows = {}

    def q8(t):  # [-1,1] tensor -> 8-bit values as float64 NCHW [0,255]
        a = t.clamp(-1, 1).add(1).mul(0.5).permute(0, 2, 3, 1).numpy()
        return torch.from_numpy(to_uint8(a).astype(np.float64)).permute(0, 3, 1, 2)

    def scores(y, gt):
        a, b = q8(y), q8(gt)
        with torch.no_grad():
            lpv = float(lp((a / 127.5 - 1).float(), (b / 127.5 - 1).float()).mean())
        return {"psnr": round(float(psnr(a, b).mean()), 3),
                "ssim": round(float(ssim(a, b).mean()), 4), "lpips_randinit_vgg": round(lpv, 4)}

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
        preset = get_preset(m.train_preset, m.train_overrides or None)
        lq = []
        for f, hq in zip(files, hqs):
            # the same LQ for every method with the same preset (seeded by preset, not method)
            key = json.dumps([m.train_preset, m.train_overrides or {}], sort_keys=True)
            p = preset.sample(rng_for(params.seed, "baselines-quality", key, f.stem), hq.shape[0])
            lq.append(preset.apply(hq, p))
        x = torch.cat([to_tensor(a) for a in lq])
        gt = torch.cat([to_tensor(a) for a in hqs])
        with torch.no_grad():
            out = torch.cat([m.restore(x[i:i + 8]) for i in range(0, len(x), 8)])
            bic = resize(x, m.out_size).clamp(-1, 1)
        res = {"method": scores(out, gt), "lq_bicubic": scores(bic, gt), "train_s": train_s,
               "lq_size": m.lq_size, "preset": m.train_preset}
        res["beats_lq_psnr"] = res["method"]["psnr"] > res["lq_bicubic"]["psnr"]
        rows[name] = res
        a, b = res["method"], res["lq_bicubic"]
        print(f"{name:14s} PSNR {a['psnr']:6.2f} SSIM {a['ssim']:.4f} LPIPS {a['lpips_randinit_vgg']:.4f}"
              f" | LQ bicubic ({m.lq_size} px) PSNR {b['psnr']:6.2f} SSIM {b['ssim']:.4f} LPIPS "
              f"{b['lpips_randinit_vgg']:.4f} | beats LQ: {res['beats_lq_psnr']}"
              + (f" | train {train_s} s" if train_s is not None else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
