"""Benchmark: training step time and peak memory per stage at the built-in tier.

    python -m bench.train [--params params.yaml] [--steps 6] [--faces 32] [--threads N]
                          [--stages prior dre panini ...] [--device cpu|cuda]

Runs each stage for ``--steps`` steps with the shared trainer (methods/trainer.py) on freshly
drawn built-in synthetic faces at the prior's size, in a temporary folder (prior and DRE first,
since the methods load them), and prints per stage: mean step time (first step excluded: warm-up),
steps/s, images/s (a step = waiting for its batch + the updates; the data part is shown
separately), and peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the
peak resident set size (VmRSS sampled every 5 ms) above the level before the stage, and the
Python-heap peak from tracemalloc (torch's CPU allocator is invisible to tracemalloc, hence RSS).
Add a method by appending its params entry name to ``STAGES`` (or pass ``--stages``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

#: stages in dependency order (the baselines need only the prior)
STAGES = ["prior", "dre", "bicubic", "panini", "panini_catconv", "panini_sr",
          "gpen", "gpen_noft", "gpen_nonoise", "gpen_noiseadd", "gfpgan", "gfpgan_sft", "psp"]


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakRSS:
    def __init__(self, every: float = 0.005):
        self.every, self.peak, self._stop = every, 0.0, threading.Event()

    def __enter__(self):
        self.base = _rss_mb()
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.every)

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def make_faces(folder: Path, n: int, size: int, seed: int) -> None:
    """Built-in faces with their faces.json (GFP-GAN's component boxes read it)."""
    from pipeline.cmd_synth import write_faces

    write_faces(folder, n=n, size=size, seed=seed)


def bench_stage(name: str, params, root: Path, steps: int, device: str) -> dict:
    import torch

    from methods.trainer import train
    from pipeline.cmd_train import build_trainee

    trainee = build_trainee(name, params)
    n_params = sum(p.numel() for p in trainee.parameters())
    on_cuda = device.startswith("cuda")
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    t0 = time.perf_counter()
    with PeakRSS() as rss:
        res = train(trainee, params, root / "ckpt" / name, steps=steps, device=device,
                    show_progress=False)
    wall = time.perf_counter() - t0
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = [h["time_s"] for h in res["history"]][1:]
    data = [h.get("data_s", 0.0) for h in res["history"]][1:]
    step = sum(times) / len(times) if times else float("nan")
    batch = trainee.batch_size
    return {"stage": name, "params_M": round(n_params / 1e6, 3), "batch": batch,
            "steps": len(res["history"]), "step_s": round(step, 4),
            "data_s": round(sum(data) / len(data), 4) if data else None,
            "steps_per_s": round(1 / step, 3) if times else None,
            "images_per_s": round(batch / step, 2) if times else None,
            "wall_s": round(wall, 2),
            "peak_rss_mb_above_start": round(rss.peak - rss.base, 1),
            "peak_python_heap_mb": round(py_peak / 2 ** 20, 2),
            "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if on_cuda else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--stages", nargs="*", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import os
    os.environ.setdefault("FRBENCH_OFFLINE", "1")
    import torch

    from pipeline.config import load_params

    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params)
    stages = args.stages or [s for s in STAGES if s in ("prior", "dre") or s in (params.methods or {})]
    rows = []
    with tempfile.TemporaryDirectory(prefix="frbench-bench-train-") as tmp:
        root = Path(tmp)
        make_faces(root / "hq", args.faces, params.prior.arch.size, params.seed)
        train_cfg = dataclasses.replace(params.train, hq_dir=str(root / "hq"),
                                        checkpoint_dir=str(root / "ckpt"), log_every=0,
                                        sample_every=0, ckpt_every=0)
        params = dataclasses.replace(params, train=train_cfg, mlflow=None)
        for s in stages:
            rows.append(bench_stage(s, params, root, args.steps, args.device))
            r = rows[-1]
            print(f"{s:16s} batch {r['batch']:3d}  step {r['step_s']:.3f} s (data {r['data_s']} s)  "
                  f"({r['images_per_s']} img/s)  params {r['params_M']} M  "
                  f"peak RSS +{r['peak_rss_mb_above_start']} MB"
                  + (f"  CUDA {r['peak_cuda_mb']} MB" if r['peak_cuda_mb'] else ""), flush=True)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
