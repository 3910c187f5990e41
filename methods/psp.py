"""pSp (pixel2style2pixel, CVPR 2021), super-resolution setting (methods.md §5), on the suite's
StyleGAN2 prior.

    LQ (B,3,lq,lq) --bicubic--> x (B,3,E,E)    E = ``encoder_input_size`` (pSp: every input is
                                                 resized to 256; 0 = the output size S)
     └─ GradualStyleEncoder: input_layer Conv3x3 + BN + PReLU; 4 stages of bottleneck_IR_SE units
          (first unit of each stage stride 2; paper 3/4/14/3 units, 64/128/256/512 wide);
          taps c1 (end of stage 2, S/4), c2 (stage 3, S/8), c3 (stage 4, S/16);
          FPN: p2 = up(c3) + latlayer1(c2); p1 = up(p2) + latlayer2(c1) (bilinear, align_corners)
          map2style heads (log2(spatial) x [Conv3x3 s2 + LeakyReLU(0.01)] -> EqualLinear):
          styles 0-2 from c3, 3-6 from p2, 7..n-1 from p1
     └─ codes = E(x) + w_avg (``start_from_latent_avg``; w_avg = the prior's mean latent, kept per
          style as the buffer ``latent_avg`` (n_latent, D), as pSp's checkpoints) -> frozen prior with input_is_latent (random noise in
          training, fixed buffers at inference, as scripts/inference.py)

Losses (SR command of the README): 1.0 L2 + 0.8 LPIPS (AlexNet) + 0.1 ID + 0.005 w_norm
(``mean_b ||codes - w_avg||_2`` over the whole n_latent x D matrix). The paper's 1024 output pooled
to 256 for the losses: here the losses use the output size. Adam (``--optim_name adam``) or
Ranger (``optimizer: ranger``, pSp's default; ``methods/optim.py``).
Checkpoint: the shared trainer format (kind "method", arch "psp"); model keys ``encoder.*``,
``generator.*`` (frozen prior), ``latent_avg``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import Method, TrainContext, prior_arch_for, resize
from methods.baseline_common import (ID_CROP, ID_WEIGHTS, IdentityLoss, mean_w,
                                     prior_latent_avg, prior_state, resolve_backbone,
                                     weights_cfg)
from methods.prior import build_generator
from methods.stylegan2 import EqualLinear
from metrics.backbones import irse_stages
from core.errors import FRBenchError


class GradualStyleBlock(nn.Module):
    """map2style: log2(spatial) stride-2 3x3 convs (+ LeakyReLU 0.01) to 1x1 -> EqualLinear."""

    def __init__(self, cin: int, cout: int, spatial: int, style_dim: int):
        super().__init__()
        n = int(math.log2(spatial))
        layers = [nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(n - 1):
            layers += [nn.Conv2d(cout, cout, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(cout, style_dim, lr_mul=1)

    def forward(self, x):
        return self.linear(self.convs(x).flatten(1))


class GradualStyleEncoder(nn.Module):
    """x (B,3,S,S) -> W+ offsets (B, n_styles, D)."""

    def __init__(self, size: int, units: list[int], widths: list[int], fpn: int, n_styles: int,
                 style_dim: int):
        super().__init__()
        if widths[3] != fpn:
            raise FRBenchError(f"pSp: the last stage width ({widths[3]}) must equal fpn_width "
                               f"({fpn}) (p2 = up(c3) + latlayer1(c2))")
        if size < 32:
            raise FRBenchError("pSp: input size must be >= 32 (c3 at size/16 >= 2)")
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        body, self.taps = irse_stages(widths[0], units, widths)
        self.body = nn.Sequential(*body)
        self.n_styles, self.coarse, self.middle = n_styles, 3, 7
        s3, s2, s1 = size // 16, size // 8, size // 4
        self.styles = nn.ModuleList(
            GradualStyleBlock(fpn, fpn, s3 if i < self.coarse else s2 if i < self.middle else s1,
                              style_dim) for i in range(n_styles))
        self.latlayer1 = nn.Conv2d(widths[2], fpn, 1)
        self.latlayer2 = nn.Conv2d(widths[1], fpn, 1)

    @staticmethod
    def _up_add(x, y):
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, x):
        x = self.input_layer(x)
        c1 = c2 = c3 = None
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i == self.taps[1]:
                c1 = x
            elif i == self.taps[2]:
                c2 = x
            elif i == self.taps[3]:
                c3 = x
        lat = [self.styles[i](c3) for i in range(self.coarse)]
        p2 = self._up_add(c3, self.latlayer1(c2))
        lat += [self.styles[i](p2) for i in range(self.coarse, min(self.middle, self.n_styles))]
        p1 = self._up_add(p2, self.latlayer2(c1))
        lat += [self.styles[i](p1) for i in range(self.middle, self.n_styles)]
        return torch.stack(lat, 1)


class PSP(Method):
    """pSp encoder + frozen prior (super-resolution setting)."""

    def __init__(self, name: str, cfg, params):
        super().__init__(name, "psp", cfg, params)
        self.prior_arch = prior_arch_for(name, "pSp", self.out_size, params,
                                      getattr(cfg, "prior_arch", None))
        self.generator = build_generator(self.prior_arch)
        self.encoder_size = int(getattr(cfg, "encoder_input_size", 0) or self.out_size)
        self.encoder = GradualStyleEncoder(self.encoder_size, list(cfg.enc_units),
                                           list(cfg.enc_widths), cfg.fpn_width,
                                           self.generator.n_latent, self.prior_arch.style_dim)
        # pSp keeps w_avg per style (n_latent, D) (models/psp.py:110-116 repeats it n_styles times)
        self.register_buffer("latent_avg", torch.zeros(self.generator.n_latent,
                                                       self.prior_arch.style_dim))
        self.__dict__["_id"] = None
        self.__dict__["_lpips"] = None
        self.id_weight = self.lpips_weight = 0.0

    def config_dict(self):
        from core.config import to_dict
        return {"cfg": to_dict(self.cfg), "prior_arch": to_dict(self.prior_arch)}

    def codes(self, lq):
        """W+ codes (B, n_latent, D) = E(x) (+ w_avg)."""
        self.check_input(lq)
        codes = self.encoder(resize(lq, self.encoder_size))
        if self.cfg.start_from_latent_avg:
            codes = codes + self.latent_avg.unsqueeze(0)
        return codes

    def forward(self, lq):
        return self.generator(self.codes(lq), input_is_latent=True, randomize_noise=self.training)

    # -- training ----------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext):
        from methods.trainer import load_state
        c = self.cfg
        gsd, _, prov = prior_state(ctx.checkpoint_dir, self.out_size, ctx.allow_partial)
        load_state(self.generator, gsd, prov, "prior generator")
        self.generator.requires_grad_(False)  # pSp: train_decoder False
        self.provenance["prior"] = prov
        la = prior_latent_avg(ctx.checkpoint_dir)  # the released file's w_avg (pSp uses it)
        with torch.no_grad():
            w = la if la is not None else mean_w(self.generator)
            self.latent_avg.copy_(w.to(self.latent_avg).expand_as(self.latent_avg))
        self.provenance["latent_avg"] = ("latent_avg of the released prior file"
                                         if la is not None else "mean of 4096 mapped z (seed 0)")
        if c.encoder_init == "irse50":
            self.init_encoder_from_irse50()
        self.id_weight, build = resolve_backbone(self.params, ID_WEIGHTS[c.id_net], c.id_weight,
                                                 c.random_init_losses, self.provenance, "id_net")
        if build:
            self.__dict__["_id"] = IdentityLoss(self.params, c.id_net, "cos", ID_CROP).to(ctx.device)
        tv = {"alex": "alexnet", "vgg": "vgg16"}[c.lpips_net]
        self.lpips_weight, build = resolve_backbone(self.params, tv, c.lpips_weight,
                                                    c.random_init_losses, self.provenance,
                                                    f"lpips_{c.lpips_net}")
        if build:
            from metrics.backbones import build_lpips
            net, prov_l = build_lpips(c.lpips_net, weights_cfg(self.params))
            self.provenance.update(prov_l)
            self.__dict__["_lpips"] = net.to(ctx.device)

    def init_encoder_from_irse50(self) -> None:
        """pSp: the encoder's ``input_layer`` and ``body`` start from the IR-SE50 ArcFace
        (``model_ir_se50.pth``, loaded like the official ``strict=False``: the ArcFace
        ``output_layer`` is not used). A random-init resolution is recorded and skipped."""
        from metrics.backbones import load_irse50_state
        sd, res = load_irse50_state(weights_cfg(self.params))
        if sd is None:
            self.provenance["encoder_init"] = f"{res.provenance} (skipped)"
            return
        own = self.encoder.state_dict()
        take = {k: v for k, v in sd.items() if k.startswith(("input_layer.", "body."))}
        bad = [k for k, v in take.items() if k not in own or own[k].shape != v.shape]
        if bad or not take:
            raise FRBenchError(
                f"methods.{self.name}.encoder_init: {res.path} does not fit this encoder "
                f"(e.g. {bad[:2] or 'no input_layer/body tensors'}); IR-SE50 needs enc_units "
                "[3, 4, 14, 3] and enc_widths [64, 128, 256, 512]")
        self.encoder.load_state_dict(take, strict=False)
        self.provenance["encoder_init"] = f"{res.provenance} ({len(take)} tensors)"

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()  # frozen decoder
        return self

    def generator_modules(self):
        return {"encoder": self.encoder}

    def ema_modules(self):
        return {"encoder": self.encoder}

    def make_optimizers(self):
        if self.cfg.optimizer == "ranger":  # pSp's default (methods.md §5.4)
            from methods.optim import Ranger
            return {"g": Ranger(self.encoder.parameters(), lr=self.cfg.lr)}
        return {"g": torch.optim.Adam(self.encoder.parameters(), lr=self.cfg.lr)}

    def g_step(self, batch, step):
        c = self.cfg
        codes = self.codes(batch["lq"])
        out = self.generator(codes, input_is_latent=True, randomize_noise=True)
        hq = batch["hq"]
        l2 = F.mse_loss(out, hq)
        loss = c.l2_weight * l2
        logs = {"l2": l2.detach()}
        if self.lpips_weight > 0 and self._lpips is not None:
            lp = self._lpips.distance(self._lpips.features(out),
                                      [f.detach() for f in self._lpips.features(hq)]).mean()
            loss = loss + self.lpips_weight * lp
            logs["lpips"] = lp.detach()
        if self.id_weight > 0 and self._id is not None:
            idl = self._id(out, hq)
            loss = loss + self.id_weight * idl
            logs["id"] = idl.detach()
        if c.w_norm_weight > 0:
            d = codes - self.latent_avg.unsqueeze(0) if c.start_from_latent_avg else codes
            wn = d.flatten(1).norm(2, dim=1).mean()
            loss = loss + c.w_norm_weight * wn
            logs["w_norm"] = wn.detach()
        return loss, logs
