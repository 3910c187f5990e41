"""Regression check of metrics between two revisions: a paired bootstrap over images where
per-image values exist, a tolerance rule for set-level metrics.

``dvc metrics diff BASELINE [--targets reports/metrics.json] --json`` gives, per metrics file,
``{"<method>.<set>.<metric>": {"old": a, "new": b, "diff": b - a}}``. Each key's last part names
the metric; its rule (``regression.rules`` in params.yaml: ``better: higher|lower``, ``atol``,
``rtol``; a rule key ending in ``*`` is a prefix, e.g. ``deg_*``) says which direction is worse
and how large a change must be to matter.

- **Per-image metrics** (PSNR, SSIM, LPIPS, identity angle, ...): the baseline's per-image
  values come from ``reports/per_image.csv`` at the baseline revision (``pipeline/records.py``),
  the current ones from the working tree. The differences ``new_i - old_i`` over the images
  both have are resampled (paired bootstrap, ``regression.bootstrap_samples`` resamples, seeded
  by the key) into a 95% CI of the mean difference. A **regression** needs both: the CI lies
  entirely on the worse side of zero, AND the change exceeds the tolerance (worse by more than
  ``atol`` and by more than ``rtol * |old|``). A change beyond the tolerance whose CI still
  contains zero is image-to-image noise (``ok``); a significant change within the tolerance is
  too small to matter (``ok``). **Improvement** symmetrically.
- **Set-level metrics** (FID, KID, Panini theta) have no per-image values: the tolerance rule
  alone decides, as does any metric whose baseline has no per-image values (a baseline made
  before ``reports/per_image.csv`` existed) or whose image ids differ.

Metrics without a rule, or that appear/disappear, are reported but never fail. When the
baseline's recorded environment (``reports/environment.json``) differs from the current one,
the report says so first (``environment_note``).
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

SET_LEVEL = ("fid", "kid")


@dataclass
class Change:
    key: str
    metric: str
    old: Optional[float]
    new: Optional[float]
    status: str          # regression | improvement | ok | info | added | removed
    rule: str
    test: str = ""       # "paired bootstrap" | "tolerance (set-level)" | "tolerance (...)"
    ci: Optional[tuple[float, float]] = None   # 95% CI of the mean per-image diff (new - old)
    n: Optional[int] = None                     # images paired
    beyond: bool = False                        # the change exceeds the tolerance

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


def paired_bootstrap(d, samples: int = 2000, seed: int = 0, level: float = 0.95
                     ) -> tuple[float, float]:
    """Percentile CI of the mean of ``d`` (per-image differences) over ``samples`` resamples
    of the images with replacement."""
    import numpy as np
    d = np.asarray(d, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(int(samples), d.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def _pairs(old: dict, new: dict) -> list[tuple[float, float]]:
    """(old, new) of the images both have, NaNs (excluded images) dropped."""
    return [(old[i], new[i]) for i in sorted(set(old) & set(new))
            if not (math.isnan(old[i]) or math.isnan(new[i]))]


def classify(key: str, old, new, rules: dict, per_old: Optional[dict] = None,
             per_new: Optional[dict] = None, samples: int = 2000) -> Change:
    """One metric's verdict. ``per_old``/``per_new``: {image id: value} of this (method, set,
    metric) at the baseline and now (None: no per-image values -> the tolerance rule)."""
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
    sign = 1.0 if rule.better == "higher" else -1.0      # sign * diff > 0: better
    worse = -sign * (new - old)
    beyond = abs(worse) > rule.atol and abs(worse) > rule.rtol * abs(old)
    if per_old is not None and per_new is not None:
        pairs = _pairs(per_old, per_new)
        if len(pairs) >= 2 and set(per_old) == set(per_new):
            from core.seeding import stable_seed
            d = [b - a for a, b in pairs]
            lo, hi = paired_bootstrap(d, samples, stable_seed("compare", key))
            b_lo, b_hi = sorted((sign * lo, sign * hi))   # the CI in the 'better' direction
            if beyond and b_hi < 0:
                status = "regression"       # the whole CI on the worse side, beyond tolerance
            elif beyond and b_lo > 0:
                status = "improvement"
            else:
                status = "ok"
            return Change(key, metric, old, new, status, label, "paired bootstrap", (lo, hi),
                          len(pairs), beyond)
        why = "image ids differ" if per_old and per_new else "no per-image values"
    else:
        why = ("set-level" if metric in SET_LEVEL or key.startswith("panini_theta.")
               else "no per-image values")
    if worse > 0 and beyond:
        status = "regression"
    elif worse < 0 and beyond:
        status = "improvement"
    else:
        status = "ok"
    return Change(key, metric, old, new, status, label, f"tolerance ({why})", beyond=beyond)


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


def compare(diff: dict, rules: dict, per_old: Optional[dict] = None,
            per_new: Optional[dict] = None, samples: int = 2000) -> list[Change]:
    """Verdicts for every key of a ``dvc metrics diff``. ``per_old``/``per_new``: parsed
    ``per_image.csv`` ({(method, set, metric): {id: value}}) of the baseline / current tree."""
    out = []
    for k, v in sorted(diff.items()):
        parts = tuple(k.split("."))
        po = per_old.get(parts) if per_old is not None and len(parts) == 3 else None
        pn = per_new.get(parts) if per_new is not None and len(parts) == 3 else None
        out.append(classify(k, v.get("old"), v.get("new"), rules, po, pn, samples))
    return out


def environment_note(base: Optional[dict], cur: Optional[dict]) -> str:
    """Markdown that opens the report when the baseline's recorded environment differs from the
    current one ('' when they agree)."""
    from pipeline.records import KEY_FACTS
    if cur is None:
        return ""
    if base is None:
        return ("> **Environment: unknown baseline.** The baseline records no "
                "`reports/environment.json` (made before it existed), so whether it was computed "
                "on this kind of machine and with the same numerics cannot be told; trained "
                "metrics may differ by machine alone.\n\n")
    rows = [(k, base.get(k), cur.get(k)) for k in KEY_FACTS if base.get(k) != cur.get(k)]
    bt, ct = base.get("trained_on") or {}, cur.get("trained_on") or {}
    for name in sorted(set(bt) | set(ct)):
        for k in KEY_FACTS:
            a, b = (bt.get(name) or {}).get(k), (ct.get(name) or {}).get(k)
            if a != b:
                rows.append((f"{name} trained with {k}", a, b))
    if not rows:
        return ""
    from pipeline.report_text import md_table
    both_pinned = base.get("numerics") == cur.get("numerics") == "pinned"
    same_kernels = all(base.get(k) == cur.get(k)
                       for k in ("isa", "torch_threads", "onednn", "torch", "libs"))
    if both_pinned and same_kernels:
        meaning = ("Both were made with pinned numerics (core/numerics.py: AVX2 kernels, "
                   f"{cur.get('torch_threads')} thread(s), same torch and libraries), so the "
                   "built-in tier is expected to match bit for bit; a moved metric is a real "
                   "change or a kernel the pinning does not cover (docs/numerics.md).")
    else:
        meaning = ("The numbers were computed with different kernels (numerics, ISA, threads, "
                   "torch or library versions differ), so trained metrics move by machine "
                   "alone; the per-image paired bootstrap below separates that noise from "
                   "regressions only as far as it is smaller than the tolerances.")
    fmt = lambda v: "–" if v is None else (v if len(str(v)) < 60 else str(v)[:57] + "...")  # noqa: E731
    return ("> **Environment differs from the baseline's.** " + meaning + "\n\n" +
            md_table(["fact", "baseline", "current"], [[k, fmt(a), fmt(b)] for k, a, b in rows])
            + "\n\n")


def markdown(changes: list[Change], baseline: str, show_all: bool = False,
             env_note: str = "") -> str:
    from pipeline.report_text import fmt, md_table
    n_reg = sum(c.status == "regression" for c in changes)
    n_boot = sum(c.test == "paired bootstrap" for c in changes)
    head = (f"# Regression check against `{baseline}`\n\n{env_note}"
            f"**{'FAIL' if n_reg else 'PASS'}**: {n_reg} regression(s), "
            f"{sum(c.status == 'improvement' for c in changes)} improvement(s), "
            f"{len(changes)} metric(s) compared ({n_boot} by a paired bootstrap over images: "
            "a regression when the 95% CI of the mean per-image difference lies on the worse "
            "side of zero and the change exceeds the tolerance; set-level metrics such as "
            "FID/KID by the tolerance alone).\n\n")
    # hidden unless --all: unchanged within tolerance (an 'ok' beyond the tolerance is shown:
    # the bootstrap called it image-to-image noise)
    shown = [c for c in changes if show_all or not ((c.status == "ok" and not c.beyond) or
                                                    (c.status == "info" and c.diff == 0))]
    if not shown:
        return head + "No metric moved beyond its tolerance.\n"
    order = {"regression": 0, "removed": 1, "improvement": 2, "added": 3, "info": 4, "ok": 5}
    shown.sort(key=lambda c: (order.get(c.status, 9), c.key))

    def ci(c):
        return "–" if c.ci is None else f"[{c.ci[0]:+.4g}, {c.ci[1]:+.4g}]"
    body = [[c.key, fmt(c.old, c.metric), fmt(c.new, c.metric), fmt(c.diff, c.metric), ci(c),
             "–" if c.n is None else str(c.n),
             c.status.upper() if c.status == "regression" else c.status, c.rule, c.test]
            for c in shown]
    return head + md_table(["metric", "baseline", "current", "diff", "95% CI of diff", "n",
                            "status", "rule", "test"], body) + "\n"
