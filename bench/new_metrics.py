"""Benchmark: CPU cost per image of deg_dlib, lmd_dlib68 and NIQE, beside PSNR/SSIM, at 64 and
512 px, and what they add to the built-in pipeline's evaluation.

    python -m bench.new_metrics [--n 6] [--threads 1]

Images: FFHQ-aligned crops of ``skimage.data.astronaut()`` down-sampled by 1..n and back
(different pixels each), at 64 px (``builtin`` protocol: NIQE on Y enlarged x3) and 512 px
(``gfpgan_celeba_test``: NIQE on 96 px tiles). Per metric: seconds per restored image, the
GT side excluded (the evaluator caches GT descriptors/landmarks across methods; NIQE has no GT
side). Timings are wall clock in one process, one thread; on a shared machine read the ratios.
"""
from __future__ import annotations

import argparse
import os
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=6, help="images per size")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    from metrics import functional as MF
    from metrics.dlib_face import DlibFace, align_face
    from metrics.niqe import load_params, niqe_rgb
    from metrics.protocols import PROTOCOLS
    from metrics.weights import resolve

    torch.set_num_threads(a.threads)
    face = DlibFace()
    params = load_params(resolve("niqe_pris_params").path)
    base = align_face(data.astronaut(), 512, face.sp68)
    rows = []
    for size, proto in ((64, PROTOCOLS["builtin"]), (512, PROTOCOLS["gfpgan_celeba_test"])):
        b = np.asarray(Image.fromarray(base).resize((size, size), Image.BICUBIC))
        imgs = [np.asarray(Image.fromarray(b).resize((max(4, size // (k + 1)),) * 2, Image.BICUBIC)
                           .resize((size, size), Image.BICUBIC)) for k in range(a.n)]

        def timed(fn):
            fn(imgs[:1])                       # warm-up (lazy allocations, caches)
            t = time.perf_counter()
            fn(imgs)
            return (time.perf_counter() - t) / len(imgs)

        def psnr_ssim(ims):
            x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).double()
            y = torch.from_numpy(np.stack([b] * len(ims))).permute(0, 3, 1, 2).double()
            MF.psnr(x, y), MF.ssim(x, y)

        res = {"psnr+ssim": timed(psnr_ssim),
               "deg_dlib": timed(face.descriptors),
               "lmd_dlib68": timed(face.landmarks68),
               "niqe": timed(lambda ims: [niqe_rgb(i, params, proto.crop_border, proto.niqe_block,
                                                   proto.niqe_upscale) for i in ims])}
        rows.append((size, res))
    print(f"CPU seconds per restored image ({a.threads} thread(s), {a.n} images per size)")
    names = list(rows[0][1])
    print(f"{'size':>5} " + " ".join(f"{n:>12}" for n in names))
    for size, res in rows:
        print(f"{size:>5} " + " ".join(f"{res[n]:12.4f}" for n in names))
    for size, res in rows:
        print(f"{size:>5} ratio to psnr+ssim: " +
              ", ".join(f"{n} {res[n] / res['psnr+ssim']:.2g}x" for n in names[1:]))
    # what the built-in pipeline's evaluation gains (GT side once per GT image)
    try:
        from pipeline.config import load_params as load_pipeline_params
        from pipeline.report import cells
        p = load_pipeline_params("params.yaml")
        n_img = 0
        for _, s in cells(p):
            spec = p.testsets.sets[s]
            per = spec.n * (len(spec.overrides.get("factors", [])) or 1)
            n_img += per
        r64 = rows[0][1]
        add = n_img * (r64["deg_dlib"] + r64["lmd_dlib68"] + r64["niqe"])
        print(f"built-in pipeline: {len(cells(p))} cells, {n_img} restored images -> about "
              f"{add:.0f} s added to evaluation on one core, plus the GT side once per distinct "
              f"GT image ({p.data.test.n} x {r64['deg_dlib'] + r64['lmd_dlib68']:.2f} s, "
              "disk-cached across cells) and loading the dlib models once per cell process")
    except Exception as e:  # not in a checkout with params.yaml
        print(f"(pipeline estimate skipped: {e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
