"""GPEN (CVPR 2021): GAN prior embedded network (methods.md §3), on the suite's StyleGAN2 prior.

    LQ (B,3,lq,lq) --bicubic--> x (B,3,S,S)               (GPEN restores at the output size)
     └─ encoder: ecd0 ConvLayer 1x1 3->C(S); ecd_k ConvLayer 3x3 downsample C(2r)->C(r), r=S/2..4
          -> features [f_S, ..., f_4];  final_linear EqualLinear(C(4)*16 -> D, fused lrelu) -> z
     └─ prior: w = mapping(z) broadcast to every layer (not W+), and the encoder features as the
          "noise" of the StyledConvs: noise list [f4, f8, f8, f16, f16, ..., f_S, f_S]
          concat (GPEN): out = cat([x, s * f]) (2C channels into the next layer; scalar s init 0)
          add (gpen_noiseadd): out = x + s * f;  none (gpen_nonoise): no noise input (zeros)

The pretrained prior of the suite is an add-noise StyleGAN2; for concat mode it is widened
(``baseline_common.widen_to_concat``: old weights copied, new input columns small, noise scalars 0,
so training starts from exactly the pretrained prior). GPEN itself trains its concat prior from
scratch (no concat prior is public, methods.md §3.9): this is the documented deviation.

Losses (paper): ``L = L_A + 1.0 L_C + 0.02 L_F``: non-saturating adversarial with the prior's
discriminator, L1 content, discriminator feature matching (MSE of every D ResBlock output between
restored and HQ, summed); the official train_simple variant: smooth-L1 content + ID loss 1.0.
D: logistic + lazy R1; G: optional path-length regulariser (``path_reg_weight``, official 2 every
4 steps). Checkpoint: the shared trainer's format (kind "method", arch "gpen"), model keys
``encoder.*``, ``generator.*`` (concat-mode shapes when noise=concat), ``discriminator.*``
(and ``pl_mean`` when the path-length term is on).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import (Method, TrainContext, logistic_d_loss, path_length_penalty,
                          prior_arch_for, resize)
from methods.baseline_common import (ID_CROP, ID_WEIGHTS, IdentityLoss, prior_state,
                                     resolve_backbone, widen_to_concat)
from methods.prior import build_discriminator, build_generator
from methods.stylegan2 import ConvLayer, EqualLinear


class GPENEncoder(nn.Module):
    """x (B,3,S,S) -> (z (B,D), [f_S, f_S/2, ..., f_4]) with f_r (B, C(r), r, r)."""

    def __init__(self, size: int, channels: dict[int, int], style_dim: int):
        super().__init__()
        self.ecd0 = ConvLayer(3, channels[size], 1)
        downs, r = [], size
        while r > 4:
            downs.append(ConvLayer(channels[r], channels[r // 2], 3, downsample=True))
            r //= 2
        self.downs = nn.ModuleList(downs)
        self.final_linear = EqualLinear(channels[4] * 16, style_dim, activation="fused_lrelu")

    def forward(self, x):
        f = self.ecd0(x)
        feats = [f]
        for d in self.downs:
            f = d(f)
            feats.append(f)
        return self.final_linear(f.flatten(1)), feats


def noise_list(feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """[f_S, ..., f_4] -> [f4, f8, f8, ..., f_S, f_S] (one per noise layer, GPEN's order)."""
    rev = feats[::-1]
    return [rev[0]] + [f for f in rev[1:] for _ in range(2)]


class GPEN(Method):
    """GPEN and its ablations (noise concat/add/none, prior fine-tuned or frozen)."""

    def __init__(self, name: str, cfg, params):
        super().__init__(name, "gpen", cfg, params)
        self.prior_arch = prior_arch_for(name, "GPEN", self.out_size, params,
                                      getattr(cfg, "prior_arch", None))
        mode = "concat" if cfg.noise == "concat" else "add"
        self.generator = build_generator(self.prior_arch, noise_mode=mode)
        self.encoder = GPENEncoder(self.out_size, self.generator.channels, self.prior_arch.style_dim)
        need_d = cfg.adv_weight > 0 or cfg.fm_weight > 0
        self.discriminator = build_discriminator(self.prior_arch, cfg.d_stddev_group) \
            if need_d else None
        self.__dict__["_id"] = None
        self.id_weight = 0.0
        if cfg.path_reg_weight > 0:  # the path-length regulariser's running mean length
            self.register_buffer("pl_mean", torch.zeros(()))

    def config_dict(self):
        from core.config import to_dict
        return {"cfg": to_dict(self.cfg), "prior_arch": to_dict(self.prior_arch)}

    # -- forward -----------------------------------------------------------------------------
    def noises(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.cfg.noise == "none":
            return [torch.zeros(f.shape[0], 1, f.shape[-2], f.shape[-1], device=f.device,
                                dtype=f.dtype) for f in noise_list(feats)]
        return noise_list(feats)

    def forward(self, lq):
        self.check_input(lq)
        x = resize(lq, self.out_size)
        z, feats = self.encoder(x)
        return self.generator(z, noise=self.noises(feats), randomize_noise=False)

    # -- training ----------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext):
        c = self.cfg
        gsd, dsd, prov = prior_state(ctx.checkpoint_dir, self.out_size, ctx.allow_partial)
        from methods.trainer import load_state
        masks = {}
        if c.noise == "concat":
            gsd, masks = widen_to_concat(gsd, self.generator, c.concat_init)
        else:
            gsd = {k: (torch.zeros_like(v) if k.endswith("noise.weight") else v)
                   for k, v in gsd.items()}  # GPEN: the feature scalars start at 0
        load_state(self.generator, gsd, prov, "prior generator")
        if c.noise_init:
            with torch.no_grad():
                for n, p in self.generator.named_parameters():
                    if n.endswith("noise.weight"):
                        p.fill_(c.noise_init)
        if self.discriminator is not None:
            load_state(self.discriminator, dsd, prov, "prior discriminator")
        self.provenance["prior"] = prov
        if not c.finetune_generator:  # gpen_noft: the pretrained prior stays fixed
            for n, p in self.generator.named_parameters():
                if n.endswith("noise.weight") and c.noise != "none":
                    continue  # the feature scalars are part of the embedding, not the prior
                if n in masks:
                    m = masks[n].to(p.dtype)
                    p.register_hook(lambda g, m=m: g * m.to(g.device))  # only the new columns
                    continue
                p.requires_grad_(False)
        self.id_weight, build = resolve_backbone(self.params, ID_WEIGHTS[c.id_net], c.id_weight,
                                                 c.random_init_losses, self.provenance, "id_net")
        if build:
            self.__dict__["_id"] = IdentityLoss(self.params, c.id_net, "cos", ID_CROP).to(ctx.device)

    def generator_modules(self):
        return {"encoder": self.encoder, "generator": self.generator}

    def discriminator_modules(self):
        return {"discriminator": self.discriminator} if self.discriminator is not None else {}

    def ema_modules(self):
        return self.generator_modules()

    def make_optimizers(self):
        c = self.cfg
        params = [p for m in self.generator_modules().values() for p in m.parameters()
                  if p.requires_grad]
        g = c.path_reg_every / (c.path_reg_every + 1) if c.path_reg_weight > 0 else 1.0
        opts = {"g": torch.optim.Adam(params, lr=c.lr * g, betas=(0.0, 0.99 ** g))}
        if self.discriminator is not None:
            r = c.r1_every / (c.r1_every + 1)
            opts["d"] = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr * r,
                                         betas=(0.0, 0.99 ** r))
        return opts

    #: G step first, then D on the G step's (detached) output: one generator forward per step
    #: (GPEN's train_simple updates D first on a fresh fake; same losses, ~20% cheaper here)
    step_order = ("g", "d")

    def d_step(self, batch, step):
        if self.discriminator is None:
            return None
        return logistic_d_loss(self.discriminator, batch["hq"], self.take_fake(batch), step,
                               self.cfg.r1_gamma, self.cfg.r1_every)

    def g_step(self, batch, step):
        c = self.cfg
        out = self.forward(batch["lq"])
        self.keep_fake(out)
        hq = batch["hq"]
        if c.content_loss == "l1":
            content = F.l1_loss(out, hq)
        else:
            content = F.smooth_l1_loss(out, hq)
        loss = c.content_weight * content
        logs = {"content": content.detach()}
        if self.discriminator is not None:
            pred, f_out = self.discriminator(out, return_features=True)
            if c.adv_weight > 0:
                adv = F.softplus(-pred).mean()
                loss = loss + c.adv_weight * adv
                logs["g_adv"] = adv.detach()
            if c.fm_weight > 0:
                with torch.no_grad():
                    _, f_hq = self.discriminator(hq, return_features=True)
                fm = sum(F.mse_loss(a, b) for a, b in zip(f_out, f_hq))
                loss = loss + c.fm_weight * fm
                logs["fm"] = fm.detach()
        if self.id_weight > 0 and self._id is not None:
            idl = self._id(out, hq)
            loss = loss + self.id_weight * idl
            logs["id"] = idl.detach()
        if c.path_reg_weight > 0 and step % c.path_reg_every == 0:
            # GPEN train_simple: the StyleGAN2 path-length term on the encoder's latents, half batch
            n = max(1, batch["lq"].shape[0] // 2)
            z, feats = self.encoder(resize(batch["lq"][:n], self.out_size))
            img, lat = self.generator(z, noise=self.noises(feats), randomize_noise=False,
                                      return_latents=True)
            pen, lengths = path_length_penalty(img, lat, self.pl_mean)
            loss = loss + c.path_reg_weight * c.path_reg_every * pen
            logs["path_len"] = lengths.mean()
        return loss, logs
