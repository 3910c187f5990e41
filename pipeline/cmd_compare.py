"""``frbench compare --baseline REV``: regression check of reports/metrics.json against an
earlier git revision (``dvc metrics diff``), with per-metric direction and tolerance from
params.yaml ``regression.rules``: a paired bootstrap over images where ``reports/per_image.csv``
exists at both ends, the tolerance alone for set-level metrics (pipeline/compare.py). When the
baseline's ``reports/environment.json`` differs from the current one, the report says so first.
Writes a Markdown table (``regression.out``), prints it, and exits 1 when any metric regressed
(0 otherwise; 2 on usage errors). For CI::

    dvc repro && frbench compare --baseline origin/main
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--baseline", default=None, help="git revision (default regression.baseline)")
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--out", default=None, help="Markdown output (default regression.out)")
    p.add_argument("--all", action="store_true", help="list unchanged metrics too")


def git_show(rev: str, path: str | Path) -> str | None:
    """The text of ``path`` (relative to the current folder) at git revision ``rev``; None when
    it does not exist there."""
    import subprocess
    p = subprocess.run(["git", "show", f"{rev}:./{Path(path).as_posix()}"], capture_output=True,
                       text=True)
    return p.stdout if p.returncode == 0 else None


def run(args) -> int:
    import json

    from pipeline.compare import compare, dvc_metrics_diff, environment_note, markdown
    from pipeline.config import load_params
    from pipeline.records import ENVIRONMENT, PER_IMAGE, build_environment, parse_per_image
    from core.errors import FRBenchError

    params = load_params(args.params)
    rc = params.regression
    if rc is None:
        raise FRBenchError(f"{args.params}: missing section 'regression'")
    baseline = args.baseline or rc.baseline
    reports = Path(params.report.out_dir if params.report else "reports")
    old_text = git_show(baseline, reports / PER_IMAGE)
    new_file = reports / PER_IMAGE
    per_old = parse_per_image(old_text) if old_text else None
    per_new = parse_per_image(new_file.read_text(encoding="utf-8")) if new_file.is_file() else None
    if per_old is None:
        log.info("%s has no %s: tolerance rule for every metric", baseline, reports / PER_IMAGE)
    changes = compare(dvc_metrics_diff(baseline, rc.metrics_file), rc.rules, per_old, per_new,
                      rc.bootstrap_samples)
    base_env_text = git_show(baseline, reports / ENVIRONMENT)
    cur_env_file = reports / ENVIRONMENT
    cur_env = (json.loads(cur_env_file.read_text(encoding="utf-8")) if cur_env_file.is_file()
               else build_environment(getattr(params.train, "checkpoint_dir", None)))
    note = environment_note(json.loads(base_env_text) if base_env_text else None, cur_env)
    md = markdown(changes, baseline, args.all, note)
    out = Path(args.out or rc.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")
    print(md)
    return 1 if any(c.status == "regression" for c in changes) else 0
