"""``frbench report``: leaderboard (md/csv/tex/html), paper tables beside the published
numbers, seaborn plots, reports/metrics.json and headless-Chromium screenshots of index.html
(pipeline/screenshots.py; skipped with a note without Chromium) from the results of the cells
named in params.yaml (see pipeline/report.py). The last DVC stage; attaches the files to the repro's
MLflow parent run when MLflow is on."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--results", default="results", help="results root (default results)")
    p.add_argument("--restored", default="restored", help="restored root (default restored)")
    p.add_argument("--out", default=None, help="output folder (default report.out_dir)")
    p.add_argument("--no-screenshots", action="store_true",
                   help="skip the headless-Chromium screenshots (OUT/screenshots/)")


def run(args) -> int:
    from pipeline import tracking
    from pipeline.config import load_params
    from pipeline.report import write_report

    params = load_params(args.params)
    check_report_out(params, args)
    if not args.no_screenshots:   # refuse a foreign screenshots folder before writing anything
        from pathlib import Path

        from pipeline.screenshots import check_out
        check_out(Path(args.out or params.report.out_dir) / "screenshots")
    res = write_report(params, args.results, args.out, args.restored)
    if not args.no_screenshots:
        from pathlib import Path

        from pipeline.screenshots import take
        out = Path(args.out or params.report.out_dir)
        res["files"] += take(out / "index.html", out / "screenshots")
    res["files"] += plot_data(params, args)
    flat = {f"{m}.{s}.{k}": v for m, sets in res["metrics"].items() if m != "panini_theta"
            for s, vals in sets.items() for k, v in vals.items()}
    tracking.log_to_parent(params, res["files"], flat)
    for f in res["files"]:
        log.info("wrote %s", f)
    track_cells(params, args.results, args.restored)
    return 0


def check_report_out(params, args) -> None:
    """The report folder may hold the published numbers (an input) but must not be or lie
    inside the results, restored images or test sets it reads (``core.outputs``)."""
    from pathlib import Path

    from core.outputs import check_files_dir

    rc = params.report
    out = Path(args.out or (rc.out_dir if rc else "reports"))
    inputs = [args.results, args.restored, rc.published_dir if rc else None,
              params.testsets.out_dir if params.testsets is not None else None]
    own = ["leaderboard.md", "metrics.json", "index.html", "drilldown.html"]
    # `dvc repro` deletes the report's outputs before rerunning it, leaving reports/ with the
    # published numbers (an input kept inside it): that folder is the report's, not foreign
    pub = Path(rc.published_dir) if rc else None
    if pub is not None and pub.parent.resolve() == out.resolve():
        own.append(pub.name)
    check_files_dir(out, tuple(own), inputs)


def plot_data(params, args) -> list:
    """The data files of `dvc plots` (dvc.yaml's top-level plots): <out>/plots/*.csv."""
    from pipeline.dvc_plots import write_plot_data
    out = Path(args.out or (params.report.out_dir if params.report else "reports"))
    return write_plot_data(params, args.results, out / "plots")


def track_cells(params, results="results", restored="restored") -> int:
    """One MLflow child run per cell of the pipeline under the repro's parent run (all in this
    process: one MLflow import and store for every cell). Returns the number logged."""
    from pathlib import Path

    from metrics.evaluate import read_summary
    from pipeline import tracking
    from pipeline.cmd_cell import track_cell

    if not tracking.enabled(getattr(params, "mlflow", None)):
        return 0
    pl, n = params.pipeline, 0
    for m, s in pl.cells():
        out = Path(results) / m / s
        summary = read_summary(out / "summary.json")
        src = Path(params.testsets.out_dir) / s
        track_cell(params, summary, out, Path(restored) / m / s, src / "lq", src / "gt",
                   stage=pl.stage_of(m, s))
        n += 1
    log.info("mlflow: logged %d evaluation runs", n)
    return n
