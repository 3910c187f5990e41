"""Data files of ``dvc plots`` (written by the ``report`` stage into ``reports/plots/``).

- ``ladder.csv``: ``metric, method, level, value``: the mean of each per-image metric per ladder
  level (the ``r<factor>_`` prefix of the ladder set's image ids, as a number) for every method
  scored on a ``panini_ladder`` test set;
- ``train_loss.csv``: ``method, loss, step, value``: the losses of every ``train_log.json`` under
  the checkpoint folder (prior, DRE and the ``pipeline.train`` entries), thinned to at most
  ``MAX_POINTS`` steps per method (every k-th step plus the last).

dvc.yaml's top-level ``plots`` draws them with the templates in ``.dvc/plots/`` (one panel per
metric or per method, one colour per method or loss, one dash per revision), so
``dvc plots diff HEAD~1`` overlays two commits. Deterministic: fixed row order, ``%.6g`` values,
no timing columns.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from pathlib import Path

log = logging.getLogger(__name__)
MAX_POINTS = 200
_LEVEL = re.compile(r"^[A-Za-z]*(\d+)_")
_SKIP = {"step", "time_s", "data_s", "lr_scale"}


def _fmt(v: float) -> str:
    return format(v, ".6g")


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def ladder_rows(params, results_root) -> list[list]:
    sets = params.testsets.sets if params.testsets is not None else {}
    ladder = [s for s in sets if sets[s].preset == "panini_ladder"]
    cells = [(m, s) for m, s in params.pipeline.cells() if s in ladder]
    many = len({s for _, s in cells}) > 1
    acc: dict[tuple[str, str, int], list[float]] = {}
    metric_order: list[str] = []
    for m, s in cells:
        path = Path(results_root) / m / s / "per_image.csv"
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                hit = _LEVEL.match(rec["id"])
                if not hit:
                    continue
                for metric, v in rec.items():
                    if metric == "id":
                        continue
                    if metric not in metric_order:
                        metric_order.append(metric)
                    x = float(v)
                    if math.isfinite(x):
                        label = f"{m} ({s})" if many else m
                        acc.setdefault((metric, label, int(hit.group(1))), []).append(x)
    order = {k: i for i, k in enumerate(metric_order)}
    method_order = {(f"{m} ({s})" if many else m): i for i, (m, s) in enumerate(cells)}
    keys = sorted(acc, key=lambda k: (order[k[0]], method_order[k[1]], k[2]))
    return [[metric, label, lvl, _fmt(sum(acc[(metric, label, lvl)]) / len(acc[(metric, label, lvl)]))]
            for metric, label, lvl in keys]


def loss_rows(params, checkpoint_dir) -> list[list]:
    names = ["prior", "dre"] + list(params.pipeline.train)
    rows = []
    for m in dict.fromkeys(names):
        path = Path(checkpoint_dir) / m / "train_log.json"
        if not path.is_file():
            continue
        hist = json.loads(path.read_text(encoding="utf-8")).get("history") or []
        if not hist:
            continue
        every = max(1, math.ceil(len(hist) / MAX_POINTS))
        keep = [h for i, h in enumerate(hist) if i % every == every - 1 or i == len(hist) - 1]
        losses = list(dict.fromkeys(k for h in keep for k in h if k not in _SKIP))
        for loss in losses:
            for h in keep:
                v = h.get(loss)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    rows.append([m, loss, int(h["step"]), _fmt(float(v))])
    return rows


def write_plot_data(params, results_root="results", out_dir="reports/plots",
                    checkpoint_dir=None) -> list[Path]:
    """Write ``ladder.csv`` and ``train_loss.csv`` into ``out_dir``; returns the paths."""
    from core.imageio import atomic_write_text

    out = Path(out_dir)
    ckpt = checkpoint_dir or (params.train.checkpoint_dir if params.train else "checkpoints")
    files = [(out / "ladder.csv", _csv(["metric", "method", "level", "value"],
                                       ladder_rows(params, results_root))),
             (out / "train_loss.csv", _csv(["method", "loss", "step", "value"],
                                           loss_rows(params, ckpt)))]
    for path, text in files:
        atomic_write_text(path, text)
    return [p for p, _ in files]
