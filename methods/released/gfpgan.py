"""``gfpgan_v1`` and ``gfpgan_clean``: TencentARC/GFPGAN releases -> our ``gfpgan`` method.

Container (TencentARC/GFPGAN @ 7552a779, BasicSR @ 8d56e3a0): a BasicSR network file
``{"params_ema": state_dict}`` (training snapshots ``net_g_<iter>.pth`` also hold ``"params"``,
gfpgan/models/gfpgan_model.py:571). The official loader reads ``params_ema`` when present, else
``params``, strictly (gfpgan/utils.py:92-97: ``torch.load``; ``'params_ema' in loadnet``;
``load_state_dict(..., strict=True)``); the architecture is chosen by the release
(inference_gfpgan.py:82-101): version 1 -> ``arch='original'``, ``GFPGANv1``, channel multiplier
1 (gfpgan/utils.py:64-74); versions 1.2/1.3/1.4 -> ``arch='clean'``, ``GFPGANv1Clean``, channel
multiplier 2 (gfpgan/utils.py:40-50); both at 512 px with ``input_is_latent``, ``different_w``,
``sft_half`` and 8 mapping layers. ``convert_gfpganv_to_clean.py:164`` writes the clean files as
``{"params_ema": ...}`` too.

Key names -> ours (``unet.*`` = our ``GFPGANUNet``, ``generator.*`` = our StyleGAN2):

- ``stylegan_decoder.style_mlp.{i}`` -> ``generator.style.{j}``: v1 ``j = i`` (BasicSR
  StyleGAN2Generator: NormStyleCode then EqualLinear 1..8); clean ``i = 2j - 1`` (plain
  ``nn.Linear`` / ``LeakyReLU`` pairs, stylegan2_clean_arch.py StyleGAN2GeneratorClean);
- ``constant_input.weight`` -> ``input.input``; ``style_conv1`` / ``style_convs.{i}`` ->
  ``conv1`` / ``convs.{i}`` with ``modulated_conv.*`` -> ``conv.*`` (``modulation`` kept),
  ``.weight`` (the noise scale) -> ``noise.weight``, ``activate.bias`` (v1) or ``.bias``
  (clean, shape (1, C, 1, 1), flattened) -> ``activate.bias``; ``to_rgb1`` / ``to_rgbs.{i}``:
  ``modulated_conv.*`` -> ``conv.*``; ``noises.noise{i}`` -> ``noises.noise_{i}``;
- U-Net: ``conv_body_first``, ``conv_body_down.{i}``, ``final_conv``, ``final_linear``,
  ``condition_scale/shift.{i}`` keep their names under ``unet.``; ``toRGB.{i}`` -> ``to_rgb.{i}``;
  v1 ``conv_body_up.{i}.conv2.weight`` / ``.conv2.activation.bias`` / ``.skip.weight`` (BasicSR
  ConvUpLayer, gfpganv1_arch.py) -> ``conv2.conv.weight`` / ``conv2.act.bias`` /
  ``skip.conv.weight``; the clean U-Net's plain convs (gfpganv1_clean_arch.py ResBlock,
  ``conv_body_first``, ``final_conv``) ``<layer>.weight`` / ``<layer>.bias`` go to the same slots
  of our ConvLayer / ConvUpLayer (conv weight, activation bias: ``conv(x) + b`` then the leaky
  ReLU is the same sum).

v1 files hold no FIR kernel buffers (BasicSR keeps them as plain attributes). The clean maths
(no equalised-lr scales, bilinear resampling) is our ``version: clean`` switch
(methods/stylegan2.py), so the values are used as stored, no rescaling.

The discriminators (``gfpgan_v1`` only; the releases do not ship them): BasicSR training writes
four files ``net_d_<iter>.pth``, ``net_d_left_eye_<iter>.pth``, ``net_d_right_eye_<iter>.pth``,
``net_d_mouth_<iter>.pth``, each ``{"params": state_dict}`` (gfpgan_model.py:569-577 with
basicsr/models/base_model.py:208-241 ``save_network``; read back by gfpgan_model.py:75-94). Pass
them as extras (``net_d``, ``net_d_left_eye``, ``net_d_right_eye``, ``net_d_mouth``): the
StyleGAN2Discriminator's ``conv_body.0`` -> our ``discriminator.conv0``, ``conv_body.{i}`` ->
``discriminator.blocks.{i-1}`` (``final_conv``/``final_linear`` as ours); each
FacialComponentDiscriminator's names are ours (``comp_d.<component>.*``). With them the entry
keeps v1's GAN and component losses (so the import can be fine-tuned); without them those
weights are 0 and the model has no discriminators.
"""
from __future__ import annotations

import re
from typing import Callable, Optional

from methods.released.base import (Converted, Format, FormatError, apply_overrides,
                                   tensors_of)

COMPONENT_FILES = {"net_d_left_eye": "left_eye", "net_d_right_eye": "right_eye",
                   "net_d_mouth": "mouth"}

WHERE_READ = (
    "TencentARC/GFPGAN@7552a779 gfpgan/utils.py:92-97 (torch.load; 'params_ema' if present "
    "else 'params'; load_state_dict strict)",
    "TencentARC/GFPGAN@7552a779 inference_gfpgan.py:82-101 (version -> arch original/clean, "
    "channel multiplier 1/2)",
    "TencentARC/GFPGAN@7552a779 gfpgan/utils.py:40-50, 64-74 (GFPGANv1Clean / GFPGANv1 ctor)",
    "TencentARC/GFPGAN@7552a779 scripts/convert_gfpganv_to_clean.py:164 (writes "
    "{params_ema} of the clean model)",
    "TencentARC/GFPGAN@7552a779 gfpgan/models/gfpgan_model.py:569-577, 75-94 (net_d, "
    "net_d_left_eye, net_d_right_eye, net_d_mouth saved/loaded with param_key 'params')",
)

_DEC = "stylegan_decoder."


def map_generator_key(key: str, clean: bool) -> Optional[tuple[str, Optional[Callable]]]:
    """One official GFPGANv1 / GFPGANv1Clean key -> (our key, transform or None); None when the
    key is not part of that architecture."""
    if key.startswith(_DEC):
        return _map_decoder(key[len(_DEC):], clean)
    m = re.fullmatch(r"toRGB\.(\d+)\.(weight|bias)", key)
    if m:
        return f"unet.to_rgb.{m.group(1)}.{m.group(2)}", None
    if re.fullmatch(r"(final_linear|condition_(scale|shift)\.\d+\.[02])\.(weight|bias)", key):
        return "unet." + key, None
    return _map_unet_clean(key) if clean else _map_unet_v1(key)


def _map_decoder(k: str, clean: bool):
    m = re.fullmatch(r"style_mlp\.(\d+)\.(weight|bias)", k)
    if m:
        i = int(m.group(1))
        if clean:  # Sequential(NormStyleCode, Linear, LeakyReLU, Linear, ...): linears at 1, 3, ..
            if i % 2 == 0:
                return None
            i = (i + 1) // 2
        return f"generator.style.{i}.{m.group(2)}", None
    if k == "constant_input.weight":
        return "generator.input.input", None
    m = re.fullmatch(r"noises\.noise(\d+)", k)
    if m:
        return f"generator.noises.noise_{m.group(1)}", None
    m = re.fullmatch(r"(style_conv1|style_convs\.(\d+))\.(.+)", k)
    if m:
        ours = "generator.conv1" if m.group(2) is None else f"generator.convs.{m.group(2)}"
        rest = m.group(3)
        if rest.startswith("modulated_conv."):
            return f"{ours}.conv.{rest[len('modulated_conv.'):]}", None
        if rest == "weight":
            return f"{ours}.noise.weight", None
        if rest == "activate.bias" and not clean:
            return f"{ours}.activate.bias", None
        if rest == "bias" and clean:
            return f"{ours}.activate.bias", _flatten
        return None
    m = re.fullmatch(r"(to_rgb1|to_rgbs\.\d+)\.(.+)", k)
    if m:
        if m.group(2).startswith("modulated_conv."):
            return f"generator.{m.group(1)}.conv.{m.group(2)[len('modulated_conv.'):]}", None
        if m.group(2) == "bias":
            return f"generator.{m.group(1)}.bias", None
    return None


def _flatten(t):
    return t.reshape(-1)


def _map_unet_v1(key: str):
    m = re.fullmatch(r"conv_body_up\.(\d+)\.(conv2\.weight|conv2\.activation\.bias|skip\.weight)",
                     key)
    if m:
        sub = {"conv2.weight": "conv2.conv.weight", "conv2.activation.bias": "conv2.act.bias",
               "skip.weight": "skip.conv.weight"}[m.group(2)]
        return f"unet.conv_body_up.{m.group(1)}.{sub}", None
    if re.fullmatch(r"(conv_body_first|final_conv|conv_body_down\.\d+\.(conv1|conv2|skip)"
                    r"|conv_body_up\.\d+\.conv1)\.\d\.(weight|bias)", key):
        return "unet." + key, None
    return None


#: clean U-Net plain conv (layer, var) -> our ConvLayer / ConvUpLayer slot
_DOWN = {("conv1", "weight"): "conv1.0.weight", ("conv1", "bias"): "conv1.1.bias",
         ("conv2", "weight"): "conv2.1.weight", ("conv2", "bias"): "conv2.2.bias",
         ("skip", "weight"): "skip.1.weight"}
_UP = {("conv1", "weight"): "conv1.0.weight", ("conv1", "bias"): "conv1.1.bias",
       ("conv2", "weight"): "conv2.conv.weight", ("conv2", "bias"): "conv2.act.bias",
       ("skip", "weight"): "skip.conv.weight"}


def _map_unet_clean(key: str):
    m = re.fullmatch(r"(conv_body_first|final_conv)\.(weight|bias)", key)
    if m:
        slot = "0.weight" if m.group(2) == "weight" else "1.bias"
        return f"unet.{m.group(1)}.{slot}", None
    m = re.fullmatch(r"conv_body_(down|up)\.(\d+)\.(conv1|conv2|skip)\.(weight|bias)", key)
    if m:
        table = _DOWN if m.group(1) == "down" else _UP
        sub = table.get((m.group(3), m.group(4)))
        if sub:
            return f"unet.conv_body_{m.group(1)}.{m.group(2)}.{sub}", None
    return None


def map_discriminator_key(key: str) -> str:
    """BasicSR StyleGAN2Discriminator key -> our Discriminator key (under ``discriminator.``)."""
    m = re.fullmatch(r"conv_body\.(\d+)\.(.+)", key)
    if m:
        i = int(m.group(1))
        return f"discriminator.conv0.{m.group(2)}" if i == 0 else \
            f"discriminator.blocks.{i - 1}.{m.group(2)}"
    return "discriminator." + key


def infer_shape(fmt: str, sd: dict) -> tuple[int, int]:
    """(output size, channel multiplier) from the decoder: size = 2^(number of to_rgbs + 2),
    multiplier = C(64) / 256 from the 64 px up-conv (1 below 64 px, where it changes nothing)."""
    n_rgb = len([k for k in sd if re.fullmatch(re.escape(_DEC) + r"to_rgbs\.\d+\.modulated_conv"
                                                r"\.weight", k)])
    if n_rgb == 0:
        raise FormatError(f"format {fmt}: no '{_DEC}to_rgbs.*' (not a GFP-GAN generator)")
    size = 2 ** (n_rgb + 2)
    k = _DEC + "style_convs.6.modulated_conv.weight"
    if size < 64:
        return size, 1
    if k not in sd:
        raise FormatError(f"format {fmt}: no '{k}' (not a GFP-GAN generator)")
    return size, max(1, int(sd[k].shape[1]) // 256)


def entry(version: str, channel_multiplier: int, with_discriminators: bool,
          size: int = 512) -> dict:
    """The ``methods:`` entry of an imported GFP-GAN (size -> size, 512 for every release;
    training values of options/train_gfpgan_v1.yml for a fine-tuning run)."""
    return {
        "arch": "gfpgan", "out_size": size, "lq_size": size, "train_preset": "gfpgan",
        "train_overrides": {}, "steps": 800000, "batch_size": 3, "lr": 0.002, "sft": "cs",
        "pixel_weight": 0.1, "pyramid_weight": 1.0, "pyramid_until": 50000,
        "perceptual_weight": 1.0, "style_weight": 50.0,
        "gan_weight": 0.1 if with_discriminators else 0.0, "r1_gamma": 10.0, "r1_every": 16,
        "component_weight": 1.0 if with_discriminators else 0.0,
        "component_style_weight": 200.0 if with_discriminators else 0.0,
        "component_crop": [80, 120], "component_channels": [64, 128, 256], "eye_enlarge": 1.4,
        "id_weight": 10.0, "id_net": "arcface18", "ema_decay": 0.99778, "hflip": True,
        "landmarks": "", "init_latent_avg": False, "fix_decoder": version == "v1",
        "version": version, "random_init_losses": False,
        "prior_arch": {"size": size, "style_dim": 512, "n_mlp": 8,
                       "channel_multiplier": channel_multiplier, "max_channels": 512,
                       "lr_mlp": 0.01, "narrow": 1.0},
    }


def _convert(fmt: str, version: str, container, overrides: Optional[dict],
             extras: Optional[dict]) -> Converted:
    clean = version == "clean"
    key = "params_ema" if isinstance(container, dict) and "params_ema" in container else "params"
    sd = tensors_of(fmt, container, key, "BasicSR network file with 'params_ema' or 'params'")
    d_files = _discriminator_files(fmt, container, extras)
    if d_files and clean:
        raise FormatError(f"format {fmt}: the clean releases have no discriminators; pass "
                          "net_d* files with format gfpgan_v1")
    size, cm = infer_shape(fmt, sd)
    config = apply_overrides(entry(version, cm, bool(d_files), size), overrides,
                             "the gfpgan entry")
    conv = Converted(kind="method", arch="gfpgan", config=config, state={})
    unknown = []
    for k, t in sd.items():
        hit = map_generator_key(k, clean)
        if hit is None:
            unknown.append(k)
            continue
        ours, fn = hit
        conv.state[ours] = fn(t) if fn is not None else t
        conv.origin[ours] = f"{key}/{k}"
    if unknown:
        other = "gfpgan_v1" if clean else "gfpgan_clean"
        raise FormatError(f"format {fmt}: {len(unknown)} keys of '{key}' are not GFPGAN"
                          f"{'v1Clean' if clean else 'v1'} keys: {', '.join(unknown[:5])}"
                          f"{' ...' if len(unknown) > 5 else ''} (a file of format {other}, "
                          "or another model?)")
    if "params" in container and key == "params_ema":
        conv.skipped["params"] = "the training (non-EMA) generator; the loader uses params_ema"
    for top in container:
        if top not in ("params", "params_ema") and top not in d_files:
            conv.skipped[str(top)] = "not read by the official loader"
    for stem, dsd in d_files.items():
        comp = COMPONENT_FILES.get(stem)
        for k, t in dsd.items():
            ours = f"comp_d.{comp}.{k}" if comp else map_discriminator_key(k)
            conv.state[ours] = t
            conv.origin[ours] = f"{stem}/params/{k}"
    if d_files:
        conv.notes.append("discriminators from " + ", ".join(sorted(d_files)))
    else:
        conv.notes.append("no discriminators (the release ships the generator only): "
                          "gan_weight and component weights are 0")
    conv.notes.append(f"GFPGAN{'v1Clean' if clean else 'v1'} at {size} px, channel multiplier "
                      f"{cm}, read from '{key}'")
    return conv


def _discriminator_files(fmt: str, container, extras: Optional[dict]) -> dict[str, dict]:
    """{file stem: state dict} of the discriminator files given as extras (or nested in the
    container under their file stems, as the golden fixture holds them)."""
    found = {}
    for stem in ("net_d", *COMPONENT_FILES):
        src = (extras or {}).get(stem)
        if src is None and isinstance(container, dict) and isinstance(container.get(stem), dict):
            src = container[stem]
        if src is not None:
            found[stem] = tensors_of(fmt, src, "params", f"BasicSR file {stem} with 'params'")
    if found and len(found) != 1 + len(COMPONENT_FILES):
        missing = [s for s in ("net_d", *COMPONENT_FILES) if s not in found]
        raise FormatError(f"format {fmt}: discriminator files come as a set of four; missing "
                          f"{', '.join(missing)}")
    unknown = set(extras or {}) - {"net_d", *COMPONENT_FILES}
    if unknown:
        raise FormatError(f"format {fmt}: unknown extra file role(s) {', '.join(sorted(unknown))}"
                          " (known: net_d, net_d_left_eye, net_d_right_eye, net_d_mouth)")
    return found


def convert_v1(container, overrides: Optional[dict] = None,
               extras: Optional[dict] = None) -> Converted:
    return _convert("gfpgan_v1", "v1", container, overrides, extras)


def convert_clean(container, overrides: Optional[dict] = None,
                  extras: Optional[dict] = None) -> Converted:
    return _convert("gfpgan_clean", "clean", container, overrides, extras)


V1 = Format(
    name="gfpgan_v1", arch="gfpgan",
    description="GFP-GAN v1 (the paper's model, GFPGANv1.pth: BasicSR {params_ema}, "
                "channel multiplier 1) [+ the four training discriminators] -> our gfpgan",
    official_files={"GFPGANv1.pth": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert_v1,
    weights={"GFPGANv1.pth": "gfpgan_v1"},
    feeds="GFP-GAN paper (CVPR'21) CelebA-Test table; the GFP-GAN row of Panini-Net Table 1",
)

CLEAN = Format(
    name="gfpgan_clean", arch="gfpgan",
    description="GFP-GAN v1.2/v1.3/v1.4 (GFPGANv1Clean, channel multiplier 2: BasicSR "
                "{params_ema}) -> our gfpgan with version: clean",
    official_files={"GFPGANCleanv1-NoCE-C2.pth": None, "GFPGANv1.3.pth": None,
                    "GFPGANv1.4.pth": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert_clean,
    weights={"GFPGANCleanv1-NoCE-C2.pth": "gfpgan_v1_2", "GFPGANv1.3.pth": "gfpgan_v1_3",
             "GFPGANv1.4.pth": "gfpgan_v1_4"},
    feeds="CelebA-Test (PMRF table) GFPGAN row (the release it used is not stated there)",
)
