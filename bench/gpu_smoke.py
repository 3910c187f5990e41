"""``make gpu-smoke``: the paper profile on one CUDA GPU in minutes, before anyone spends days.

    python -m bench.gpu_smoke [--out gpu_smoke.json] [--budget-s 540] [--parts ...]
    python -m bench.gpu_smoke --tiny --device cpu --out /tmp/smoke.json   # plumbing, 32 px, CPU

Writes ``gpu_smoke.json`` (rewritten atomically after every part, so a crash or a timeout keeps
what was measured). Parts, in this order, each in its own try/except (an error is recorded and
the next part runs) and under one global time budget (parts that no longer fit are recorded as
skipped):

1. ``evaluator``: ``metrics.evaluate.Evaluator`` (panini protocol: PSNR, SSIM, LPIPS-alex, FID)
   on generated 512 px pairs on the GPU, cold (GT features computed) and warm (cached): images
   per second; agreement with the same evaluation on the CPU (PSNR/SSIM per image, LPIPS per
   image, FID, and the raw LPIPS / Inception features: max abs differences, with pass flags
   for "identical" and "within 1e-4").
2. ``train/<model>/b<B>/<precision>``: for the prior at 1024, Panini MFR 512->1024, Panini SR
   64->1024, GPEN, GFP-GAN (512->1024) and pSp (256->1024) at paper size: the trainee built from
   the paper profile (random-init prior, DRE and loss backbones, every loss kept in the graph:
   ``random_init_losses``), ``setup_training``, one real batch from 8 generated faces through
   the method's own sample function, then the trainer's own step (``methods.trainer._Run``:
   forward, backward through the GradScaler, optimiser step, EMA): median step time of
   ``--steps`` after ``--warmup`` warm-up steps, ``torch.cuda.max_memory_allocated``, the
   losses (finite?). At batch 1 and at the paper profile's per-process batch (global batch /
   the launcher's process count), with AMP (float16 autocast); the fp32 runs of the paper batch
   (the precision the official repositories and the paper profile train in) come last.
3. ``pipeline``: ``dvc repro`` of the paper profile in a scratch copy of the repository, on 8
   generated faces at 1024 px, every training 2 steps, one process, the main methods (bicubic,
   Panini MFR/SR, GPEN, GFP-GAN, pSp, Cat-Conv) and the mfr / sr / ladder sets: exit status,
   wall time, the report's metrics.

Without CUDA (``--device cuda``, the default) it prints that it skipped and exits 0, writing
nothing. Numbers made with random-init weights measure speed and memory only.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FORMAT = "frbench-gpu-smoke/1"
#: the models of the smoke run: params entry (or prior) -> label
MODELS = {"prior": "prior 1024", "panini": "Panini MFR 512->1024",
          "panini_sr": "Panini SR 64->1024", "gpen": "GPEN 512->1024",
          "gfpgan": "GFP-GAN 512->1024", "psp": "pSp 256->1024"}
PIPELINE_METHODS = ["bicubic", "panini", "panini_sr", "panini_catconv", "gpen", "gfpgan", "psp"]


# ------------------------------------------------------------------------------------ report

class Report:
    """The JSON file, rewritten atomically after every change."""

    def __init__(self, path: Path, meta: dict):
        self.path = Path(path)
        self.data: dict[str, Any] = {"format": FORMAT, **meta, "parts": {}}
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.data, indent=1, default=_jsonable) + "\n")
        os.replace(tmp, self.path)

    def record(self, name: str, entry: dict) -> None:
        self.data["parts"][name] = entry
        self.write()


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return str(x)


class Budget:
    def __init__(self, seconds: float):
        self.t0, self.total = time.perf_counter(), float(seconds)

    def left(self) -> float:
        return self.total - (time.perf_counter() - self.t0)


def run_part(report: Report, budget: Budget, name: str, need_s: float, fn: Callable[[], dict],
             device) -> None:
    """Run one part: skipped when less than ``need_s`` of the budget is left; any exception is
    recorded (type, message, traceback tail) and the run goes on."""
    if budget.left() < need_s:
        report.record(name, {"status": "skipped", "reason": f"time budget: {budget.left():.0f} s "
                                                            f"left, part needs ~{need_s:.0f} s"})
        print(f"gpu-smoke: {name}: skipped (time budget)", flush=True)
        return
    t = time.perf_counter()
    try:
        out = fn()
        entry = {"status": "ok", **out}
    except BaseException as e:  # noqa: BLE001 - one part's failure must not lose the rest
        if isinstance(e, KeyboardInterrupt):
            raise
        entry = {"status": "error", "error": f"{type(e).__name__}: {str(e)[:500]}",
                 "traceback": traceback.format_exc()[-2000:]}
    entry["seconds"] = round(time.perf_counter() - t, 2)
    report.record(name, entry)
    print(f"gpu-smoke: {name}: {entry['status']} ({entry['seconds']:.1f} s)"
          + (f" {entry['error']}" if entry["status"] == "error" else ""), flush=True)
    _free(device)


def _free(device) -> None:
    gc.collect()
    if getattr(device, "type", "") == "cuda":
        import torch
        torch.cuda.empty_cache()


def _sync(device) -> None:
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------ params

TINY_OVERLAY = {  # 32 px on the built-in profile: the same code paths in seconds on a CPU
    "prior.arch": {"size": 32, "style_dim": 16, "n_mlp": 2, "channel_multiplier": 1,
                   "max_channels": 8, "lr_mlp": 0.01},
    "prior.batch_size": 2,
    "dre.widths": [4, 8, 8], "dre.input_size": 16, "dre.queue": 16, "dre.batch_size": 2,
    "dre.hq_size": 32,
}
_TINY_METHODS = {
    "bicubic": {"out_size": 32, "lq_size": 16},
    "panini": {"out_size": 32, "lq_size": 16, "n_fusion": 4, "rrdb_channels": 4, "rrdb_growth": 4,
               "batch_size": 2},
    "panini_sr": {"out_size": 32, "lq_size": 4, "n_fusion": 4, "rrdb_channels": 4,
                  "rrdb_growth": 4, "batch_size": 2},
    "panini_catconv": {"out_size": 32, "lq_size": 4, "n_fusion": 4, "rrdb_channels": 4,
                       "rrdb_growth": 4, "batch_size": 2},
    "gpen": {"out_size": 32, "lq_size": 16, "batch_size": 2},
    "gfpgan": {"out_size": 32, "lq_size": 16, "batch_size": 2, "component_crop": [8, 8],
               "component_channels": [4, 8, 8]},
    "psp": {"out_size": 32, "lq_size": 4, "batch_size": 2, "enc_widths": [4, 4, 8, 8],
            "fpn_width": 8},
}


def smoke_dict(tiny: bool, work: Path, device: str) -> dict:
    """The paper profile (``tiny``: the built-in one at 32 px) with the changes a smoke run on
    one machine without weight files needs: seeded random-init backbones allowed (and kept in
    every loss at paper size), GFP-GAN's landmarks from the generated faces, scratch folders,
    MLflow off."""
    import yaml

    from pipeline import profiles

    d = yaml.safe_load(profiles.render("builtin" if tiny else "paper", ROOT / "profiles"))
    if tiny:
        over = dict(TINY_OVERLAY)
        for m, kv in _TINY_METHODS.items():
            for k, v in kv.items():
                over[f"methods.{m}.{k}"] = v
        for m in ("gpen_noft", "gpen_nonoise", "gpen_noiseadd"):
            over.update({f"methods.{m}.{k}": v for k, v in _TINY_METHODS["gpen"].items()})
        over.update({f"methods.gfpgan_sft.{k}": v for k, v in _TINY_METHODS["gfpgan"].items()})
        d = profiles.apply_overlay(d, over, "gpu_smoke tiny overlay")
    d["device"] = device
    d["weights"]["allow_random_init"] = True
    d["weights"]["allow_download"] = False
    d["train"]["allow_random_vgg"] = True
    d["train"]["hq_dir"] = str(work / "faces")
    d["train"]["checkpoint_dir"] = str(work / "ckpt")
    d["train"]["num_workers"] = 0
    d["mlflow"]["enabled"] = False
    if "source" in d["prior"]:
        d["prior"]["source"] = "train"  # no released file here: a random-init prior
    for m in d["methods"].values():
        if m["arch"] in ("gpen", "gfpgan", "psp"):
            # paper: keep the identity / LPIPS / VGG losses in the graph (their cost is real);
            # tiny: drop them (full-width backbones would dominate a 32 px plumbing check)
            m["random_init_losses"] = not tiny
        if m["arch"] == "gfpgan":
            m["landmarks"] = ""  # <train.hq_dir>/faces.json of the generated faces
    return d


def smoke_params(tiny: bool, work: Path, device: str):
    from pipeline.config import Params, build
    return build(Params, smoke_dict(tiny, work, device))


def make_faces(folder: Path, n: int, size: int, render: int = 128) -> Path:
    """``n`` built-in synthetic faces drawn at ``render`` px (fast) and resized (PIL bicubic) to
    ``size``, with their ``faces.json`` landmarks (in render-size pixels, scaled by their
    ``size`` field where used)."""
    from PIL import Image

    from core.imageio import write_png
    from pipeline.synthfaces import face_id, render_face

    folder.mkdir(parents=True, exist_ok=True)
    faces = {}
    for i in range(n):
        img, info = render_face(i, min(render, size), 2026)
        if img.shape[0] != size:
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
        write_png(folder / f"{face_id(i)}.png", img)
        faces[face_id(i)] = info
    (folder / "faces.json").write_text(json.dumps(faces, default=_jsonable))
    return folder


def random_checkpoints(params, ckpt: Path) -> dict:
    """Seeded random-init prior and DRE checkpoints (complete, step 0 of 0, in the trainer's own
    format, written by its ``_Run.save``) for the methods' ``setup_training``."""
    from methods.trainer import _Run
    from pipeline.cmd_train import build_trainee
    out = {}
    for name in ("prior", "dre"):
        t = time.perf_counter()
        r = _Run(build_trainee(name, params), params, ckpt / name, steps=1, device="cpu")
        r._index_params()
        r.total = 0
        r.save(0)
        out[name] = round(time.perf_counter() - t, 2)
    return out


# --------------------------------------------------------------------------------- training

def real_batch(trainee, params, batch: int) -> dict:
    """Step 0's batch of ``batch`` samples through the trainee's own sample function."""
    from methods.data import HQFolder, StepBatches
    data = StepBatches(HQFolder(params.train.hq_dir, trainee.hq_size), trainee.sample_fn(),
                       seed=int(params.seed), name=trainee.name, global_batch=batch,
                       images_per_sample=trainee.images_per_sample)
    return data[0]


def measure_training(name: str, params, device, batch: int, steps: int, warmup: int,
                     amp: bool, work: Optional[Path] = None) -> dict:
    """The trainer's own run state (``methods.trainer._Run``: ``setup_training``, device,
    channels_last, optimisers, GradScalers, EMA) and its ``step`` (forward, backward,
    optimiser step, EMA, ``after_step``) on one real batch, ``warmup + steps`` times."""
    import dataclasses

    import torch

    from methods.trainer import _Run
    from pipeline.cmd_train import build_trainee

    on_cuda = device.type == "cuda"
    p = dataclasses.replace(params, train=dataclasses.replace(params.train, amp=bool(amp)))
    t0 = time.perf_counter()
    trainee = build_trainee(name, p)
    run_dir = Path(work or tempfile.gettempdir()) / "runs" / f"{name}-b{batch}"
    r = _Run(trainee, p, run_dir, steps=warmup + steps, device=str(device))
    r._index_params()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = r.to_device(real_batch(trainee, p, batch))
    data_s = time.perf_counter() - t0
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    trainee.train()
    times, losses = [], []
    for s in range(warmup + steps):
        _sync(device)
        t = time.perf_counter()
        logs = r.step(b, s)
        _sync(device)
        if s >= warmup:
            times.append(time.perf_counter() - t)
        losses.append({k: v for k, v in logs.items() if k.startswith("loss")})
    finite = all(math.isfinite(v) for d in losses for v in d.values())
    med = statistics.median(times)
    n_params = sum(q.numel() for q in trainee.parameters())
    out = {"model": MODELS.get(name, name), "batch": batch, "amp": r.amp,
           "step_s_median": round(med, 5), "step_s_mean": round(statistics.fmean(times), 5),
           "step_s": [round(x, 5) for x in times], "images_per_s": round(batch / med, 3),
           "peak_mem_gib": (round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 3)
                            if on_cuda else None),
           "losses_finite": finite, "first_losses": losses[0], "last_losses": losses[-1],
           "params_m": round(n_params / 1e6, 2), "build_s": round(build_s, 2),
           "batch_prep_s": round(data_s, 2),
           "lq_size": getattr(trainee, "lq_size", None),
           "out_size": getattr(trainee, "out_size", trainee.hq_size),
           "provenance": dict(trainee.provenance)}
    del trainee, r, b
    if not finite:
        raise RuntimeError(f"non-finite losses: {losses}")
    return out


# -------------------------------------------------------------------------------- evaluator

def measure_evaluator(device, work: Path, pairs: int, size: int) -> dict:
    import csv

    import torch

    from bench.evaluate import make_pairs
    from metrics.config import WeightsConfig
    from metrics.evaluate import Evaluator, ieee_fp32

    root = work / "eval"
    res, gt = make_pairs(root, pairs, size)
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    mets = ["psnr", "ssim", "lpips", "fid"]

    def run(dev: str, tag: str):
        t = time.perf_counter()
        ev = Evaluator("panini", mets, weights=w, device=dev, batch_size=16,
                       cache_dir=root / f"cache_{tag}")
        build = time.perf_counter() - t
        t = time.perf_counter()
        s = ev.evaluate(res, gt, out=root / f"out_{tag}")
        _sync(torch.device(dev))
        cold = time.perf_counter() - t
        t = time.perf_counter()
        ev.evaluate(res, gt)
        _sync(torch.device(dev))
        warm = time.perf_counter() - t
        with open(root / f"out_{tag}" / "per_image.csv") as f:
            rows = list(csv.DictReader(f))
        per = {m: np.array([float(r[m]) for r in rows]) for m in ("psnr", "ssim", "lpips")}
        return ev, s, per, {"build_s": round(build, 2), "cold_s": round(cold, 3),
                            "warm_s": round(warm, 3),
                            "images_per_s_cold": round(pairs / cold, 2),
                            "images_per_s_warm": round(pairs / warm, 2)}

    ev_d, s_d, per_d, t_d = run(str(device), "dev")
    ev_c, s_c, per_c, t_c = run("cpu", "cpu")
    # raw network outputs on the same images, both devices
    from core.imageio import read_image
    files = sorted(gt.glob("*.png"))[:8]
    x = torch.from_numpy(np.stack([read_image(f) for f in files])).permute(0, 3, 1, 2)
    x = x.float().div(255).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fc = ev_c.inception(x)
        lc = ev_c.lpips.features(x * 2 - 1)
        with ieee_fp32(device):
            fd = ev_d.inception(x.to(device)).cpu()
            ld = [t.cpu() for t in ev_d.lpips.features(x.to(device) * 2 - 1)]
    feat_diff = float((fd - fc).abs().max())
    lfeat_diff = max(float((a - b).abs().max()) for a, b in zip(ld, lc))
    d = {m: float(np.abs(per_d[m] - per_c[m]).max()) for m in per_d}
    fid_diff = abs(s_d["set_metrics"]["fid"] - s_c["set_metrics"]["fid"])
    return {"pairs": pairs, "size": size, "protocol": "panini", "metrics": mets,
            "device": t_d, "cpu": t_c,
            "speedup_cold_vs_cpu": round(t_c["cold_s"] / t_d["cold_s"], 2),
            "agreement": {"psnr_max_abs_diff": d["psnr"], "ssim_max_abs_diff": d["ssim"],
                          "psnr_ssim_identical": d["psnr"] == 0.0 and d["ssim"] == 0.0,
                          "psnr_ssim_within_1e-10": d["psnr"] <= 1e-10 and d["ssim"] <= 1e-10,
                          "lpips_max_abs_diff": d["lpips"],
                          "inception_feature_max_abs_diff": feat_diff,
                          "lpips_feature_max_abs_diff": lfeat_diff,
                          "features_within_1e-4": feat_diff <= 1e-4 and lfeat_diff <= 1e-4,
                          "fid_abs_diff": fid_diff},
            "values_device": {m: s_d["metrics"][m]["mean"] for m in ("psnr", "ssim", "lpips")}
            | {"fid": s_d["set_metrics"]["fid"]}}


# --------------------------------------------------------------------------------- pipeline

#: not copied into the scratch repository: pipeline outputs and caches at its root, anywhere
#: bytecode and test caches
_SKIP_ROOT = {".git", ".venv", "data", "cache", "checkpoints", "restored", "results", "mlruns",
              "mlflow.db", "dvc.lock", "gpu_smoke.json", ".frbench_mlflow_parent"}
_SKIP_ANY = {"__pycache__", ".pytest_cache"}


def pipeline_dict(work: Path, device: str, tiny: bool = False) -> dict:
    """The paper profile for a 2-step ``dvc repro`` on 8 generated 1024 px faces (folder
    source, like the paper's FFHQ/CelebA-HQ folders), one process, the main methods
    (``tiny``: the 32 px built-in variant, for the CPU test of this plumbing)."""
    d = smoke_dict(tiny, work, device)
    d["data"]["source"] = "folder"
    d["data"]["size"] = d["prior"]["arch"]["size"]
    d["evaluate"]["protocol"], d["evaluate"]["metrics"] = "panini", None  # any size (tiny: 32)
    faces = str(work / "faces")
    d["data"]["train"] = {"n": 0, "seed": 101, "folder": faces}
    d["data"]["test"] = {"n": 0, "seed": 202, "folder": faces}
    d["data"]["workers"] = 4
    d["testsets"]["names"] = ["mfr", "sr", "ladder"]
    for t in d["testsets"]["sets"].values():
        t["n"] = 0  # all 8 faces
    d["testsets"]["workers"] = 4
    d["train"]["hq_dir"] = "data/hq/train"
    d["train"]["checkpoint_dir"] = "checkpoints"
    d["train"].update(log_every=1, sample_every=0, ckpt_every=0)
    d["prior"]["steps"] = d["dre"]["steps"] = 2
    for name, m in d["methods"].items():
        if "steps" in m:
            m["steps"] = 2
        if m["arch"] == "gfpgan":
            m["landmarks"] = str(work / "faces" / "faces.json")
    d["pipeline"].update(train=list(PIPELINE_METHODS), methods=["bicubic", "panini", "gpen",
                                                                "gfpgan"],
                         testsets=["mfr", "ladder"], sr_methods=["bicubic", "panini_sr", "psp"],
                         sr_testsets=["sr"], ablations=["panini_catconv"],
                         ablation_testsets=["sr"], launcher="python -m pipeline.cli")
    return d


def copy_repo(dst: Path) -> Path:
    def ignore(dirname, names):
        d = Path(dirname).resolve()
        root, dvc_dir = d == ROOT.resolve(), d == (ROOT / ".dvc").resolve()
        return [n for n in names if n in _SKIP_ANY or n.endswith((".pyc", ".tmp"))
                or (root and n in _SKIP_ROOT) or (dvc_dir and n in ("tmp", "cache"))]
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)
    return dst


def run_pipeline(work: Path, device: str, timeout: float, tiny: bool = False) -> dict:
    import yaml

    repo = copy_repo(work / "repo")
    (repo / "params.yaml").write_text(yaml.safe_dump(pipeline_dict(work, device, tiny),
                                                     sort_keys=False))
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(repo), FRBENCH_MLFLOW="0", DVC_NO_ANALYTICS="1")
    if shutil.which("git", path=env["PATH"]):
        subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    else:
        with open(repo / ".dvc" / "config.local", "a") as f:
            f.write("[core]\n    no_scm = true\n")
    dvc = [str(bindir / "dvc")] if (bindir / "dvc").exists() else [sys.executable, "-m", "dvc"]
    t = time.perf_counter()
    try:
        p = subprocess.run(dvc + ["repro"], cwd=repo, env=env, capture_output=True, text=True,
                           timeout=max(1.0, timeout))
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else \
            (e.stdout or ""), f"dvc repro killed after {timeout:.0f} s (budget)"
    wall = time.perf_counter() - t
    ran = [ln.split("'")[1] for ln in out.splitlines() if ln.startswith("Running stage '")]
    metrics_file = repo / "reports" / "metrics.json"
    res = {"returncode": rc, "wall_s": round(wall, 1), "stages_run": ran,
           "stdout_tail": out[-3000:], "stderr_tail": err[-3000:]}
    if rc == 0 and metrics_file.is_file():
        res["metrics"] = json.loads(metrics_file.read_text())
    logs = sorted((repo / "checkpoints").glob("*/train_log.json"))
    res["train_mean_step_s"] = {p.parent.name: json.loads(p.read_text()).get("mean_step_s")
                                for p in logs}
    if rc != 0:
        raise RuntimeError(f"dvc repro exited {rc}: {err.strip().splitlines()[-1:] or out[-300:]}"
                           + f" | {json.dumps(res)[:1500]}")
    return res


# ------------------------------------------------------------------------------------- main

def environment(device) -> dict:
    import torch
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "host": platform.node(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        env.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2 ** 30, 1),
                   cudnn=torch.backends.cudnn.version(), gpu_count=torch.cuda.device_count())
    return env


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="gpu_smoke.json")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true",
                    help="built-in profile at 32 px (plumbing check; CPU in seconds)")
    ap.add_argument("--budget-s", type=float, default=540.0,
                    help="global time budget (default 540 s: the whole run stays under 10 min)")
    ap.add_argument("--parts", default=None,
                    help="comma list of evaluator,train,pipeline,train_fp32 (default: all; "
                         "--tiny: evaluator,train)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of models to train")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10; tiny 2)")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 3; tiny 1)")
    ap.add_argument("--eval-pairs", type=int, default=None, help="default 64 (tiny 4)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp dir, removed)")
    args = ap.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-smoke: skipped: no CUDA device here (torch.cuda.is_available() is False); "
              f"nothing measured, {args.out} not written. Run `make gpu-smoke` on a machine "
              "with an NVIDIA GPU (or `python -m bench.gpu_smoke --tiny --device cpu` to check "
              "the plumbing).")
        return 0
    device = torch.device(args.device)
    parts = set((args.parts or ("evaluator,train" if args.tiny else
                                "evaluator,train,pipeline,train_fp32")).split(","))
    steps = args.steps or (2 if args.tiny else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    pairs = args.eval_pairs or (4 if args.tiny else 64)
    models = [m for m in args.models.split(",") if m]
    budget = Budget(args.budget_s)
    ctx = tempfile.TemporaryDirectory(prefix="frbench-gpu-smoke-") if args.work is None else \
        contextlib.nullcontext(args.work)
    with ctx as wdir:
        work = Path(wdir)
        work.mkdir(parents=True, exist_ok=True)
        params = smoke_params(args.tiny, work, str(device))
        from pipeline.config import launcher_processes
        nproc = launcher_processes(params.pipeline.launcher)
        report = Report(Path(args.out), {
            "tiny": args.tiny, "device": str(device), "environment": environment(device),
            "budget_s": args.budget_s, "steps": steps, "warmup": warmup,
            "profile": "builtin@32px" if args.tiny else "paper",
            "launcher_processes": nproc,
            "note": "random-init weights: speed, memory and finiteness only"})
        size = params.prior.arch.size
        t = time.perf_counter()
        make_faces(work / "faces", 8, size)
        ck = random_checkpoints(params, work / "ckpt")
        report.data["setup"] = {"faces_s": round(time.perf_counter() - t - sum(ck.values()), 2),
                                "random_checkpoints_s": ck}
        report.write()
        if "evaluator" in parts:
            run_part(report, budget, "evaluator", 20 if args.tiny else 60,
                     lambda: measure_evaluator(device, work, pairs, 64 if args.tiny else 512),
                     device)

        def batches(name):
            glob = params.prior.batch_size if name == "prior" else \
                params.methods[name].batch_size
            return [1, max(1, glob // nproc)]

        if "train" in parts:
            for name in models:
                for b in dict.fromkeys(batches(name)):
                    run_part(report, budget, f"train/{name}/b{b}/amp", 5 if args.tiny else 25,
                             lambda name=name, b=b: measure_training(
                                 name, params, device, b, steps, warmup, amp=True, work=work),
                             device)
        if "pipeline" in parts:
            need = 240.0
            run_part(report, budget, "pipeline", 30 if args.tiny else need,
                     lambda: run_pipeline(work, str(device), budget.left() - 15, args.tiny),
                     device)
        if "train_fp32" in parts:
            for name in models:
                b = batches(name)[-1]
                run_part(report, budget, f"train/{name}/b{b}/fp32", 5 if args.tiny else 25,
                         lambda name=name, b=b: measure_training(
                             name, params, device, b, steps, warmup, amp=False, work=work),
                         device)
        report.data["total_s"] = round(time.perf_counter() - budget.t0, 1)
        report.write()
    summarize(report.data)
    return 0


def summarize(data: dict) -> None:
    print(f"\ngpu-smoke ({data['device']}, {data['environment'].get('gpu', 'cpu')}), "
          f"{data.get('total_s')} s:")
    for name, e in data["parts"].items():
        if e["status"] != "ok":
            print(f"  {name:28s} {e['status']}: {e.get('error') or e.get('reason')}")
        elif name.startswith("train/"):
            mem = e["peak_mem_gib"]
            print(f"  {name:28s} {e['step_s_median'] * 1000:9.1f} ms/step  "
                  f"{e['images_per_s']:8.2f} img/s  peak {mem if mem is not None else '-'} GiB"
                  f"  losses finite {e['losses_finite']}")
        elif name == "evaluator":
            a = e["agreement"]
            print(f"  evaluator {e['size']} px: {e['device']['images_per_s_cold']} img/s cold, "
                  f"{e['device']['images_per_s_warm']} warm; vs CPU: PSNR/SSIM max diff "
                  f"{a['psnr_max_abs_diff']:.2g}/{a['ssim_max_abs_diff']:.2g}, features "
                  f"{a['inception_feature_max_abs_diff']:.2g}/{a['lpips_feature_max_abs_diff']:.2g}")
        elif name == "pipeline":
            print(f"  pipeline: dvc repro {e['wall_s']} s, {len(e['stages_run'])} stages")


if __name__ == "__main__":
    sys.exit(main())
