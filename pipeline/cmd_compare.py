"""``frbench compare --baseline REV``: regression check of reports/metrics.json against an
earlier git revision (``dvc metrics diff``), with per-metric direction and tolerance from
params.yaml ``regression.rules``. Writes a Markdown table (``regression.out``), prints it, and
exits 1 when any metric regressed (0 otherwise; 2 on usage errors). For CI::

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


def run(args) -> int:
    from pipeline.compare import compare, dvc_metrics_diff, markdown
    from pipeline.config import load_params
    from core.errors import FRBenchError

    params = load_params(args.params)
    rc = params.regression
    if rc is None:
        raise FRBenchError(f"{args.params}: missing section 'regression'")
    baseline = args.baseline or rc.baseline
    changes = compare(dvc_metrics_diff(baseline, rc.metrics_file), rc.rules)
    md = markdown(changes, baseline, args.all)
    out = Path(args.out or rc.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md, encoding="utf-8")
    print(md)
    return 1 if any(c.status == "regression" for c in changes) else 0
