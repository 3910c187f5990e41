"""Sample grids: a few images of several folders side by side (one row per image, one column
per folder), nearest-neighbour resized to ``px`` so small faces stay crisp. PNG bytes out.
Used by the HTML report (base64-embedded) and by MLflow child runs."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def pick_ids(folder: Path, n: int, prefix: Optional[str] = None) -> list[str]:
    """The first ``n`` image stems of ``folder`` (sorted; those starting with ``prefix``)."""
    stems = sorted(p.stem for p in Path(folder).iterdir()
                   if p.suffix.lower() in (".png", ".jpg", ".jpeg") and
                   (prefix is None or p.stem.startswith(prefix)))
    return stems[:n]


def _load(folder: Path, stem: str, px: int) -> np.ndarray:
    from PIL import Image
    for ext in (".png", ".jpg", ".jpeg"):
        p = Path(folder) / (stem + ext)
        if p.is_file():
            im = Image.open(p).convert("RGB").resize((px, px), Image.NEAREST)
            return np.asarray(im)
    return np.full((px, px, 3), 255, np.uint8)  # missing: a blank tile


def sample_grid(folders: Sequence[Path], ids: Sequence[str], px: int = 96, pad: int = 2) -> np.ndarray:
    """uint8 HWC grid: rows = ids, columns = folders, white padding."""
    rows, cols = len(ids), len(folders)
    h, w = rows * (px + pad) + pad, cols * (px + pad) + pad
    grid = np.full((h, w, 3), 255, np.uint8)
    for i, stem in enumerate(ids):
        for j, f in enumerate(folders):
            y, x = pad + i * (px + pad), pad + j * (px + pad)
            grid[y:y + px, x:x + px] = _load(f, stem, px)
    return grid


def png_bytes(img: np.ndarray, palette: bool = False) -> bytes:
    """PNG of a uint8 HWC image; ``palette``: 256-colour (median cut, no dither), ~3x smaller."""
    from PIL import Image
    im = Image.fromarray(img)
    if palette:
        im = im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def sample_grid_png(folders: Sequence[Path], labels: Sequence[str], n: int = 4, px: int = 96,
                    prefix: Optional[str] = None) -> bytes:
    """PNG of the first ``n`` images of the last folder (the GT) across ``folders``."""
    ids = pick_ids(folders[-1], n, prefix)
    return png_bytes(sample_grid(folders, ids, px))


def labelled_grid_png(folders: Sequence[Path], labels: Sequence[str], ids: Sequence[str],
                      px: int = 96, pad: int = 2) -> bytes:
    """``sample_grid`` with a header strip naming each column (PIL's built-in font)."""
    from PIL import Image, ImageDraw
    body = sample_grid(folders, ids, px, pad)
    head = 16
    img = Image.new("RGB", (body.shape[1], body.shape[0] + head), "white")
    img.paste(Image.fromarray(body), (0, head))
    d = ImageDraw.Draw(img)
    for j, lab in enumerate(labels):
        x = pad + j * (px + pad)
        text = lab if len(lab) <= px // 6 else lab[:px // 6 - 1] + "…"
        d.text((x + 2, 2), text, fill=(20, 20, 20))
    return png_bytes(np.asarray(img), palette=True)
