"""``rosinality_stylegan2``: rosinality/stylegan2-pytorch checkpoints -> our prior (G + D).

Container (rosinality/stylegan2-pytorch @ bef283a1):
- training checkpoints ``{"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}``
  written by train.py:318-327 and read by train.py:481-495 (strict ``load_state_dict`` of
  ``g``, ``d``, ``g_ema``) and generate.py:71-76 (``g_ema`` only, strict);
- converted official releases (``stylegan2-ffhq-config-f.pt``) ``{"g_ema", "latent_avg"}`` plus
  ``"g"`` (``--gen``) / ``"d"`` (``--disc``), written by convert_weight.py:247-269; pSp reads the
  same file (pixel2style2pixel models/psp.py:62-67: ``ckpt['g_ema']``, ``ckpt['latent_avg']``).
Optimizer states and the pickled ``args`` are not read (``torch.load(weights_only=True)``
cannot read a pickled ``argparse.Namespace``; such a file must be re-saved without ``args``).

Keys (model.py of the same commit): the Generator's names are ours (``style.{1..n_mlp}``,
``input.input``, ``conv1``, ``to_rgb1``, ``convs.{i}``, ``to_rgbs.{i}``, ``noises.noise_{i}``);
the per-layer ``*.kernel`` FIR buffers (``Blur``/``Upsample``, model.py:78-120, registered as
persistent buffers) are not stored by our modules (non-persistent, rebuilt from the kernel
[1, 3, 3, 1]): they are skipped after checking they equal ours, and may be absent (some
redistributed copies lack them). Discriminator (model.py:650-700): ``convs.0`` (the 1x1
``ConvLayer`` from RGB) -> our ``conv0``, ``convs.{i}`` (``ResBlock``) -> our ``blocks.{i-1}``;
``final_conv``, ``final_linear`` as ours.

Configuration from the shapes: ``size`` from the number of ``to_rgbs``, ``style_dim`` and
``n_mlp`` from ``style.*``, ``narrow`` = C(4)/512, ``channel_multiplier`` = C(64)/(256 narrow)
(2 when size < 64: then it changes no shape). ``lr_mlp`` 0.01 and the training settings are
rosinality train.py's defaults (overridable with ``--set``).
"""
from __future__ import annotations

import re
from typing import Optional

import torch

from methods.released.base import (Converted, Format, FormatError, apply_overrides, rename,
                                   split_kernels, tensors_of)

WHERE_READ = (
    "rosinality/stylegan2-pytorch@bef283a1 train.py:318-327 (writes {g, d, g_ema, ...})",
    "rosinality/stylegan2-pytorch@bef283a1 train.py:481-495 (reads g, d, g_ema, strict)",
    "rosinality/stylegan2-pytorch@bef283a1 generate.py:71-76 (reads g_ema, strict)",
    "rosinality/stylegan2-pytorch@bef283a1 convert_weight.py:247-269 (writes {g_ema, latent_avg}"
    " + g/d)",
)

#: rosinality train.py defaults (argparse) for the prior section of an imported prior
PRIOR_DEFAULTS = {
    "steps": 800000, "batch_size": 16, "lr": 0.002, "r1_gamma": 10.0, "r1_every": 16,
    "path_reg_weight": 2.0, "path_reg_every": 4, "mixing_prob": 0.9,
    "ema_decay": round(0.5 ** (32 / (10 * 1000)), 5), "stddev_group": 4, "hflip": True,
    "train_noise": "random",
}

_D_RULES = [(r"convs\.0\.(.*)", r"conv0.\1")]


def map_generator(sd: dict, prefix: str = "generator.") -> dict:
    """rosinality Generator state dict -> {our key: (file key, tensor)} (names are ours)."""
    return rename(sd, [], prefix)


def map_discriminator(sd: dict, prefix: str = "discriminator.") -> dict:
    """rosinality Discriminator state dict -> {our key: (file key, tensor)}:
    ``convs.0`` -> ``conv0``, ``convs.{i}`` -> ``blocks.{i-1}``."""
    out = {}
    for ours, (src, t) in rename(sd, _D_RULES, prefix).items():
        m = re.fullmatch(re.escape(prefix) + r"convs\.(\d+)\.(.*)", ours)
        if m:
            ours = f"{prefix}blocks.{int(m.group(1)) - 1}.{m.group(2)}"
        out[ours] = (src, t)
    return out


def infer_arch(fmt: str, sd: dict, what: str = "generator") -> dict:
    """Our ``StyleGAN2Arch`` dict from a rosinality(-named) Generator state dict's shapes."""
    try:
        c4 = int(sd["input.input"].shape[1])
        style_dim = int(sd["style.1.weight"].shape[1])
    except KeyError as e:
        raise FormatError(f"format {fmt}: the {what} has no {e.args[0]!r} (not a StyleGAN2 "
                          "generator state dict)") from None
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    n_rgb = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    size = 2 ** (n_rgb + 2)
    narrow = c4 / 512
    cm = 2
    if size >= 64:
        k = 2 * (6 - 3)  # convs index of the up-conv to 64 px: res 2^(k/2+3)
        c64 = int(sd[f"convs.{k}.conv.weight"].shape[1])
        cm = max(1, round(c64 / (256 * narrow)))
    return {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": cm,
            "max_channels": 512, "lr_mlp": 0.01, "narrow": narrow}


def convert(container, overrides: Optional[dict] = None) -> Converted:
    fmt = "rosinality_stylegan2"
    g_ema = tensors_of(fmt, container, "g_ema", "rosinality checkpoint with 'g_ema'")
    arch = infer_arch(fmt, g_ema, "'g_ema'")
    config = apply_overrides({"arch": arch, **PRIOR_DEFAULTS}, overrides, "prior")
    conv = Converted(kind="prior", arch="stylegan2", config=config, state={})
    ema = Converted(kind="prior", arch="stylegan2", config=config, state={})
    split_kernels(map_generator(g_ema, ""), ema, src_prefix="g_ema/")
    conv.ema["generator"] = ema.state
    conv.skipped.update(ema.skipped)
    conv.checks.update({f"generator.{k}": v for k, v in ema.checks.items()})
    conv.origin.update({f"ema/generator/{k}": v for k, v in ema.origin.items()})
    if "g" in container:
        g = tensors_of(fmt, container, "g", "training generator")
        split_kernels(map_generator(g), conv, src_prefix="g/")
    else:
        split_kernels(map_generator(g_ema), conv, src_prefix="g_ema/")
        conv.filled["generator.*"] = "copy of g_ema (the file has no training generator 'g')"
    if "d" in container:
        d = tensors_of(fmt, container, "d", "discriminator")
        split_kernels(map_discriminator(d), conv, src_prefix="d/")
    else:
        conv.fill_from_init.append("discriminator.")
        conv.filled["discriminator.*"] = ("seeded random init (the file has no discriminator "
                                          "'d'; convert_weight.py without --disc)")
    conv.fill_from_init.append("pl_mean")
    conv.filled["pl_mean"] = "0 (path-length running mean; not in the file)"
    for k in container:
        if k not in ("g", "d", "g_ema", "latent_avg"):
            conv.skipped[str(k)] = "not read (optimizer state / run arguments)"
    la = container.get("latent_avg")
    if isinstance(la, torch.Tensor):
        conv.extras["latent_avg"] = la.detach().reshape(-1, la.shape[-1])[0].cpu() \
            if la.device.type != "meta" else la
        conv.origin["extras.latent_avg"] = "latent_avg"
        conv.notes.append("latent_avg (the official mean w) kept as extras.latent_avg")
    return conv


FORMAT = Format(
    name="rosinality_stylegan2", arch="prior", kind="prior",
    description="rosinality/stylegan2-pytorch checkpoint or converted release (g_ema, "
                "latent_avg, g, d) -> our StyleGAN2 prior (G, EMA G, D)",
    official_files={"stylegan2-ffhq-config-f.pt": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert,
    weights={"stylegan2-ffhq-config-f.pt": "stylegan2_ffhq_1024"},
    feeds="the prior of GFP-GAN / pSp (FFHQ 1024, config-f); paper profile prior",
)
