"""DVC stages that restore and score: ``plan``, ``eval@<m>`` and ``submission@<name>-<set>``.

``python -m pipeline.stage_eval plan [--out data/plan]``
    One small JSON per ``pipeline.train`` / ``imported`` entry (``data/plan/<m>.json``): the
    test sets its cells use, each with its params and the sha256 of its ``manifest.json`` (which
    holds the sha256 of every image). ``eval@<m>`` depends on its own file only, so a change to
    one test set, or to the matrices in params.yaml, reruns only the methods whose cells it
    touches
    (DVC cannot list a per-method set of folders in dvc.yaml; this file stands for them).
``python -m pipeline.stage_eval method M [--metrics-root reports/cells] [--workers N]``
    All the cells of method M (``PipelineConfig.sets_of``) in one stage: the method is built
    and its checkpoint loaded once, the evaluator's networks once, and each set is restored into
    ``restored/M/<set>`` and scored into ``results/M/<set>/{per_image.csv,summary.json}`` plus the
    flat ``reports/cells/M/<set>.json`` (the stage's DVC metrics). The cells then run in worker
    processes forked from this one (``--workers``, default one per cell and at most one per
    core; 1 runs them here), each on its own core under the pinned numerics. Each cell starts
    from the same state a process of its own would have (the global RNG as after loading the
    checkpoint, an empty in-memory GT cache) and the evaluator never batches a restored image
    with GT images, so the files are byte-identical to ``frbench cell`` run alone, whatever the
    worker count or the order the cells finish in.
``python -m pipeline.stage_eval submission KEY``
    One external submission (``submissions.yaml``, ``frbench submit``): checks every file
    against its recorded sha256, copies the folder into ``restored/<name>/<set>`` and scores it
    like a suite cell; the summary says ``"arch": "external"`` and carries the folder hash.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from core.errors import FRBenchError

log = logging.getLogger(__name__)
METRICS_ROOT = "reports/cells"


def plan(params, out: str | Path = "data/plan") -> list[Path]:
    """Write ``<out>/<m>.json`` for every ``pipeline.train`` / ``imported`` entry; returns the
    files."""
    from core.config import to_dict
    from core.outputs import atomic_dir

    pl = params.pipeline
    root = Path(params.testsets.out_dir)
    manifests: dict[str, str] = {}
    written = []
    with atomic_dir(out) as tmp:
        for m in list(pl.train) + list(pl.imported):
            cells = []
            for s in pl.sets_of(m):
                if s not in manifests:
                    mf = root / s / "manifest.json"
                    if not mf.is_file():
                        raise FRBenchError(f"{mf}: test set '{s}' not built; run "
                                           f"`dvc repro testsets@{s}`")
                    manifests[s] = hashlib.sha256(mf.read_bytes()).hexdigest()
                cells.append({"set": s, "testset": to_dict(params.testsets.sets[s]),
                              "manifest_sha256": manifests[s]})
            doc = {"method": m, "testsets_dir": str(root), "cells": cells}
            (tmp / f"{m}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
            written.append(Path(out) / f"{m}.json")
    return written


def default_workers(n_cells: int) -> int:
    """Worker processes for ``eval@<m>``: one per cell, at most one per usable CPU core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(n_cells, cores))


# what a forked cell worker reads (set just before the pool forks; see eval_method)
_FORKED: dict = {}


def _eval_cell(s: str) -> dict:
    """One cell from the state a process of its own would start it with (module docstring)."""
    import random

    import numpy as np
    import torch

    from pipeline.cmd_cell import flat_metrics, run_cell

    st = _FORKED
    rng = st["rng_state"]
    torch.set_rng_state(rng[0])
    random.setstate(rng[1])
    np.random.set_state(rng[2])
    st["evaluator"].clear_memory()
    summary = run_cell(st["method_name"], s, st["params"], st["restored_root"],
                       st["results_root"], st["device"], method=st["method"],
                       evaluator=st["evaluator"], metrics_root=st["metrics_root"])
    vals = ", ".join(f"{k} {v:.4g}" for k, v in flat_metrics(summary).items())
    log.info("%s/%s: %s", st["method_name"], s, vals)
    return summary


def eval_method(params, method_name: str, restored_root="restored", results_root="results",
                metrics_root: str | Path | None = METRICS_ROOT, device=None,
                workers: int | None = None) -> list[dict]:
    """Restore and score every cell of ``method_name``; returns the summaries in set order.

    The method and the evaluator are built once, then the cells run in this process
    (``workers`` 1) or in ``workers`` processes forked from it (default: one per cell, at most
    one per core). Every cell starts from the same state either way, and pinned numerics give
    each process the same kernels and thread count, so the files are byte-identical whatever
    ``workers`` is (tests/test_pipeline_dvc_outputs.py)."""
    import random

    import numpy as np
    import torch

    from pipeline.cmd_cell import build_evaluator, open_method

    sets = params.pipeline.sets_of(method_name)
    if not sets:
        raise FRBenchError(f"params: pipeline: '{method_name}' is in no matrix (methods, "
                           "sr_methods, ablations): nothing to evaluate")
    method = open_method(method_name, params)
    _FORKED.clear()
    _FORKED.update(method_name=method_name, params=params, restored_root=restored_root,
                   results_root=results_root, device=device, metrics_root=metrics_root,
                   method=method,
                   rng_state=(torch.get_rng_state(), random.getstate(), np.random.get_state()))
    _FORKED["evaluator"] = build_evaluator(params, device)
    workers = default_workers(len(sets)) if workers is None else max(1, min(workers, len(sets)))
    on_gpu = str(device or params.device).startswith("cuda")
    try:
        if workers == 1 or on_gpu:  # CUDA cannot be used in a forked child
            return [_eval_cell(s) for s in sets]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        log.info("%s: %d cells in %d worker processes", method_name, len(sets), workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
            return list(ex.map(_eval_cell, sets))
    finally:
        _FORKED.clear()


def eval_submission(params, key: str, restored_root="restored", results_root="results",
                    metrics_root: str | Path | None = METRICS_ROOT, device=None,
                    params_path: str | Path = "params.yaml") -> dict:
    """Score the submission ``key`` of ``submissions.yaml`` (see the module docstring)."""
    from pipeline.cmd_cell import build_evaluator, score_cell, testset_dirs
    from pipeline.submissions import copy_verified, load_submissions, submissions_path

    subs = load_submissions(submissions_path(params_path), params)
    if key not in subs:
        raise FRBenchError(f"{submissions_path(params_path)}: no submission '{key}' (have: "
                           f"{', '.join(sorted(subs)) or 'none'})")
    sub = subs[key]
    _, gt = testset_dirs(params, sub.set)
    restored = Path(restored_root) / sub.name / sub.set
    n = copy_verified(sub, restored, Path(params_path).resolve().parent)
    log.info("%s: %d files checked against their recorded sha256 -> %s", key, n, restored)
    header = {"method": sub.name, "arch": "external", "set": sub.set, "profile": params.profile,
              "external": {"provenance": sub.provenance, "restored": sub.restored,
                           "n_files": sub.n_files}}
    mfile = Path(metrics_root) / sub.name / f"{sub.set}.json" if metrics_root else None
    return score_cell(build_evaluator(params, device), restored, gt,
                      Path(results_root) / sub.name / sub.set, header, mfile,
                      {"method_source": sub.provenance})


def main(argv=None) -> int:
    if argv is None:  # the DVC stage's process: pin CPU numerics before numpy/torch load
        from pipeline.cli import pin_numerics
        if (rc := pin_numerics(sys.argv[1:])) is not None:
            return rc
    ap = argparse.ArgumentParser(prog="python -m pipeline.stage_eval",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("plan", "method", "submission"))
    ap.add_argument("name", nargs="?", help="method entry (method) or <name>-<set> (submission)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/plan", help="plan: output folder")
    ap.add_argument("--restored-root", default="restored")
    ap.add_argument("--results-root", default="results")
    ap.add_argument("--metrics-root", default=METRICS_ROOT)
    ap.add_argument("--device", default=None)
    ap.add_argument("--workers", type=int, default=None,
                    help="method: cell processes (default one per cell, at most one per core; "
                         "the files do not depend on it)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        from pipeline.config import load_params

        params = load_params(args.params)
        if args.what == "plan":
            for f in plan(params, args.out):
                log.info("wrote %s", f)
            return 0
        if not args.name:
            raise FRBenchError(f"python -m pipeline.stage_eval {args.what}: name the "
                               f"{'method' if args.what == 'method' else '<name>-<set>'}")
        if args.what == "method":
            eval_method(params, args.name, args.restored_root, args.results_root,
                        args.metrics_root, args.device, args.workers)
        else:
            eval_submission(params, args.name, args.restored_root, args.results_root,
                            args.metrics_root, args.device, args.params)
    except FRBenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
