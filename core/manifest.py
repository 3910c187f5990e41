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
