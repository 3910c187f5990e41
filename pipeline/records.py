"""What ``frbench compare`` needs from a committed baseline, written by the report stage.

- ``reports/per_image.csv``: long format ``method,set,id,metric,value``, one row per image and
  per-image metric of every cell (sorted; values to 9 significant digits), so the paired
  bootstrap of ``pipeline/compare.py`` can read the baseline's per-image values at any git
  revision (``git show REV:reports/per_image.csv``). Set-level metrics (FID, KID) have no
  per-image values and are not in it.
- ``reports/environment.json``: the machine and numerics the numbers were made with:
  ``environment()`` of the report process (cpu model, the full flag list and its hash,
  effective ISA, torch threads, torch, numerics pinned/native, oneDNN/MKL settings, GPU) and,
  under ``trained_on``, the same facts each checkpoint's ``train_log.json`` recorded.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

PER_IMAGE = "per_image.csv"
ENVIRONMENT = "environment.json"
FIELDS = ["method", "set", "id", "metric", "value"]
# the facts whose difference can change numbers (compared by compare.environment_note)
KEY_FACTS = ("cpu", "cpu_flags_sha256", "isa", "torch_threads", "numerics", "onednn", "torch",
             "libs", "gpu")


def per_image_rows(cells, results_root: str | Path = "results") -> list[dict]:
    """Long-format rows from ``<results>/<m>/<s>/per_image.csv`` of each (method, set) cell."""
    rows = []
    for m, s in cells:
        p = Path(results_root) / m / s / "per_image.csv"
        if not p.is_file():
            log.warning("%s: missing; the cell has no per-image baseline", p)
            continue
        with open(p, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                for k, v in r.items():
                    if k == "id" or v in (None, ""):
                        continue
                    rows.append({"method": m, "set": s, "id": r["id"], "metric": k,
                                 "value": float(v)})
    rows.sort(key=lambda r: (r["method"], r["set"], r["metric"], r["id"]))
    return rows


def per_image_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in rows:
        v = r["value"]
        w.writerow([r["method"], r["set"], r["id"], r["metric"],
                    "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.9g}"])
    return buf.getvalue()


def parse_per_image(text: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """CSV text -> {(method, set, metric): {id: value}}."""
    out: dict = {}
    for r in csv.DictReader(io.StringIO(text)):
        out.setdefault((r["method"], r["set"], r["metric"]), {})[r["id"]] = float(r["value"])
    return out


def build_environment(checkpoint_dir: Optional[str | Path] = None) -> dict:
    from core.environment import environment
    env = environment()
    env["cpu_flags"] = env.get("cpu_flags", "").split()
    trained = {}
    if checkpoint_dir and Path(checkpoint_dir).is_dir():
        for log_path in sorted(Path(checkpoint_dir).glob("*/train_log.json")):
            try:
                e = json.loads(log_path.read_text(encoding="utf-8")).get("environment") or {}
            except (OSError, ValueError):
                continue
            trained[log_path.parent.name] = {k: e.get(k) for k in KEY_FACTS if k in e}
    env["trained_on"] = trained
    return env


def write_records(params, out_dir: str | Path, results_root: str | Path = "results") -> list[Path]:
    """Write ``per_image.csv`` and ``environment.json`` into ``out_dir`` (atomically); the
    report stage's one call. Returns the paths written."""
    from pipeline.report import _atomic_write
    out = Path(out_dir)
    rows = per_image_rows(params.pipeline.cells(), results_root)
    _atomic_write(out / PER_IMAGE, per_image_csv(rows))
    ckpt = getattr(getattr(params, "train", None), "checkpoint_dir", None)
    env = build_environment(ckpt)
    _atomic_write(out / ENVIRONMENT, json.dumps(env, indent=1, sort_keys=True) + "\n")
    return [out / PER_IMAGE, out / ENVIRONMENT]
