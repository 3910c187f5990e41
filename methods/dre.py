"""Degradation Representation Encoder (DRE) and its unsupervised pretraining (UDRL, MoCo).

Encoder (methods.md §2.2): six Conv3x3 + BN + LReLU(0.1) (widths w1,w1,w2,w2,w3,w3, strides
1,1,2,1,2,1) -> global average pool -> ``fea`` (B, w3) = the degradation representation v_DR;
head ``mlp`` = Linear(w3,w3) -> LReLU(0.1) -> Linear(w3,w3) used only by the contrastive loss.
Paper widths (64, 128, 256), input pooled to 256x256; the built-in tier uses narrower widths and a
small input. Input: LQ (B,3,H,W) in [-1,1], adaptive-average-pooled to ``input_size``.

UDRL (paper eq. 4): InfoNCE with a momentum key encoder and a queue (MoCo v1):
``L = -log exp(q.k+/T) / (exp(q.k+/T) + sum_j exp(q.k_j/T))`` = cross-entropy over the logits
``[q.k+, q.queue] / T`` with label 0; q, k L2-normalised ``mlp`` outputs. The positive pair is
the SAME sampled degradation applied to two DIFFERENT HQ faces (so the representation encodes the
degradation, not the content); negatives are the queue (keys of earlier batches, i.e. other
degradations). Key encoder: ``theta_k = m theta_k + (1-m) theta_q`` before the keys are computed
(official order). Shuffle-BN is not implemented (the official code needs DDP for it): the key
encoder's BN sees whole batches of one view.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.base import Trainable


def _cbl(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, True)]


class Encoder(nn.Module):
    """DRE: (B,3,H,W) [-1,1] -> (fea (B,w3), mlp(fea) (B,w3))."""

    def __init__(self, widths=(64, 128, 256), input_size: int = 256):
        super().__init__()
        w1, w2, w3 = widths
        self.widths = (int(w1), int(w2), int(w3))
        self.input_size = int(input_size)
        self.dim = int(w3)
        self.E = nn.Sequential(*_cbl(3, w1, 1), *_cbl(w1, w1, 1), *_cbl(w1, w2, 2),
                               *_cbl(w2, w2, 1), *_cbl(w2, w3, 2), *_cbl(w3, w3, 1),
                               nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(nn.Linear(w3, w3), nn.LeakyReLU(0.1, True), nn.Linear(w3, w3))

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """v_DR = ``fea`` (B, w3): pooled to input_size, through E (no mlp), as Panini uses it."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.adaptive_avg_pool2d(x, self.input_size)
        return self.E(x).flatten(1)

    def forward(self, x):
        fea = self.represent(x)
        return fea, self.mlp(fea)


def info_nce_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, t: float):
    """Logits ``[q.k, q.queue] / T`` (B, 1+K) for L2-normalised q, k (B,D), queue (D,K)."""
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ queue
    return torch.cat([l_pos, l_neg], 1) / t


def info_nce(q, k, queue, t):
    """Paper eq. 4 as cross-entropy with the positive at index 0 (mean over the batch)."""
    logits = info_nce_logits(q, k, queue, t)
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device)), logits


def dre_pair_sample(hqs, rng, *, preset: str, overrides: dict) -> dict:
    """One positive pair: ONE degradation draw applied to two different HQ faces."""
    from degradations import get_preset

    p = get_preset(preset, overrides or None)
    params = p.sample(rng, hqs[0].shape[0])
    q = np.asarray(p.apply(hqs[0], params), dtype=np.float32)
    k = np.asarray(p.apply(hqs[1], params), dtype=np.float32)
    chw = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1) * 2.0 - 1.0, dtype=np.float32)
    return {"q": chw(q), "k": chw(k)}


class DREMoCo(Trainable):
    """MoCo pretraining of the DRE (query encoder = the DRE that Panini loads)."""

    kind = "dre"
    images_per_sample = 2

    def __init__(self, cfg, params=None, name: str = "dre"):
        super().__init__(name, "dre", cfg, params)
        self.encoder_q = Encoder(cfg.widths, cfg.input_size)
        self.encoder_k = Encoder(cfg.widths, cfg.input_size)
        self.encoder_k.load_state_dict(self.encoder_q.state_dict())
        self.encoder_k.requires_grad_(False)
        dim = cfg.widths[-1]
        self.register_buffer("queue", F.normalize(torch.randn(dim, cfg.queue), dim=0))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @property
    def hq_size(self) -> int:
        return int(self.cfg.hq_size)

    def sample_fn(self):
        return functools.partial(dre_pair_sample, preset=self.cfg.preset,
                                 overrides=dict(self.cfg.preset_overrides or {}))

    def generator_modules(self):
        return {"encoder_q": self.encoder_q}

    def make_optimizers(self):
        c = self.cfg
        return {"g": torch.optim.SGD(self.encoder_q.parameters(), lr=c.lr, momentum=c.sgd_momentum,
                                     weight_decay=c.weight_decay)}

    def lr_scale(self, step, total):
        """Paper: x0.1 at 60% and 80% of training (epochs 120 and 160 of 200)."""
        f = step / max(1, total)
        return 1.0 if f < 0.6 else (0.1 if f < 0.8 else 0.01)

    @torch.no_grad()
    def _momentum_update(self):
        m = self.cfg.momentum
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(m).add_(pq.detach(), alpha=1 - m)

    @torch.no_grad()
    def _enqueue(self, k: torch.Tensor):
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [torch.empty_like(k) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, k.contiguous())
            k = torch.cat(parts)
        n = k.shape[0]
        ptr = int(self.queue_ptr)
        K = self.queue.shape[1]
        if K % n:
            raise RuntimeError(f"queue size {K} is not a multiple of the key batch {n}")
        self.queue[:, ptr:ptr + n] = k.t()
        self.queue_ptr.fill_((ptr + n) % K)

    def g_step(self, batch, step):
        q = F.normalize(self.encoder_q(batch["q"])[1], dim=1)
        with torch.no_grad():
            self._momentum_update()
            k = F.normalize(self.encoder_k(batch["k"])[1], dim=1)
        loss, logits = info_nce(q, k, self.queue.clone().detach(), self.cfg.temperature)
        acc = (logits.argmax(1) == 0).float().mean().detach()
        self._enqueue(k)
        return loss, {"top1": acc}

    @torch.no_grad()
    def sample_images(self, batch):
        return torch.cat([batch["q"][:4], batch["k"][:4]], 0)
