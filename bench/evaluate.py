"""Benchmark: ``frbench evaluate`` (one ``metrics.evaluate.Evaluator``) against scikit-image +
lpips + pytorch-fid run separately on the same folders, each in a fresh process, as a researcher
would chain them by hand.

    python -m bench.evaluate [--pairs 100] [--sizes 512 64] [--net alex] [--threads 0]

Per size, on N generated pairs (GT ``<id>.png``, restored ``<id>_00.png``):
  cold  = first scoring of a GT set: every tool in a fresh process (interpreter, imports, model
          builds, GT features); ours: ``python -m pipeline.cli evaluate --protocol panini
          --metrics psnr,ssim,lpips,fid`` with an empty GT cache; anchors:
          ``bench.evaluate_anchors`` skimage, lpips, fid (pytorch-fid's CLI), one after the other;
  warm  = a second method scored against the same GT set, fresh processes again; ours finds the
          GT Inception features in its cache (``cache/fid``); pytorch-fid gets the GT statistics
          from an ``.npz`` made beforehand with its ``--save-stats`` (not timed: generous to the
          anchors); scikit-image and lpips have nothing to reuse;
  warm* = the same anchors' warm run against ours as the second ``evaluate()`` of one
          ``Evaluator`` in one process (the Python API: GT LPIPS / Inception outputs reused from
          memory), timed inside the process (the call alone).
Times are wall-clock seconds of the whole processes, measured side by side in one run
(interleaved, same machine state), and their CPU seconds (user + system, workers included:
steadier than wall time on a shared machine). Every backbone is the same seeded random init on both sides
(offline): ours builds it in-process (``--allow-random-init``), the anchors load it from a file
as they would load the real weights. Values are printed side by side (PSNR/SSIM/LPIPS/FID agree
to float rounding; pytorch-fid may fail on rank-deficient covariances with N < 2048 — its time
still counts, the failure is reported).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_pairs(root: Path, n: int, size: int, noise: float = 12.0, tag: str = "res"
               ) -> tuple[Path, Path]:
    """Smooth colour patterns as GT and a noisy copy as the 'restored' image (deterministic)."""
    from core.imageio import write_png
    from core.seeding import rng_for

    gt, res = root / "gt", root / tag
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        rng = rng_for("bench.evaluate", i)
        f = rng.uniform(2, 8, 3)
        base = np.stack([np.sin(2 * np.pi * (f[c] * xx + f[(c + 1) % 3] * yy) + c)
                         for c in range(3)], -1)
        g = np.clip((base * 0.4 + 0.5) * 255, 0, 255).astype(np.uint8)
        if not (gt / f"{i:05d}.png").is_file():
            write_png(gt / f"{i:05d}.png", g)
        rr = rng_for("bench.evaluate", tag, i)
        r = np.clip(g + rr.normal(0, noise, g.shape), 0, 255).astype(np.uint8)
        write_png(res / f"{i:05d}_00.png", r)
    return res, gt


def save_anchor_weights(path: Path, net: str) -> None:
    """The seeded random-init LPIPS and FID Inception state dicts ours builds, as one file."""
    import torch

    from metrics.backbones import build_lpips, inception_state_dict
    from metrics.config import WeightsConfig

    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    lp, _ = build_lpips(net, w)
    inc, _ = inception_state_dict(w)
    torch.save({"lpips": lp.lp.state_dict(), "inception": inc}, path)


CPU_S: dict[str, float] = {}  # cumulative CPU seconds per command label (see _run)


def _cpu_children() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict, label: str = "") -> tuple[float, str]:
    """Run ``cmd`` to completion -> (wall seconds, stdout); its CPU seconds (user + system of
    the process and every worker it waited for) are added to ``CPU_S[label]``."""
    c0, t = _cpu_children(), time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    CPU_S[label] = CPU_S.get(label, 0.0) + _cpu_children() - c0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt, p.stdout


def _json_tail(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def anchors(res: Path, gt_or_stats: Path, gt: Path, weights: Path, net: str, env: dict) -> dict:
    py = [sys.executable, "-m", "bench.evaluate_anchors"]
    c0 = CPU_S.get("anchors", 0.0)
    t_sk, o_sk = _run(py + ["skimage", str(res), str(gt)], env, "anchors")
    t_lp, o_lp = _run(py + ["lpips", str(res), str(gt), "--net", net, "--weights", str(weights)],
                      env, "anchors")
    t_fid, o_fid = _run(py + ["fid", str(res), str(gt_or_stats), "--weights", str(weights)], env,
                        "anchors")
    vals = {**_json_tail(o_sk), **_json_tail(o_lp), **_json_tail(o_fid)}
    return {"t": t_sk + t_lp + t_fid, "parts": (t_sk, t_lp, t_fid), "vals": vals,
            "cpu": CPU_S["anchors"] - c0}


def ours(res: Path, gt: Path, out: Path, cache: Path, net: str, env: dict) -> dict:
    proto = "panini" if net == "alex" else "builtin"
    cmd = [sys.executable, "-m", "pipeline.cli", "evaluate", "--restored", str(res), "--gt",
           str(gt), "--protocol", proto, "--metrics", "psnr,ssim,lpips,fid", "--out", str(out),
           "--allow-random-init", "--cache-dir", str(cache), "--params", str(out) + ".none"]
    c0 = CPU_S.get("ours", 0.0)
    t, _ = _run(cmd, env, "ours")
    s = json.loads((out / "summary.json").read_text())
    vals = {m: s["metrics"][m]["mean"] for m in ("psnr", "ssim", "lpips")}
    vals["fid"] = s["set_metrics"]["fid"]
    return {"t": t, "vals": vals, "cpu": CPU_S["ours"] - c0}


def ours_same_evaluator(res: Path, res2: Path, gt: Path, net: str, env: dict, tmp: Path) -> dict:
    """One process, one ``Evaluator``: score ``res`` (untimed), then ``res2`` against the same GT
    (timed inside the process: wall and CPU seconds of that ``evaluate`` call alone) - the
    Python API's warm path, GT LPIPS / Inception outputs reused from memory."""
    code = (
        "import json, sys, time\n"
        "from metrics.config import WeightsConfig\n"
        "from metrics.evaluate import Evaluator\n"
        "w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)\n"
        f"ev = Evaluator({'panini' if net == 'alex' else 'builtin'!r}, "
        "['psnr', 'ssim', 'lpips', 'fid'], weights=w, cache_dir=sys.argv[4])\n"
        "ev.evaluate(sys.argv[1], sys.argv[3])\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        "s = ev.evaluate(sys.argv[2], sys.argv[3])\n"
        "print(json.dumps({'t': time.perf_counter() - t, 'cpu': time.process_time() - c, "
        "'vals': {**{m: s['metrics'][m]['mean'] for m in ('psnr', 'ssim', 'lpips')}, "
        "'fid': s['set_metrics']['fid']}}))\n")
    _, out = _run([sys.executable, "-c", code, str(res), str(res2), str(gt),
                   str(tmp / "cache_same")], env, "untimed")
    return _json_tail(out)


def _fmt_vals(v: dict) -> str:
    f = v.get("fid")
    return (f"psnr {v['psnr']:.4f} ssim {v['ssim']:.5f} lpips {v['lpips']:.5f} fid "
            + (f"{f:.4f}" if f is not None else f"failed ({v.get('error', '?')[:40]})"))


def bench_size(size: int, n: int, net: str, env: dict, tmp: Path) -> list[dict]:
    root = tmp / f"s{size}"
    res, gt = make_pairs(root, n, size, tag="res")
    res2, _ = make_pairs(root, n, size, noise=16.0, tag="res2")
    weights = root / "anchor_weights.pt"
    save_anchor_weights(weights, net)
    cache = root / "cache"
    rows = []
    # cold: ours with an empty cache, then the anchors from scratch
    o = ours(res, gt, root / "out_cold", cache, net, env)
    a = anchors(res, gt, gt, weights, net, env)
    rows.append({"size": size, "mode": "cold", "ours": o, "anchors": a})
    # warm: pytorch-fid's GT statistics made beforehand (untimed); ours reuses its GT cache
    stats = root / "gt_stats.npz"
    _run([sys.executable, "-m", "bench.evaluate_anchors", "fid-stats", str(gt), str(stats),
          "--weights", str(weights)], env, "untimed")
    a = anchors(res2, stats, gt, weights, net, env)
    o = ours(res2, gt, root / "out_warm", cache, net, env)
    rows.append({"size": size, "mode": "warm", "ours": o, "anchors": a})
    o = ours_same_evaluator(res, res2, gt, net, env, root)
    rows.append({"size": size, "mode": "warm*", "ours": o, "anchors": a})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=100, help="image pairs per size (default 100)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 64])
    ap.add_argument("--net", default="alex", choices=["alex", "vgg"],
                    help="LPIPS net (alex: the panini protocol; vgg: builtin)")
    ap.add_argument("--threads", type=int, default=0,
                    help="OMP_NUM_THREADS for every process (0 = leave as is)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT), FRBENCH_MLFLOW="0")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="frbench-bench-eval-") as tmp:
        for size in args.sizes:
            rows += bench_size(size, args.pairs, args.net, env, Path(tmp))
    print(f"\nbench.evaluate: {args.pairs} pairs per size, LPIPS {args.net}, CPU, OMP_NUM_THREADS="
          f"{env.get('OMP_NUM_THREADS', 'default')}, fresh processes, random-init backbones")
    print(f"{'setting':13s} {'anchors s':>10s} (skimage + lpips + pytorch-fid) {'frbench s':>10s} "
          f"{'ratio':>6s} | CPU s: anchors  frbench  ratio")
    for r in rows:
        a, o = r["anchors"], r["ours"]
        sk, lp, fid = a["parts"]
        print(f"{r['size']:4d} px {r['mode']:5s} {a['t']:10.2f} ({sk:6.2f} + {lp:6.2f} + "
              f"{fid:6.2f})        {o['t']:10.2f} {a['t'] / o['t']:5.2f}x | {a['cpu']:12.2f} "
              f"{o['cpu']:8.2f} {a['cpu'] / o['cpu']:5.2f}x")
    print("  warm* = the same anchors' warm run vs ours as a second evaluate() of one Evaluator "
          "(Python API; GT outputs reused from memory; the call alone, no process start)")
    for r in rows:
        if r["mode"] == "warm*":
            continue
        print(f"  {r['size']} px {r['mode']}: ours    {_fmt_vals(r['ours']['vals'])}")
        print(f"  {r['size']} px {r['mode']}: anchors {_fmt_vals(r['anchors']['vals'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
