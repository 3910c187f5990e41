"""The reference tools as a researcher chains them by hand, one fresh process each (used by
``python -m bench.evaluate``; each prints one JSON line with its values).

    python -m bench.evaluate_anchors skimage RESTORED GT
    python -m bench.evaluate_anchors lpips RESTORED GT --net alex --weights W.pt
    python -m bench.evaluate_anchors fid RESTORED GT|GT.npz --weights W.pt
    python -m bench.evaluate_anchors fid-stats GT OUT.npz --weights W.pt

1. scikit-image: per pair ``imread`` x2, ``peak_signal_noise_ratio(data_range=255)``,
   ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
   data_range=255, channel_axis=2)`` (the BasicSR/Wang et al. SSIM settings);
2. ``lpips``: the loop of its ``lpips_2dirs.py`` (``load_image`` + ``im2tensor`` per file, batch 1,
   ``lpips.LPIPS(net=...)``), the backbone and linear heads loaded from ``W.pt`` instead of
   torchvision's download (``pnet_rand=True`` + ``load_state_dict``);
3. pytorch-fid: its command line (``python -m pytorch_fid A B``: batch 50, CPU, 2048 dims, its own
   worker count), with ``pytorch_fid.inception.load_state_dict_from_url`` answering from ``W.pt``
   (what its torch-hub cache would do offline); ``fid-stats`` is its ``--save-stats``.
Restored files are ``<id>_00.png`` next to GT ``<id>.png`` (GFPGAN's naming), so the skimage and
lpips loops pair them by id like the suite does.
"""
from __future__ import annotations

import json
import sys
import time


def _pairs(res: str, gt: str):
    from pathlib import Path
    out = []
    for g in sorted(Path(gt).glob("*.png")):
        r = Path(res) / f"{g.stem}_00.png"
        out.append((r if r.is_file() else Path(res) / g.name, g))
    return out


def skimage_anchor(res: str, gt: str) -> dict:
    import numpy as np
    from skimage.io import imread
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    p, s = [], []
    for r, g in _pairs(res, gt):
        a, b = imread(g), imread(r)
        p.append(peak_signal_noise_ratio(a, b, data_range=255))
        s.append(structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=255,
                                       channel_axis=2))
    return {"psnr": float(np.mean(p)), "ssim": float(np.mean(s)), "n": len(p)}


def lpips_anchor(res: str, gt: str, net: str, weights: str) -> dict:
    import warnings

    import lpips
    import numpy as np
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)
    model.load_state_dict(torch.load(weights, weights_only=True)["lpips"])
    model.eval()
    vals = []
    with torch.no_grad():
        for r, g in _pairs(res, gt):
            a = lpips.im2tensor(lpips.load_image(str(g)))
            b = lpips.im2tensor(lpips.load_image(str(r)))
            vals.append(float(model.forward(a, b)))
    return {"lpips": float(np.mean(vals)), "n": len(vals)}


def fid_anchor(paths: list[str], weights: str, save_stats: bool = False) -> dict:
    import contextlib
    import io
    from unittest import mock

    import pytorch_fid.fid_score as fs
    import pytorch_fid.inception as pfi
    import torch

    def from_file(*_a, **_k):
        return torch.load(weights, weights_only=True)["inception"]

    argv = ["pytorch_fid", "--device", "cpu"] + (["--save-stats"] if save_stats else []) + paths
    buf = io.StringIO()
    with mock.patch.object(pfi, "load_state_dict_from_url", from_file), \
            mock.patch.object(sys, "argv", argv), contextlib.redirect_stdout(buf):
        try:
            fs.main()
        except ValueError as e:  # "Imaginary component ..." on rank-deficient covariances
            return {"fid": None, "error": str(e)[:120]}
    out = buf.getvalue()
    if save_stats:
        return {"saved": paths[1]}
    return {"fid": float(out.split("FID:")[1].split()[0])}


def main(argv=None) -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tool", choices=["skimage", "lpips", "fid", "fid-stats"])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--net", default="alex")
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    if args.tool == "skimage":
        out = skimage_anchor(args.a, args.b)
    elif args.tool == "lpips":
        out = lpips_anchor(args.a, args.b, args.net, args.weights)
    else:
        out = fid_anchor([args.a, args.b], args.weights, save_stats=args.tool == "fid-stats")
    out["compute_s"] = time.perf_counter() - t
    print(json.dumps(out))


if __name__ == "__main__":
    main()
