"""Panini-Net (AAAI 2022): degradation-aware feature interpolation into a StyleGAN2 prior.

Reads top to bottom like the paper's figure (methods.md §2):

    LQ x (B,3,lq,lq) in [-1,1]
     ├─ DRE (frozen MoCo-pretrained Encoder; SR: a learnable constant vector) -> v_DR (B, d)
     ├─ DAFI mask generator: MLP(v_DR) -> per level i, per channel logits for the pair
     │    (GAN prior, image feature), softmax over the pair -> m1_i, m2_i (B, C_i, 1, 1)
     ├─ IFE: RRDB front end + CBAM -> progressive convs -> F_IFE at the n fused resolutions
     │    (+ the latent head -> w+ (B, n_latent, D))
     └─ GPM: the StyleGAN2 prior fed w+ (mapping unused), fixed noise; at each fused level
          F <- m1_i * F_GPB + m2_i * Conv3x3_i(F_IFE)            (eq. 6-7; Cat-Conv: conv(cat))
        the rest of the prior untouched (eq. 8-9) -> restored (B,3,out,out)

Scaling to other sizes: the fused levels are the ``n_fusion`` lowest generator resolutions
(4..64 for the paper's 1024 output; 4..64 at the built-in 64 px tier too). The IFE runs its front
end at the LQ resolution, then reaches the top fused resolution with stride-2 convs (LQ larger,
paper: 512 -> 64 with widths 32, 64, 128, C) or with x2 nearest-upsample + conv stages (LQ
smaller: built-in MFR 32 -> 64, built-in SR 8 -> 64), then stride-2 convs down to 4x4.
Mask widths and ``fusion_out`` output widths follow the generator's C(r) (the reference
hard-codes 512, i.e. cm=2 only).

Fusion point: ``fuse_point="block"`` (default) fuses after the second StyledConv of a resolution,
before its ToRGB; ``"post_rgb"`` after the ToRGB, as the reference code does (there the ToRGB of a
fused resolution still sees the unfused feature, so when the top fused level is the output
resolution, as at the built-in tier, that level would have no effect).

Losses (§2.7): L1 (1), VGG16 conv4_3 pre-ReLU MSE (1e-2; ImageNet normalisation applied to the
[-1,1] images as the reference does), vanilla BCE GAN with the prior's discriminator (1e-2); D:
BCE real/fake, no R1. Adam (0.9, 0.99), cosine schedule (one period = the run), no EMA.

Analysis: ``analyze(lq)`` returns the per-level masks, theta (Table 4: mean of the last
(highest-resolution) DAFI block's GAN-prior mask m1, per image), and optionally the output with
one source zeroed (Fig. 7: Y_GPB keeps only m1*F_GPB, Y_IFE only m2*Conv(F_IFE)). ``mask_bias``
adds a constant to the GAN-prior logit before the softmax (editable restoration: > 0 leans on
the prior, < 0 on the image features).
"""
from __future__ import annotations

import logging
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import Method, TrainContext, prior_arch_for, stddev_group_of
from methods.dre import Encoder
from methods.prior import build_discriminator, build_generator
from core.errors import FRBenchError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# IFE building blocks: RRDB front end (rrdb_net.py) and CBAM as written in the official code

class ResidualDenseBlock(nn.Module):
    """5 dense 3x3 convs (in mid + i*growth), LReLU(0.2) after 1-4; ``x + 0.2 * conv5``."""

    def __init__(self, mid: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(mid + i * growth, growth if i < 4 else mid, 3, 1, 1) for i in range(5))
        for c in self.convs:  # kaiming x 0.1 (reference init)
            nn.init.kaiming_normal_(c.weight, a=0, mode="fan_in")
            c.weight.data.mul_(0.1)
            nn.init.zeros_(c.bias)

    def forward(self, x):
        feats = [x]
        for i, conv in enumerate(self.convs):
            y = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(F.leaky_relu(y, 0.2))
        return x + 0.2 * y


class RRDB(nn.Module):
    """``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, mid: int, growth: int):
        super().__init__()
        self.rdbs = nn.Sequential(*[ResidualDenseBlock(mid, growth) for _ in range(3)])

    def forward(self, x):
        return x + 0.2 * self.rdbs(x)


class RRDBFeatureExtractor(nn.Module):
    """conv_first 3->mid; body = n RRDBs; conv_body; ``f + conv_body(body(f))``."""

    def __init__(self, in_ch: int, mid: int, num_blocks: int, growth: int):
        super().__init__()
        self.conv_first = nn.Conv2d(in_ch, mid, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(mid, growth) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(mid, mid, 3, 1, 1)

    def forward(self, x):
        f = self.conv_first(x)
        return f + self.conv_body(self.body(f))


class CBAM(nn.Module):
    """CBAM as written in the official code (methods.md §2.3): the shared ``fea_preprocess``
    conv is applied before the channel gate AND again before the spatial gate."""

    def __init__(self, ch: int, reduction: int):
        super().__init__()
        self.fea_preprocess = nn.Conv2d(ch, ch, 3, 1, 1)
        hid = max(1, ch // reduction)
        self.channel_mlp = nn.Sequential(nn.Flatten(), nn.Linear(ch, hid), nn.ReLU(True),
                                         nn.Linear(hid, ch))
        self.spatial = nn.Conv2d(2, 1, 7, 1, 3, bias=False)
        self.spatial_bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x):
        y = self.fea_preprocess(x)
        att = torch.sigmoid(self.channel_mlp(F.adaptive_avg_pool2d(y, 1))
                            + self.channel_mlp(F.adaptive_max_pool2d(y, 1)))
        x1 = y * att[:, :, None, None]
        y2 = self.fea_preprocess(x1)
        s = torch.cat([y2.amax(1, keepdim=True), y2.mean(1, keepdim=True)], 1)
        return y2 * torch.sigmoid(self.spatial_bn(self.spatial(s)))


def _conv_lrelu(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2, True))


class _UpConv(nn.Sequential):
    """x2 nearest upsample + Conv3x3 + LReLU(0.2) (IFE stages when LQ < top fused level)."""

    def __init__(self, cin, cout):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1),
                         nn.LeakyReLU(0.2, True))


class IFE(nn.Module):
    """Image Feature Extraction: LQ (B,3,lq,lq) -> ([F_IFE at levels top..4], w+ (B,n_latent,D)).

    ``levels``: fused resolutions, highest first (e.g. [64, 32, 16, 8, 4]).
    """

    def __init__(self, lq_size: int, levels: list[int], ch: int, rrdb_ch: int, num_rrdb: int,
                 growth: int, cbam_reduction: int, n_latent: int, style_dim: int,
                 variant: str = "mfr"):
        super().__init__()
        self.levels, self.n_latent, self.style_dim = levels, n_latent, style_dim
        top = levels[0]
        front = [RRDBFeatureExtractor(3, rrdb_ch, num_rrdb, growth), CBAM(rrdb_ch, cbam_reduction)]
        if variant == "sr" and lq_size == top:
            # reference SR: CBAM -> Conv3x3 mid -> C + LReLU = F@64 directly
            front.append(_conv_lrelu(rrdb_ch, ch))
        else:
            # reference MFR: CBAM -> Conv 8->32 -> stride-2 convs 32->64->128->C (512 -> 64)
            c = min(32, ch) if lq_size > top else ch
            front.append(_conv_lrelu(rrdb_ch, c))
            r = lq_size
            while r > top:
                r //= 2
                nxt = ch if r == top else min(c * 2, ch)
                front.append(_conv_lrelu(c, nxt, stride=2))
                c = nxt
            while r < top:
                r *= 2
                front.append(_UpConv(c, ch))
                c = ch
        self.encoder0 = nn.Sequential(*front)
        self.down = nn.ModuleList(_conv_lrelu(ch, ch, stride=2) for _ in levels[1:])
        assert levels[-1] == 4, "the lowest fused level must be 4x4 (latent head input)"
        hid = max(1, ch // 2)
        self.latent_conv = _conv_lrelu(ch, hid)
        self.latent_fc = nn.Linear(hid * 16, n_latent * style_dim)

    def forward(self, lq):
        f = self.encoder0(lq)
        feats = [f]
        for d in self.down:
            f = d(f)
            feats.append(f)
        w = self.latent_fc(self.latent_conv(f).flatten(1)).view(-1, self.n_latent, self.style_dim)
        return feats, w


# ------------------------------------------------------------------------------------------
# DAFI (eq. 6-7) and the Cat-Conv ablation

class DAFIMaskGen(nn.Module):
    """MLP(v_DR): Linear(d,d) -> LReLU(0.1) -> Linear(d, 2 * sum_i C_i); per level the logits
    are viewed as (B, 2, C_i) (pair first, as the reference's (B,5,2,512) layout) and
    softmax-ed over the pair: m1 (GAN prior), m2 (image feature), each (B, C_i, 1, 1)."""

    def __init__(self, dr_dim: int, level_channels: list[int]):
        super().__init__()
        self.level_channels = list(level_channels)
        self.mapping = nn.Sequential(nn.Linear(dr_dim, dr_dim), nn.LeakyReLU(0.1, True),
                                     nn.Linear(dr_dim, 2 * sum(level_channels)))

    def logits(self, v: torch.Tensor) -> list[torch.Tensor]:
        """v (B,d) -> per level (B, 2, C_i) logits (index 0 = GAN prior)."""
        flat = self.mapping(v)
        out, off = [], 0
        for c in self.level_channels:
            out.append(flat[:, off:off + 2 * c].view(-1, 2, c))
            off += 2 * c
        return out

    def forward(self, v: torch.Tensor, mask_bias: float = 0.0):
        masks = []
        for lg in self.logits(v):
            if mask_bias:
                lg = lg + torch.tensor([mask_bias, 0.0], device=lg.device, dtype=lg.dtype).view(1, 2, 1)
            m = torch.softmax(lg, dim=1)
            masks.append((m[:, 0, :, None, None], m[:, 1, :, None, None]))
        return masks


def dafi(f_gpb: torch.Tensor, f_ife_conv: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor):
    """Eq. 7: ``m1 * F_GPB + m2 * Conv(F_IFE)`` (masks broadcast over H, W)."""
    return m1 * f_gpb + m2 * f_ife_conv


# ------------------------------------------------------------------------------------------
# The method

class Panini(Method):
    """Panini-Net (variants mfr / sr; fusion dafi / catconv). See the module docstring."""

    def __init__(self, name: str, cfg, params):
        super().__init__(name, "panini", cfg, params)
        self.prior_arch = prior_arch_for(name, "Panini", self.out_size, params,
                                      getattr(cfg, "prior_arch", None))
        self.generator = build_generator(self.prior_arch)
        self.discriminator = build_discriminator(self.prior_arch, stddev_group_of(params)) \
            if cfg.gan_weight > 0 else None
        gch = self.generator.channels
        self.levels = [2 ** k for k in range(cfg.n_fusion + 1, 1, -1)]  # e.g. [64,32,16,8,4]
        ch = cfg.ife_channels or gch[self.levels[0]]
        self.ife = IFE(self.lq_size, self.levels, ch, cfg.rrdb_channels, cfg.num_rrdb,
                       cfg.rrdb_growth, cfg.cbam_reduction, self.generator.n_latent,
                       self.prior_arch.style_dim, cfg.variant)
        # DR: the DRE (mfr) or a learnable constant vector (sr)
        dre_cfg = (cfg.dre_arch or params.dre) if cfg.variant == "mfr" else None
        if cfg.variant == "mfr":
            if dre_cfg is None:
                raise FRBenchError(f"methods.{name}: variant mfr needs the 'dre' section "
                                   "(or the entry's own dre_arch)")
            self.dre = Encoder(dre_cfg.widths, dre_cfg.input_size)
            dr_dim = self.dre.dim
            self.choice_vector = None
        else:
            self.dre = None
            dr_dim = cfg.dr_dim or (params.dre.widths[-1] if params.dre is not None else 256)
            self.choice_vector = nn.Parameter(torch.randn(1, dr_dim))
        self.dr_dim = dr_dim
        # fusion, indexed by level (highest resolution first, like self.levels)
        if cfg.fusion == "dafi":
            self.mask_gen = DAFIMaskGen(dr_dim, [gch[r] for r in self.levels])
            self.fusion_out = nn.ModuleList(nn.Conv2d(ch, gch[r], 3, 1, 1) for r in self.levels)
        else:  # Cat-Conv (Table 3): conv3x3(cat(F_GPB, F_IFE)) 2C -> C
            self.mask_gen = None
            self.fusion_out = nn.ModuleList(nn.Conv2d(gch[r] + ch, gch[r], 3, 1, 1)
                                            for r in self.levels)
        self.__dict__["_vgg"] = None  # not a submodule: kept out of state_dict/checkpoints
        self.mask_bias = 0.0

    # -- configuration -----------------------------------------------------------------------
    def config_dict(self):
        from core.config import to_dict
        d = {"cfg": to_dict(self.cfg), "prior_arch": to_dict(self.prior_arch)}
        if self.dre is not None:
            d["dre"] = {"widths": list(self.dre.widths), "input_size": self.dre.input_size}
        return d

    def train(self, mode: bool = True):
        super().train(mode)
        if self.dre is not None and not self.cfg.finetune_dre:
            self.dre.eval()  # frozen DRE: BN in eval mode
        return self

    # -- forward -----------------------------------------------------------------------------
    def degradation_representation(self, lq: torch.Tensor) -> torch.Tensor:
        if self.dre is not None:
            return self.dre.represent(lq)
        return self.choice_vector.expand(lq.shape[0], -1)

    def analyze(self, lq: torch.Tensor, mask_bias: Optional[float] = None,
                zero: Optional[str] = None) -> dict:
        """Full forward with intermediates.

        ``zero``: None, "ife" (keep only m1*F_GPB: Y_GPB) or "gpb" (only m2*Conv(F_IFE): Y_IFE).
        Returns {"out": (B,3,out,out), "masks": [(m1, m2) per level, highest res first] (DAFI),
        "theta": (B,) mean of the last (highest-res) block's GAN-prior mask, "wplus",
        "levels"}.
        """
        self.check_input(lq)
        bias = self.mask_bias if mask_bias is None else mask_bias
        feats, wplus = self.ife(lq)
        masks = None
        if self.mask_gen is not None:
            masks = self.mask_gen(self.degradation_representation(lq), mask_bias=bias)
        index = {r: i for i, r in enumerate(self.levels)}
        point = self.cfg.fuse_point

        def hook(p, res, x):
            at = (p == "conv1" if point == "block" else p == "post_rgb") if res == 4 else p == point
            if not at or res not in index:
                return x
            i = index[res]
            f_ife = feats[i]
            if masks is None:
                if zero is not None:
                    raise FRBenchError("Y_IFE/Y_GPB dissection needs DAFI fusion")
                return self.fusion_out[i](torch.cat([x, f_ife], 1))
            m1, m2 = masks[i]
            gpb = x if zero != "gpb" else torch.zeros_like(x)
            ife = self.fusion_out[i](f_ife) if zero != "ife" else torch.zeros_like(x)
            return dafi(gpb, ife, m1, m2)

        out = self.generator(wplus, input_is_latent=True, randomize_noise=False, hook=hook)
        theta = masks[0][0].mean(dim=(1, 2, 3)) if masks is not None else None
        return {"out": out, "masks": masks, "theta": theta, "wplus": wplus, "levels": self.levels}

    def forward(self, lq):
        return self.analyze(lq)["out"]

    @torch.no_grad()
    def theta(self, lq: torch.Tensor) -> torch.Tensor:
        """Table 4's GAN-prior usage ratio per image (B,) (DAFI only)."""
        if self.mask_gen is None:
            raise FRBenchError(f"{self.name}: theta needs DAFI fusion (not Cat-Conv)")
        return self.analyze(lq)["theta"]

    # -- training ----------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext):
        """Load the pretrained prior (EMA generator + discriminator) and DRE, freeze as
        configured, resolve VGG16 for the perceptual loss."""
        from methods.trainer import load_pretrained, load_state
        from pathlib import Path

        root = Path(ctx.checkpoint_dir)
        pck_path = root / "prior" / "model.pt"
        allow_partial = getattr(ctx, "allow_partial", False)
        pck, prior_prov = load_pretrained(pck_path, "prior", allow_partial)
        if pck.get("out_size") != self.out_size:
            raise FRBenchError(f"{pck_path}: prior generates {pck.get('out_size')} px, "
                               f"{self.name} needs {self.out_size}; retrain the prior")
        gsd = (pck.get("ema") or {}).get("generator") or {
            k[len("generator."):]: v for k, v in pck["model"].items() if k.startswith("generator.")}
        load_state(self.generator, gsd, pck_path, "prior generator")
        if self.discriminator is not None:
            dsd = {k[len("discriminator."):]: v for k, v in pck["model"].items()
                   if k.startswith("discriminator.")}
            load_state(self.discriminator, dsd, pck_path, "prior discriminator")
        self.provenance["prior"] = prior_prov
        if getattr(self.cfg, "init_latent_avg", False):
            # not in the reference (it feeds the head's output directly): start the latent head
            # at the prior's mean latent so the first outputs are the prior's average image
            from core.seeding import torch_generator
            with torch.no_grad():
                w_avg = self.generator.mean_latent(4096, generator=torch_generator(0, "w_avg"))
                self.ife.latent_fc.bias.copy_(w_avg.repeat(1, self.generator.n_latent).view(-1))
                self.ife.latent_fc.weight.mul_(0.1)
        if self.dre is not None:
            dck_path = root / "dre" / "model.pt"
            dck, dre_prov = load_pretrained(dck_path, "dre", allow_partial)
            esd = {k[len("encoder_q."):]: v for k, v in dck["model"].items()
                   if k.startswith("encoder_q.")}
            load_state(self.dre, esd, dck_path, "DRE (encoder_q)")
            self.dre.requires_grad_(bool(self.cfg.finetune_dre))
            self.provenance["dre"] = dre_prov
        self.generator.style.requires_grad_(False)  # W+ comes from the IFE: mapping unused
        if not self.cfg.finetune_generator:
            self.generator.requires_grad_(False)
        if self.cfg.perceptual_weight > 0:
            vgg = VGGConv43(self.params, allow_random=ctx.params.train.allow_random_vgg)
            self.__dict__["_vgg"] = vgg.to(ctx.device)
            self.provenance["vgg16"] = vgg.provenance

    def generator_modules(self):
        mods = {"ife": self.ife, "fusion_out": self.fusion_out, "generator": self.generator}
        if self.mask_gen is not None:
            mods["mask_gen"] = self.mask_gen
        if self.dre is not None:
            mods["dre"] = self.dre
        return mods

    def discriminator_modules(self):
        return {"discriminator": self.discriminator} if self.discriminator is not None else {}

    def make_optimizers(self):
        c = self.cfg
        params = [p for m in self.generator_modules().values() for p in m.parameters()
                  if p.requires_grad]
        if self.choice_vector is not None:
            params.append(self.choice_vector)
        opts = {"g": torch.optim.Adam(params, lr=c.lr, betas=tuple(c.betas))}
        if self.discriminator is not None:
            opts["d"] = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr,
                                         betas=tuple(c.betas))
        return opts

    def lr_scale(self, step, total):
        """CosineRestart with one period = the run: min_lr + (lr-min_lr)(1+cos(pi t/T))/2."""
        if self.cfg.lr_schedule == "constant":
            return 1.0
        m = self.cfg.min_lr / self.cfg.lr
        return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * step / max(1, total)))

    #: mmedit SRGAN order: G step first, then D on the G step's output (one generator forward)
    step_order = ("g", "d")

    def d_step(self, batch, step):
        if self.discriminator is None:
            return None
        fake = self.take_fake(batch)
        real_pred = self.discriminator(batch["hq"])
        fake_pred = self.discriminator(fake.detach())
        loss = F.binary_cross_entropy_with_logits(real_pred, torch.ones_like(real_pred)) + \
            F.binary_cross_entropy_with_logits(fake_pred, torch.zeros_like(fake_pred))
        return loss, {"d_real": real_pred.mean().detach(), "d_fake": fake_pred.mean().detach()}

    def g_step(self, batch, step):
        c = self.cfg
        out = self.forward(batch["lq"])
        self.keep_fake(out)
        hq = batch["hq"]
        l1 = F.l1_loss(out, hq)
        loss = c.l1_weight * l1
        logs = {"l1": l1.detach()}
        if c.perceptual_weight > 0 and self._vgg is not None:
            perc = F.mse_loss(self._vgg(out), self._vgg(hq).detach())
            loss = loss + c.perceptual_weight * perc
            logs["perceptual"] = perc.detach()
        if self.discriminator is not None and c.gan_weight > 0:
            pred = self.discriminator(out)
            adv = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
            loss = loss + c.gan_weight * adv
            logs["g_adv"] = adv.detach()
        return loss, logs


class VGGConv43(nn.Module):
    """VGG16 features up to conv4_3 before its ReLU (torchvision ``features[:22]``), frozen.

    Input: images in [-1,1], normalised with ImageNet mean/std directly (``use_input_norm=True,
    norm_img=False`` in the reference). Weights via ``metrics.weights.resolve("vgg16")``;
    random init only when allowed (recorded as provenance ``random-init:seed=N``).
    """

    def __init__(self, params, allow_random: bool):
        super().__init__()
        from metrics.weights import load_state_dict, resolve

        explicit = None
        wcfg = getattr(params, "weights", None)
        paths = getattr(wcfg, "paths", None) if wcfg is not None else None
        if isinstance(paths, dict):
            explicit = paths.get("vgg16")
        seed = int(getattr(params, "seed", 0))
        res = resolve("vgg16", explicit, allow_random_init=allow_random, seed=seed)
        from torchvision.models.vgg import cfgs, make_layers
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            features = make_layers(cfgs["D"], batch_norm=False)  # VGG16 .features, no classifier
        if not res.random_init:
            sd = load_state_dict(res)
            try:
                features.load_state_dict({k[len("features."):]: v for k, v in sd.items()
                                          if k.startswith("features.")})
            except RuntimeError as e:
                raise FRBenchError(f"{res.path}: not a torchvision VGG16 state dict ({e})") from None
        self.features = features[:22].eval().requires_grad_(False)
        self.provenance = res.provenance
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x):
        return self.features((x - self.mean.to(x)) / self.std.to(x))
