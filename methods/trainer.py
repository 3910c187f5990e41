"""The one trainer: prior pretraining, DRE pretraining, Panini-Net and every baseline.

Per step: build the step's batch (methods/data.py; a pure function of seed, name and step), then
``d_step`` (optional) and ``g_step`` of the ``Trainable`` (methods/base.py), each followed by
backward, gradient averaging across processes, optimiser step; then EMA update and
``after_step``. Features:

- AMP (float16 autocast + one GradScaler per optimiser) and channels_last: CUDA only.
- Multi-process through torchrun (``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; NCCL on CUDA, gloo on
  CPU) or an already initialised process group. Gradients are averaged with ``all_reduce``
  after each backward (what DDP does, without its wrapper, so that the trainable's own
  ``g_step``/``d_step`` may call any submodule and lazy regularisers may skip parameters).
  Rank r trains on global samples ``[r B/W, (r+1) B/W)``: with losses that are means over the
  batch the result equals one process with the same global batch (tests/test_trainer.py).
  Rank 0 writes checkpoints, logs and MLflow.
- Checkpoint ``<out>/model.pt`` (atomic): format, kind, method, arch, config, sizes, step, model,
  ema, optimisers, scalers, RNG states (torch/cuda per rank, python, the trainer's numpy
  generator), data position, history, provenance. ``resume=True`` continues the same run.
- NaN guard: a non-finite loss stops training with FRBenchError; the last good checkpoint is kept.
- tqdm progress; MLflow metrics every ``log_every`` and a sample grid every ``sample_every``.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from methods.base import Trainable, TrainContext
from methods.data import HQFolder, StepBatches
from core.errors import FRBenchError
from core.seeding import rng_for, stable_seed

log = logging.getLogger(__name__)
FORMAT = "frbench-checkpoint/1"


# ------------------------------------------------------------------------------------------
# processes

def dist_info() -> tuple[int, int, int]:
    """(rank, world, local_rank); initialises the process group under torchrun if needed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _all_reduce_mean_(tensors: list[torch.Tensor], world: int) -> None:
    if world <= 1 or not tensors:
        return
    import torch.distributed as dist

    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    off = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[off:off + n].view_as(t))
        off += n


def _gather_objects(obj: Any, world: int) -> list:
    if world <= 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


# ------------------------------------------------------------------------------------------
# checkpoints

def _atomic_save(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load (weights_only) with clear errors for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FRBenchError(f"{path}: checkpoint not found (train it first: frbench train ...)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FRBenchError(f"{path}: not a readable checkpoint ({e.__class__.__name__}: "
                           f"{str(e)[:200]}); delete it and retrain") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise FRBenchError(f"{path}: not an frbench checkpoint (format "
                           f"{ck.get('format') if isinstance(ck, dict) else type(ck).__name__!r}, "
                           f"expected {FORMAT!r})")
    return ck


def check_compatible(ck: dict, trainee: Trainable, path: str | os.PathLike) -> None:
    """FRBenchError unless ``ck`` was written for this trainee (name, arch, sizes)."""
    if ck.get("kind") != trainee.kind or ck.get("arch") != trainee.arch:
        raise FRBenchError(f"{path}: checkpoint is for {ck.get('kind')} '{ck.get('method')}' "
                           f"(arch {ck.get('arch')}), not {trainee.kind} '{trainee.name}' "
                           f"(arch {trainee.arch})")
    for key in ("out_size", "lq_size"):
        want = getattr(trainee, key, None)
        if want is not None and ck.get(key) is not None and int(ck[key]) != int(want):
            raise FRBenchError(f"{path}: checkpoint has {key}={ck[key]} but '{trainee.name}' "
                               f"is configured with {key}={want} (params.yaml changed? retrain)")


def load_state(module: nn.Module, state: dict, path: str | os.PathLike, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        msg = str(e).split("\n")
        raise FRBenchError(f"{path}: {what} does not match the configured architecture "
                           f"({' '.join(m.strip() for m in msg[:3])[:300]}); the checkpoint was "
                           "trained with other params: retrain or fix params.yaml") from None


def load_for_inference(trainee: Trainable, path: str | os.PathLike, use_ema: bool = True) -> dict:
    """Load a finished checkpoint into ``trainee`` (EMA weights where kept); returns it."""
    ck = load_checkpoint(path)
    check_compatible(ck, trainee, path)
    if ck.get("method") != trainee.name:
        log.warning("%s: checkpoint of entry '%s' loaded as '%s' (same arch and sizes)", path,
                    ck.get("method"), trainee.name)
    load_state(trainee, ck["model"], path, "model")
    if use_ema:
        for name, sd in (ck.get("ema") or {}).items():
            load_state(trainee.get_submodule(name), sd, path, f"ema '{name}'")
    trainee.provenance.update(ck.get("provenance") or {})
    return ck


# ------------------------------------------------------------------------------------------
# EMA

class EMA:
    """``ema = decay * ema + (1 - decay) * param`` for each module of ``ema_modules()``;
    buffers are copied."""

    def __init__(self, modules: dict[str, nn.Module], decay: float):
        self.decay = decay
        self.src = modules
        self.copies = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in modules.items()}

    @torch.no_grad()
    def update(self) -> None:
        for k, m in self.src.items():
            e = self.copies[k]
            for pe, p in zip(e.parameters(), m.parameters()):
                pe.lerp_(p.detach(), 1.0 - self.decay)
            for be, b in zip(e.buffers(), m.buffers()):
                be.copy_(b)

    def state_dict(self) -> dict:
        return {k: m.state_dict() for k, m in self.copies.items()}

    def load_state_dict(self, sd: dict) -> None:
        for k, m in self.copies.items():
            m.load_state_dict(sd[k])


# ------------------------------------------------------------------------------------------
# the loop

def _params_of(opt: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for g in opt.param_groups for p in g["params"]]


def _set_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


def _rng_state(np_rng: np.random.Generator) -> dict:
    st = {"torch": torch.get_rng_state(), "python": _py_state(),
          "numpy": np_rng.bit_generator.state}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _py_state():
    v, state, gauss = random.getstate()
    return [v, list(state), gauss]


def _set_rng_state(st: dict, np_rng: np.random.Generator) -> None:
    torch.set_rng_state(st["torch"])
    v, state, gauss = st["python"]
    random.setstate((v, tuple(state), gauss))
    np_rng.bit_generator.state = st["numpy"]
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class NonFiniteLoss(FRBenchError):
    """A step's loss is NaN/inf (``which``: "g" or "d"); nothing was stepped for it."""

    def __init__(self, which: str, value: float, step: int):
        super().__init__(f"loss_{which} is {value} at step {step}")
        self.which, self.value, self.step = which, value, step


def train_step(trainee: Trainable, batch: dict, step: int, optims: dict, scalers: dict,
               autocast=nullcontext, world: int = 1) -> dict[str, float]:
    """One optimisation step of ``trainee`` on ``batch`` (already on its device): for each of
    ``trainee.step_order`` the matching ``d_step``/``g_step`` under ``autocast()``, backward
    through its GradScaler, gradients averaged over ``world`` processes, a finite-loss check,
    the optimiser step. Only the active side's parameters require grad meanwhile. Returns the
    logs ``{"loss_g": .., "loss_d": .., <the steps' own logs>}``; raises ``NonFiniteLoss``.
    The loop of ``train`` and ``bench.gpu_smoke`` both call it (EMA/after_step are theirs)."""
    g_params = _params_of(optims["g"]) if "g" in optims else []
    d_params = _params_of(optims["d"]) if "d" in optims else []
    logs: dict[str, float] = {}
    try:
        for which in trainee.step_order:
            if which not in optims:
                continue
            _set_grad(g_params, which == "g")
            _set_grad(d_params, which == "d")
            with autocast():
                res = trainee.d_step(batch, step) if which == "d" else trainee.g_step(batch, step)
            if res is None:
                continue
            loss, l = res
            opt = optims[which]
            opt.zero_grad(set_to_none=True)
            scalers[which].scale(loss).backward()
            grads = [p.grad for p in _params_of(opt) if p.grad is not None]
            _all_reduce_mean_(grads, world)
            lv = torch.tensor([float(loss.detach())] + [float(v) for v in l.values()],
                              dtype=torch.float64)
            _all_reduce_mean_([lv], world)
            if not math.isfinite(float(lv[0])):
                raise NonFiniteLoss(which, float(lv[0]), step)
            scalers[which].step(opt)
            scalers[which].update()
            logs[f"loss_{which}"] = float(lv[0])
            logs.update({k: float(v) for k, v in zip(l.keys(), lv[1:].tolist())})
    finally:
        _set_grad(g_params, True)
        _set_grad(d_params, True)
    return logs


def save_grid(images: torch.Tensor, path: Path, nrow: int = 4) -> None:
    from torchvision.utils import make_grid

    from core.imageio import write_png
    g = make_grid(images.detach().float().cpu().clamp(-1, 1).add(1).mul(0.5), nrow=nrow, padding=1)
    write_png(path, g.permute(1, 2, 0).numpy())


def train(trainee: Trainable, params: Any, out_dir: str | os.PathLike, *,
          steps: Optional[int] = None, resume: bool = False, stop_after: Optional[int] = None,
          device: Optional[str] = None, hq_dir: Optional[str] = None,
          show_progress: bool = True) -> dict:
    """Train ``trainee`` and write ``<out_dir>/model.pt`` + ``train_log.json``.

    ``steps``: total steps of the run (default ``trainee.steps``); ``stop_after``: stop (with a
    checkpoint) once this many steps are done, as if interrupted (tests, time-boxed runs).
    Returns ``{"step", "history", "checkpoint"}``.
    """
    tcfg = params.train
    rank, world, local_rank = dist_info()
    dev_name = device or getattr(params, "device", "cpu") or "cpu"
    if dev_name.startswith("cuda") and not torch.cuda.is_available():
        raise FRBenchError(f"params: device: {dev_name} requested but CUDA is not available")
    dev = torch.device(f"cuda:{local_rank}" if dev_name == "cuda" and world > 1 else dev_name)
    on_cuda = dev.type == "cuda"
    amp = bool(tcfg.amp and on_cuda)
    out = Path(out_dir)
    ckpt_path = out / "model.pt"
    total = int(steps if steps is not None else trainee.steps)
    seed = int(params.seed)
    if getattr(tcfg, "threads", 0):
        torch.set_num_threads(int(tcfg.threads))

    # one torch RNG stream per (run, rank) for in-model randomness (noise injection)
    torch.manual_seed(stable_seed(seed, "train", trainee.name, "torch", rank) & 0x7FFF_FFFF_FFFF_FFFF)
    random.seed(stable_seed(seed, "train", trainee.name, "python", rank))
    np_rng = rng_for(seed, "train", trainee.name, "trainer", rank)

    trainee.setup_training(TrainContext(params, dev, tcfg.checkpoint_dir, rank, world))
    trainee.to(dev)
    if on_cuda and tcfg.channels_last:
        trainee.to(memory_format=torch.channels_last)
    optims = trainee.make_optimizers()
    for o in optims.values():
        for g in o.param_groups:
            g.setdefault("initial_lr", g["lr"])
    scalers = {k: torch.amp.GradScaler("cuda", enabled=amp) for k in optims}
    ema = EMA(trainee.ema_modules(), trainee.ema_decay) if trainee.ema_decay > 0 and \
        trainee.ema_modules() else None
    history: list[dict] = []
    start = 0

    if resume and ckpt_path.is_file():
        ck = load_checkpoint(ckpt_path)
        check_compatible(ck, trainee, ckpt_path)
        if ck.get("config") != _jsonable(trainee.config_dict()):
            raise FRBenchError(f"{ckpt_path}: --resume with different params than the run that "
                               "wrote it; rerun without --resume to start over")
        if int(ck.get("world_size", 1)) != world:
            log.warning("resuming a %s-process run on %d processes", ck.get("world_size"), world)
        load_state(trainee, ck["model"], ckpt_path, "model")
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        for k, o in optims.items():
            o.load_state_dict(ck["optimizers"][k])
        for k, s in scalers.items():
            if k in ck.get("scalers", {}):
                s.load_state_dict(ck["scalers"][k])
        rng_states = ck["rng"]
        _set_rng_state(rng_states[rank] if rank < len(rng_states) else rng_states[0], np_rng)
        start = int(ck["step"])
        history = list(ck.get("history", []))
        log.info("%s: resuming at step %d/%d from %s", trainee.name, start, total, ckpt_path)
    elif resume:
        log.info("%s: --resume but no checkpoint at %s; starting from scratch", trainee.name,
                 ckpt_path)

    def save(step: int) -> None:
        rngs = _gather_objects(_rng_state(np_rng), world)
        if rank != 0:
            return
        ck = {
            "format": FORMAT, "kind": trainee.kind, "method": trainee.name, "arch": trainee.arch,
            "config": _jsonable(trainee.config_dict()),
            "out_size": getattr(trainee, "out_size", None), "lq_size": getattr(trainee, "lq_size", None),
            "step": step, "total_steps": total, "global_batch": trainee.batch_size,
            "world_size": world, "data_position": step * trainee.batch_size,
            "model": {k: v.detach().cpu() for k, v in trainee.state_dict().items()},
            "ema": ema.state_dict() if ema is not None else {},
            "optimizers": {k: o.state_dict() for k, o in optims.items()},
            "scalers": {k: s.state_dict() for k, s in scalers.items()},
            "rng": rngs, "history": history, "provenance": dict(trainee.provenance),
            "versions": {"torch": str(torch.__version__)},
        }
        _atomic_save(ck, ckpt_path)
        _write_log(out, trainee, history, step, total)

    if total <= 0 or not optims:  # nothing to train (e.g. bicubic): just a checkpoint
        save(0)
        return {"step": 0, "history": history, "checkpoint": str(ckpt_path)}
    if start >= total:
        log.info("%s: already trained for %d steps", trainee.name, start)
        if rank == 0 and not ckpt_path.is_file():
            save(start)
        return {"step": start, "history": history, "checkpoint": str(ckpt_path)}

    data = StepBatches(HQFolder(hq_dir or tcfg.hq_dir, trainee.hq_size), trainee.sample_fn(),
                       seed=seed, name=trainee.name, global_batch=trainee.batch_size,
                       images_per_sample=trainee.images_per_sample, rank=rank, world=world)
    end = total if stop_after is None else min(total, int(stop_after))
    # own generator: creating the iterator must not draw from the global torch RNG (that would
    # shift in-model noise after a resume; batches are step-indexed anyway)
    loader = torch.utils.data.DataLoader(data, sampler=range(start, end), batch_size=None,
                                         num_workers=int(tcfg.num_workers),
                                         pin_memory=on_cuda,
                                         generator=torch.Generator().manual_seed(seed))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if amp else nullcontext
    from pipeline import tracking
    from tqdm import tqdm

    mlcfg = getattr(params, "mlflow", None) if rank == 0 else None
    run_params = {"config": _jsonable(trainee.config_dict()), "world": world, "total_steps": total}
    last_saved = start if ckpt_path.is_file() and resume else None
    with tracking.run("train", trainee.name, cfg=mlcfg, params=run_params,
                      tags={"arch": trainee.arch, "kind": trainee.kind}) as mrun:
        trainee.train()
        bar = tqdm(total=end - start, desc=f"train {trainee.name}", disable=not show_progress
                   or rank != 0, leave=False)
        step = start
        t_iter = time.perf_counter()
        for step, batch in enumerate(loader, start):
            t0 = time.perf_counter()
            data_s = t0 - t_iter  # waiting for the batch (degradation, decoding)
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
            if on_cuda and tcfg.channels_last:
                batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                         for k, v in batch.items()}
            scale = trainee.lr_scale(step, total)
            for o in optims.values():
                for g in o.param_groups:
                    g["lr"] = g["initial_lr"] * scale
            try:
                logs = train_step(trainee, batch, step, optims, scalers, autocast, world)
            except NonFiniteLoss as e:
                where = (f"the last good checkpoint {ckpt_path} (step {last_saved}) is kept"
                         if last_saved is not None else "no checkpoint was written")
                raise FRBenchError(
                    f"{trainee.name}: loss_{e.which} is {e.value} at step {step}; training "
                    f"stopped and {where}. Lower the learning rate or check the data, then "
                    "rerun (with --resume to continue from the checkpoint)") from None
            if ema is not None:
                ema.update()
            trainee.after_step(step)
            dt = time.perf_counter() - t_iter  # whole iteration: data + compute
            rec = {"step": step + 1, "time_s": round(dt, 5), "data_s": round(data_s, 5),
                   "lr_scale": scale, **logs}
            history.append(rec)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k.startswith("loss")})
            done = step + 1
            if rank == 0 and tcfg.log_every and (done % tcfg.log_every == 0 or done == end):
                mrun.log_metrics({k: v for k, v in rec.items() if k != "step"}, step=done)
            if rank == 0 and tcfg.sample_every and (done % tcfg.sample_every == 0 or done == end):
                trainee.eval()
                imgs = trainee.sample_images(batch)
                trainee.train()
                if imgs is not None:
                    grid = out / "samples" / f"step_{done:06d}.png"
                    save_grid(imgs, grid, nrow=max(1, imgs.shape[0] // 3) if imgs.shape[0] % 3 == 0 else 4)
                    mrun.log_artifact(grid, artifact_path="samples")
            if tcfg.ckpt_every and done % tcfg.ckpt_every == 0 and done < end:
                save(done)
                last_saved = done
            t_iter = time.perf_counter()
        bar.close()
        done = end
        save(done)
        if rank == 0:
            mrun.log_artifact(out / "train_log.json")
    return {"step": done, "history": history, "checkpoint": str(ckpt_path)}


def _write_log(out: Path, trainee: Trainable, history: list, step: int, total: int) -> None:
    from core.imageio import atomic_write_text
    from core.environment import environment
    times = [h["time_s"] for h in history if "time_s" in h]
    summary = {"method": trainee.name, "arch": trainee.arch, "kind": trainee.kind, "step": step,
               "total_steps": total, "batch_size": trainee.batch_size,
               "mean_step_s": float(np.mean(times)) if times else None,
               "provenance": trainee.provenance, "environment": environment(),
               "history": history}
    atomic_write_text(out / "train_log.json", json.dumps(summary, indent=1))


def _jsonable(x: Any) -> Any:
    """Round-trip through JSON so that checkpoint configs compare equal after loading."""
    return json.loads(json.dumps(x, default=str))
