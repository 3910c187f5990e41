"""``panini_mfr`` and ``panini_sr``: jianzhangcs/panini releases -> our ``panini`` method.

Container (jianzhangcs/panini @ 89e1b2d3 on mmedit 0.14 / mmcv 1.5): an mmcv runner checkpoint
of the GLEAN restorer, ``{"meta": ..., "state_dict": ..., "optimizer": ...}`` (mmcv v1.5.0
runner/checkpoint.py:720-723 ``save_checkpoint``), read by mmcv runner/checkpoint.py:556-602
``load_checkpoint`` (``checkpoint['state_dict']``, ``^module.`` stripped) from
mmedit/apis/train.py:23-50 ``init_model``. ``state_dict`` holds ``generator.*`` = the Panini
backbone (the restorer's ``self.generator``, mmedit/models/restorers/srgan.py:51), plus
``discriminator.*`` (a 1024 px StyleGAN2 discriminator) and ``perceptual_loss.*`` (VGG16) of the
training wrapper (configs/panini_mfr.py, configs/panini_sr.py). Only ``generator.*`` is imported;
the other two and ``meta``/``optimizer`` are skipped (an imported Panini has no discriminator:
``gan_weight`` 0; its perceptual loss uses torchvision's VGG16 through the weight resolver).

Key names (mmedit/models/backbones/panini.py ``Panini_MFR`` / ``Panini_SR``) -> ours:

- ``generator.generator.*`` (mmedit StyleGANv2Generator,
  mmedit/models/components/stylegan2/generator_discriminator.py and modules.py):
  ``style_mapping.{i}.linear.weight_orig`` / ``.bias`` -> ``generator.style.{i}.weight/bias``
  (EqualizedLR keeps the raw weight as ``weight_orig``), ``constant_input.input`` ->
  ``generator.input.input``, ``conv.weight_orig`` -> ``conv.weight``,
  ``conv.style_modulation.linear.weight_orig`` / ``.bias`` -> ``conv.modulation.weight/bias``,
  ``noise_injector.weight`` -> ``noise.weight``, ``injected_noise_{i}`` ->
  ``generator.noises.noise_{i}``; the ``*.blur.kernel`` / ``*.upsample.kernel`` FIR buffers
  are skipped after checking they equal ours;
- ``deg_encoder.{E,mlp}.*`` -> ``dre.*`` (MFR; ``mlp`` is unused by the forward, kept);
  ``choice_vector`` -> ``choice_vector`` (SR);
- ``encoder.0`` = Sequential(RRDBFeatureExtractor, CBAM, conv, lrelu, [conv, lrelu] x3 (MFR))
  -> ``ife.encoder0``: ``0.body.{b}.rdb{j}.conv{k}`` -> ``0.body.{b}.rdbs.{j-1}.convs.{k-1}``,
  CBAM ``ChannelGate.mlp.{1,3}`` -> ``channel_mlp.{1,3}``, ``SpatialGate.spatial.conv`` /
  ``.bn`` -> ``spatial`` / ``spatial_bn``, conv ``encoder.0.{2,4,6,8}`` ->
  ``ife.encoder0.{2,3,4,5}.0``; ``encoder.{1..4}.0`` (stride-2 convs 64 -> 4 px) ->
  ``ife.down.{0..3}.0``; ``encoder.5.0`` / ``encoder.5.3`` (conv, linear of the latent head) ->
  ``ife.latent_conv.0`` / ``ife.latent_fc``;
- ``AFS_maskGen.mapping.{0,2}`` -> ``mask_gen.mapping.{0,2}`` and ``fusion_out.{j}`` ->
  ``fusion_out.{n-1-j}``: the official forward indexes both from 4x4 upward
  (``fusion_index = (_index - 1) // 2`` while ``out.size(2) <= 64``; the masks are viewed
  (B, 5, 2, 512), level 0 = 4x4), ours from the top fused level down, so the conv list is
  reversed and the last linear's five per-level row blocks (2 x 512 rows each) are put in
  reverse order (weight rows and bias).

The official loop fuses at the start of each generator step, i.e. on the feature after the
previous resolution's ToRGB: our ``fuse_point: post_rgb``, which the imported entry uses.
"""
from __future__ import annotations

import re
from typing import Optional

import torch

from methods.released.base import Converted, Format, FormatError, apply_overrides, tensors_of

WHERE_READ = (
    "jianzhangcs/panini@89e1b2d3 configs/panini_mfr.py, configs/panini_sr.py (GLEAN(generator="
    "Panini_MFR/Panini_SR, discriminator, perceptual_loss); checkpoint_config)",
    "jianzhangcs/panini@89e1b2d3 mmedit/models/restorers/srgan.py:51 (self.generator -> "
    "'generator.' prefix)",
    "jianzhangcs/panini@89e1b2d3 mmedit/apis/train.py:23-50 (init_model: build_model; "
    "load_checkpoint)",
    "open-mmlab/mmcv@v1.5.0 mmcv/runner/checkpoint.py:556-602 (load_checkpoint: "
    "checkpoint['state_dict'], strip '^module.'), :720-723 (save_checkpoint {meta, state_dict})",
)

#: the released configurations (configs/panini_mfr.py / panini_sr.py; Panini_MFR / Panini_SR
#: constructor defaults)
VARIANTS = {
    "mfr": {"lq_size": 512, "rrdb_channels": 8, "num_rrdb": 2, "cbam_reduction": 2,
            "train_preset": "panini_mfr"},
    "sr": {"lq_size": 64, "rrdb_channels": 64, "num_rrdb": 23, "cbam_reduction": 8,
           "train_preset": "sr16_bilinear"},
}
N_LEVELS = 5  # fused resolutions 4..64


def entry(variant: str) -> dict:
    """The ``methods:`` entry of an imported Panini-Net (1024 px output, post_rgb fusion; the
    paper's training values for a fine-tuning run)."""
    v = VARIANTS[variant]
    e = {
        "arch": "panini", "variant": variant, "fusion": "dafi", "out_size": 1024,
        "lq_size": v["lq_size"], "train_preset": v["train_preset"], "train_overrides": {},
        "steps": 800000, "batch_size": 4, "lr": 1e-4, "betas": [0.9, 0.99],
        "lr_schedule": "cosine", "min_lr": 1e-6, "n_fusion": N_LEVELS, "fuse_point": "post_rgb",
        "ife_channels": 512, "rrdb_channels": v["rrdb_channels"], "num_rrdb": v["num_rrdb"],
        "rrdb_growth": 32, "cbam_reduction": v["cbam_reduction"], "l1_weight": 1.0,
        "perceptual_weight": 0.01, "gan_weight": 0.0, "finetune_dre": True,
        "finetune_generator": True, "hflip": True, "ema_decay": 0.0, "dr_dim": 256,
        "init_latent_avg": False,
        "prior_arch": {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2,
                       "max_channels": 512, "lr_mlp": 0.01, "narrow": 1.0},
    }
    if variant == "mfr":
        e["dre_arch"] = {"widths": [64, 128, 256], "input_size": 256}
    return e


_GEN_SUB = {"conv.weight_orig": "conv.weight",
            "conv.style_modulation.linear.weight_orig": "conv.modulation.weight",
            "conv.style_modulation.bias": "conv.modulation.bias"}


def map_key(k: str, n_levels: int = N_LEVELS) -> Optional[tuple[str, str]]:
    """Key of the Panini backbone (without the ``generator.`` of the restorer) -> (our key,
    kind): kind "" (copy), "kernel" (FIR buffer: check, skip), "mask_rows" (reverse the
    per-level row blocks). None = not a Panini key."""
    if k.startswith("generator."):
        g = k[len("generator."):]
        m = re.fullmatch(r"style_mapping\.(\d+)\.(linear\.weight_orig|bias)", g)
        if m:
            return f"generator.style.{m.group(1)}.{'bias' if m.group(2) == 'bias' else 'weight'}", ""
        if g == "constant_input.input":
            return "generator.input.input", ""
        m = re.fullmatch(r"injected_noise_(\d+)", g)
        if m:
            return f"generator.noises.noise_{m.group(1)}", ""
        m = re.fullmatch(r"(conv1|convs\.\d+)\.(.+)", g)
        if m:
            rest = m.group(2)
            sub = _GEN_SUB.get(rest) or {"noise_injector.weight": "noise.weight",
                                         "activate.bias": "activate.bias"}.get(rest)
            if sub:
                return f"generator.{m.group(1)}.{sub}", ""
            if rest == "conv.blur.kernel":
                return f"generator.{m.group(1)}.conv.blur.kernel", "kernel"
            return None
        m = re.fullmatch(r"(to_rgb1|to_rgbs\.\d+)\.(.+)", g)
        if m:
            rest = m.group(2)
            sub = _GEN_SUB.get(rest) or ("bias" if rest == "bias" else None)
            if sub:
                return f"generator.{m.group(1)}.{sub}", ""
            if rest == "upsample.kernel":
                return f"generator.{m.group(1)}.upsample.kernel", "kernel"
        return None
    if k == "choice_vector":
        return "choice_vector", ""
    m = re.fullmatch(r"deg_encoder\.((E|mlp)\.\d+\.\w+)", k)
    if m:
        return "dre." + m.group(1), ""
    m = re.fullmatch(r"encoder\.0\.0\.(conv_first|conv_body)\.(weight|bias)", k)
    if m:
        return f"ife.encoder0.0.{m.group(1)}.{m.group(2)}", ""
    m = re.fullmatch(r"encoder\.0\.0\.body\.(\d+)\.rdb([1-3])\.conv([1-5])\.(weight|bias)", k)
    if m:
        b, j, c, var = m.groups()
        return f"ife.encoder0.0.body.{b}.rdbs.{int(j) - 1}.convs.{int(c) - 1}.{var}", ""
    m = re.fullmatch(r"encoder\.0\.1\.(.+)", k)
    if m:
        rest = m.group(1)
        mm = re.fullmatch(r"fea_preprocess\.(weight|bias)", rest)
        if mm:
            return f"ife.encoder0.1.fea_preprocess.{mm.group(1)}", ""
        mm = re.fullmatch(r"ChannelGate\.mlp\.([13])\.(weight|bias)", rest)
        if mm:
            return f"ife.encoder0.1.channel_mlp.{mm.group(1)}.{mm.group(2)}", ""
        if rest == "SpatialGate.spatial.conv.weight":
            return "ife.encoder0.1.spatial.weight", ""
        mm = re.fullmatch(r"SpatialGate\.spatial\.bn\.(\w+)", rest)
        if mm:
            return f"ife.encoder0.1.spatial_bn.{mm.group(1)}", ""
        return None
    m = re.fullmatch(r"encoder\.0\.(\d+)\.(weight|bias)", k)
    if m and int(m.group(1)) >= 2 and int(m.group(1)) % 2 == 0:
        return f"ife.encoder0.{2 + (int(m.group(1)) - 2) // 2}.0.{m.group(2)}", ""
    m = re.fullmatch(r"encoder\.(\d+)\.([03])\.(weight|bias)", k)
    if m and 1 <= int(m.group(1)) <= n_levels:
        i, layer, var = int(m.group(1)), m.group(2), m.group(3)
        if i < n_levels and layer == "0":
            return f"ife.down.{i - 1}.0.{var}", ""
        if i == n_levels:
            return (f"ife.latent_conv.0.{var}" if layer == "0" else f"ife.latent_fc.{var}"), ""
        return None
    m = re.fullmatch(r"AFS_maskGen\.mapping\.([02])\.(weight|bias)", k)
    if m:
        return f"mask_gen.mapping.{m.group(1)}.{m.group(2)}", \
            ("mask_rows" if m.group(1) == "2" else "")
    m = re.fullmatch(r"fusion_out\.(\d+)\.(weight|bias)", k)
    if m and int(m.group(1)) < n_levels:
        return f"fusion_out.{n_levels - 1 - int(m.group(1))}.{m.group(2)}", ""
    return None


def reverse_level_blocks(t: torch.Tensor, n_levels: int = N_LEVELS) -> torch.Tensor:
    """The mask generator's last linear (rows = levels x 2 x C, level 0 = 4x4 in the official
    layout) with its per-level row blocks in reverse order (ours: level 0 = top fused level)."""
    if t.shape[0] % n_levels:
        raise FormatError(f"mask generator output of {t.shape[0]} rows is not {n_levels} levels")
    return torch.cat(list(t.chunk(n_levels, 0))[::-1], 0)


def _convert(fmt: str, variant: str, container, overrides: Optional[dict]) -> Converted:
    sd = tensors_of(fmt, container, "state_dict", "mmcv checkpoint with 'state_dict'")
    config = apply_overrides(entry(variant), overrides, "the panini entry")
    if config.get("n_fusion") != N_LEVELS or config.get("fuse_point") != "post_rgb":
        raise FormatError(f"format {fmt}: the released model fuses 5 levels after ToRGB "
                          "(n_fusion 5, fuse_point post_rgb); these cannot be overridden")
    conv = Converted(kind="method", arch="panini", config=config, state={})
    has_choice = any(k == "generator.choice_vector" for k in sd)
    has_dre = any(k.startswith("generator.deg_encoder.") for k in sd)
    if (variant == "sr") != has_choice or (variant == "mfr") != has_dre:
        other = "panini_mfr" if variant == "sr" else "panini_sr"
        raise FormatError(f"format {fmt}: the file is a Panini-Net "
                          f"{'SR (choice_vector, no deg_encoder)' if has_choice else 'MFR'} "
                          f"model; use format {other}")
    unknown = []
    for key, t in sd.items():
        if key.startswith(("discriminator.", "perceptual_loss.")):
            continue
        hit = map_key(key[len("generator."):]) if key.startswith("generator.") else None
        if hit is None:
            unknown.append(key)
            continue
        ours, kind = hit
        conv.origin[ours] = f"state_dict/{key}"
        if kind == "kernel":
            conv.checks[ours] = t
            conv.skipped[f"state_dict/{key}"] = ("FIR blur kernel buffer (not stored by our "
                                                 "modules); equal to ours (checked)")
        else:
            conv.state[ours] = reverse_level_blocks(t) if kind == "mask_rows" else t
    if unknown:
        raise FormatError(f"format {fmt}: {len(unknown)} keys of 'state_dict' are not Panini-Net "
                          f"keys: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    for prefix, why in (("discriminator.", "the training discriminator (mmedit StyleGAN2 "
                         "discriminator; not imported: the entry has gan_weight 0)"),
                        ("perceptual_loss.", "the VGG16 of the perceptual loss (torchvision "
                         "weights via the resolver instead)")):
        if any(k.startswith(prefix) for k in sd):
            conv.skipped[f"state_dict/{prefix}*"] = why
    for top in container:
        if top != "state_dict":
            conv.skipped[str(top)] = "not read (mmcv run metadata / optimizer state)"
    conv.notes.append(f"Panini-Net {variant.upper()} ({config['lq_size']} -> 1024), fused after "
                      "ToRGB (fuse_point post_rgb) as the official forward")
    return conv


def convert_mfr(container, overrides: Optional[dict] = None, extras=None) -> Converted:
    _no_extras("panini_mfr", extras)
    return _convert("panini_mfr", "mfr", container, overrides)


def convert_sr(container, overrides: Optional[dict] = None, extras=None) -> Converted:
    _no_extras("panini_sr", extras)
    return _convert("panini_sr", "sr", container, overrides)


def _no_extras(fmt: str, extras) -> None:
    if extras:
        raise FormatError(f"format {fmt}: takes one file (the discriminator is inside it); "
                          f"unexpected extra files: {', '.join(sorted(extras))}")


MFR = Format(
    name="panini_mfr", arch="panini",
    description="Panini-Net multi-degradation model (mmcv {meta, state_dict: generator.*}, "
                "512 -> 1024) -> our panini (variant mfr, post_rgb)",
    official_files={"panini_mfr_latest.pth": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert_mfr,
    weights={"panini_mfr_latest.pth": "panini_mfr"},
    feeds="Panini-Net Table 1 (multi-degradation restoration, 512 -> 1024) and Table 4 (theta)",
)

SR = Format(
    name="panini_sr", arch="panini",
    description="Panini-Net 16x SR model (mmcv {meta, state_dict: generator.*}, 64 -> 1024) "
                "-> our panini (variant sr, post_rgb)",
    official_files={"panini_sr_latest.pth": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert_sr,
    weights={"panini_sr_latest.pth": "panini_sr"},
    feeds="Panini-Net Table 2 (16x face super-resolution, 64 -> 1024)",
)
