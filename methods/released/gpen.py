"""``gpen_bfr``: GPEN's released blind-face-restoration models -> our ``gpen`` method.

Container (yangxy/GPEN @ 2c736702): a raw ``FullGenerator.state_dict()`` (no wrapper key),
read by face_model/face_gan.py:26-33 (``FaceGAN.load_model``: ``FullGenerator(in_size, 512,
n_mlp=8, channel_multiplier, narrow=narrow)``, ``torch.load``, optional ``[key]``, strict
``load_state_dict``); the released settings are in demo.py:71-77,91-92: GPEN-BFR-512 size 512,
channel multiplier 2, narrow 1; GPEN-BFR-256 size 256, channel multiplier 1, narrow 0.5.

Keys (face_model/gpen_model.py, ``FullGenerator``): ``generator.*`` is the StyleGAN2 with
concatenated noise (``isconcat``), named like ours, with the ``*.kernel`` FIR buffers (skipped
after checking they equal ours) and without ``noises.*`` (GPEN's generator has no noise
buffers: the noise inputs are the encoder features, gpen_model.py:671-689). Our generator keeps
fixed noise buffers ``generator.noises.noise_{i}``: they are filled from a fixed seed (0) and
recorded in ``filled``; GPEN's forward never reads them. Encoder: ``ecd0.0.*`` (1x1 ConvLayer
from RGB, wrapped in a Sequential) -> our ``encoder.ecd0.*``; ``ecd{i}.0.*`` (i >= 1, the
downsampling ConvLayers) -> ``encoder.downs.{i-1}.*``; ``final_linear.0.*`` -> ``encoder.final_linear.*``.

The discriminator ``GPEN-BFR-512-D.pth`` (README.md:95; no official code loads it, assumed a
raw ``Discriminator.state_dict()``, the rosinality layout; a ``{"d": ...}`` wrapper is
unwrapped) is optional: ``--extra d=GPEN-BFR-512-D.pth`` maps it onto ``discriminator.*``
(``convs.0`` -> ``conv0``, ``convs.{i}`` -> ``blocks.{i-1}``; minibatch stddev over the whole
batch, gpen_model.py:737). Without it the entry has no discriminator (``adv_weight`` and
``fm_weight`` 0): it restores, it does not fine-tune adversarially.

Configuration from the shapes: ``size`` (number of ``to_rgbs``), ``narrow`` = C(4)/512,
``channel_multiplier`` = C(64)/(256 narrow) (``methods.released.stylegan2.infer_arch``); the
training settings are GPEN's train_simple.py defaults (``--set`` overrides any of them, e.g.
``lq_size``).
"""
from __future__ import annotations

import re
from typing import Optional

from methods.released.base import (Converted, Format, FormatError, apply_overrides, rename,
                                   seeded_noise_buffers, split_kernels, tensors_of)
from methods.released.stylegan2 import infer_arch, map_discriminator

WHERE_READ = (
    "yangxy/GPEN@2c736702 face_model/face_gan.py:26-33 (FaceGAN.load_model: FullGenerator(...),"
    " strict load_state_dict of the raw state dict)",
    "yangxy/GPEN@2c736702 demo.py:71-77,91-92 (GPEN-BFR-512: 512, cm 2, narrow 1; "
    "GPEN-BFR-256: 256, cm 1, narrow 0.5)",
    "yangxy/GPEN@2c736702 train_simple.py:343-345 (Discriminator(size, channel_multiplier, "
    "narrow); the -D file)",
)

#: GPEN train_simple.py settings (smooth-L1 content + IR-SE50 identity 1.0 + adversarial 1)
ENTRY_DEFAULTS = {
    "arch": "gpen", "train_preset": "gpen", "train_overrides": {}, "steps": 4000000,
    "batch_size": 4, "lr": 0.002, "noise": "concat", "finetune_generator": True,
    "concat_init": 0.01, "noise_init": 0.0, "adv_weight": 1.0, "content_weight": 1.0,
    "content_loss": "smooth_l1", "fm_weight": 0.0, "id_weight": 1.0, "id_net": "irse50",
    "random_init_losses": False, "r1_gamma": 10.0, "r1_every": 16, "d_stddev_group": 0,
    "path_reg_weight": 2.0, "path_reg_every": 4, "ema_decay": round(0.5 ** (32 / 10000), 5),
    "hflip": True,
}

_ENC_RULES = [
    (r"ecd0\.0\.(.*)", r"encoder.ecd0.\1"),
    (r"final_linear\.0\.(.*)", r"encoder.final_linear.\1"),
]


def map_full_generator(sd: dict) -> dict:
    """GPEN ``FullGenerator`` keys -> {our key: (file key, tensor)}."""
    out = {}
    for ours, (src, t) in rename(sd, _ENC_RULES).items():
        m = re.fullmatch(r"ecd(\d+)\.0\.(.*)", ours)
        if m:
            ours = f"encoder.downs.{int(m.group(1)) - 1}.{m.group(2)}"
        out[ours] = (src, t)
    return out


def convert(container, overrides: Optional[dict] = None, extras: Optional[dict] = None
            ) -> Converted:
    fmt = "gpen_bfr"
    sd = tensors_of(fmt, container, None, "raw GPEN FullGenerator state dict")
    if "final_linear.0.weight" not in sd or not any(k.startswith("generator.") for k in sd):
        top = ", ".join(list(sd)[:5])
        raise FormatError(f"format {fmt}: not a GPEN FullGenerator state dict (expected "
                          f"'generator.*', 'ecd*', 'final_linear.0.*'; first keys: {top})")
    gsd = {k[len("generator."):]: v for k, v in sd.items() if k.startswith("generator.")}
    arch = infer_arch(fmt, gsd, "generator")
    size = arch["size"]
    entry = {**ENTRY_DEFAULTS, "out_size": size, "lq_size": size, "prior_arch": arch}
    has_d = bool(extras and extras.get("d") is not None)
    if not has_d:
        entry.update(adv_weight=0.0, fm_weight=0.0)
    entry = apply_overrides(entry, overrides, "the gpen entry")
    conv = Converted(kind="method", arch="gpen", config=entry, state={})
    split_kernels(map_full_generator(sd), conv)
    n_layers = 2 * (int(size).bit_length() - 1 - 2) + 1
    conv.state.update(seeded_noise_buffers("generator.", n_layers, seed=0))
    conv.filled["generator.noises.*"] = ("N(0,1) from torch.Generator().manual_seed(0) (GPEN has "
                                         "no noise buffers; its forward never reads them)")
    if float(entry.get("path_reg_weight", 0) or 0) > 0:
        conv.fill_from_init.append("pl_mean")
        conv.filled["pl_mean"] = "0 (path-length running mean; not in the file)"
    if has_d:
        d = extras["d"]
        if isinstance(d, dict) and "d" in d and isinstance(d["d"], dict):
            d = d["d"]
        dsd = tensors_of(fmt, d, None, "GPEN Discriminator state dict (the -D file)")
        if "final_linear.1.weight" not in dsd:
            raise FormatError(f"format {fmt}: --extra d: not a StyleGAN2 discriminator state "
                              f"dict (first keys: {', '.join(list(dsd)[:5])})")
        mapped = map_discriminator(dsd)
        split_kernels(mapped, conv, src_prefix="d:")
    else:
        conv.notes.append("no discriminator file: adv_weight and fm_weight set to 0 "
                          "(restoration only; --extra d=GPEN-BFR-512-D.pth adds it)")
    return conv


FORMAT = Format(
    name="gpen_bfr", arch="gpen", kind="method",
    description="GPEN released BFR models (raw FullGenerator state dict; optional -D file) -> "
                "our gpen method with its own prior_arch (size, cm, narrow from the file)",
    official_files={"GPEN-BFR-512.pth": None, "GPEN-BFR-256.pth": None,
                    "GPEN-BFR-512-D.pth": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert,
    weights={"GPEN-BFR-512.pth": "gpen_bfr_512", "GPEN-BFR-256.pth": "gpen_bfr_256",
             "GPEN-BFR-512-D.pth": "gpen_bfr_512_d"},
    feeds="GFP-GAN Table 1 (CelebA-Test) GPEN row; Panini-Net Table 1 GPEN row",
)
