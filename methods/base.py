"""The interface every trained thing implements, so that one trainer serves them all.

``Trainable`` (prior, DRE, every method): what the trainer needs.
``Method(Trainable)``: a restoration method, ``forward(lq) -> restored``.

Data contract (methods/trainer.py). For each step the trainer draws, for every *global* sample
index ``i`` of the batch, ``images_per_sample`` HQ faces (float32 HWC [0,1] at ``hq_size``) and
an RNG ``rng_for(seed, "train", name, step, i)``, calls the picklable ``sample_fn()`` on them
(in DataLoader workers when ``train.num_workers > 0``), collates the returned dicts of numpy
arrays into tensors, and hands that batch to ``d_step`` then ``g_step``. So a batch is a pure
function of (seed, name, step): a resumed run, or a run on another number of processes, sees the
same samples.

Method batches: ``{"hq": (B,3,out,out), "lq": (B,3,lq,lq)}`` float32 NCHW in [-1,1] (+ optional
``landmarks``). Optimisers: ``make_optimizers()`` -> {"g": opt, "d": opt (optional)}; the trainer
backpropagates ``g_step``'s loss into "g" and ``d_step``'s into "d". ``lr_scale(step, total)``
multiplies every group's initial lr (schedules). EMA: ``ema_modules()`` and ``ema_decay``.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FRBenchError

Logs = dict[str, float]


class Trainable(nn.Module):
    """Base of everything the trainer trains. Subclasses set ``name``, ``arch``, ``cfg``."""

    #: "prior" | "dre" | "method"
    kind: str = "method"
    #: HQ images per sample index (the DRE needs two faces per positive pair)
    images_per_sample: int = 1
    #: order of the two updates within a step: ("d", "g") = StyleGAN2 (D first); ("g", "d") =
    #: mmedit SRGAN (Panini): G step, then D on the same (detached) fake
    step_order: tuple[str, ...] = ("d", "g")

    def __init__(self, name: str, arch: str, cfg: Any, params: Any = None):
        super().__init__()
        self.name, self.arch, self.cfg, self.params = name, arch, cfg, params
        self.provenance: dict[str, str] = {}

    # -- schedule ----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return int(getattr(self.cfg, "steps", 0))

    @property
    def batch_size(self) -> int:
        return int(getattr(self.cfg, "batch_size", 1))

    @property
    def ema_decay(self) -> float:
        return float(getattr(self.cfg, "ema_decay", 0.0) or 0.0)

    @property
    def hq_size(self) -> int:
        """Side of the HQ faces the trainer feeds (resized when the folder differs)."""
        return int(getattr(self, "out_size", 0))

    def lr_scale(self, step: int, total: int) -> float:
        return 1.0

    # -- data --------------------------------------------------------------------------------
    def sample_fn(self) -> Callable[[list[np.ndarray], np.random.Generator], dict]:
        """Picklable ``fn(hq_images, rng) -> {key: np.ndarray}`` making one training sample."""
        raise NotImplementedError

    # -- training ----------------------------------------------------------------------------
    def setup_training(self, ctx: "TrainContext") -> None:
        """Load what training needs (prior, DRE, VGG...) before the optimisers are made."""

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def g_step(self, batch: dict, step: int) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def d_step(self, batch: dict, step: int) -> Optional[tuple[torch.Tensor, Logs]]:
        return None

    def generator_modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def discriminator_modules(self) -> dict[str, nn.Module]:
        return {}

    def ema_modules(self) -> dict[str, nn.Module]:
        return {}

    def after_step(self, step: int) -> None:
        """Called after the optimiser steps (e.g. MoCo momentum update)."""

    @torch.no_grad()
    def sample_images(self, batch: dict) -> Optional[torch.Tensor]:
        """Images (N,3,H,W) in [-1,1] for the sample grid logged to MLflow, or None."""
        return None

    def config_dict(self) -> dict:
        """Everything needed to rebuild this module (stored in checkpoints)."""
        from core.config import to_dict
        return {"cfg": to_dict(self.cfg)}


class TrainContext:
    """What ``setup_training`` may use: params, device, checkpoint dir, world info, and whether
    the prior / DRE it loads may be partial (``--allow-partial``)."""

    def __init__(self, params: Any, device: torch.device, checkpoint_dir: str,
                 rank: int = 0, world: int = 1, allow_partial: bool = False):
        self.params, self.device, self.checkpoint_dir = params, device, checkpoint_dir
        self.rank, self.world = rank, world
        self.allow_partial = allow_partial


class Method(Trainable):
    """A restoration method: LQ (B,3,lq_size,lq_size) [-1,1] -> (B,3,out_size,out_size) [-1,1]."""

    kind = "method"

    def __init__(self, name: str, arch: str, cfg: Any, params: Any = None):
        super().__init__(name, arch, cfg, params)
        self.out_size = int(cfg.out_size)
        self.lq_size = int(cfg.lq_size)

    @property
    def train_preset(self) -> Optional[str]:
        return getattr(self.cfg, "train_preset", None)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_input(self, lq: torch.Tensor) -> None:
        if lq.ndim != 4 or lq.shape[1] != 3 or lq.shape[-1] != self.lq_size \
                or lq.shape[-2] != self.lq_size:
            raise FRBenchError(f"{self.name}: expects LQ of shape (B, 3, {self.lq_size}, "
                               f"{self.lq_size}), got {tuple(lq.shape)}; use restore() to resize")

    @torch.no_grad()
    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        """Any-size LQ (B,3,h,w) [-1,1] -> (B,3,out,out) [-1,1] (clamped); resizes to lq_size
        first (bicubic, antialiased when shrinking). Non-square input raises FRBenchError."""
        if lq.ndim != 4 or lq.shape[1] != 3:
            raise FRBenchError(f"{self.name}: expects (B, 3, H, W) input, got {tuple(lq.shape)}")
        if lq.shape[-1] != lq.shape[-2]:
            raise FRBenchError(f"{self.name}: input must be square (aligned face crops), got "
                               f"{lq.shape[-2]}x{lq.shape[-1]}")
        lq = resize(lq, self.lq_size)
        return self.forward(lq).clamp(-1, 1)

    @property
    def train_overrides(self) -> dict:
        return dict(getattr(self.cfg, "train_overrides", None) or {})

    def keep_fake(self, out: torch.Tensor) -> None:
        """Remember the G step's output (detached) for the D step that follows it."""
        self.__dict__["_fake"] = out.detach()  # a plain attribute: not a buffer, not saved

    def take_fake(self, batch) -> torch.Tensor:
        """The G step's kept output, or a fresh no-grad restoration when there is none (a D step
        run on its own, e.g. right after a resume)."""
        fake = self.__dict__.pop("_fake", None)
        if fake is None:
            with torch.no_grad():
                fake = self.forward(batch["lq"])
        return fake

    def sample_fn(self):
        if not self.train_preset:
            raise FRBenchError(f"methods.{self.name}: no train_preset; this method is not trainable")
        return functools.partial(degrade_sample, preset=self.train_preset,
                                 overrides=self.train_overrides, out_size=self.out_size,
                                 lq_size=self.lq_size, hflip=bool(getattr(self.cfg, "hflip", False)))

    @torch.no_grad()
    def sample_images(self, batch):
        n = min(4, batch["lq"].shape[0])
        lq = resize(batch["lq"][:n], self.out_size, mode="nearest")
        return torch.cat([lq, self.forward(batch["lq"][:n]).clamp(-1, 1), batch["hq"][:n]], 0)


def prior_arch_for(name: str, label: str, out_size: int, params: Any, own: Any = None):
    """The generator shape of a method built on the prior: the entry's own ``prior_arch`` when
    set (imported released models carry theirs), else ``params.prior.arch``. FRBenchError when
    neither is there or the generator does not generate at the method's ``out_size``."""
    if own is not None:
        arch, where = own, f"methods.{name}.prior_arch.size"
    else:
        if params is None or getattr(params, "prior", None) is None:
            raise FRBenchError(f"methods.{name}: {label} needs the 'prior' section (generator "
                               "shape) or its own prior_arch")
        arch, where = params.prior.arch, "prior.arch.size"
    if arch.size != out_size:
        raise FRBenchError(f"methods.{name}.out_size={out_size} but {where}={arch.size}: "
                           "the prior must generate at out_size")
    return arch


def stddev_group_of(params: Any) -> int:
    """``params.prior.stddev_group`` (the prior's discriminator minibatch-stddev group), 4 (the
    StyleGAN2 default) when there is no prior section (an imported entry with its own arch)."""
    return int(getattr(getattr(params, "prior", None), "stddev_group", 4))


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): batch mean of ``||grad_x D(x)||^2`` on real images, in float32
    outside autocast (fp16 gradients of D are not reliable). The caller scales it by
    ``gamma / 2 * every`` (lazy regularisation)."""
    with torch.autocast("cuda", enabled=False):
        x = real.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)
        return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def logistic_d_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, step: int,
                    r1_gamma: float, r1_every: int):
    """StyleGAN2's D objective ``softplus(-D(real)) + softplus(D(fake))``, plus the lazy R1 term
    ``gamma / 2 * R1 * every`` on the steps divisible by ``every``. -> (loss, logs)."""
    real_pred = discriminator(real)
    fake_pred = discriminator(fake)
    loss = F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()
    logs = {"d_real": real_pred.mean().detach(), "d_fake": fake_pred.mean().detach()}
    if r1_gamma > 0 and step % r1_every == 0:
        r1 = r1_penalty(discriminator, real)
        loss = loss + r1_gamma / 2 * r1 * r1_every
        logs["r1"] = r1.detach()
    return loss, logs


def path_length_penalty(img: torch.Tensor, latents: torch.Tensor, pl_mean: torch.Tensor,
                        decay: float = 0.01):
    """StyleGAN2 path-length regulariser: ``J_w^T y`` for ``y ~ N(0, 1) / sqrt(H W)``, length =
    sqrt(mean over layers of sum over dims of its square); ``pl_mean`` (a buffer) tracks the mean
    length with ``decay`` and is updated in place. -> (penalty, lengths (detached))."""
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    mean = pl_mean + decay * (lengths.detach().mean() - pl_mean)
    pl_mean.copy_(mean)
    return (lengths - mean).pow(2).mean(), lengths.detach()


def resize(x: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize NCHW to (size, size); antialiased bicubic when shrinking. No-op at the same size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    shrink = x.shape[-1] > size
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=shrink)


def degrade_sample(hqs: list[np.ndarray], rng: np.random.Generator, *, preset: str,
                   out_size: int, lq_size: int, hflip: bool, overrides: Optional[dict] = None) -> dict:
    """One (hq, lq) training pair: optional horizontal flip, then the preset's degradation
    (``get_preset(preset, overrides)``; params drawn with ``rng``).

    hq: float32 HWC [0,1] at out_size -> {"hq": CHW [-1,1], "lq": CHW [-1,1] at lq_size}.
    """
    from degradations import get_preset  # lazily: the degradations package owns the presets

    hq = hqs[0]
    p = get_preset(preset, overrides or None)
    if hflip and rng.random() < 0.5:
        hq = np.ascontiguousarray(hq[:, ::-1])
    params = p.sample(rng, hq.shape[0])
    lq = np.asarray(p.apply(hq, params), dtype=np.float32)
    if lq.shape[0] != lq_size:
        raise FRBenchError(f"preset {preset!r} makes {lq.shape[0]} px LQ from {hq.shape[0]} px HQ "
                           f"but the method expects lq_size={lq_size}; fix methods.*.lq_size")
    return {"hq": _chw(hq), "lq": _chw(lq)}


def _chw(img: np.ndarray) -> np.ndarray:
    """float HWC [0,1] -> float32 CHW [-1,1]."""
    return np.ascontiguousarray(np.asarray(img, dtype=np.float32).transpose(2, 0, 1) * 2.0 - 1.0)
