"""StyleGAN2 prior pretraining (rosinality train.py recipe, methods.md §1.5).

- D: logistic loss ``softplus(-D(x)) + softplus(D(G(z)))``; lazy R1 every ``r1_every`` steps,
  ``gamma/2 * E||grad_x D(x)||^2 * r1_every`` added to that step's D loss (one backward; rosinality
  takes a separate optimiser step for it: same gradient direction, one step fewer).
- G: non-saturating ``softplus(-D(G(z)))``; optional lazy path-length regularisation (weight 2,
  every 4, batch shrink 2, decay 0.01 at paper scale; off at the built-in tier).
- Style mixing with probability ``mixing_prob``, drawn per sample from the sample's RNG
  (layers ``< inject`` take the first code).
- Adam with lazy-regularisation scaled lr and betas: ratio c = every/(every+1),
  lr * c, betas (0, 0.99^c) (G uses c = 1 when path-length reg is off).
- EMA of G with ``ema_decay`` (0.5^(32/10000) at paper scale).
Latents z are drawn in the data pipeline from ``rng_for(seed, "train", "prior", step, i)``, so a
step's fakes do not depend on the process count; noise injection uses the torch RNG stream of
the trainer (``train_noise: random``) or the fixed buffers (``fixed``).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from methods.base import Trainable, logistic_d_loss, path_length_penalty
from methods.stylegan2 import Discriminator, Generator


def build_generator(arch, noise_mode: str = "add", clean: bool = False) -> Generator:
    """Generator from a ``StyleGAN2Arch`` config (``clean``: GFP-GAN's clean layers)."""
    return Generator(arch.size, arch.style_dim, arch.n_mlp, arch.channel_multiplier,
                     arch.max_channels, narrow=getattr(arch, "narrow", 1.0), lr_mlp=arch.lr_mlp,
                     noise_mode=noise_mode, clean=clean)


def build_discriminator(arch, stddev_group: int = 4) -> Discriminator:
    return Discriminator(arch.size, arch.channel_multiplier, arch.max_channels,
                         narrow=getattr(arch, "narrow", 1.0), stddev_group=stddev_group)


def prior_sample(hqs, rng, *, style_dim: int, n_latent: int, mixing_prob: float,
                 hflip: bool) -> dict:
    """Real image (CHW [-1,1]) + two latent pairs (for the D and the G step) with inject indices."""
    x = hqs[0]
    if hflip and rng.random() < 0.5:
        x = x[:, ::-1]
    out = {"real": np.ascontiguousarray(x.transpose(2, 0, 1) * 2.0 - 1.0, dtype=np.float32)}
    for k in ("d", "g"):
        out[f"z_{k}"] = rng.standard_normal((2, style_dim)).astype(np.float32)
        mix = rng.random() < mixing_prob
        out[f"inj_{k}"] = np.int64(rng.integers(1, n_latent) if mix else n_latent)
    return out


class PriorGAN(Trainable):
    """StyleGAN2 (generator + discriminator) trained from scratch on HQ faces."""

    kind = "prior"

    def __init__(self, cfg, params=None, name: str = "prior"):
        super().__init__(name, "stylegan2", cfg, params)
        self.generator = build_generator(cfg.arch)
        self.discriminator = build_discriminator(cfg.arch, cfg.stddev_group)
        self.out_size = cfg.arch.size
        self.register_buffer("pl_mean", torch.zeros(()))

    # -- data --------------------------------------------------------------------------------
    def sample_fn(self):
        return functools.partial(prior_sample, style_dim=self.cfg.arch.style_dim,
                                 n_latent=self.generator.n_latent,
                                 mixing_prob=float(self.cfg.mixing_prob), hflip=self.cfg.hflip)

    # -- model -------------------------------------------------------------------------------
    def wplus(self, z: torch.Tensor, inj: torch.Tensor) -> torch.Tensor:
        """z (B,2,D), inject index (B,) -> W+ (B, n_latent, D): layer k < inj uses code 0."""
        w = self.generator.get_latent(z)
        layer = torch.arange(self.generator.n_latent, device=z.device)
        first = (layer[None, :] < inj[:, None]).unsqueeze(-1)
        return torch.where(first, w[:, :1], w[:, 1:2])

    def fake(self, z, inj, return_latents=False):
        w = self.wplus(z, inj)
        return self.generator(w, input_is_latent=True,
                              randomize_noise=self.cfg.train_noise == "random",
                              return_latents=return_latents)

    # -- optimisation ------------------------------------------------------------------------
    def generator_modules(self):
        return {"generator": self.generator}

    def discriminator_modules(self):
        return {"discriminator": self.discriminator}

    def ema_modules(self):
        return {"generator": self.generator}

    def make_optimizers(self):
        c = self.cfg
        g_ratio = c.path_reg_every / (c.path_reg_every + 1) if c.path_reg_weight > 0 else 1.0
        d_ratio = c.r1_every / (c.r1_every + 1)
        return {
            "g": torch.optim.Adam(self.generator.parameters(), lr=c.lr * g_ratio,
                                  betas=(0.0, 0.99 ** g_ratio)),
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr * d_ratio,
                                  betas=(0.0, 0.99 ** d_ratio)),
        }

    def d_step(self, batch, step):
        c = self.cfg
        with torch.no_grad():
            fake = self.fake(batch["z_d"], batch["inj_d"])
        return logistic_d_loss(self.discriminator, batch["real"], fake, step, c.r1_gamma,
                               c.r1_every)

    def g_step(self, batch, step):
        c = self.cfg
        fake = self.fake(batch["z_g"], batch["inj_g"])
        loss = F.softplus(-self.discriminator(fake)).mean()
        logs = {"g_adv": loss.detach()}
        if c.path_reg_weight > 0 and step % c.path_reg_every == 0:
            n = max(1, batch["z_g"].shape[0] // 2)
            img, lat = self.fake(batch["z_g"][:n], batch["inj_g"][:n], return_latents=True)
            pen, lengths = path_length_penalty(img, lat, self.pl_mean)
            loss = loss + c.path_reg_weight * c.path_reg_every * pen
            logs["path_len"] = lengths.mean()
        return loss, logs

    @torch.no_grad()
    def sample_images(self, batch):
        from core.seeding import torch_generator
        g = torch_generator(0, "prior-samples")
        z = torch.randn(8, self.cfg.arch.style_dim, generator=g).to(batch["real"].device)
        img = self.generator([z], randomize_noise=False)
        return torch.cat([img, batch["real"][:4]], 0)
