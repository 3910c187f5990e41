"""Tiny configurations and generated data for tests and benchmarks (no params.yaml needed).

``tiny_params(tmp, **over)`` -> a validated ``Params`` with 32 px prior/Panini, a 4/8/8-wide DRE,
the trainer pointed at ``tmp/hq`` and ``tmp/ckpt``, MLflow off. ``make_hq(folder, n, size)``
writes ``n`` smooth random RGB PNG "faces" (deterministic).
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from pipeline.config import Params, build
from core.imageio import write_png
from core.seeding import rng_for


def make_hq(folder: str | Path, n: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Smooth random images (low-frequency noise upsampled) + a bright disc, as PNGs."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        rng = rng_for(seed, "tiny-hq", i)
        low = rng.random((4, 4, 3)).astype(np.float32)
        img = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((size, size),
                                                                             Image.BICUBIC))
        img = img.astype(np.float32) / 255
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
        img = np.where(disc, 0.5 * img + 0.5 * rng.random(3), img)
        write_png(folder / f"{i:05d}.png", np.clip(img, 0, 1))
    return folder


TINY = {
    "profile": "builtin",
    "seed": 7,
    "device": "cpu",
    "prior": {
        "arch": {"size": 32, "style_dim": 16, "n_mlp": 2, "channel_multiplier": 1,
                 "max_channels": 8, "lr_mlp": 0.01},
        "steps": 4, "batch_size": 4, "lr": 0.002, "r1_gamma": 1.0, "r1_every": 2,
        "path_reg_weight": 0.0, "path_reg_every": 4, "mixing_prob": 0.9, "ema_decay": 0.9,
        "stddev_group": 1, "hflip": True, "train_noise": "fixed",
    },
    "dre": {
        "widths": [4, 8, 8], "input_size": 16, "queue": 16, "momentum": 0.9,
        "temperature": 0.07, "steps": 3, "batch_size": 4, "lr": 0.03, "sgd_momentum": 0.9,
        "weight_decay": 1e-4, "preset": "panini_mfr", "hq_size": 32, "preset_overrides": {},
    },
    "train": {
        "hq_dir": "hq", "checkpoint_dir": "ckpt", "amp": False, "channels_last": False,
        "log_every": 0, "sample_every": 0, "ckpt_every": 0, "num_workers": 0,
        "allow_random_vgg": True,
    },
    "methods": {
        "bicubic": {"arch": "bicubic", "out_size": 32, "lq_size": 16},
        "panini": {
            "arch": "panini", "variant": "mfr", "fusion": "dafi", "out_size": 32, "lq_size": 16,
            "train_preset": "panini_mfr", "train_overrides": {}, "steps": 4, "batch_size": 4,
            "lr": 1e-3, "betas": [0.9, 0.99], "lr_schedule": "cosine", "min_lr": 1e-6,
            "n_fusion": 4, "fuse_point": "block", "ife_channels": 0, "rrdb_channels": 4,
            "num_rrdb": 1, "rrdb_growth": 4, "cbam_reduction": 2, "l1_weight": 1.0,
            "perceptual_weight": 0.0, "gan_weight": 0.01, "finetune_dre": False,
            "finetune_generator": True, "hflip": True, "ema_decay": 0.0, "dr_dim": 0,
        },
    },
    "mlflow": {"enabled": False, "tracking_uri": "sqlite:///mlflow.db", "experiment": "t"},
}


def tiny_dict(tmp: str | Path) -> dict:
    d = copy.deepcopy(TINY)
    d["train"]["hq_dir"] = str(Path(tmp) / "hq")
    d["train"]["checkpoint_dir"] = str(Path(tmp) / "ckpt")
    sr = dict(d["methods"]["panini"], variant="sr", lq_size=4, train_preset="sr16_bilinear",
              train_overrides={"factor": 8})
    d["methods"]["panini_sr"] = sr
    d["methods"]["panini_catconv"] = dict(sr, fusion="catconv")
    d["methods"].update(copy.deepcopy(TINY_BASELINES))
    return d


#: tiny GPEN / GFP-GAN / pSp entries (32 px prior of TINY); the built-in ones are in params.yaml
TINY_BASELINES = {
    "gpen": {
        "arch": "gpen", "out_size": 32, "lq_size": 16, "train_preset": "panini_mfr",
        "train_overrides": {}, "steps": 4, "batch_size": 4, "lr": 2e-3, "noise": "concat",
        "finetune_generator": True, "concat_init": 0.01, "adv_weight": 1.0,
        "content_weight": 1.0, "content_loss": "l1", "fm_weight": 0.02, "id_weight": 0.0,
        "id_net": "facenet", "r1_gamma": 1.0, "r1_every": 2, "d_stddev_group": 0,
        "ema_decay": 0.0, "hflip": True,
    },
    "gfpgan": {
        "arch": "gfpgan", "out_size": 32, "lq_size": 16, "train_preset": "panini_mfr",
        "train_overrides": {}, "steps": 4, "batch_size": 4, "lr": 2e-3, "sft": "cs",
        "pixel_weight": 0.1, "pyramid_weight": 1.0, "pyramid_until": 50000,
        "perceptual_weight": 0.0, "style_weight": 0.0, "gan_weight": 0.1, "r1_gamma": 10.0,
        "r1_every": 2, "component_weight": 1.0, "component_style_weight": 200.0,
        "component_crop": [8, 8], "component_channels": [4, 8, 8], "eye_enlarge": 1.4,
        "id_weight": 0.0, "id_net": "arcface18", "init_latent_avg": True, "ema_decay": 0.0,
        "hflip": True,
    },
    "psp": {
        "arch": "psp", "out_size": 32, "lq_size": 4, "train_preset": "sr16_bilinear",
        "train_overrides": {"factor": 8}, "steps": 4, "batch_size": 4, "lr": 1e-3,
        "enc_units": [1, 1, 1, 1], "enc_widths": [4, 4, 8, 8], "fpn_width": 8,
        "start_from_latent_avg": True, "l2_weight": 1.0, "lpips_weight": 0.0,
        "lpips_net": "alex", "id_weight": 0.0, "id_net": "facenet", "w_norm_weight": 0.005,
        "ema_decay": 0.0, "hflip": True,
    },
}


def tiny_params(tmp: str | Path, edit=None) -> Params:
    """Validated tiny Params; ``edit(dict)`` may modify the raw dict first."""
    d = tiny_dict(tmp)
    if edit is not None:
        edit(d)
    return build(Params, d)


def baseline_env(tmp: str | Path, n: int = 8, edit=None):
    """Tiny params + built-in synthetic faces (with faces.json landmarks) at 32 px in
    ``tmp/hq`` + a 2-step prior checkpoint in ``tmp/ckpt/prior`` (for the baseline tests)."""
    from methods.trainer import train
    from pipeline.cmd_synth import write_faces
    from pipeline.cmd_train import build_trainee

    tmp = Path(tmp)
    write_faces(tmp / "hq", n=n, size=32, seed=0)
    params = tiny_params(tmp, edit=edit)
    train(build_trainee("prior", params), params, tmp / "ckpt" / "prior", steps=2,
          show_progress=False)
    return params


def ready_method(name: str, params):
    """Build methods entry ``name`` and run its ``setup_training`` on the CPU (prior loaded)."""
    import torch

    from methods.base import TrainContext
    from pipeline.cmd_train import build_trainee
    m = build_trainee(name, params)
    m.setup_training(TrainContext(params, torch.device("cpu"), params.train.checkpoint_dir))
    return m


def fixed_batch(m, params, n: int = 4) -> dict:
    """A fixed training batch of ``n`` samples from ``params.train.hq_dir`` through the method's
    own sample function (with the image ids when it needs them)."""
    import torch

    from methods.data import HQFolder
    folder = HQFolder(params.train.hq_dir, m.out_size)
    fn = m.sample_fn()
    ids = getattr(fn, "needs_ids", False)
    samples = [fn([folder[i]], rng_for(1, "t", i), **({"ids": [folder.files[i].stem]} if ids
                                                       else {})) for i in range(n)]
    return {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}


def check_resume_equality(name: str, params, tmp: str | Path, key: str = "loss_g"):
    """Train ``name`` for its steps in one go and as 2 steps + ``--resume``; assert the two final
    checkpoints are equal (model tensors, bitwise) and the per-step ``key`` logs match exactly.
    -> the final state."""
    import torch

    from methods.trainer import load_checkpoint, train
    from pipeline.cmd_train import build_trainee
    tmp = Path(tmp)
    full = train(build_trainee(name, params), params, tmp / "full", show_progress=False)
    train(build_trainee(name, params), params, tmp / "split", stop_after=2, show_progress=False)
    rest = train(build_trainee(name, params), params, tmp / "split", resume=True,
                 show_progress=False)
    assert rest["step"] == full["step"]
    a = load_checkpoint(tmp / "full" / "model.pt")["model"]
    b = load_checkpoint(tmp / "split" / "model.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:  # exact: the suite promises bitwise resume (same machine and thread count)
        assert torch.equal(a[k], b[k]), k
    assert [h[key] for h in full["history"]] == [h[key] for h in rest["history"]]
    return a


def check_descent(objective, opt, steps: int = 4) -> tuple[float, float]:
    """Take ``steps`` optimiser steps on ``objective()`` (a scalar loss tensor; make it
    deterministic, e.g. fixed noise) and assert that it went down. -> (first, last)."""
    first = float(objective().detach())
    for _ in range(steps):
        loss = objective()
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(objective().detach())
    assert last < first, f"objective did not go down: {first} -> {last}"
    return first, last
