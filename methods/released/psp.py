"""``psp``: pixel2style2pixel checkpoints -> our ``psp`` method (GradualStyleEncoder + decoder).

Container (eladrich/pixel2style2pixel @ 5cfff385): ``{"state_dict": pSp.state_dict(), "opts":
vars(opts), "latent_avg": (n_styles, 512)}``, written by training/coach.py:282-290
(``__get_save_dict``) and read by models/psp.py:47-53 (``load_weights``: ``encoder`` and
``decoder`` ``load_state_dict(strict=True)`` on the keys with the ``encoder.`` / ``decoder.``
prefix stripped by ``get_keys``, models/psp.py:15-19; ``__load_latent_avg``); scripts/
inference.py:40-49 rebuilds the net from ``ckpt['opts']`` (``learn_in_w`` False and
``output_size`` 1024 when absent in older files).

Keys: ``encoder.*`` are ours (``input_layer``, ``body.{i}.shortcut_layer``/``res_layer``,
``styles.{i}.convs``/``linear``, ``latlayer1``/``2``); ``decoder.*`` -> ``generator.*`` (the
rosinality generator; ``*.kernel`` FIR buffers skipped after checking, ``noises.noise_{i}``
kept: pSp's inference uses them, ``randomize_noise=False``). ``latent_avg`` (n_styles, 512): the
decoder's w_avg repeated per style (models/psp.py:110-116) -> our ``latent_avg`` (kept per style).

Configuration from ``opts`` and the shapes: ``output_size`` -> ``out_size``; the IR-SE stages
(units and widths) from ``encoder.body.*``; the decoder shape from ``decoder.*``
(``methods.released.stylegan2.infer_arch``); ``encoder_input_size`` 256 (pSp resizes every input
to 256, configs/transforms_config.py); ``lq_size`` 256 (what the official inference feeds;
``--set lq_size=64`` for a 16x test set: inputs are resized to 256 bicubic before the
encoder, where pSp's test transform uses PIL bilinear); losses and optimiser from ``opts``
(``l2_lambda``, ``lpips_lambda``, ``id_lambda``, ``w_norm_lambda``, ``optim_name``,
``learning_rate``, ``batch_size``, ``max_steps``). Only ``GradualStyleEncoder`` with
``learn_in_w`` False and 3 input channels (the super-resolution / inversion models) is supported.
"""
from __future__ import annotations

import re
from typing import Optional

import torch

from methods.released.base import (Converted, Format, FormatError, apply_overrides, rename,
                                   split_kernels, tensors_of)
from methods.released.stylegan2 import infer_arch

WHERE_READ = (
    "eladrich/pixel2style2pixel@5cfff385 training/coach.py:282-290 (writes {state_dict, opts, "
    "latent_avg})",
    "eladrich/pixel2style2pixel@5cfff385 models/psp.py:15-19,47-53 (get_keys; encoder/decoder "
    "strict load_state_dict; __load_latent_avg)",
    "eladrich/pixel2style2pixel@5cfff385 scripts/inference.py:40-49 (opts from the checkpoint)",
)


def _stages(fmt: str, enc: dict) -> tuple[list[int], list[int]]:
    """IR-SE units and widths per stage from ``body.{i}.res_layer.1.weight`` shapes."""
    idx = sorted({int(m.group(1)) for k in enc
                  for m in [re.fullmatch(r"body\.(\d+)\.res_layer\.1\.weight", k)] if m})
    if not idx:
        raise FormatError(f"format {fmt}: no encoder.body.*.res_layer (not a GradualStyleEncoder"
                          " with IR-SE units)")
    widths, units = [], []
    for i in idx:
        w = int(enc[f"body.{i}.res_layer.1.weight"].shape[0])
        if widths and widths[-1] == w:
            units[-1] += 1
        else:
            widths.append(w)
            units.append(1)
    return units, widths


def convert(container, overrides: Optional[dict] = None) -> Converted:
    fmt = "psp"
    sd = tensors_of(fmt, container, "state_dict", "pSp checkpoint {state_dict, opts, latent_avg}")
    opts = container.get("opts") or {}
    if not isinstance(opts, dict):
        raise FormatError(f"format {fmt}: 'opts' is not a dict ({type(opts).__name__})")
    enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    if not enc or not dec:
        raise FormatError(f"format {fmt}: state_dict lacks 'encoder.*' or 'decoder.*' keys "
                          f"(first keys: {', '.join(list(sd)[:5])})")
    etype = opts.get("encoder_type", "GradualStyleEncoder")
    if etype != "GradualStyleEncoder" or opts.get("learn_in_w", False) \
            or int(opts.get("input_nc", 3)) != 3:
        raise FormatError(f"format {fmt}: encoder_type {etype!r}, learn_in_w "
                          f"{opts.get('learn_in_w')}, input_nc {opts.get('input_nc')}: only "
                          "GradualStyleEncoder, learn_in_w false, 3 input channels are supported")
    arch = infer_arch(fmt, dec, "decoder")
    out_size = int(opts.get("output_size", 1024))
    if out_size != arch["size"]:
        raise FormatError(f"format {fmt}: opts.output_size {out_size} but the decoder generates "
                          f"{arch['size']} px")
    units, widths = _stages(fmt, enc)
    fpn = int(enc["latlayer1.weight"].shape[0]) if "latlayer1.weight" in enc else widths[-1]
    entry = {
        "arch": "psp", "out_size": out_size, "lq_size": 256, "train_preset": "sr_bicubic",
        "train_overrides": {}, "steps": int(opts.get("max_steps", 500000)),
        "batch_size": int(opts.get("batch_size", 8)),
        "lr": float(opts.get("learning_rate", 1e-4)),
        "optimizer": "ranger" if opts.get("optim_name", "ranger") == "ranger" else "adam",
        "enc_units": units, "enc_widths": widths, "fpn_width": fpn,
        "start_from_latent_avg": bool(opts.get("start_from_latent_avg", True)),
        "l2_weight": float(opts.get("l2_lambda", 1.0)),
        "lpips_weight": float(opts.get("lpips_lambda", 0.8)), "lpips_net": "alex",
        "id_weight": float(opts.get("id_lambda", 0.1)), "id_net": "irse50",
        "w_norm_weight": float(opts.get("w_norm_lambda", 0.005)), "ema_decay": 0.0,
        "hflip": True, "encoder_init": "irse50", "encoder_input_size": 256,
        "random_init_losses": False, "prior_arch": arch,
    }
    entry = apply_overrides(entry, overrides, "the psp entry")
    conv = Converted(kind="method", arch="psp", config=entry, state={})
    mapped = rename({k: v for k, v in sd.items()}, [(r"decoder\.(.*)", r"generator.\1")])
    split_kernels({k: (f"state_dict/{s}", t) for k, (s, t) in mapped.items()}, conv)
    la = container.get("latent_avg")
    if isinstance(la, torch.Tensor):
        n_latent = 2 * (out_size.bit_length() - 1) - 2
        if la.ndim == 1:  # older files: one (512,) row (repeated per style as psp.py does)
            la = la.unsqueeze(0).expand(n_latent, -1)
            conv.notes.append("latent_avg (512,) repeated per style")
        conv.state["latent_avg"] = la
        conv.origin["latent_avg"] = "latent_avg"
    elif entry["start_from_latent_avg"]:
        raise FormatError(f"format {fmt}: start_from_latent_avg but the file has no latent_avg")
    else:
        conv.fill_from_init.append("latent_avg")
        conv.filled["latent_avg"] = "0 (unused: start_from_latent_avg false)"
    conv.skipped["opts"] = "read for the configuration (output_size, losses, optimiser)"
    return conv


FORMAT = Format(
    name="psp", arch="psp", kind="method",
    description="pixel2style2pixel checkpoint {state_dict: encoder.*/decoder.*, latent_avg, "
                "opts} -> our psp method (encoder at 256 px, 1024 px decoder)",
    official_files={"psp_celebs_super_resolution.pt": None},
    where_read=WHERE_READ, mapping_version=1, convert=convert,
    weights={"psp_celebs_super_resolution.pt": "psp_celebs_super_resolution"},
    feeds="Panini-Net Table 2 (16x SR) pSp row",
)
