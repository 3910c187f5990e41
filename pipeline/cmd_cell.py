"""``frbench cell --method M --set S``: one cell of the restore_eval / ablation matrix.

Restores ``<testsets.out_dir>/S/lq`` with ``<train.checkpoint_dir>/M/model.pt`` into
``restored/M/S`` (atomic), then scores it against ``<testsets.out_dir>/S/gt`` under
``evaluate.protocol`` into ``results/M/S/{per_image.csv,summary.json}`` (atomic; the summary
also names the method, arch, set and profile). The cell's MLflow child run (params: method
entry, test set, protocol; metrics; the per-image table; a sample grid; tags: git commit, dirty
flag, DVC stage, protocol, provenance) is logged by ``track_cell`` from the ``report`` stage,
one process for every cell: importing MLflow and opening its sqlite store cost ~8 s per
process, ~2 of the 12 minutes of a cold built-in repro when each cell did it itself.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--method", required=True, help="methods entry of params.yaml")
    p.add_argument("--set", dest="testset", required=True, help="test set name")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--restored-root", default="restored", help="restored images root (default restored)")
    p.add_argument("--results-root", default="results", help="results root (default results)")
    p.add_argument("--device", default=None, help="override params.device (cpu, cuda)")
    p.add_argument("--allow-partial", action="store_true",
                   help="use a partial checkpoint (unfinished training; recorded in summary.json)")


def flat_metrics(summary: dict) -> dict[str, float]:
    """summary.json -> {metric: mean (per-image metrics) or value (set metrics)}."""
    out = {m: e["mean"] for m, e in summary.get("metrics", {}).items()}
    out.update(summary.get("set_metrics", {}))
    return out


def run_cell(method_name: str, testset: str, params, restored_root="restored",
             results_root="results", device=None, allow_partial: bool = False) -> dict:
    from core.manifest import dumps_json
    from methods.trainer import find_checkpoint, load_for_inference
    from metrics.config import WeightsConfig
    from metrics.evaluate import evaluate_folders
    from pipeline.cmd_restore import checkpoint_record, restore_folder
    from pipeline.cmd_train import build_trainee

    if params.testsets is None or testset not in params.testsets.sets:
        raise FRBenchError(f"params: no test set '{testset}' under testsets.sets")
    src = Path(params.testsets.out_dir) / testset
    lq, gt = src / "lq", src / "gt"
    for d in (lq, gt):
        if not d.is_dir():
            raise FRBenchError(f"{d}: test set folder missing; build it with "
                               f"`dvc repro testsets@{testset}`")
    method = build_trainee(method_name, params)
    ckpt = find_checkpoint(Path(params.train.checkpoint_dir) / method_name / "model.pt",
                           allow_partial)
    if not ckpt.is_file():
        raise FRBenchError(f"{ckpt}: checkpoint missing; train it with "
                           f"`dvc repro train@{method_name}` (or import it: import@{method_name})")
    ck = load_for_inference(method, ckpt, allow_partial=allow_partial)
    device = device or params.device
    restored = Path(restored_root) / method_name / testset
    record = checkpoint_record(ck, allow_partial)
    # the matrices cross LQ sizes by design (bicubic / pSp on the 16x SR set, Cat-Conv on mfr):
    # the cell resizes those inputs to the method's LQ size, recorded in the restored manifest
    n = restore_folder(method, lq, restored, device=device, checkpoint=ckpt, record=record,
                       resize=True)
    log.info("%s/%s: restored %d images -> %s", method_name, testset, n, restored)

    ev = params.evaluate
    weights = params.weights or WeightsConfig(allow_random_init=False, allow_download=False,
                                              random_init_seed=0)
    out = Path(results_root) / method_name / testset
    summary = evaluate_folders(restored, gt, ev.protocol, ev.metrics, out=out, weights=weights,
                               device=device, batch_size=ev.batch_size,
                               bootstrap_samples=ev.bootstrap_samples, cache_dir=ev.cache_dir,
                               search_dirs=tuple(weights.search_dirs))
    summary = {"method": method_name, "arch": params.methods[method_name].arch, "set": testset,
               "profile": params.profile, **summary,
               "method_source": method.provenance.get("source", f"trained: {ckpt}")}
    if record["partial_checkpoint"]:  # only reachable with --allow-partial
        summary["checkpoint_partial"] = (f"step {ck['step']} of {ck['total_steps']}, used with "
                                         "--allow-partial")
    path = out / "summary.json"
    tmp = path.with_name(f".summary.json.tmp-{os.getpid()}")
    tmp.write_text(dumps_json(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return summary


def track_cell(params, summary, out: Path, restored: Path, lq: Path, gt: Path,
               stage: str | None = None) -> None:
    """MLflow child run for one (method, set) evaluation; a no-op when MLflow is off.
    ``stage``: the DVC stage that produced the cell (tag ``dvc_stage``; default $DVC_STAGE)."""
    from pipeline import tracking
    from pipeline.config import to_dict

    cfg = getattr(params, "mlflow", None)
    if not tracking.enabled(cfg):
        return
    m, s = summary["method"], summary["set"]
    run_params = {"method": m, "set": s, "protocol": summary["protocol"],
                  "method_cfg": to_dict(params.methods[m]),
                  "testset_cfg": to_dict(params.testsets.sets[s])}
    tags = {"method": m, "set": s, "protocol": summary["protocol"], "profile": params.profile,
            "comparable_with_published": summary["comparable_with_published"],
            **{f"provenance.{k}": v for k, v in summary["provenance"].items()}}
    if stage:
        tags["dvc_stage"] = stage
    with tracking.run("evaluate", f"{m}/{s}", cfg=cfg, params=run_params, tags=tags) as r:
        r.log_metrics(flat_metrics(summary))
        try:
            import pandas as pd
            r.log_table(pd.read_csv(out / "per_image.csv"), artifact_file="per_image.json")
        except Exception as e:  # the table is a convenience; the CSV is the record
            log.warning("mlflow per-image table not logged: %s", e)
        r.log_artifact(out / "summary.json")
        import tempfile

        from pipeline.grids import sample_grid_png
        with tempfile.TemporaryDirectory() as d:
            grid = Path(d) / f"{m}-{s}.png"
            grid.write_bytes(sample_grid_png([lq, restored, gt], ["LQ", m, "GT"], n=4, px=96))
            r.log_artifact(grid, artifact_path="samples")


def run(args) -> int:
    from pipeline.cmd_cell import flat_metrics
    from pipeline.config import load_params

    params = load_params(args.params)
    if args.device is not None:
        from core.environment import check_device
        check_device(args.device, "--device", available=True)
    summary = run_cell(args.method, args.testset, params, args.restored_root, args.results_root,
                       args.device, allow_partial=args.allow_partial)
    vals = ", ".join(f"{k} {v:.4g}" for k, v in flat_metrics(summary).items())
    print(f"{args.method}/{args.testset}: {vals}")
    return 0
