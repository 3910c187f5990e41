"""Sample grids: a few images of several folders side by side (one row per image, one column
per folder), nearest-neighbour resized to ``px`` so small faces stay crisp. PNG bytes out.
Used by the HTML report (base64-embedded) and by MLflow child runs."""
from __future__ import annotations

import io
import re
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


def wrap_label(label: str, width: float, measure=len) -> list[str]:
    """``label`` in lines no wider than ``width`` (``measure(text)``: characters by default,
    pixels with a font's ``textlength``), broken after ``_``/``-`` where possible
    (``panini_catconv`` -> ``panini_``, ``catconv``); never shortened."""
    lines, cur = [], ""
    for tok in re.findall(r"[^_\-]+[_\-]?|[_\-]", label):
        while measure(tok) > width and len(tok) > 1:   # longer than a line: hard break
            if cur:
                lines.append(cur)
                cur = ""
            k = max(1, max(i for i in range(1, len(tok) + 1) if measure(tok[:i]) <= width)
                    if measure(tok[:1]) <= width else 1)
            lines.append(tok[:k])
            tok = tok[k:]
        if cur and measure(cur + tok) > width:
            lines.append(cur)
            cur = tok
        else:
            cur += tok
    if cur or not lines:
        lines.append(cur)
    return lines


def labelled_grid_png(folders: Sequence[Path], labels: Sequence[str], ids: Sequence[str],
                      px: int = 96, pad: int = 2) -> bytes:
    """``sample_grid`` with a header strip naming each column in full (PIL's default font; long
    names wrap onto more lines instead of being cut)."""
    from PIL import Image, ImageDraw
    body = sample_grid(folders, ids, px, pad)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    wrapped = [wrap_label(lab, px - 3, measure) for lab in labels]
    line_h = 12
    head = 4 + line_h * max(len(w) for w in wrapped)
    img = Image.new("RGB", (body.shape[1], body.shape[0] + head), "white")
    img.paste(Image.fromarray(body), (0, head))
    d = ImageDraw.Draw(img)
    for j, lines in enumerate(wrapped):
        x = pad + j * (px + pad)
        for k, text in enumerate(lines):
            d.text((x + 2, 2 + k * line_h), text, fill=(20, 20, 20))
    return png_bytes(np.asarray(img), palette=True)
