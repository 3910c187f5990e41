"""``frbench evaluate``: score a folder of restored images against GT under a named protocol.

    frbench evaluate --restored DIR [--gt DIR] --protocol NAME --out DIR
                     [--metrics psnr,ssim,...] [--device cpu|cuda] [--allow-random-init]
                     [--weights-dir DIR ...] [--batch-size N] [--params params.yaml] [--force]

Weights settings come from ``params.yaml`` (``weights:``) when it exists, else the safe defaults
(no random init, no downloads); the flags override them. Writes ``per_image.csv`` and
``summary.json`` into ``--out`` (atomically; never over an input or a folder frbench did not
make, see ``core.outputs``) and prints the means. Without ``--gt`` only no-reference metrics
(``--metrics niqe``) are accepted.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--restored", required=True, help="folder of restored images")
    p.add_argument("--gt", default=None,
                   help="folder of ground-truth images (same names); omit it to score "
                        "no-reference metrics only (--metrics niqe)")
    p.add_argument("--protocol", default=None,
                   help="named protocol (builtin, panini, gfpgan_celeba_test); "
                        "default: params.yaml evaluate.protocol")
    from metrics import METRICS
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated subset of {', '.join(METRICS)} (default: the "
                        "protocol's; psnr/ssim/ms_ssim need no weight files)")
    p.add_argument("--out", required=True, help="output folder for per_image.csv and summary.json")
    p.add_argument("--device", default=None, help="cpu or cuda (default: params.yaml device or cpu)")
    p.add_argument("--allow-random-init", action="store_true",
                   help="build backbones without weight files from a seeded random init "
                        "(numbers are then NOT comparable with published ones)")
    p.add_argument("--allow-download", action="store_true",
                   help="let the libraries download missing weight files")
    p.add_argument("--weights-dir", action="append", default=[],
                   help="folder holding weight files by their usual names (repeatable)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default: evaluate.batch_size or 8)")
    p.add_argument("--bootstrap-samples", type=int, default=None, help="bootstrap resamples for the 95%% CIs (default: the protocol's)")
    p.add_argument("--cache-dir", default=None, help="GT feature cache root (default: cache)")
    p.add_argument("--params", default="params.yaml",
                   help="params file for weights/evaluate settings, if it exists")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if frbench made it as another kind of output "
                        "(never a folder frbench did not make, never an input)")


def _settings(args):
    from core.environment import check_device
    from metrics.config import WeightsConfig

    if args.batch_size is not None and args.batch_size < 1:
        raise FRBenchError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.bootstrap_samples is not None and args.bootstrap_samples < 0:
        raise FRBenchError(f"--bootstrap-samples: must be >= 0 (0 = no confidence intervals), "
                           f"got {args.bootstrap_samples}")
    if args.device is not None:
        check_device(args.device, "--device", available=True)

    weights = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0)
    ev = None
    device = "cpu"
    if args.params and Path(args.params).is_file():
        from pipeline.config import load_params
        params = load_params(args.params)
        weights = params.weights or weights
        ev = params.evaluate
        device = params.device or device
    if args.allow_random_init:
        weights = dataclasses.replace(weights, allow_random_init=True)
    if args.allow_download:
        weights = dataclasses.replace(weights, allow_download=True)
    protocol = args.protocol or (ev.protocol if ev else None)
    if protocol is None:
        raise FRBenchError("--protocol is required (no params.yaml evaluate.protocol found)")
    metrics = ([m for m in args.metrics.split(",") if m.strip()] if args.metrics
               else (ev.metrics if ev and not args.protocol else None))
    return dict(
        protocol=protocol, metrics=metrics, weights=weights,
        device=args.device or device,
        batch_size=args.batch_size if args.batch_size is not None else (ev.batch_size if ev else 8),
        bootstrap_samples=(args.bootstrap_samples if args.bootstrap_samples is not None
                           else (ev.bootstrap_samples if ev else None)),
        cache_dir=args.cache_dir or (ev.cache_dir if ev else "cache"),
        search_dirs=tuple(args.weights_dir),
    )


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.4f}" if abs(x) >= 1e-2 else f"{x:.4g}"


def run(args) -> int:
    from metrics.evaluate import evaluate_folders

    s = _settings(args)
    summary = evaluate_folders(args.restored, args.gt, s.pop("protocol"), s.pop("metrics"),
                               out=args.out, force=args.force, **s)
    lines = [f"protocol {summary['protocol']}, N={summary['n']}, comparable_with_published="
             f"{summary['comparable_with_published']}"]
    for m, e in summary["metrics"].items():
        ci = e["ci95"]
        lines.append(f"  {m:14s} {_fmt(e['mean'])}" +
                     (f"  [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
    for m, v in summary["set_metrics"].items():
        lines.append(f"  {m:14s} {_fmt(v)}")
    for b, p in summary["provenance"].items():
        lines.append(f"  weights {b}: {p}")
    print("\n".join(lines))
    print(f"wrote {Path(args.out) / 'per_image.csv'} and summary.json")
    return 0
