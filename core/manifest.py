"""Manifest helpers shared by the data-writing commands: file hashes and library versions."""
from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

SUITE_VERSION = "frbench-data-1"  # bump when a generator/degradation change alters output bytes


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose numerics decide the output bytes (torch if installed)."""
    out = {"python": platform.python_version()}
    for dist in ("numpy", "Pillow", "opencv-python-headless", "opencv-python", "torch", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        import cv2

        out["cv2"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def write_json(path: str | os.PathLike, obj) -> None:
    """Deterministic JSON (sorted keys, 1-space indent, trailing newline)."""
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------
# non-finite numbers in JSON

NONFINITE_SUFFIX = "_nonfinite"


def encode_nonfinite(obj):
    """JSON-safe copy of ``obj``: every non-finite float becomes ``null`` and its mapping gains
    ``<key>_nonfinite`` with the value spelled out (``"inf"``, ``"-inf"``, ``"nan"``; for a list,
    a list with the spelling at the non-finite positions and null elsewhere). E.g. the PSNR of a
    restored image identical to its GT: ``{"mean": null, "mean_nonfinite": "inf"}``.
    ``decode_nonfinite`` reverses it."""
    import math

    def spell(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")

    def bad(x):
        return isinstance(x, float) and not math.isfinite(x)

    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if bad(v):
                out[k] = None
                out[f"{k}{NONFINITE_SUFFIX}"] = spell(v)
            elif isinstance(v, (list, tuple)) and any(bad(x) for x in v):
                out[k] = [None if bad(x) else encode_nonfinite(x) for x in v]
                out[f"{k}{NONFINITE_SUFFIX}"] = [spell(x) if bad(x) else None for x in v]
            else:
                out[k] = encode_nonfinite(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if bad(x) else encode_nonfinite(x) for x in obj]
    return obj


def decode_nonfinite(obj):
    """Inverse of ``encode_nonfinite``: the flagged nulls become floats again."""
    if isinstance(obj, dict):
        out = {k: decode_nonfinite(v) for k, v in obj.items()
               if not (k.endswith(NONFINITE_SUFFIX) and k[:-len(NONFINITE_SUFFIX)] in obj)}
        for k, v in obj.items():
            base = k[:-len(NONFINITE_SUFFIX)]
            if not k.endswith(NONFINITE_SUFFIX) or base not in obj:
                continue
            if isinstance(v, str):
                out[base] = float(v)
            elif isinstance(v, list) and isinstance(out[base], list):
                out[base] = [float(s) if isinstance(s, str) else x for s, x in zip(v, out[base])]
        return out
    if isinstance(obj, list):
        return [decode_nonfinite(x) for x in obj]
    return obj


def dumps_json(obj, **kw) -> str:
    """``json.dumps`` that never writes ``Infinity``/``NaN`` (``encode_nonfinite`` first)."""
    return json.dumps(encode_nonfinite(obj), allow_nan=False, **kw)
