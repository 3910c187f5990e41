"""HQ face sources: a folder of images (user-supplied FFHQ/CelebA-HQ) or the built-in synthetic
faces already written to disk, plus a small torch ``Dataset`` and the ``faces.json`` loader.

Folder rules (``list_hq``/``load_hq``):
- files: every image in the folder (``core.imageio.IMAGE_SUFFIXES``), sorted by name; the id
  is the file stem (two files with the same stem -> error);
- ``list_file``: optional text file selecting images, one file name or stem per line (blank lines
  and ``#`` comments ignored), kept in the list's order; an entry with no matching file -> error;
- non-square images: ``nonsquare="crop"`` takes the centred square (side = min(H, W), offset
  ``(H - side) // 2``), ``"error"`` refuses;
- ``size``: resized to ``size`` x ``size`` when given: shrinking uses ``cv2.INTER_AREA`` (box
  average, antialiased), enlarging ``PIL`` bicubic; images smaller than ``min_size`` (default
  ``size``) -> error naming the file (upscaled faces would not be HQ).
Images are read with ``core.imageio.read_image`` (its documented conversions: grayscale ->
RGB, RGBA -> RGB dropping alpha, 16-bit -> 8-bit). ``hq_side`` checks every rule above from the
image headers alone (no decoding), so a folder with one wrong image fails in seconds, naming it,
before any work is done; faces below ``core.imageio.MIN_SIDE`` (16 px) are refused.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core.errors import FRBenchError
from core.imageio import MIN_SIDE, image_size, images_by_id, read_image, to_float


def read_list_file(path: str | os.PathLike) -> list[str]:
    """Entries of a list file (names or stems), blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise FRBenchError(f"{path}: list file not found")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    if not out:
        raise FRBenchError(f"{path}: list file is empty")
    return out


def list_hq(folder: str | os.PathLike, list_file: str | os.PathLike | None = None
            ) -> list[tuple[str, Path]]:
    """[(id, path)] of the HQ images in ``folder`` (sorted, or in ``list_file`` order)."""
    by_stem = images_by_id(folder)
    if list_file is None:
        return [(s, by_stem[s]) for s in sorted(by_stem)]
    by_name = {f.name: f for f in by_stem.values()}
    out, seen = [], set()
    for entry in read_list_file(list_file):
        f = by_name.get(entry) or by_stem.get(entry) or by_stem.get(Path(entry).stem)
        if f is None:
            raise FRBenchError(f"{list_file}: entry '{entry}' matches no image in {folder}")
        if f.stem not in seen:
            seen.add(f.stem)
            out.append((f.stem, f))
    return out


def hq_side(items: list[tuple[str, Path]], size: int | None = None, nonsquare: str = "crop",
            where: str = "size") -> int:
    """The common side of the HQ images ``items`` ([(id, path)]) after ``prepare_hq``, checked
    from their headers: readable, within the pixel limit, square (or ``nonsquare="crop"``), at
    least ``size`` (when given) and ``MIN_SIDE`` px, and all of one side when ``size`` is None.
    ``where`` names the size setting in messages (``--size``, ``data.size``)."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or size < MIN_SIDE):
        raise FRBenchError(f"{where}: must be an integer >= {MIN_SIDE} px (the smallest face side "
                           f"the suite accepts), got {size!r}")
    first: tuple[int, Path] | None = None
    for _, path in items:
        w, h = image_size(path)
        if w != h and nonsquare != "crop":
            raise FRBenchError(f"{path}: image is {w}x{h}, not square (crop it, or allow "
                               "centre-cropping)")
        side = min(w, h)
        need = size if size is not None else MIN_SIDE
        if side < need:
            raise FRBenchError(f"{path}: image is {w}x{h} px, smaller than the required {need} px "
                               f"(minimum face side {MIN_SIDE} px); use larger images"
                               + (" or a smaller size" if size is not None else ""))
        if size is None:
            if first is None:
                first = (side, path)
            elif side != first[0]:
                raise FRBenchError(f"{path}: {side} px, but {first[1].name} is {first[0]} px; HQ "
                                   f"images must share one size: pass {where} to resize them")
    return size if size is not None else (first[0] if first else 0)


def prepare_hq(img: np.ndarray, path: str | os.PathLike, size: int | None = None,
               nonsquare: str = "crop", min_size: int | None = None) -> np.ndarray:
    """uint8 HWC RGB -> square uint8 at ``size`` (see module doc for the rules)."""
    h, w = img.shape[:2]
    if h != w:
        if nonsquare != "crop":
            raise FRBenchError(f"{path}: image is {w}x{h}, not square (crop it, or allow "
                               "centre-cropping)")
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        img = img[y0:y0 + side, x0:x0 + side]
    side = img.shape[0]
    need = size if min_size is None else min_size
    if need is not None and side < need:
        raise FRBenchError(f"{path}: image is {side}x{side} px, smaller than the required "
                           f"{need} px; use larger images or a smaller size")
    if size is not None and side != size:
        if side > size:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        else:
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
    return np.ascontiguousarray(img)


def load_hq(path: str | os.PathLike, size: int | None = None, nonsquare: str = "crop",
            min_size: int | None = None) -> np.ndarray:
    """Read + ``prepare_hq``: uint8 (size, size, 3) RGB."""
    return prepare_hq(read_image(path), path, size, nonsquare, min_size)


def load_faces_json(folder_or_file: str | os.PathLike) -> dict[str, dict]:
    """``faces.json`` -> {id: {"left_eye": [x, y], "right_eye": [x, y], "mouth": [x, y],
    "eye_half": r, "mouth_half": r, ...}} (pixels of the saved image)."""
    p = Path(folder_or_file)
    if p.is_dir():
        p = p / "faces.json"
    if not p.is_file():
        raise FRBenchError(f"{p}: no faces.json (landmarks exist for the built-in synthetic faces "
                           "only)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FRBenchError(f"{p}: invalid JSON ({e})") from None
    for k, v in data.items():
        for key in ("left_eye", "right_eye", "mouth", "eye_half", "mouth_half"):
            if key not in v:
                raise FRBenchError(f"{p}: entry '{k}' lacks '{key}'")
    return data


def scale_landmarks(entry: dict, factor: float) -> dict:
    """Landmarks of one faces.json entry scaled to an image ``factor`` times larger."""
    return {"left_eye": [c * factor for c in entry["left_eye"]],
            "right_eye": [c * factor for c in entry["right_eye"]],
            "mouth": [c * factor for c in entry["mouth"]],
            "eye_half": entry["eye_half"] * factor, "mouth_half": entry["mouth_half"] * factor}


class HQDataset:
    """HQ images of a folder for training: item ``i`` -> dict ``{"id": str, "hq": float32 HWC
    [0,1] numpy array (size, size, 3)}`` plus ``"landmarks"`` (faces.json entry scaled to the
    image) when the folder has a faces.json. A plain map-style dataset (``__len__`` and
    ``__getitem__``), so ``torch.utils.data.DataLoader`` takes it as is and this module needs no
    torch import (worker processes of the builder stay light). Images are decoded once and
    kept in memory when ``cache`` (the built-in tier: a few hundred 64 px faces). Degradation is
    left to the caller (``degradations.degrade``) so it can use its own RNG stream.
    """

    def __init__(self, folder: str | os.PathLike, size: int | None = None,
                 list_file: str | os.PathLike | None = None, nonsquare: str = "crop",
                 cache: bool = True):
        self.folder = Path(folder)
        self.items = list_hq(self.folder, list_file)
        self.size = size
        self.nonsquare = nonsquare
        fj = self.folder / "faces.json"
        self.faces = load_faces_json(fj) if fj.is_file() else None
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [i for i, _ in self.items]

    def image(self, i: int) -> np.ndarray:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img = to_float(load_hq(self.items[i][1], self.size, self.nonsquare))
        if self._cache is not None:
            self._cache[i] = img
        return img

    def __getitem__(self, i: int) -> dict:
        img = self.image(int(i))
        id_ = self.items[int(i)][0]
        out = {"id": id_, "hq": img}
        if self.faces is not None and id_ in self.faces:
            e = self.faces[id_]
            out["landmarks"] = scale_landmarks(e, img.shape[0] / float(e.get("size", img.shape[0])))
        return out
