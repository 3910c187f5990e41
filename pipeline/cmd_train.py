"""``frbench train NAME``: pretrain the prior (``prior``), the DRE (``dre``), or train a method
entry of params.yaml (``methods.NAME``) with the shared trainer (methods/trainer.py).

Writes ``<out>/model.pt`` (+ ``train_log.json``, ``samples/``); ``--out`` defaults to
``<train.checkpoint_dir>/NAME``. ``--resume`` continues from ``<out>/model.pt``. Multi-process:
``torchrun --nproc_per_node=N -m pipeline.cli train NAME``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("name", help="'prior', 'dre', or a methods entry of params.yaml")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--steps", type=int, default=None, help="total steps (default from params)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/model.pt")
    p.add_argument("--out", default=None, help="output folder (default <checkpoint_dir>/NAME)")
    p.add_argument("--device", default=None, help="override params.device (cpu, cuda)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def build_trainee(name: str, params):
    """'prior' | 'dre' | a methods entry -> a Trainable, initialised from a seeded stream."""
    import torch

    from core.seeding import stable_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_seed(params.seed, "init", name) & 0x7FFF_FFFF_FFFF_FFFF)
        if name == "prior":
            if params.prior is None:
                raise FRBenchError("params: missing section 'prior'")
            from methods.prior import PriorGAN
            return PriorGAN(params.prior, params)
        if name == "dre":
            if params.dre is None:
                raise FRBenchError("params: missing section 'dre'")
            from methods.dre import DREMoCo
            return DREMoCo(params.dre, params)
        from methods import build_method
        return build_method(name, params)


def run(args):
    from methods.trainer import train
    from pipeline.config import load_params

    params = load_params(args.params)
    if params.train is None:
        raise FRBenchError(f"{args.params}: missing section 'train'")
    out = Path(args.out or Path(params.train.checkpoint_dir) / args.name)
    if args.name == "prior" and params.prior is not None and params.prior.source == "released":
        from pipeline.cmd_import import import_prior
        imp = import_prior(params, out)
        log.info("prior: imported %s instead of training (prior.source: released) -> %s",
                 imp.source, imp.path)
        return 0
    from methods.released.base import is_imported_checkpoint
    if (out / "model.pt").is_file() and is_imported_checkpoint(out / "model.pt"):
        raise FRBenchError(f"{out / 'model.pt'}: an imported released model (frbench import); "
                           f"training '{args.name}' would replace it: train under another "
                           "name (--out) or move it away")
    trainee = build_trainee(args.name, params)
    res = train(trainee, params, out, steps=args.steps, resume=args.resume, device=args.device,
                show_progress=not args.no_progress)
    hist = res["history"]
    if hist:
        last = {k: round(v, 4) for k, v in hist[-1].items() if k.startswith("loss")}
        log.info("%s: %d steps done, last losses %s -> %s", args.name, res["step"], last,
                 res["checkpoint"])
    return 0
