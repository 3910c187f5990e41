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
  Rank 0 writes checkpoints and logs.
- Checkpoint ``<out>/model.pt`` (atomic): format, kind, method, arch, config, sizes, step, model,
  ema, optimisers, scalers, RNG states (torch/cuda per rank, python, the trainer's numpy
  generator), data position, history, provenance. ``resume=True`` continues the same run.
- Partial checkpoints: a checkpoint whose ``step`` is below its ``total_steps`` is *partial*
  (an interrupted or time-boxed run). Intermediate checkpoints are written as
  ``<out>/model.partial.pt``; only a finished run writes ``model.pt`` (and removes the partial
  file), so ``model.pt`` - the file DVC records and every consumer reads - is always complete.
  ``--resume`` continues from the partial file when there is one. Consumers (restore, the
  pipeline cell, training on a prior or DRE) refuse a partial checkpoint unless told
  ``allow_partial`` (``--allow-partial``), which is recorded in the provenance.
- NaN guard: a non-finite loss stops training with FRBenchError; the last good checkpoint is kept.
- tqdm progress; metrics every ``log_every`` and a sample grid every ``sample_every`` go to the
  ``logger`` the caller hands over (``TrainLogger``; the pipeline's writes to MLflow).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn

from methods.base import Trainable, TrainContext
from methods.data import HQFolder, StepBatches
from core.errors import FRBenchError, load_error
from core.seeding import rng_for, stable_seed

log = logging.getLogger(__name__)
FORMAT = "frbench-checkpoint/1"
PARTIAL_NAME = "model.partial.pt"


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
    from core.outputs import clean_stale, temp_name

    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent, path.name)  # a killed run's half-written file
    # the temp name keeps the archive name torch derives from it (".model.pt"), so the bytes
    # of a checkpoint do not depend on the process
    tmp = temp_name(path)
    try:
        torch.save(obj, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load (weights_only) with clear errors for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FRBenchError(f"{path}: checkpoint not found (train it first: frbench train ...)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise load_error(path, e, "checkpoint", "delete it and retrain") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise FRBenchError(f"{path}: not an frbench checkpoint (format "
                           f"{ck.get('format') if isinstance(ck, dict) else type(ck).__name__!r}, "
                           f"expected {FORMAT!r})")
    return ck


def find_checkpoint(path: str | os.PathLike, allow_partial: bool = False) -> Path:
    """``path``, or - when ``path`` is a missing ``model.pt`` beside the ``model.partial.pt``
    of an unfinished training - that partial file if ``allow_partial``, else an FRBenchError
    saying so. Other missing files are left to ``load_checkpoint``'s error."""
    path = Path(path)
    partial = path.with_name(PARTIAL_NAME)
    if path.is_file() or path.name != "model.pt" or not partial.is_file():
        return path
    if allow_partial:
        return partial
    raise FRBenchError(
        f"{path}: not found; {path.parent} holds only the partial checkpoint {PARTIAL_NAME} of "
        f"an unfinished training. Finish it with `frbench train {path.parent.name} --resume`, or "
        "pass --allow-partial to use it anyway (recorded in the provenance)")


def is_partial(ck: dict) -> bool:
    """A checkpoint is partial iff its step is below its total steps."""
    return int(ck.get("step", 0)) < int(ck.get("total_steps", 0))


def check_complete(ck: dict, path: str | os.PathLike, allow_partial: bool = False
                   ) -> Optional[str]:
    """FRBenchError for a partial checkpoint unless ``allow_partial``; returns the provenance
    note to record when a partial one is used (None for a complete one)."""
    if not is_partial(ck):
        return None
    step, total = int(ck["step"]), int(ck["total_steps"])
    if not allow_partial:
        raise FRBenchError(
            f"{path}: partial checkpoint (step {step} of {total}; its training did not finish). "
            f"Finish it with `frbench train {ck.get('method', 'NAME')} --resume`, or pass "
            "--allow-partial to use it anyway (recorded in the provenance)")
    log.warning("%s: using a partial checkpoint (step %d of %d) because of --allow-partial",
                path, step, total)
    return f"partial checkpoint: step {step} of {total}, used with --allow-partial"


def load_pretrained(path: str | os.PathLike, kind: str, allow_partial: bool = False
                    ) -> tuple[dict, str]:
    """A prior / DRE checkpoint a training starts from: (checkpoint, provenance string
    ``<path>@step<N>`` plus a note when it is partial and allowed)."""
    path = find_checkpoint(path, allow_partial)
    ck = load_checkpoint(path)
    if ck.get("kind") != kind:
        raise FRBenchError(f"{path}: not a {'DRE' if kind == 'dre' else kind} checkpoint (kind "
                           f"{ck.get('kind')})")
    note = check_complete(ck, path, allow_partial)
    prov = f"{path}@step{ck.get('step')}"
    return ck, prov if note is None else f"{prov} ({note})"


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


def load_for_inference(trainee: Trainable, path: str | os.PathLike, use_ema: bool = True,
                       allow_partial: bool = False) -> dict:
    """Load a finished checkpoint into ``trainee`` (EMA weights where kept); returns it. A
    partial checkpoint is refused unless ``allow_partial`` (then noted in the provenance).
    ``ck["loaded_from"]`` is the file actually read (the partial one, if so)."""
    path = find_checkpoint(path, allow_partial)
    ck = load_checkpoint(path)
    ck["loaded_from"] = str(path)
    check_compatible(ck, trainee, path)
    note = check_complete(ck, path, allow_partial)
    if ck.get("method") != trainee.name:
        log.warning("%s: checkpoint of entry '%s' loaded as '%s' (same arch and sizes)", path,
                    ck.get("method"), trainee.name)
    load_state(trainee, ck["model"], path, "model")
    if use_ema:
        for name, sd in (ck.get("ema") or {}).items():
            load_state(trainee.get_submodule(name), sd, path, f"ema '{name}'")
    trainee.provenance.update(ck.get("provenance") or {})
    if note is not None:
        trainee.provenance["checkpoint"] = f"{path}@step{ck.get('step')} ({note})"
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


def save_grid(images: torch.Tensor, path: Path, nrow: int = 4) -> None:
    from torchvision.utils import make_grid

    from core.imageio import write_png
    g = make_grid(images.detach().float().cpu().clamp(-1, 1).add(1).mul(0.5), nrow=nrow, padding=1)
    write_png(path, g.permute(1, 2, 0).numpy())


# ------------------------------------------------------------------------------------------
# what the trainer reports to

class _NullRun:
    def log_metrics(self, metrics: dict, step: Optional[int] = None) -> None:
        pass

    def log_artifact(self, path: str | os.PathLike, artifact_path: Optional[str] = None) -> None:
        pass


class TrainLogger:
    """Where a training run reports its metrics and files (rank 0 only). The default logs
    nothing; the pipeline hands the trainer one that writes to MLflow
    (``pipeline.tracking.TrainTracker``), so this library never imports the pipeline.

    ``run(name, params, tags)`` is a context manager around the whole loop; the object it yields
    has ``log_metrics(metrics, step)`` and ``log_artifact(path, artifact_path=None)``.
    """

    @contextmanager
    def run(self, name: str, params: dict, tags: dict) -> Iterator[Any]:
        yield _NullRun()


# ------------------------------------------------------------------------------------------
# one training run: its state and named parts

class _Run:
    """The state of one training run (device, RNG streams, optimisers, EMA, history) and the
    parts of the loop: ``resume``, ``save``, ``loader``, ``step`` (one optimisation step),
    ``record`` (history, progress, logging, sample grids) and ``maybe_checkpoint``."""

    def __init__(self, trainee: Trainable, params: Any, out_dir: str | os.PathLike,
                 steps: Optional[int], device: Optional[str], allow_partial: bool = False):
        tcfg = self.tcfg = params.train
        self.allow_partial = allow_partial
        self.trainee, self.params = trainee, params
        self.rank, self.world, local_rank = dist_info()
        self.dev = _device(device or getattr(params, "device", "cpu") or "cpu", local_rank,
                           self.world)
        self.on_cuda = self.dev.type == "cuda"
        self.amp = bool(tcfg.amp and self.on_cuda)
        self.out = Path(out_dir)
        self.ckpt_path = self.out / "model.pt"
        self.partial_path = self.out / PARTIAL_NAME
        self.total = int(steps if steps is not None else trainee.steps)
        self.seed = int(params.seed)
        if getattr(tcfg, "threads", 0):
            from core import numerics
            if numerics.active():  # the pinned thread count is part of the numerics
                log.info("train.threads=%s ignored: numerics are pinned to %d thread(s)",
                         tcfg.threads, torch.get_num_threads())
            else:
                torch.set_num_threads(int(tcfg.threads))
        self.np_rng = self._seed_streams()
        self._build()
        self.history: list[dict] = []
        self.last_saved: Optional[int] = None
        self.last_path: Path = self.ckpt_path

    def _seed_streams(self) -> np.random.Generator:
        """One torch RNG stream per (run, rank) for in-model randomness (noise injection), the
        python stream, and the trainer's numpy generator."""
        seed, name, rank = self.seed, self.trainee.name, self.rank
        torch.manual_seed(stable_seed(seed, "train", name, "torch", rank) & 0x7FFF_FFFF_FFFF_FFFF)
        random.seed(stable_seed(seed, "train", name, "python", rank))
        return rng_for(seed, "train", name, "trainer", rank)

    def _build(self) -> None:
        """Pretrained parts (setup_training), device placement, optimisers, scalers, EMA."""
        tr, tcfg = self.trainee, self.tcfg
        tr.setup_training(TrainContext(self.params, self.dev, tcfg.checkpoint_dir, self.rank,
                                       self.world, allow_partial=self.allow_partial))
        tr.to(self.dev)
        if self.on_cuda and tcfg.channels_last:
            tr.to(memory_format=torch.channels_last)
        self.optims = tr.make_optimizers()
        for o in self.optims.values():
            for g in o.param_groups:
                g.setdefault("initial_lr", g["lr"])
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=self.amp) for k in self.optims}
        self.ema = EMA(tr.ema_modules(), tr.ema_decay) if tr.ema_decay > 0 and \
            tr.ema_modules() else None

    def _index_params(self) -> None:
        self.g_params = _params_of(self.optims["g"]) if "g" in self.optims else []
        self.d_params = _params_of(self.optims["d"]) if "d" in self.optims else []
        self.opt_params = {k: _params_of(o) for k, o in self.optims.items()}

    # -- checkpoints -------------------------------------------------------------------------
    def resume(self) -> int:
        """Load the latest checkpoint (``model.partial.pt`` when there is one: it is newer than
        ``model.pt``, else ``model.pt``): weights, EMA, optimisers, scalers, RNG, history.
        Returns the step to continue from (0 without a checkpoint)."""
        tr = self.trainee
        path = self.partial_path if self.partial_path.is_file() else self.ckpt_path
        if not path.is_file():
            log.info("%s: --resume but no checkpoint at %s; starting from scratch", tr.name,
                     self.ckpt_path)
            return 0
        ck = load_checkpoint(path)
        check_compatible(ck, tr, path)
        if ck.get("config") != _jsonable(tr.config_dict()):
            raise FRBenchError(f"{path}: --resume with different params than the run that "
                               "wrote it; rerun without --resume to start over")
        if int(ck.get("world_size", 1)) != self.world:
            log.warning("resuming a %s-process run on %d processes", ck.get("world_size"),
                        self.world)
        load_state(tr, ck["model"], path, "model")
        if self.ema is not None:
            self.ema.load_state_dict(ck["ema"])
        for k, o in self.optims.items():
            o.load_state_dict(ck["optimizers"][k])
        for k, s in self.scalers.items():
            if k in ck.get("scalers", {}):
                s.load_state_dict(ck["scalers"][k])
        rng_states = ck["rng"]
        _set_rng_state(rng_states[self.rank] if self.rank < len(rng_states) else rng_states[0],
                       self.np_rng)
        start = int(ck["step"])
        self.history = list(ck.get("history", []))
        self.last_saved, self.last_path = start, path
        log.info("%s: resuming at step %d/%d from %s", tr.name, start, self.total, path)
        return start

    def save(self, step: int) -> Path:
        """Checkpoint + train_log.json at ``step`` (RNG states gathered from every rank; rank 0
        writes): ``model.pt`` once ``step`` reaches the total (the partial file is then
        removed), ``model.partial.pt`` before. Returns the checkpoint's path."""
        final = step >= self.total
        path = self.ckpt_path if final else self.partial_path
        rngs = _gather_objects(_rng_state(self.np_rng), self.world)
        if self.rank != 0:
            return path
        tr = self.trainee
        ck = {
            "format": FORMAT, "kind": tr.kind, "method": tr.name, "arch": tr.arch,
            "config": _jsonable(tr.config_dict()),
            "out_size": getattr(tr, "out_size", None), "lq_size": getattr(tr, "lq_size", None),
            "step": step, "total_steps": self.total, "global_batch": tr.batch_size,
            "world_size": self.world, "data_position": step * tr.batch_size,
            "model": {k: v.detach().cpu() for k, v in tr.state_dict().items()},
            "ema": self.ema.state_dict() if self.ema is not None else {},
            "optimizers": {k: o.state_dict() for k, o in self.optims.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": rngs, "history": self.history, "provenance": dict(tr.provenance),
            "versions": {"torch": str(torch.__version__)},
        }
        _atomic_save(ck, path)
        if final and self.partial_path.exists():
            self.partial_path.unlink()
        _write_log(self.out, tr, self.history, step, self.total)
        return path

    def maybe_checkpoint(self, done: int, end: int) -> None:
        """Intermediate checkpoint every ``train.ckpt_every`` steps (the final one is written
        after the loop)."""
        every = self.tcfg.ckpt_every
        if every and done % every == 0 and done < end:
            self.last_path = self.save(done)
            self.last_saved = done

    # -- data --------------------------------------------------------------------------------
    def loader(self, start: int, end: int, hq_dir: Optional[str]):
        """Batches of steps ``start .. end-1`` (a pure function of seed, name and step)."""
        tr = self.trainee
        data = StepBatches(HQFolder(hq_dir or self.tcfg.hq_dir, tr.hq_size), tr.sample_fn(),
                           seed=self.seed, name=tr.name, global_batch=tr.batch_size,
                           images_per_sample=tr.images_per_sample, rank=self.rank,
                           world=self.world)
        # own generator: creating the iterator must not draw from the global torch RNG (that
        # would shift in-model noise after a resume; batches are step-indexed anyway)
        return torch.utils.data.DataLoader(data, sampler=range(start, end), batch_size=None,
                                           num_workers=int(self.tcfg.num_workers),
                                           pin_memory=self.on_cuda,
                                           generator=torch.Generator().manual_seed(self.seed))

    def to_device(self, batch: dict) -> dict:
        batch = {k: v.to(self.dev, non_blocking=True) for k, v in batch.items()}
        if self.on_cuda and self.tcfg.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                     for k, v in batch.items()}
        return batch

    # -- one step ----------------------------------------------------------------------------
    def set_lr(self, step: int) -> float:
        scale = self.trainee.lr_scale(step, self.total)
        for o in self.optims.values():
            for g in o.param_groups:
                g["lr"] = g["initial_lr"] * scale
        return scale

    def step(self, batch: dict, step: int) -> dict[str, float]:
        """One optimisation step: each update of ``step_order``, then EMA and ``after_step``."""
        tr = self.trainee
        autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if self.amp \
            else nullcontext
        logs: dict[str, float] = {}
        for which in tr.step_order:
            if which not in self.optims:
                continue
            _set_grad(self.g_params, which == "g")
            _set_grad(self.d_params, which == "d")
            with autocast():
                res = tr.d_step(batch, step) if which == "d" else tr.g_step(batch, step)
            if res is None:
                continue
            logs.update(self._update(which, *res, step))
        _set_grad(self.g_params, True)
        _set_grad(self.d_params, True)
        if self.ema is not None:
            self.ema.update()
        tr.after_step(step)
        return logs

    def _update(self, which: str, loss: torch.Tensor, l: dict, step: int) -> dict[str, float]:
        """Backward, gradient averaging across ranks, the NaN guard, optimiser step."""
        opt = self.optims[which]
        opt.zero_grad(set_to_none=True)
        self.scalers[which].scale(loss).backward()
        grads = [p.grad for p in self.opt_params[which] if p.grad is not None]
        _all_reduce_mean_(grads, self.world)
        lv = torch.tensor([float(loss.detach())] + [float(v) for v in l.values()],
                          dtype=torch.float64)
        _all_reduce_mean_([lv], self.world)
        self._check_finite(which, float(lv[0]), step)
        self.scalers[which].step(opt)
        self.scalers[which].update()
        out = {f"loss_{which}": float(lv[0])}
        out.update({k: float(v) for k, v in zip(l.keys(), lv[1:].tolist())})
        return out

    def _check_finite(self, which: str, value: float, step: int) -> None:
        if math.isfinite(value):
            return
        where = (f"the last good checkpoint {self.last_path} (step {self.last_saved}) is kept"
                 if self.last_saved is not None else "no checkpoint was written")
        raise FRBenchError(
            f"{self.trainee.name}: loss_{which} is {value} at step {step}; training stopped "
            f"and {where}. Lower the learning rate or check the data, then rerun (with "
            "--resume to continue from the checkpoint)")

    # -- after a step ------------------------------------------------------------------------
    def record(self, rec: dict, logs: dict, batch: dict, done: int, end: int, bar,
               mrun) -> None:
        """History, progress bar, metrics every ``log_every`` and a sample grid every
        ``sample_every`` steps (rank 0)."""
        tcfg, tr = self.tcfg, self.trainee
        self.history.append(rec)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k.startswith("loss")})
        if self.rank == 0 and tcfg.log_every and (done % tcfg.log_every == 0 or done == end):
            mrun.log_metrics({k: v for k, v in rec.items() if k != "step"}, step=done)
        if self.rank == 0 and tcfg.sample_every and (done % tcfg.sample_every == 0 or
                                                     done == end):
            tr.eval()
            imgs = tr.sample_images(batch)
            tr.train()
            if imgs is not None:
                grid = self.out / "samples" / f"step_{done:06d}.png"
                save_grid(imgs, grid,
                          nrow=max(1, imgs.shape[0] // 3) if imgs.shape[0] % 3 == 0 else 4)
                mrun.log_artifact(grid, artifact_path="samples")

    # -- the loop ----------------------------------------------------------------------------
    def loop(self, loader, start: int, end: int, mrun, show_progress: bool) -> int:
        """Steps ``start .. end-1``; returns the number of steps done (``end``)."""
        from tqdm import tqdm

        self.trainee.train()
        bar = tqdm(total=end - start, desc=f"train {self.trainee.name}",
                   disable=not show_progress or self.rank != 0, leave=False)
        t_iter = time.perf_counter()
        for step, batch in enumerate(loader, start):
            t0 = time.perf_counter()
            data_s = t0 - t_iter  # waiting for the batch (degradation, decoding)
            batch = self.to_device(batch)
            scale = self.set_lr(step)
            logs = self.step(batch, step)
            dt = time.perf_counter() - t_iter  # whole iteration: data + compute
            rec = {"step": step + 1, "time_s": round(dt, 5), "data_s": round(data_s, 5),
                   "lr_scale": scale, **logs}
            done = step + 1
            self.record(rec, logs, batch, done, end, bar, mrun)
            self.maybe_checkpoint(done, end)
            t_iter = time.perf_counter()
        bar.close()
        return end

    def result(self, step: int) -> dict:
        path = self.ckpt_path if step >= self.total else self.partial_path
        return {"step": step, "history": self.history, "checkpoint": str(path)}


def _claim_out(out_dir, trainee: Trainable, params: Any, hq_dir: Optional[str],
               force: bool, create: bool = True) -> None:
    """The checkpoint folder must follow the output-folder rules; its inputs are the HQ faces
    and the checkpoints a method starts from (rank 0 checks it; ``create``: and makes and marks
    it)."""
    from core.outputs import check_output_dir, claim_dir

    if dist_info()[0] != 0:
        return
    tcfg = params.train
    inputs = [hq_dir or tcfg.hq_dir]
    if trainee.kind == "method":
        inputs += [Path(tcfg.checkpoint_dir) / "prior", Path(tcfg.checkpoint_dir) / "dre"]
    (claim_dir if create else check_output_dir)(out_dir, "checkpoint", inputs, force)


def _device(name: str, local_rank: int, world: int) -> torch.device:
    from core.environment import check_device

    check_device(name, "device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FRBenchError(f"params: device: {name} requested but CUDA is not available")
    return torch.device(f"cuda:{local_rank}" if name == "cuda" and world > 1 else name)


def train(trainee: Trainable, params: Any, out_dir: str | os.PathLike, *,
          steps: Optional[int] = None, resume: bool = False, stop_after: Optional[int] = None,
          device: Optional[str] = None, hq_dir: Optional[str] = None,
          show_progress: bool = True, logger: Optional[TrainLogger] = None,
          allow_partial: bool = False, force: bool = False) -> dict:
    """Train ``trainee`` and write ``<out_dir>/model.pt`` + ``train_log.json``.

    ``steps``: total steps of the run (default ``trainee.steps``; >= 1); ``stop_after``: stop
    (with a partial checkpoint) once this many steps are done, as if interrupted (tests,
    time-boxed runs). ``logger``: where metrics and sample grids go (``TrainLogger``; default:
    nowhere). ``allow_partial``: the prior / DRE this training starts from may be partial
    (recorded in the provenance). ``out_dir`` must follow the output-folder rules
    (``core.outputs``: a new or empty folder, or a checkpoint folder frbench made; never an
    input such as the HQ faces or the prior's folder; ``force`` for a folder frbench made as
    another kind of output). Returns ``{"step", "history", "checkpoint"}``.
    """
    for key, v in (("steps", steps), ("stop_after", stop_after)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise FRBenchError(f"{trainee.name}: {key} must be an integer >= 1, got {v!r}")
    _claim_out(out_dir, trainee, params, hq_dir, force, create=False)  # fail before any work
    r = _Run(trainee, params, out_dir, steps, device, allow_partial)
    start = r.resume() if resume else 0
    r._index_params()
    _claim_out(out_dir, trainee, params, hq_dir, force)  # setup went well: create and mark it
    if not r.optims:  # nothing to train (e.g. bicubic): just a (complete) checkpoint
        r.total = 0
        r.save(0)
        return r.result(0)
    if start >= r.total:
        log.info("%s: already trained for %d steps", trainee.name, start)
        if r.rank == 0 and not r.ckpt_path.is_file():
            r.save(start)
        return r.result(start)
    end = r.total if stop_after is None else min(r.total, int(stop_after))
    loader = r.loader(start, end, hq_dir)
    logger = logger if logger is not None and r.rank == 0 else TrainLogger()
    run_params = {"config": _jsonable(trainee.config_dict()), "world": r.world,
                  "total_steps": r.total}
    with logger.run(trainee.name, run_params,
                    {"arch": trainee.arch, "kind": trainee.kind}) as mrun:
        done = r.loop(loader, start, end, mrun, show_progress)
        r.last_path = r.save(done)
        if r.rank == 0:
            mrun.log_artifact(r.out / "train_log.json")
    return r.result(done)


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
