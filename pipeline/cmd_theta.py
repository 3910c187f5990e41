"""``frbench theta``: Panini-Net Table 4 — the GAN-prior usage ratio theta (mean of the last
DAFI block's prior mask) per degradation level of the ladder test set, via
``methods.analysis.ladder_theta``. Writes ``--out`` (default results/panini_theta.json):
``{"method", "set", "levels": {level: {"theta", "n", "per_image"}}}``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--method", default=None, help="default pipeline.theta_method")
    p.add_argument("--set", dest="testset", default=None, help="default pipeline.theta_testset")
    p.add_argument("--out", default="results/panini_theta.json", help="output JSON (default results/panini_theta.json)")


def run(args) -> int:
    from methods.analysis import ladder_theta
    from methods.trainer import load_for_inference
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params

    params = load_params(args.params)
    pl = params.pipeline
    method_name = args.method or (pl.theta_method if pl else "panini")
    testset = args.testset or (pl.theta_testset if pl else "ladder")
    method = build_trainee(method_name, params)
    load_for_inference(method, Path(params.train.checkpoint_dir) / method_name / "model.pt")
    lq = Path(params.testsets.out_dir) / testset / "lq"
    levels = ladder_theta(method, lq)
    rec = {"method": method_name, "set": testset, "profile": params.profile, "levels": levels}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(", ".join(f"{k}: theta {v['theta']:.3f}" for k, v in levels.items()))
    return 0
