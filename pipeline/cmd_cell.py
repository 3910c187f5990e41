"""``frbench cell --method M --set S``: one (method, test set) cell, restored and scored.

The DVC stage ``eval@<m>`` (``pipeline/stage_eval.py``) runs all the cells of a method in one
process with the same pieces (``open_method``, ``build_evaluator``, ``run_cell``); this command
runs one cell by hand.

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


def open_method(method_name: str, params, allow_partial: bool = False):
    """Build the method entry and load its checkpoint (``<train.checkpoint_dir>/<m>/model.pt``;
    a partial one only with ``allow_partial``) -> (method, checkpoint path, checkpoint dict)."""
    from methods.trainer import find_checkpoint, load_for_inference
    from pipeline.cmd_train import build_trainee

    method = build_trainee(method_name, params)
    ckpt = find_checkpoint(Path(params.train.checkpoint_dir) / method_name / "model.pt",
                           allow_partial)
    if not ckpt.is_file():
        raise FRBenchError(f"{ckpt}: checkpoint missing; train it with `dvc repro "
                           f"train@{method_name}` (or import it: import@{method_name})")
    ck = load_for_inference(method, ckpt, allow_partial=allow_partial)
    return method, ckpt, ck


def build_evaluator(params, device=None):
    """The ``Evaluator`` of ``params.evaluate`` / ``params.weights`` (networks built once)."""
    from metrics.config import WeightsConfig
    from metrics.evaluate import Evaluator

    ev = params.evaluate
    weights = params.weights or WeightsConfig(allow_random_init=False, allow_download=False,
                                              random_init_seed=0)
    return Evaluator(ev.protocol, ev.metrics, weights=weights, device=device or params.device,
                     batch_size=ev.batch_size, cache_dir=ev.cache_dir,
                     search_dirs=tuple(weights.search_dirs),
                     bootstrap_samples=ev.bootstrap_samples)


def testset_dirs(params, testset: str) -> tuple[Path, Path]:
    """(lq, gt) folders of a built test set (FRBenchError naming the stage when missing)."""
    if params.testsets is None or testset not in params.testsets.sets:
        raise FRBenchError(f"params: no test set '{testset}' under testsets.sets")
    src = Path(params.testsets.out_dir) / testset
    lq, gt = src / "lq", src / "gt"
    for d in (lq, gt):
        if not d.is_dir():
            raise FRBenchError(f"{d}: test set folder missing; build it with "
                               f"`dvc repro testsets@{testset}`")
    return lq, gt


def score_cell(evaluator, restored: Path, gt: Path, out: Path, header: dict,
               metrics_file: Path | None = None, extra: dict | None = None) -> dict:
    """Score ``restored`` against ``gt`` into ``out/{per_image.csv,summary.json}`` (the summary
    starts with ``header``: method, arch, set, profile; ``extra`` keys go last); with
    ``metrics_file``, also the cell's flat metrics (``{metric: value}``, for ``dvc metrics``)."""
    from core.manifest import dumps_json

    summary = {**header, **evaluator.evaluate(restored, gt, out), **(extra or {})}
    path = out / "summary.json"
    tmp = path.with_name(f".summary.json.tmp-{os.getpid()}")
    tmp.write_text(dumps_json(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    if metrics_file is not None:
        write_flat_metrics(metrics_file, summary)
    return summary


def write_flat_metrics(path: Path, summary: dict) -> None:
    """One cell's ``{metric: value}`` as JSON (non-finite values become null)."""
    import math
    vals = {k: (float(v) if v is not None and math.isfinite(float(v)) else None)
            for k, v in flat_metrics(summary).items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(vals, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def run_cell(method_name: str, testset: str, params, restored_root="restored",
             results_root="results", device=None, allow_partial: bool = False, *,
             method=None, evaluator=None, metrics_root=None) -> dict:
    """Restore one test set with one method and score it (``frbench cell``). ``method``: reuse
    an ``open_method`` result, ``evaluator`` a built evaluator (``eval@<m>`` runs all the sets of
    a method in one process); ``metrics_root``: also write ``<metrics_root>/<m>/<set>.json``."""
    from pipeline.cmd_restore import checkpoint_record, restore_folder

    lq, gt = testset_dirs(params, testset)
    if method is None:
        method = open_method(method_name, params, allow_partial)
    net, ckpt, ck = method
    device = device or params.device
    restored = Path(restored_root) / method_name / testset
    record = checkpoint_record(ck, allow_partial)
    # the matrices cross LQ sizes by design (bicubic / pSp on the 16x SR set, Cat-Conv on mfr):
    # the cell resizes those inputs to the method's LQ size, recorded in the restored manifest
    n = restore_folder(net, lq, restored, device=device, checkpoint=ckpt, record=record,
                       resize=True)
    log.info("%s/%s: restored %d images -> %s", method_name, testset, n, restored)
    if evaluator is None:
        evaluator = build_evaluator(params, device)
    out = Path(results_root) / method_name / testset
    header = {"method": method_name, "arch": params.methods[method_name].arch, "set": testset,
              "profile": params.profile}
    extra = {"method_source": net.provenance.get("source", f"trained: {ckpt}")}
    if record["partial_checkpoint"]:  # only reachable with --allow-partial
        extra["checkpoint_partial"] = (f"step {ck['step']} of {ck['total_steps']}, used with "
                                       "--allow-partial")
    mfile = Path(metrics_root) / method_name / f"{testset}.json" if metrics_root else None
    return score_cell(evaluator, restored, gt, out, header, mfile, extra)


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
    method_cfg = (to_dict(params.methods[m]) if params.methods is not None and m in params.methods
                  else {"arch": "external", **summary.get("external", {})})
    run_params = {"method": m, "set": s, "protocol": summary["protocol"],
                  "method_cfg": method_cfg, "testset_cfg": to_dict(params.testsets.sets[s])}
    tags = {"method": m, "set": s, "protocol": summary["protocol"], "profile": params.profile,
            "comparable_with_published": summary["comparable_with_published"],
            **{f"provenance.{k}": v for k, v in summary["provenance"].items()}}
    if "external" in summary:
        tags["provenance.method"] = summary["external"].get("provenance", "external")
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
