"""GFP-GAN v1 (CVPR 2021): U-Net degradation removal + CS-SFT into a frozen StyleGAN2 prior
(methods.md §4), on the suite's prior.

    LQ (B,3,lq,lq) --bicubic--> x (B,3,S,S)                   (GFP-GAN restores at S)
     └─ U-Net down: conv_body_first 1x1 3->U(S); ResBlock U(2r)->U(r), r = S/2..4 (skips);
          final_conv 3x3; final_linear(U(4)*16 -> n_latent*D) = W+ (mapping bypassed)
     └─ U-Net up, i = 0..log2(S)-3:  feat = ResUpBlock(feat + skip_i) at r = 8*2^i;
          scale_r, shift_r = condition convs(feat); toRGB_r(feat) -> pyramid output
     └─ prior (frozen): at each r >= 8, after the up-StyledConv and before the second one:
          CS-SFT: [a, b] = split(F, half);  F = cat([a, b * scale_r + shift_r])
          (``sft: full``, the gfpgan_sft ablation: F = F * scale_r + shift_r)
U(r) = half the decoder width C(r), so a CS-SFT half has U(r) channels (as v1: cm=1 decoder,
U-Net narrow 0.5). Decoder noise: random in training (v1); at inference the prior's fixed
buffers (deterministic evaluation; v1 keeps random noise).

Losses (train_gfpgan_v1.yml): 0.1 L1 + 1.0 pyramid L1 (toRGB_r vs the bilinear GT pyramid) +
VGG19 perceptual 1 + Gram style 50 + 0.1 softplus GAN (a fresh StyleGAN2 D, R1) + facial
component GANs (left eye, right eye, mouth; BCE) 1 each + component Gram style 200
(0.5 * L1 Gram(feat1) + 1.0 * L1 Gram(feat2) of the component D) + identity 10 (ArcFace
ResNet-18, L1 of embeddings). Components are cut with ``roi_align`` from boxes built from eye /
mouth landmarks (eyes' half size x ``eye_enlarge`` 1.4); the boxes come with each sample
(``GFPGANSample``): the built-in faces' own generator parameters (``faces.json`` of the HQ
folder) or GFP-GAN's ``FFHQ_eye_mouth_landmarks_512.pth`` at paper scale.
Update order as gfpgan_model.optimize_parameters: G step, then the D's on the detached output.
Checkpoint: the shared trainer format (kind "method", arch "gfpgan"); model keys ``unet.*``,
``generator.*`` (the prior; frozen unless ``fix_decoder: false``), ``discriminator.*``,
``comp_d.{left_eye,right_eye,mouth}.*``.

``version: clean`` = GFPGANv1Clean (the v1.2/v1.3/v1.4 releases, TencentARC/GFPGAN
gfpgan/archs/gfpganv1_clean_arch.py): the same modules and parameters with the ``clean`` switch
of methods/stylegan2.py (no equalised-lr scales, plain leaky ReLUs, bilinear resampling, skips
added without 1/sqrt 2). Trained from the suite's prior, the prior's weights are first converted
as GFP-GAN's convert_gfpganv_to_clean.py does (``equalized_to_clean_state``).
"""
from __future__ import annotations

import math
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.base import (Method, TrainContext, degrade_sample, logistic_d_loss,
                          prior_arch_for, resize, stddev_group_of)
from methods.baseline_common import (ID_WEIGHTS, IdentityLoss, VGG19Features, gram, mean_w,
                                     prior_state, resolve_backbone)
from methods.prior import build_discriminator, build_generator
from methods.stylegan2 import (SQRT2, ConvLayer, EqualConv2d, EqualLinear, FusedLeakyReLU,
                               ResBlock, equalized_to_clean_state)
from core.errors import FRBenchError

COMPONENTS = ("left_eye", "right_eye", "mouth")


# ------------------------------------------------------------------------------------------
# U-Net pieces (BasicSR v1 arch)

class ConvUpLayer(nn.Module):
    """bilinear x2 -> EqualConv2d -> [FusedLeakyReLU] (BasicSR ConvUpLayer; ``clean``: plain
    conv, ``lrelu(x + b, 0.2)``)."""

    def __init__(self, cin, cout, k, bias=True, activate=True, clean=False):
        super().__init__()
        self.conv = EqualConv2d(cin, cout, k, 1, k // 2, bias=bias and not activate, clean=clean)
        self.act = FusedLeakyReLU(cout, scale=1.0 if clean else SQRT2) if activate else None

    def forward(self, x):
        x = self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        return self.act(x) if self.act is not None else x


class ResUpBlock(nn.Module):
    """conv1 3x3; conv2 = up + 3x3 + act; skip = up + 1x1 (no bias); ``(out + skip) / sqrt 2``
    (``clean``: ``out + skip``, gfpganv1_clean_arch.py ResBlock mode 'up')."""

    def __init__(self, cin, cout, clean=False):
        super().__init__()
        self.clean = clean
        self.conv1 = ConvLayer(cin, cin, 3, clean=clean)
        self.conv2 = ConvUpLayer(cin, cout, 3, clean=clean)
        self.skip = ConvUpLayer(cin, cout, 1, bias=False, activate=False, clean=clean)

    def forward(self, x):
        if self.clean:
            return self.conv2(self.conv1(x)) + self.skip(x)
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def _condition(c: int, c_out: int, bias_init: float, clean: bool = False) -> nn.Sequential:
    """EqualConv 3x3 -> ScaledLeakyReLU(0.2) -> EqualConv 3x3 (last bias init 1 scale / 0 shift);
    ``clean``: plain convs and LeakyReLU(0.2) without the sqrt 2."""
    last = EqualConv2d(c, c_out, 3, 1, 1, clean=clean)
    nn.init.constant_(last.bias, bias_init)
    return nn.Sequential(EqualConv2d(c, c, 3, 1, 1, clean=clean),
                         _ScaledLReLU(1.0 if clean else SQRT2), last)


class _ScaledLReLU(nn.Module):
    def __init__(self, gain: float = SQRT2):
        super().__init__()
        self.gain = gain

    def forward(self, x):
        if self.gain == 1.0:
            return F.leaky_relu(x, 0.2)
        return F.leaky_relu(x, 0.2) * self.gain


class GFPGANUNet(nn.Module):
    """x (B,3,S,S) -> (W+ (B,n_latent,D), conditions {r: (scale, shift)}, pyramid [rgb_8..rgb_S]).

    ``clean``: the GFPGANv1Clean U-Net maths on the same parameters (methods/stylegan2.py)."""

    def __init__(self, size: int, unet_ch: dict[int, int], sft_ch: dict[int, int], n_latent: int,
                 style_dim: int, clean: bool = False):
        super().__init__()
        self.size, self.n_latent, self.style_dim = size, n_latent, style_dim
        self.conv_body_first = ConvLayer(3, unet_ch[size], 1, clean=clean)
        res_down = [2 ** k for k in range(int(math.log2(size)) - 1, 1, -1)]  # S/2 .. 4
        self.conv_body_down = nn.ModuleList(ResBlock(unet_ch[2 * r], unet_ch[r], clean=clean)
                                            for r in res_down)
        self.final_conv = ConvLayer(unet_ch[4], unet_ch[4], 3, clean=clean)
        self.final_linear = EqualLinear(unet_ch[4] * 16, n_latent * style_dim, clean=clean)
        self.res_up = [2 ** k for k in range(3, int(math.log2(size)) + 1)]  # 8 .. S
        self.conv_body_up = nn.ModuleList(ResUpBlock(unet_ch[r // 2], unet_ch[r], clean=clean)
                                          for r in self.res_up)
        self.condition_scale = nn.ModuleList(_condition(unet_ch[r], sft_ch[r], 1.0, clean)
                                             for r in self.res_up)
        self.condition_shift = nn.ModuleList(_condition(unet_ch[r], sft_ch[r], 0.0, clean)
                                             for r in self.res_up)
        self.to_rgb = nn.ModuleList(EqualConv2d(unet_ch[r], 3, 1, clean=clean)
                                    for r in self.res_up)

    def forward(self, x):
        feat = self.conv_body_first(x)
        skips = []
        for blk in self.conv_body_down:
            feat = blk(feat)
            skips.insert(0, feat)
        feat = self.final_conv(feat)
        wplus = self.final_linear(feat.flatten(1)).view(-1, self.n_latent, self.style_dim)
        conds, rgbs = {}, []
        for i, r in enumerate(self.res_up):
            feat = self.conv_body_up[i](feat + skips[i])
            conds[r] = (self.condition_scale[i](feat), self.condition_shift[i](feat))
            rgbs.append(self.to_rgb[i](feat))
        return wplus, conds, rgbs


def cs_sft(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, half: bool) -> torch.Tensor:
    """Channel-split SFT: the first half of the channels unchanged, the second ``* scale + shift``
    (``half=False``: plain SFT on all channels)."""
    if not half:
        return x * scale + shift
    same, sft = torch.split(x, x.shape[1] // 2, dim=1)
    return torch.cat([same, sft * scale + shift], 1)


class FacialComponentDiscriminator(nn.Module):
    """conv 3->c0; c0->c1 down; c1->c1 (feat 1); c1->c2 down; c2->c2 (feat 2); final 3x3 -> 1."""

    def __init__(self, c0: int, c1: int, c2: int):
        super().__init__()
        self.conv1 = ConvLayer(3, c0, 3)
        self.conv2 = ConvLayer(c0, c1, 3, downsample=True)
        self.conv3 = ConvLayer(c1, c1, 3)
        self.conv4 = ConvLayer(c1, c2, 3, downsample=True)
        self.conv5 = ConvLayer(c2, c2, 3)
        self.final_conv = ConvLayer(c2, 1, 3, activate=False)

    def forward(self, x):
        f1 = self.conv3(self.conv2(self.conv1(x)))
        f2 = self.conv5(self.conv4(f1))
        return self.final_conv(f2), [f1, f2]


# ------------------------------------------------------------------------------------------
# landmarks -> component boxes

def load_component_landmarks(path: str | Path) -> dict[str, dict]:
    """Eye/mouth landmarks per image id -> {id: {"left_eye": (x, y, half), "right_eye": ...,
    "mouth": ..., "size": S}} in pixels of an S x S image.

    Accepts the built-in ``faces.json`` (``left_eye``/``right_eye``/``mouth`` centres,
    ``eye_half``/``mouth_half``, ``size``) or GFP-GAN's ``FFHQ_eye_mouth_landmarks_512.pth``
    ({'00000000': {'left_eye': [x, y, half_len], ...}} at 512 px; loaded with weights_only).
    """
    p = Path(path)
    if not p.is_file():
        raise FRBenchError(
            f"{p}: component landmarks not found. GFP-GAN's facial component losses need eye and "
            "mouth positions per training face: the built-in faces ship faces.json in their "
            "folder; for FFHQ get FFHQ_eye_mouth_landmarks_512.pth (GFP-GAN's training assets) and "
            "set methods.<entry>.landmarks to it, or set component_weight and "
            "component_style_weight to 0")
    out = {}
    if p.suffix == ".json":
        from core.datasets import load_faces_json
        for k, e in load_faces_json(p).items():
            out[k] = {"left_eye": (*e["left_eye"], e["eye_half"]),
                      "right_eye": (*e["right_eye"], e["eye_half"]),
                      "mouth": (*e["mouth"], e["mouth_half"]), "size": float(e.get("size", 0))}
        return out
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise FRBenchError(f"{p}: not a readable landmarks file ({e.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise FRBenchError(f"{p}: expected a dict {{id: {{left_eye, right_eye, mouth}}}}")
    for k, e in raw.items():
        try:
            out[str(k)] = {c: tuple(float(v) for v in np.asarray(e[c]).reshape(-1)[:3])
                           for c in COMPONENTS}
        except (KeyError, TypeError, IndexError):
            raise FRBenchError(f"{p}: entry {k!r} lacks left_eye/right_eye/mouth [x, y, half]") \
                from None
        out[str(k)]["size"] = 512.0
    return out


def component_boxes(entry: dict, size: int, flipped: bool, eye_enlarge: float) -> np.ndarray:
    """(3, 4) float32 boxes [x1, y1, x2, y2] of left eye, right eye, mouth at ``size`` px.
    On a horizontal flip the eyes swap and x -> size - x (GFP-GAN)."""
    scale = size / (entry.get("size") or size)
    rows = []
    for c in COMPONENTS:
        src = c
        if flipped and c != "mouth":
            src = "right_eye" if c == "left_eye" else "left_eye"
        x, y, half = (float(v) * scale for v in entry[src])
        if flipped:
            x = size - x
        if c != "mouth":
            half *= eye_enlarge
        rows.append([x - half, y - half, x + half, y + half])
    return np.asarray(rows, dtype=np.float32)


_LANDMARKS: dict[str, dict] = {}


class GFPGANSample:
    """Picklable sample function: flip (drawn like ``degrade_sample``), degrade, and the eye /
    mouth boxes of the face (needs the image ids: ``needs_ids``)."""

    needs_ids = True

    def __init__(self, landmarks: str, preset: str, overrides: dict, out_size: int, lq_size: int,
                 hflip: bool, eye_enlarge: float):
        self.landmarks, self.preset, self.overrides = landmarks, preset, overrides
        self.out_size, self.lq_size, self.hflip, self.eye_enlarge = out_size, lq_size, hflip, \
            eye_enlarge

    def lookup(self, id_: str) -> dict:
        table = _LANDMARKS.get(self.landmarks)
        if table is None:
            table = _LANDMARKS[self.landmarks] = load_component_landmarks(self.landmarks)
        if id_ in table:
            return table[id_]
        if id_.isdigit() and f"{int(id_):08d}" in table:
            return table[f"{int(id_):08d}"]
        raise FRBenchError(f"{self.landmarks}: no landmarks for training image '{id_}'")

    def __call__(self, hqs, rng, ids=None):
        if ids is None:
            raise FRBenchError("GFPGANSample needs the image ids (methods/data.py needs_ids)")
        entry = self.lookup(ids[0])
        flipped = bool(self.hflip and rng.random() < 0.5)
        hq = np.ascontiguousarray(hqs[0][:, ::-1]) if flipped else hqs[0]
        s = degrade_sample([hq], rng, preset=self.preset, out_size=self.out_size,
                           lq_size=self.lq_size, hflip=False, overrides=self.overrides)
        s["boxes"] = component_boxes(entry, self.out_size, flipped, self.eye_enlarge)
        return s


# ------------------------------------------------------------------------------------------
# the method

class GFPGAN(Method):
    """GFP-GAN v1 (``sft: cs``) and the ``gfpgan_sft`` ablation (``sft: full``); ``version:
    clean`` for the GFPGANv1Clean maths (module docstring)."""

    step_order = ("g", "d")

    def __init__(self, name: str, cfg, params):
        super().__init__(name, "gfpgan", cfg, params)
        self.prior_arch = prior_arch_for(name, "GFP-GAN", self.out_size, params,
                                         getattr(cfg, "prior_arch", None))
        self.clean = cfg.version == "clean"
        self.generator = build_generator(self.prior_arch, clean=self.clean)
        dec = self.generator.channels
        unet = {r: max(1, c // 2) for r, c in dec.items()}
        if cfg.sft == "cs" and any(c % 2 for r, c in dec.items() if r >= 8):
            raise FRBenchError(f"methods.{name}: CS-SFT needs even decoder widths, got {dec}")
        sft = {r: (unet[r] if cfg.sft == "cs" else dec[r]) for r in dec}
        self.unet = GFPGANUNet(self.out_size, unet, sft, self.generator.n_latent,
                               self.prior_arch.style_dim, clean=self.clean)
        self.discriminator = build_discriminator(self.prior_arch, stddev_group_of(params)) \
            if cfg.gan_weight > 0 else None
        c0, c1, c2 = cfg.component_channels
        self.comp_d = nn.ModuleDict({c: FacialComponentDiscriminator(c0, c1, c2)
                                     for c in COMPONENTS}) if cfg.uses_components else None
        self.__dict__["_id"] = None
        self.__dict__["_vgg"] = None
        self.id_weight = self.perceptual_weight = self.style_weight = 0.0

    def config_dict(self):
        from core.config import to_dict
        return {"cfg": to_dict(self.cfg), "prior_arch": to_dict(self.prior_arch)}

    # -- forward -----------------------------------------------------------------------------
    def analyze(self, lq):
        """-> {"out", "wplus", "rgbs" (pyramid, 8..S), "conds"}."""
        self.check_input(lq)
        x = resize(lq, self.out_size)
        wplus, conds, rgbs = self.unet(x)
        half = self.cfg.sft == "cs"

        def hook(point, res, f):
            if point == "up" and res in conds:
                return cs_sft(f, *conds[res], half)
            return f
        out = self.generator(wplus, input_is_latent=True, randomize_noise=self.training, hook=hook)
        return {"out": out, "wplus": wplus, "rgbs": rgbs, "conds": conds}

    def forward(self, lq):
        return self.analyze(lq)["out"]

    # -- data --------------------------------------------------------------------------------
    def landmarks_path(self) -> str:
        if self.cfg.landmarks:
            return str(self.cfg.landmarks)
        tr = getattr(self.params, "train", None)
        if tr is None:
            raise FRBenchError(f"methods.{self.name}.landmarks: empty and no train.hq_dir")
        return str(Path(tr.hq_dir) / "faces.json")

    def sample_fn(self):
        c = self.cfg
        if not c.uses_components:
            return super().sample_fn()
        return GFPGANSample(self.landmarks_path(), c.train_preset, dict(c.train_overrides or {}),
                            self.out_size, self.lq_size, bool(c.hflip), float(c.eye_enlarge))

    # -- training ----------------------------------------------------------------------------
    def setup_training(self, ctx: TrainContext):
        from methods.trainer import load_state
        c = self.cfg
        gsd, _, prov = prior_state(ctx.checkpoint_dir, self.out_size, ctx.allow_partial)
        if self.clean:  # the prior's equalised-lr weights -> the clean parameterisation
            gsd = equalized_to_clean_state(gsd, self.prior_arch.lr_mlp)
            prov = f"{prov} (converted to the clean layers)"
        load_state(self.generator, gsd, prov, "prior generator")
        self.generator.requires_grad_(not c.fix_decoder)  # v1: fix_decoder true
        self.provenance["prior"] = prov
        if c.init_latent_avg:  # not in v1: W+ head starts at the prior's mean w
            with torch.no_grad():
                w = mean_w(self.generator)
                self.unet.final_linear.bias.copy_(w.repeat(1, self.generator.n_latent).view(-1))
                self.unet.final_linear.weight.mul_(0.1)
        if c.uses_components:  # fail early (clear message) when the landmarks are missing
            path = self.landmarks_path()
            if path not in _LANDMARKS:
                _LANDMARKS[path] = load_component_landmarks(path)
        self.id_weight, build = resolve_backbone(self.params, ID_WEIGHTS[c.id_net], c.id_weight,
                                                 c.random_init_losses, self.provenance, "id_net")
        if build:
            self.__dict__["_id"] = IdentityLoss(self.params, c.id_net, "l1").to(ctx.device)
        pw = max(c.perceptual_weight, c.style_weight)
        w, build = resolve_backbone(self.params, "vgg19", pw, c.random_init_losses,
                                    self.provenance, "vgg19")
        if build:
            self.perceptual_weight, self.style_weight = c.perceptual_weight, c.style_weight
            self.__dict__["_vgg"] = VGG19Features(self.params, True).to(ctx.device)

    def generator_modules(self):
        if self.cfg.fix_decoder:
            return {"unet": self.unet}
        return {"unet": self.unet, "generator": self.generator}

    def discriminator_modules(self):
        mods = {}
        if self.discriminator is not None:
            mods["discriminator"] = self.discriminator
        if self.comp_d is not None:
            mods["comp_d"] = self.comp_d
        return mods

    def ema_modules(self):
        return self.generator_modules()

    def make_optimizers(self):
        c = self.cfg
        g_params = [p for m in self.generator_modules().values() for p in m.parameters()]
        opts = {"g": torch.optim.Adam(g_params, lr=c.lr, betas=(0.0, 0.99))}
        groups = []
        if self.discriminator is not None:
            r = c.r1_every / (c.r1_every + 1)
            groups.append({"params": list(self.discriminator.parameters()), "lr": c.lr * r,
                           "betas": (0.0, 0.99 ** r)})
        if self.comp_d is not None:
            groups.append({"params": list(self.comp_d.parameters()), "lr": c.lr,
                           "betas": (0.9, 0.99)})
        if groups:
            opts["d"] = torch.optim.Adam(groups, lr=c.lr)
        return opts

    def lr_scale(self, step, total):
        """MultiStepLR as BasicSR steps it (train_gfpgan_v1.yml: x0.5 at 600k and 700k): the
        0-based ``step`` uses ``lr_gamma`` ** (number of milestones <= step)."""
        return float(self.cfg.lr_gamma) ** sum(step >= int(m) for m in self.cfg.lr_milestones)

    def crops(self, img: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """roi_align crops of the three components: eyes ``component_crop[0]``, mouth ``[1]``."""
        from torchvision.ops import roi_align
        idx = torch.arange(img.shape[0], device=img.device, dtype=img.dtype)[:, None]
        out = {}
        for j, c in enumerate(COMPONENTS):
            side = int(self.cfg.component_crop[0 if c != "mouth" else 1])
            rois = torch.cat([idx, boxes[:, j].to(img.dtype)], 1)
            out[c] = roi_align(img, rois, output_size=side)
        return out

    def pyramid_loss(self, rgbs, hq):
        gts, g = [hq], hq
        for _ in range(len(rgbs) - 1):
            g = F.interpolate(g, scale_factor=0.5, mode="bilinear", align_corners=False)
            gts.insert(0, g)
        return sum(F.l1_loss(a, b) for a, b in zip(rgbs, gts))

    def g_step(self, batch, step):
        c = self.cfg
        res = self.analyze(batch["lq"])
        out, hq = res["out"], batch["hq"]
        self.keep_fake(out)
        pix = F.l1_loss(out, hq)
        loss = c.pixel_weight * pix
        logs = {"l1": pix.detach()}
        if c.pyramid_weight > 0 and step < c.pyramid_until:
            pyr = self.pyramid_loss(res["rgbs"], hq)
            loss = loss + c.pyramid_weight * pyr
            logs["pyramid"] = pyr.detach()
        if self._vgg is not None:
            fo, fg = self._vgg(out), [f.detach() for f in self._vgg(hq)]
            lw = (0.1, 0.1, 1.0, 1.0, 1.0)
            if self.perceptual_weight > 0:
                perc = sum(w * F.l1_loss(a, b) for w, a, b in zip(lw, fo, fg))
                loss = loss + self.perceptual_weight * perc
                logs["perceptual"] = perc.detach()
            if self.style_weight > 0:
                sty = sum(w * F.l1_loss(gram(a), gram(b)) for w, a, b in zip(lw, fo, fg))
                loss = loss + self.style_weight * sty
                logs["style"] = sty.detach()
        if self.discriminator is not None:
            adv = F.softplus(-self.discriminator(out)).mean()
            loss = loss + c.gan_weight * adv
            logs["g_adv"] = adv.detach()
        if self.comp_d is not None:
            fake_c, real_c = self.crops(out, batch["boxes"]), self.crops(hq, batch["boxes"])
            comp_adv, comp_sty = 0.0, 0.0
            for k in COMPONENTS:
                pred, feats = self.comp_d[k](fake_c[k])
                comp_adv = comp_adv + F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
                if c.component_style_weight > 0:
                    with torch.no_grad():
                        _, gt_feats = self.comp_d[k](real_c[k])
                    comp_sty = comp_sty + 0.5 * F.l1_loss(gram(feats[0]), gram(gt_feats[0])) \
                        + F.l1_loss(gram(feats[1]), gram(gt_feats[1]))
            loss = loss + c.component_weight * comp_adv + c.component_style_weight * comp_sty
            logs["comp_adv"] = torch.as_tensor(comp_adv).detach()
            logs["comp_style"] = torch.as_tensor(comp_sty).detach()
        if self.id_weight > 0 and self._id is not None:
            idl = self._id(out, hq)
            loss = loss + self.id_weight * idl
            logs["id"] = idl.detach()
        return loss, logs

    def d_step(self, batch, step):
        if self.discriminator is None and self.comp_d is None:
            return None
        c = self.cfg
        fake = self.take_fake(batch)
        real = batch["hq"]
        loss = 0.0
        logs = {}
        if self.discriminator is not None:
            loss, logs = logistic_d_loss(self.discriminator, real, fake, step, c.r1_gamma,
                                         c.r1_every)
        if self.comp_d is not None:
            fake_c, real_c = self.crops(fake, batch["boxes"]), self.crops(real, batch["boxes"])
            comp = 0.0
            for k in COMPONENTS:
                rp, _ = self.comp_d[k](real_c[k])
                fp, _ = self.comp_d[k](fake_c[k])
                # v1 quirk: real term BCE (cri_component), fake term softplus (cri_gan): the same
                comp = comp + F.binary_cross_entropy_with_logits(rp, torch.ones_like(rp)) \
                    + F.softplus(fp).mean()
            loss = loss + comp
            logs["d_comp"] = comp.detach()
        return loss, logs
