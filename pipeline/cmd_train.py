"""``frbench train NAME``: pretrain the prior (``prior``), the DRE (``dre``), or train a method
entry of params.yaml (``methods.NAME``) with the shared trainer (methods/trainer.py).

Writes ``<out>/model.pt`` (+ ``train_log.json``, ``samples/``) when the run finishes;
intermediate checkpoints are ``<out>/model.partial.pt`` (a partial checkpoint: consumers refuse it
without ``--allow-partial``). ``--out`` defaults to ``<train.checkpoint_dir>/NAME``. ``--resume``
continues from the latest checkpoint in ``<out>``. Multi-process:
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
    p.add_argument("--allow-partial", action="store_true",
                   help="start from a partial prior / DRE checkpoint (recorded in provenance)")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if frbench made it as another kind of output")


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
    from pipeline.tracking import TrainTracker

    if args.steps is not None and args.steps < 1:
        raise FRBenchError(f"--steps: must be >= 1 (the total steps of the run), got {args.steps}")
    params = load_params(args.params)
    if params.train is None:
        raise FRBenchError(f"{args.params}: missing section 'train'")
    if args.device is not None:
        from core.environment import check_device
        check_device(args.device, "--device", available=True)
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
                show_progress=not args.no_progress,
                logger=TrainTracker(getattr(params, "mlflow", None)),
                allow_partial=args.allow_partial, force=args.force)
    hist = res["history"]
    if hist:
        last = {k: round(v, 4) for k, v in hist[-1].items() if k.startswith("loss")}
        log.info("%s: %d steps done, last losses %s -> %s", args.name, res["step"], last,
                 res["checkpoint"])
    return 0
