"""Pieces shared by the baselines (GPEN, GFP-GAN, pSp): loading the pretrained StyleGAN2 prior,
the mean latent, and losses whose backbones come through the weight resolver.

Pretrained-backbone losses (identity, LPIPS, VGG19 perceptual) resolve their weights with
``metrics.weights`` (``params.weights``; a missing ``weights`` section means the built-in
defaults: random init allowed, no download). When the weights resolve to random init and the
method's ``random_init_losses`` is False, the loss is switched off (effective weight 0) and the
run's provenance records ``"<name>": "random-init:seed=N (loss weight 0)"``.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FRBenchError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# the prior

def prior_state(checkpoint_dir: str | Path, out_size: int, allow_partial: bool = False
                ) -> tuple[dict, dict, str]:
    """Read ``<checkpoint_dir>/prior/model.pt`` -> (EMA generator state, discriminator state,
    provenance string). FRBenchError if it is not a prior checkpoint, of another size, or
    partial (unless ``allow_partial``)."""
    from methods.trainer import load_pretrained

    path = Path(checkpoint_dir) / "prior" / "model.pt"
    ck, prov = load_pretrained(path, "prior", allow_partial)
    if ck.get("out_size") != out_size:
        raise FRBenchError(f"{path}: prior generates {ck.get('out_size')} px, the method needs "
                           f"{out_size}; retrain the prior")
    gsd = (ck.get("ema") or {}).get("generator") or {
        k[len("generator."):]: v for k, v in ck["model"].items() if k.startswith("generator.")}
    dsd = {k[len("discriminator."):]: v for k, v in ck["model"].items()
           if k.startswith("discriminator.")}
    imported = ck.get("provenance") or {}
    if "format" in imported:  # an imported released prior (frbench import / prior.source released)
        prov = f"{imported.get('source')} (imported as {path})"
    return gsd, dsd, prov


def prior_latent_avg(checkpoint_dir: str | Path) -> Optional[torch.Tensor]:
    """The released prior's own mean w (``latent_avg`` of the StyleGAN2 file, kept by the
    import), or None for a prior trained here."""
    from methods.trainer import find_checkpoint, load_checkpoint
    path = find_checkpoint(Path(checkpoint_dir) / "prior" / "model.pt", allow_partial=True)
    try:
        ck = load_checkpoint(path)
    except FRBenchError:
        return None
    la = ((ck.get("imported") or {}).get("extras") or {}).get("latent_avg")
    return la.reshape(1, -1).float() if isinstance(la, torch.Tensor) else None


def widen_to_concat(gsd: dict, generator: nn.Module, new_scale: float) -> tuple[dict, dict]:
    """Map an add-noise prior state dict onto a ``noise_mode="concat"`` generator.

    In concat mode every StyledConv emits ``[x, w * f]`` (2C channels), so the layer after it
    (next StyledConv or ToRGB) has twice the input channels and the activation twice the bias.
    The pretrained weights fill the first half; the equalised-lr scale 1/sqrt(fan_in) halves
    with the doubled fan-in, so copied conv weights are multiplied by sqrt(2) (exact for the
    ToRGB, which is not demodulated). The new input columns start at ``new_scale`` x the fresh
    generator's N(0,1) draws (small: the demodulation of the old columns barely changes, while
    the noise scalars, 0 at the start as in GPEN, still receive gradients); their modulation
    rows start at weight 0, bias 1; the new activation biases at 0. Noise scalars start at 0.
    Returns (state dict, {parameter name: mask of the new entries}).
    """
    own = generator.state_dict()
    out, masks = {}, {}
    for k, v in own.items():
        if k not in gsd:
            if k.endswith("noise.weight") or k.startswith("noises."):
                out[k] = v.clone() if k.startswith("noises.") else torch.zeros_like(v)
                continue
            raise FRBenchError(f"prior checkpoint lacks '{k}'")
        src = gsd[k]
        if k.endswith("noise.weight"):
            out[k] = torch.zeros_like(v)  # GPEN: noise scalars init 0
            continue
        if src.shape == v.shape:
            out[k] = src.clone()
            continue
        new = v.clone()
        mask = torch.ones_like(v, dtype=torch.bool)
        if k.endswith("conv.weight") and v.ndim == 5:  # (1, out, in, k, k): in doubled
            cin = src.shape[2]
            new[:, :, :cin] = src * math.sqrt(v.shape[2] / cin)
            new[:, :, cin:] = v[:, :, cin:] * new_scale
            mask[:, :, :cin] = False
        elif k.endswith("modulation.weight"):  # (in, style_dim): in doubled
            cin = src.shape[0]
            new[:cin] = src
            new[cin:] = 0.0
            mask[:cin] = False
        elif k.endswith("modulation.bias"):
            cin = src.shape[0]
            new[:cin] = src
            new[cin:] = 1.0
            mask[:cin] = False
        elif k.endswith("activate.bias"):
            c = src.shape[0]
            new[:c] = src
            new[c:] = 0.0
            mask[:c] = False
        else:
            raise FRBenchError(f"prior '{k}': shape {tuple(src.shape)} cannot be widened to "
                               f"{tuple(v.shape)}")
        out[k] = new
        masks[k] = mask
    return out, masks


@torch.no_grad()
def mean_w(generator: nn.Module, n: int = 4096) -> torch.Tensor:
    """The prior's mean latent (1, D) from a fixed seed (``mean_latent``)."""
    from core.seeding import torch_generator
    return generator.mean_latent(n, generator=torch_generator(0, "w_avg"))


# ------------------------------------------------------------------------------------------
# pretrained-backbone losses

def weights_cfg(params):
    w = getattr(params, "weights", None)
    if w is not None:
        return w
    from metrics.config import WeightsConfig
    return WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)


def resolve_backbone(params, weight_name: str, loss_weight: float, keep_random: bool,
                     provenance: dict, label: str) -> tuple[float, bool]:
    """Resolve ``weight_name`` for a loss of weight ``loss_weight``.

    Returns (effective weight, build the net?). Records the provenance under ``label``.
    """
    if loss_weight <= 0:
        return 0.0, False
    from metrics.backbones import resolve_for
    res = resolve_for(weight_name, weights_cfg(params))
    if res.random_init and not keep_random:
        provenance[label] = f"{res.provenance} (loss weight 0)"
        log.warning("%s: %s weights are random-init; loss switched off (weight 0)", label,
                    weight_name)
        return 0.0, False
    provenance[label] = res.provenance + (f" (loss weight {loss_weight})" if res.random_init else "")
    return float(loss_weight), True


#: identity nets of the baselines -> the resolver's weight name
ID_WEIGHTS = {"irse50": "arcface_ir_se50", "facenet": "facenet_vggface2",
              "arcface18": "arcface18_vqfr"}


class IdentityLoss(nn.Module):
    """Identity-preserving loss on a frozen face-recognition net (weights via the resolver).

    ``net``: "irse50" (IR-SE50 ArcFace, ``model_ir_se50.pth``: GPEN's and pSp's; [-1,1] RGB
    average-pooled to 112), "facenet" (facenet-pytorch InceptionResnetV1, VGGFace2; [0,1] RGB
    resized to 160; a stand-in with downloadable weights) or "arcface18" (ArcFace ResNet-18 on
    gray 128x128, GFP-GAN's ``arcface_resnet18``). ``crop``: fractions (top, bottom, left, right) cut
    first (pSp/GPEN: [35:223, 32:220] of 256). ``mode``: "cos" = mean(1 - cos) (GPEN, pSp);
    "l1" = L1 between the embeddings, target detached (GFP-GAN).
    """

    def __init__(self, params, net: str, mode: str, crop=None):
        super().__init__()
        from metrics import backbones as B
        wcfg = weights_cfg(params)
        if net == "irse50":
            self.net, prov = B.build_irse50(wcfg)
        elif net == "facenet":
            self.net, prov = B.build_facenet(wcfg)
        else:
            self.net, prov = B.build_arcface18(wcfg)
        self.kind, self.mode, self.crop = net, mode, crop
        self.provenance = prov
        self.net.eval().requires_grad_(False)

    def embed(self, x):  # x in [-1,1]
        if self.crop is not None:
            h, w = x.shape[-2:]
            t, b, l, r = self.crop
            x = x[:, :, int(t * h): int(round(b * h)), int(l * w): int(round(r * w))]
        if self.kind == "irse50":  # pSp / GPEN: face_pool = AdaptiveAvgPool2d(112)
            return self.net(F.adaptive_avg_pool2d(x, (112, 112)))
        if self.kind == "facenet":
            return F.normalize(self.net(x.add(1).mul(0.5)), dim=1)
        gray = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
        gray = F.interpolate(gray, size=(128, 128), mode="bilinear", align_corners=False)
        return self.net(gray)

    def forward(self, out, gt):
        fo, fg = self.embed(out), self.embed(gt).detach()
        if self.mode == "l1":
            return F.l1_loss(fo, fg)
        return (1 - (F.normalize(fo, dim=1) * F.normalize(fg, dim=1)).sum(1)).mean()

    def train(self, mode=True):  # always frozen, BN in eval
        return super().train(False)


#: pSp/GPEN identity crop [35:223, 32:220] of 256 as fractions (top, bottom, left, right)
ID_CROP = (35 / 256, 223 / 256, 32 / 256, 220 / 256)


class VGG19Features(nn.Module):
    """VGG19 pre-ReLU features at conv1_2, conv2_2, conv3_4, conv4_4, conv5_4 (BasicSR's
    PerceptualLoss layers), input [-1,1] -> [0,1] -> ImageNet normalisation; frozen."""

    LAYERS = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34}

    def __init__(self, params, allow_random: bool):
        super().__init__()
        from metrics.weights import load_state_dict
        from metrics.backbones import resolve_for
        from torchvision.models.vgg import cfgs, make_layers
        wcfg = weights_cfg(params)
        res = resolve_for("vgg19", wcfg)
        if res.random_init and not allow_random:
            raise FRBenchError("VGG19 weights missing and random init not allowed")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(wcfg.random_init_seed))
            feats = make_layers(cfgs["E"], batch_norm=False)
        if not res.random_init:
            sd = load_state_dict(res)
            feats.load_state_dict({k[len("features."):]: v for k, v in sd.items()
                                   if k.startswith("features.")})
        self.features = feats[: max(self.LAYERS.values()) + 1].eval().requires_grad_(False)
        self.provenance = res.provenance
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x) -> list[torch.Tensor]:
        x = (x.add(1).mul(0.5) - self.mean) / self.std
        out, want = [], sorted(self.LAYERS.values())
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in want:
                out.append(x)
        return out

    def train(self, mode=True):
        return super().train(False)


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (c h w) per sample: (B, C, H, W) -> (B, C, C)."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)
