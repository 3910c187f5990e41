"""``frbench restore --method M --checkpoint C --input DIR --output DIR``: restore every image of a
folder with a trained method and write PNGs at the method's output size (atomic output folder:
nothing is left behind on failure). Inputs of another size are resized to the method's LQ size
(bicubic); non-square inputs are an error.
"""
from __future__ import annotations

import logging

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--method", required=True, help="methods entry of params.yaml")
    p.add_argument("--checkpoint", default=None,
                   help="model.pt (default <train.checkpoint_dir>/<method>/model.pt)")
    p.add_argument("--input", required=True, help="folder of LQ images")
    p.add_argument("--output", required=True, help="output folder (replaced atomically)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    p.add_argument("--device", default=None, help="override params.device (cpu, cuda)")
    p.add_argument("--strict-size", action="store_true",
                   help="refuse inputs whose size differs from the method's LQ size")


def restore_folder(method, inp, out, batch_size: int = 8, device: str = "cpu",
                   strict_size: bool = False) -> int:
    """Restore all images of ``inp`` into ``out`` (same file names, .png). Returns the count."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from core.imageio import (atomic_dir, from_tensor, list_images, read_image, to_float,
                                  to_tensor, write_png)

    files = list_images(inp)
    method.to(device).eval()
    with atomic_dir(out) as tmp:
        for i in tqdm(range(0, len(files), batch_size), desc=f"restore {method.name}", leave=False):
            chunk = files[i:i + batch_size]
            imgs = [read_image(f) for f in chunk]
            for f, im in zip(chunk, imgs):
                if im.shape[0] != im.shape[1]:
                    raise FRBenchError(f"{f}: {im.shape[1]}x{im.shape[0]} is not square; "
                                       "restore expects aligned square face crops")
                if strict_size and im.shape[0] != method.lq_size:
                    raise FRBenchError(f"{f}: {im.shape[0]} px but {method.name} expects "
                                       f"{method.lq_size} px LQ input")
            sizes = {im.shape[0] for im in imgs}
            outs = []
            for s in sorted(sizes):
                idx = [j for j, im in enumerate(imgs) if im.shape[0] == s]
                x = torch.cat([to_tensor(to_float(imgs[j])) for j in idx]).to(device)
                with torch.no_grad():
                    y = from_tensor(method.restore(x))
                outs += list(zip(idx, y))
            for j, y in sorted(outs, key=lambda t: t[0]):
                write_png(tmp / (chunk[j].stem + ".png"), y)
    return len(files)


def run(args):
    from pathlib import Path

    from methods.trainer import load_for_inference
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params

    params = load_params(args.params)
    if args.method in ("prior", "dre"):
        raise FRBenchError(f"'{args.method}' is not a restoration method")
    method = build_trainee(args.method, params)
    ckpt = args.checkpoint or Path(params.train.checkpoint_dir) / args.method / "model.pt"
    load_for_inference(method, ckpt)
    n = restore_folder(method, args.input, args.output, args.batch_size,
                       args.device or params.device, args.strict_size)
    log.info("%s: restored %d images -> %s", args.method, n, args.output)
    return 0
