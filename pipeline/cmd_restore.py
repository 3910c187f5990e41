"""``frbench restore --method M --checkpoint C --input DIR --output DIR``: restore every image of a
folder with a trained method and write PNGs at the method's output size, plus ``manifest.json``
(method, checkpoint and its step, input folder, sizes, whether inputs were resized or a partial
checkpoint was allowed). The output folder is written atomically (nothing is left behind on
failure) and follows the output-folder rules (``core.outputs``: never the input folder, never a
folder frbench did not make).

Inputs must be square and exactly the method's LQ size: every image's size is read from its
header before anything runs, and another size is an error naming both sizes. ``--resize``
resizes them to the LQ size (bicubic) instead, and the manifest records it. A partial checkpoint
(an unfinished training) is refused unless ``--allow-partial`` (recorded in the manifest).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
    p.add_argument("--resize", action="store_true",
                   help="resize inputs of another size to the method's LQ size (bicubic; "
                        "recorded in the output's manifest.json) instead of refusing them")
    p.add_argument("--allow-partial", action="store_true",
                   help="use a partial checkpoint (unfinished training; recorded in the manifest)")
    p.add_argument("--force", action="store_true",
                   help="replace --output even if frbench made it as another kind of output "
                        "(never a folder frbench did not make, never an input)")
    # the old opt-in; refusing other sizes is now the default
    p.add_argument("--strict-size", action="store_true", help=argparse.SUPPRESS)


def check_inputs(files, lq_size: int, method_name: str, resize: bool) -> dict[int, int]:
    """Sizes of the input images from their headers: square, and ``lq_size`` unless
    ``resize``. Returns {side: count}."""
    from core.imageio import image_size

    sizes: dict[int, int] = {}
    for f in files:
        w, h = image_size(f)
        if w != h:
            raise FRBenchError(f"{f}: {w}x{h} is not square; restore expects aligned square "
                               "face crops")
        if w != lq_size and not resize:
            raise FRBenchError(f"{f}: {w}x{h} px, but {method_name} takes {lq_size}x{lq_size} px "
                               "LQ input; give inputs of that size, or pass --resize to resize "
                               "them (recorded in the output's manifest.json)")
        sizes[w] = sizes.get(w, 0) + 1
    return sizes


def restore_folder(method, inp, out, batch_size: int = 8, device: str = "cpu",
                   strict_size: bool = True, *, resize: bool = False, force: bool = False,
                   checkpoint=None, record: dict | None = None) -> int:
    """Restore all images of ``inp`` into ``out`` (same file names, .png) and write
    ``manifest.json``. Returns the count. ``resize``: inputs of another size are resized to the
    LQ size (else refused; ``strict_size`` is kept for old callers and has no effect).
    ``checkpoint``: its path (an input: ``out`` may not contain it). ``record``: extra manifest
    entries (e.g. the checkpoint's step)."""
    import torch
    from tqdm import tqdm

    from core.imageio import (from_tensor, list_images, read_image, to_float, to_tensor,
                              write_png)
    from core.manifest import write_json
    from core.outputs import atomic_dir, check_output_dir

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FRBenchError(f"--batch-size: must be >= 1, got {batch_size!r}")
    inputs = [inp, checkpoint]
    check_output_dir(out, "restored", inputs, force)
    files = list_images(inp)
    sizes = check_inputs(files, method.lq_size, method.name, resize)
    method.to(device).eval()
    with atomic_dir(out, "restored", inputs, force) as tmp:
        for i in tqdm(range(0, len(files), batch_size), desc=f"restore {method.name}", leave=False):
            chunk = files[i:i + batch_size]
            imgs = [read_image(f) for f in chunk]
            outs = []
            for s in sorted({im.shape[0] for im in imgs}):
                idx = [j for j, im in enumerate(imgs) if im.shape[0] == s]
                x = torch.cat([to_tensor(to_float(imgs[j])) for j in idx]).to(device)
                with torch.no_grad():
                    y = from_tensor(method.restore(x))
                outs += list(zip(idx, y))
            for j, y in sorted(outs, key=lambda t: t[0]):
                write_png(tmp / (chunk[j].stem + ".png"), y)
        other = {str(k): v for k, v in sorted(sizes.items()) if k != method.lq_size}
        write_json(tmp / "manifest.json", {
            "kind": "restored", "method": method.name, "arch": method.arch,
            "input": str(inp), "checkpoint": str(checkpoint) if checkpoint else None,
            "n_images": len(files), "lq_size": method.lq_size, "out_size": method.out_size,
            "resize_allowed": bool(resize),
            "resized": {"n": sum(other.values()), "from_sizes": other,
                        "to": method.lq_size, "interpolation": "bicubic"} if other else None,
            **(record or {})})
    return len(files)


def checkpoint_record(ck: dict, allow_partial: bool) -> dict:
    """Manifest entries about the checkpoint used (step, total, whether partial was allowed)."""
    from methods.trainer import is_partial

    return {"checkpoint": ck.get("loaded_from"),
            "checkpoint_step": ck.get("step"), "checkpoint_total_steps": ck.get("total_steps"),
            "partial_checkpoint": is_partial(ck),
            "allow_partial": bool(allow_partial)}


def run(args):
    from core.environment import check_device
    from core.imageio import list_images
    from core.outputs import check_output_dir
    from methods.trainer import load_for_inference
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params

    if args.batch_size < 1:
        raise FRBenchError(f"--batch-size: must be >= 1, got {args.batch_size}")
    params = load_params(args.params)
    device = check_device(args.device or params.device,
                          "--device" if args.device else "params: device", available=True)
    if args.method in ("prior", "dre"):
        raise FRBenchError(f"'{args.method}' is not a restoration method")
    if params.methods is None or args.method not in params.methods:
        raise FRBenchError(f"params: no method entry '{args.method}' under 'methods' (have: "
                           f"{', '.join(sorted(params.methods or {}))})")
    ckpt = args.checkpoint or Path(params.train.checkpoint_dir) / args.method / "model.pt"
    # everything that can be checked cheaply, before the checkpoint is loaded
    check_output_dir(args.output, "restored", [args.input, ckpt], args.force)
    method = build_trainee(args.method, params)
    check_inputs(list_images(args.input), method.lq_size, method.name, args.resize)
    ck = load_for_inference(method, ckpt, allow_partial=args.allow_partial)
    n = restore_folder(method, args.input, args.output, args.batch_size, device,
                       resize=args.resize, force=args.force, checkpoint=ckpt,
                       record=checkpoint_record(ck, args.allow_partial))
    log.info("%s: restored %d images -> %s", args.method, n, args.output)
    return 0
