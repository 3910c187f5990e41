"""Real photos for the metric tests, none committed.

- ``skimage.data`` images ship with scikit-image (a dependency): astronaut, coffee, chelsea,
  rocket, camera.
- Four portraits from the ``face_recognition`` 1.3.0 **sdist** (``tests/test_images/``; their
  redistribution terms are not stated, so they are fetched at install time, never committed):
  ``make install`` / ``make test-photos`` runs ``scripts/fetch_test_photos.py`` into
  ``cache/test-photos/`` (git-ignored; ``FRBENCH_TEST_PHOTOS`` overrides the folder). Tests that
  need them skip with the command to run when they are absent. Their sha256 are pinned.

Also imported by ``scripts/niqe_basicsr_reference.py`` (run with BasicSR in a scratch venv), so
the NIQE reference figures and the test see the very same pixels: every image is decoded by
Pillow to uint8 RGB here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = {  # file -> sha256 (face_recognition-1.3.0.tar.gz, tests/test_images/)
    "obama.jpg": "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    "obama2.jpg": "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
    "obama3.jpg": "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
    "biden.jpg": "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
}
FETCH_HINT = "run `make test-photos` (pip downloads the face_recognition sdist into cache/test-photos)"


def photo_dir() -> Path:
    return Path(os.environ.get("FRBENCH_TEST_PHOTOS") or ROOT / "cache" / "test-photos")


def decode(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def photo(name: str) -> Optional[np.ndarray]:
    """uint8 RGB of a fetched portrait, or None if absent; a file with another hash is an error."""
    p = photo_dir() / name
    if not p.is_file():
        return None
    if hashlib.sha256(p.read_bytes()).hexdigest() != PHOTOS[name]:
        raise RuntimeError(f"{p}: not the face_recognition 1.3.0 test photo (sha256 differs); "
                           f"delete it and {FETCH_HINT}")
    return decode(p)


def require_photo(name: str) -> np.ndarray:
    import pytest
    img = photo(name)
    if img is None:
        pytest.skip(f"test photo {name} absent from {photo_dir()}: {FETCH_HINT}")
    return img


def skimage_images() -> dict[str, np.ndarray]:
    """The scikit-image photos as uint8 RGB (camera replicated to 3 channels) plus one degraded
    copy: astronaut 4x4 box-averaged (rounded half up) then enlarged by pixel repetition (pure
    integer/float arithmetic, so identical under any library version)."""
    from skimage import data
    out = {n: getattr(data, n)() for n in ("astronaut", "coffee", "chelsea", "rocket", "camera")}
    out["camera"] = np.repeat(out["camera"][..., None], 3, axis=2)
    a = out["astronaut"].astype(np.float64)
    h, w = a.shape[:2]
    small = np.floor(a.reshape(h // 4, 4, w // 4, 4, 3).mean((1, 3)) + 0.5).astype(np.uint8)
    out["astronaut_box4"] = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
