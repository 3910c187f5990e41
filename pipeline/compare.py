"""Regression check of metrics between two revisions, on ``dvc metrics diff --json``.

``dvc metrics diff BASELINE [--targets reports/metrics.json] --json`` gives, per metrics file,
``{"<method>.<set>.<metric>": {"old": a, "new": b, "diff": b - a}}``. Each key's last part names
the metric; its rule (``regression.rules`` in params.yaml: ``better: higher|lower``, ``atol``,
``rtol``; a rule key ending in ``*`` is a prefix, e.g. ``deg_*``) says which direction is worse.
A change is a **regression** when it goes the worse way by more than ``atol`` and by more than
``rtol * |old|``; an **improvement** symmetrically; anything else is ``ok``. Metrics without a
rule, or that appear/disappear, are reported but never fail.
"""
from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

from core.errors import FRBenchError

log = logging.getLogger(__name__)


@dataclass
class Change:
    key: str
    metric: str
    old: Optional[float]
    new: Optional[float]
    status: str          # regression | improvement | ok | info | added | removed
    rule: str

    @property
    def diff(self) -> Optional[float]:
        return None if self.old is None or self.new is None else self.new - self.old


def rule_for(metric: str, rules: dict):
    if metric in rules:
        return metric, rules[metric]
    for k, r in rules.items():
        if k.endswith("*") and metric.startswith(k[:-1]):
            return k, r
    return None, None


def classify(key: str, old, new, rules: dict) -> Change:
    metric = key.rsplit(".", 1)[-1]
    name, rule = rule_for(metric, rules)
    label = "" if rule is None else f"{rule.better} (atol {rule.atol:g}, rtol {rule.rtol:g})"
    if old is None or new is None:
        return Change(key, metric, old, new, "added" if old is None else "removed", label)
    if rule is None:
        return Change(key, metric, old, new, "info", "no rule")
    old, new = float(old), float(new)
    if math.isnan(old) or math.isnan(new):
        return Change(key, metric, old, new, "regression" if math.isnan(new) and not math.isnan(old)
                      else "info", label)
    worse = (old - new) if rule.better == "higher" else (new - old)
    tol_ok = lambda d: abs(d) <= rule.atol or abs(d) <= rule.rtol * abs(old)  # noqa: E731
    if worse > 0 and not tol_ok(worse):
        status = "regression"
    elif worse < 0 and not tol_ok(worse):
        status = "improvement"
    else:
        status = "ok"
    return Change(key, metric, old, new, status, label)


def dvc_metrics_diff(baseline: str, target: str, cwd=None) -> dict:
    """Run ``dvc metrics diff BASELINE --targets TARGET --json --all`` -> {key: {old, new}}."""
    # the dvc of this interpreter (works without an activated venv, e.g. `make test`)
    cmd = [sys.executable, "-m", "dvc", "metrics", "diff", baseline, "--targets", target,
           "--json", "--all"]
    try:
        import dvc  # noqa: F401
    except ImportError:
        raise FRBenchError("dvc is not installed in this environment; install the project "
                           "(make install)") from None
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)
    if p.returncode != 0:
        raise FRBenchError(f"`dvc {' '.join(cmd[3:])}` failed: {p.stderr.strip() or p.stdout.strip()}")
    text = p.stdout.strip()
    data = json.loads(text) if text else {}
    out = {}
    for _path, entries in data.items():
        if isinstance(entries, dict) and "old" not in entries:
            out.update(entries)
    return out


def compare(diff: dict, rules: dict) -> list[Change]:
    return [classify(k, v.get("old"), v.get("new"), rules) for k, v in sorted(diff.items())]


def markdown(changes: list[Change], baseline: str, show_all: bool = False) -> str:
    from pipeline.report_text import fmt, md_table
    n_reg = sum(c.status == "regression" for c in changes)
    head = (f"# Regression check against `{baseline}`\n\n"
            f"**{'FAIL' if n_reg else 'PASS'}**: {n_reg} regression(s), "
            f"{sum(c.status == 'improvement' for c in changes)} improvement(s), "
            f"{len(changes)} metric(s) compared.\n\n")
    shown = [c for c in changes if show_all or not (c.status == "ok" or
                                                    (c.status == "info" and c.diff == 0))]
    if not shown:
        return head + "No metric moved beyond its tolerance.\n"
    order = {"regression": 0, "removed": 1, "improvement": 2, "added": 3, "info": 4, "ok": 5}
    shown.sort(key=lambda c: (order.get(c.status, 9), c.key))
    body = [[c.key, fmt(c.old, c.metric), fmt(c.new, c.metric), fmt(c.diff, c.metric),
             c.status.upper() if c.status == "regression" else c.status, c.rule] for c in shown]
    return head + md_table(["metric", "baseline", "current", "diff", "status", "rule"], body) + "\n"
