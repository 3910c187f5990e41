"""Image I/O and the one place where image conventions are converted.

Conventions (docs/architecture.md, "Image conventions"):
- on disk: 8-bit RGB PNG (lossless);
- degradations: ``float32`` HWC in [0, 1] (numpy);
- models: ``float32`` NCHW in [-1, 1] (torch).

Reading is strict: unreadable/truncated files raise ``FRBenchError`` naming the file. Documented
conversions on read: grayscale -> RGB (channel replicated), RGBA/LA -> RGB (alpha dropped, the
colour channels kept as stored), 16-bit -> 8-bit (``round(v / 257)``), palette -> RGB.

Size limits: an image whose header declares more than ``MAX_PIXELS`` (8192 x 8192) pixels is
refused from its header, before decoding (decompression bombs, and photos far above any face
crop the suite uses); ``MIN_SIDE`` (16 px) is the smallest HQ/GT face side the suite accepts
(LQ inputs may be smaller: an x8 SR input of a 64 px face is 8 px). ``image_size(path)`` reads
the size from the header only.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import FRBenchError
from core.outputs import atomic_dir  # noqa: F401  (re-exported: the output-folder rules)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 8192 * 8192
MIN_SIDE = 16
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


def _open(path: Path):
    """``Image.open`` with the suite's size limit checked on the header (no pixels decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise FRBenchError(f"{path}: image too large ({e}); the suite reads images of at most "
                           f"{MAX_PIXELS} pixels (8192x8192): crop or resize it") from None
    except _READ_ERRORS as e:
        raise FRBenchError(f"{path}: cannot read image ({e.__class__.__name__}: {e}); "
                           "re-export it as an 8-bit RGB PNG") from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise FRBenchError(f"{path}: image is {w}x{h} px, above the limit of {MAX_PIXELS} pixels "
                           "(8192x8192); crop or resize it first")
    if w < 1 or h < 1:
        im.close()
        raise FRBenchError(f"{path}: image is {w}x{h} px (empty)")
    return im


def _check_file(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise FRBenchError(f"{path}: dangling symbolic link (its target "
                           f"{os.readlink(path)} does not exist); fix or remove the link")
    if not path.is_file():
        raise FRBenchError(f"{path}: no such image file")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels. FRBenchError for
    unreadable headers and images above ``MAX_PIXELS``."""
    path = Path(path)
    _check_file(path)
    im = _open(path)
    try:
        return im.size
    finally:
        im.close()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any supported image as uint8 RGB HWC. Raises FRBenchError on unreadable input."""
    path = Path(path)
    _check_file(path)
    try:
        with _open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                arr = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
                arr = np.stack([arr] * 3, axis=-1)
            else:
                if mode in ("RGBA", "LA", "PA"):
                    im = im.convert("RGBA").convert("RGB") if mode != "RGBA" else im.convert("RGB")
                elif mode != "RGB":
                    im = im.convert("RGB")
                arr = np.asarray(im, dtype=np.uint8)
    except _READ_ERRORS as e:
        raise FRBenchError(f"{path}: cannot read image ({e.__class__.__name__}: {e}); "
                           "re-export it as an 8-bit RGB PNG") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise FRBenchError(f"{path}: unexpected image shape {arr.shape}")
    return np.ascontiguousarray(arr)


def write_png(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write uint8 RGB HWC (or float HWC in [0,1], quantised with ``to_uint8``) as PNG, atomically."""
    path = Path(path)
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"write_png expects HWC RGB, got shape {img.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    # compress_level fixed so the bytes are reproducible across runs.
    Image.fromarray(img, mode="RGB").save(tmp, format="PNG", compress_level=6)
    os.replace(tmp, path)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 HWC in [0, 1]."""
    if img.dtype != np.uint8:
        raise TypeError(f"to_float expects uint8, got {img.dtype}")
    return img.astype(np.float32) / np.float32(255.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float HWC in [0, 1] -> uint8 (round half to even, clip)."""
    return np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def to_tensor(img: np.ndarray):
    """float32 HWC [0,1] or NHWC -> torch float32 NCHW in [-1, 1]."""
    import torch

    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    return t * 2.0 - 1.0


def from_tensor(t) -> np.ndarray:
    """torch NCHW in [-1, 1] -> float32 NHWC in [0, 1] (clipped)."""
    a = t.detach().float().cpu().clamp(-1, 1).add(1).mul(0.5).numpy()
    return a.transpose(0, 2, 3, 1).astype(np.float32)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Sorted image files (by name) in a folder; FRBenchError if missing or empty, and for a
    dangling symbolic link with an image name (it would silently shrink the set)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FRBenchError(f"{folder}: no such folder")
    named = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    for p in named:
        if p.is_symlink() and not p.exists():
            _check_file(p)
    files = sorted(p for p in named if p.is_file())
    if not files:
        raise FRBenchError(f"{folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def images_by_id(folder: str | os.PathLike) -> dict[str, Path]:
    """``list_images`` keyed by image id (the file stem), in name order; FRBenchError naming both
    files when two share an id (``a.png`` and ``a.jpg`` would be one image to every metric)."""
    by_id: dict[str, Path] = {}
    for f in list_images(folder):
        if f.stem in by_id:
            raise FRBenchError(f"{folder}: two images share the id '{f.stem}' "
                               f"({by_id[f.stem].name}, {f.name}); rename one")
        by_id[f.stem] = f
    return by_id


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file under a temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
