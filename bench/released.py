"""Benchmark: import + restore throughput of the released formats (no released file needed).

    python -m bench.released [--fixtures gpen_bfr_512 gfpgan_v1_512_cm1 ...] [--n 16]
                             [--batch 4] [--device cpu|cuda] [--threads N]

For each golden fixture of a restoration method (tests/fixtures/official/), the official
container is rebuilt from its manifest (deterministic weights of the released configuration's
full size; the numbers say nothing about quality), imported through ``import_checkpoint`` into a
temporary checkpoint folder, loaded back with ``load_for_inference`` (what ``frbench restore``
does) and used to restore ``--n`` random LQ images at the method's LQ size with
``restore_folder``. Prints per fixture: import seconds (convert + checks + write), load seconds,
restore images/s (the first batch excluded as warm-up), and on CUDA the peak memory.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: fixtures of restoration methods (format from tests.official_fixtures.format_of)
DEFAULT = ["gpen_bfr_512", "gpen_bfr_256", "gfpgan_v1_512_cm1", "gfpgan_v1clean_512_cm2",
           "psp_superres_1024", "panini_mfr_1024", "panini_sr_1024"]


def bench_one(name: str, n: int, batch: int, device: str, tmp: Path) -> dict:
    import numpy as np
    import torch

    from core.imageio import write_png
    from methods.released import FORMATS
    from methods.released.base import build_module, import_checkpoint
    from methods.trainer import load_for_inference
    from pipeline.cmd_restore import restore_folder
    from tests import official_fixtures as of

    fmt = of.format_of(name)
    if fmt not in FORMATS:
        return {"fixture": name, "skipped": f"format {fmt} not available"}
    container = of.build_container(name, verify=False)
    t0 = time.perf_counter()
    imp = import_checkpoint(fmt, container, name, out_root=tmp / "ckpt")
    t_import = time.perf_counter() - t0
    del container
    if imp.converted.kind != "method":
        return {"fixture": name, "skipped": f"{imp.converted.kind}, not a method"}
    method = build_module(imp.converted, name)  # what build_trainee gives for the entry
    t0 = time.perf_counter()
    load_for_inference(method, imp.path)
    t_load = time.perf_counter() - t0
    lq = tmp / f"lq_{name}"
    lq.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        write_png(lq / f"{i:05d}.png", rng.random((method.lq_size, method.lq_size, 3)))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    # warm-up on one batch, then the timed run
    warm = tmp / f"warm_{name}"
    warm.mkdir()
    for i in range(min(batch, n)):
        (warm / f"{i:05d}.png").write_bytes((lq / f"{i:05d}.png").read_bytes())
    restore_folder(method, warm, tmp / f"out_warm_{name}", batch_size=batch, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    restore_folder(method, lq, tmp / f"out_{name}", batch_size=batch, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rec = {"fixture": name, "format": fmt, "lq_size": method.lq_size,
           "out_size": method.out_size, "import_s": round(t_import, 2),
           "load_s": round(t_load, 2), "images": n, "images_per_s": round(n / dt, 3)}
    if device.startswith("cuda"):
        rec["peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    method.to("cpu")
    return rec


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", nargs="*", default=DEFAULT)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    out = []
    for name in a.fixtures:
        with tempfile.TemporaryDirectory() as d:
            rec = bench_one(name, a.n, a.batch, a.device, Path(d))
        print(json.dumps(rec), flush=True)
        out.append(rec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
