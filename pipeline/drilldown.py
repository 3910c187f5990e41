"""Per-image drill-down of the HTML report.

For each (method, test set) cell: the best and the worst ``k`` images by the cell's primary
deciding metric (``pipeline.report.add_ranks``: the first per-image metric that needs no weights
or has real weight files; PSNR at every protocol today). Each image is a strip of four tiles:
the LQ input (nearest-neighbour up to the GT size), the restored image, the GT and an
absolute-difference map (mean over RGB of |restored - GT|, amplified ``DIFF_GAIN`` times, magma
colour map). The metric values are printed on the tiles. Clicking a strip opens a zoomed view
with a before/after slider (restored over GT). Everything is inline: base64 PNGs, inline CSS and
JS, no network.
"""
from __future__ import annotations

import base64
import html as H
import logging
import math
from pathlib import Path
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)

DIFF_GAIN = 4          # |restored - GT| x 4: 64/255 and more saturate the colour map
MAX_TILE_PX = 256      # tiles of larger images are downsampled (area) to this side

CSS = """
.dd-set{margin:.6em 0}.dd-set>summary{cursor:pointer;font-weight:600}
.dd-cell{margin:.4em 0 1em}.dd-row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
.dd-row>b{width:100%;font-size:.85em;color:#444;margin-bottom:-4px}
figure.dd{margin:0;cursor:zoom-in;border:1px solid #ddd;background:#fff;padding:3px;border-radius:4px}
figure.dd:hover{border-color:#4a7bd0}
.dd-tiles{display:flex;gap:2px}.dd-tile{position:relative;width:86px;height:86px}
.dd-tile img{width:86px;height:86px;image-rendering:pixelated;display:block}
.dd-tile span{position:absolute;left:0;right:0;bottom:0;background:rgba(0,0,0,.62);color:#fff;
 font:10px/1.25 ui-monospace,monospace;padding:1px 2px;white-space:nowrap;overflow:hidden}
.dd-tile span.top{top:0;bottom:auto;background:rgba(0,0,0,.45)}
figure.dd figcaption{font:10.5px/1.3 ui-monospace,monospace;color:#333;max-width:352px;white-space:normal}
#zoom{display:none;position:fixed;inset:0;background:rgba(20,20,20,.88);z-index:10;
 align-items:center;justify-content:center;flex-direction:column;color:#eee}
#zoom .zbox{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap;justify-content:center}
#zoom .cmp{position:relative;width:min(60vh,520px);height:min(60vh,520px)}
#zoom .cmp img{position:absolute;inset:0;width:100%;height:100%;image-rendering:pixelated}
#zoom .cmp .bar{position:absolute;top:0;bottom:0;width:2px;margin-left:-1px;background:#fff;
 box-shadow:0 0 3px #000;pointer-events:none}
#zoom .side img{width:min(28vh,250px);height:min(28vh,250px);image-rendering:pixelated;display:block}
#zoom .side{display:flex;flex-direction:column;gap:6px;font-size:12px}
#zoom input[type=range]{width:min(60vh,520px)}#zoom .hint{font-size:12px;margin:6px}
#zoom .lab{display:flex;justify-content:space-between;width:min(60vh,520px);font-size:12px}
"""

JS = """
(function(){
  var z=document.getElementById('zoom'); if(!z) return;
  var rs=z.querySelector('.rs'), gt=z.querySelector('.gt'), lq=z.querySelector('.lq'),
      df=z.querySelector('.df'), cap=z.querySelector('.zcap'), sl=z.querySelector('input');
  var bar=z.querySelector('.bar');
  function clip(){ rs.style.clipPath='inset(0 '+(100-sl.value)+'% 0 0)'; bar.style.left=sl.value+'%'; }
  sl.addEventListener('input',clip);
  document.querySelectorAll('figure.dd').forEach(function(f){
    f.addEventListener('click',function(){
      var im=f.querySelectorAll('img');
      lq.src=im[0].src; rs.src=im[1].src; gt.src=im[2].src; df.src=im[3].src;
      cap.textContent=f.querySelector('figcaption').textContent;
      sl.value=50; clip(); z.style.display='flex';
    });
  });
  z.addEventListener('click',function(e){ if(e.target===z||e.target.classList.contains('close')) z.style.display='none'; });
  document.addEventListener('keydown',function(e){ if(e.key==='Escape') z.style.display='none'; });
  if(location.hash==='#zoom-first'){ var f=document.querySelector('figure.dd'); if(f) f.click(); }
})();
"""

MODAL = ("<div id='zoom'><div class='zcap hint'></div><div class='zbox'><div>"
         "<div class='cmp'><img class='gt' alt='GT'><img class='rs' alt='restored'>"
         "<div class='bar'></div></div>"
         "<div class='lab'><span>◀ restored</span><span>GT ▶</span></div>"
         "<input type='range' min='0' max='100' value='50' aria-label='before/after slider'>"
         "</div><div class='side'><span>LQ input</span><img class='lq' alt='LQ'>"
         "<span>|restored − GT| ×" + str(DIFF_GAIN) + "</span><img class='df' alt='difference'>"
         "</div></div><div class='hint'>drag the slider: restored (left) over GT (right); "
         "<button type='button' class='close'>close</button> (Esc)</div></div>")


def _b64(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _find(folder: Path, stem: str) -> Optional[Path]:
    """``stem`` in ``folder`` as png/jpg, or with a trailing ``_NN`` (the evaluator's pairing)."""
    for ext in (".png", ".jpg", ".jpeg"):
        p = folder / (stem + ext)
        if p.is_file():
            return p
    if folder.is_dir():
        for p in sorted(folder.glob(stem + "_*")):
            if p.stem[len(stem) + 1:].isdigit():
                return p
    return None


def _read(path: Optional[Path]) -> Optional[np.ndarray]:
    if path is None:
        return None
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour up to ``side`` (LQ), area-downsampled when larger than MAX_TILE_PX."""
    from PIL import Image
    h, w = img.shape[:2]
    target = min(side, MAX_TILE_PX)
    if (h, w) == (target, target):
        return img
    mode = Image.NEAREST if max(h, w) < target else Image.BOX
    return np.asarray(Image.fromarray(img).resize((target, target), mode))


def diff_map(restored: np.ndarray, gt: np.ndarray, gain: int = DIFF_GAIN) -> np.ndarray:
    """uint8 HWC RGB: magma colour of min(1, gain * mean_c |restored - gt| / 255)."""
    import matplotlib
    d = np.abs(restored.astype(np.int16) - gt.astype(np.int16)).mean(axis=2) / 255.0
    d = np.clip(d * gain, 0.0, 1.0)
    rgb = matplotlib.colormaps["magma"](d)[..., :3]
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def _png(img: np.ndarray) -> bytes:
    """256-colour PNG (median cut, no dither): ~3x smaller, visually lossless at tile size."""
    from pipeline.grids import png_bytes
    return png_bytes(img, palette=True)


def pick_best_worst(per_image, metric: str, higher_is_better: bool, k: int = 3):
    """(best, worst) id lists by ``metric`` of a per_image DataFrame; NaN rows skipped; the
    worst never repeat a best one (fewer than 2k images: the worst list is shorter)."""
    sub = per_image[["id", metric]].dropna()
    sub = sub.sort_values(metric, ascending=not higher_is_better, kind="stable")
    ids = list(sub["id"])
    best = ids[:k]
    rest = [i for i in ids if i not in best]
    worst = rest[::-1][:k]
    return best, worst


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if math.isinf(v):
        return "inf"
    return f"{v:.4f}" if abs(v) < 1 else (f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}")


def _strip(lq, rs, gt, values: dict, primary: str, off: set, side: int, id_: str) -> str:
    tiles = [("LQ", _fit(lq, side) if lq is not None else None),
             ("restored", _fit(rs, side)), ("GT", _fit(gt, side)),
             (f"|diff| ×{DIFF_GAIN}", _fit(diff_map(rs, gt), side))]
    out = ["<figure class='dd' title='click: zoom + before/after slider'><div class='dd-tiles'>"]
    for i, (lab, img) in enumerate(tiles):
        src = _b64(_png(img)) if img is not None else ""
        label = lab
        if i == 1:
            label = f"{primary} {_fmt(values.get(primary))}"
        out.append(f"<div class='dd-tile'><img src='{src}' alt='{H.escape(lab)}'>"
                   f"<span class='top'>{H.escape(lab if i != 1 else 'restored')}</span>"
                   + (f"<span>{H.escape(label)}</span>" if i == 1 else "") + "</div>")
    vals = " · ".join(f"{m}{'†' if m in off else ''} {_fmt(v)}" for m, v in values.items())
    out.append(f"</div><figcaption>{H.escape(id_)} · {H.escape(vals)}</figcaption></figure>")
    return "".join(out)


def render(params, rows: list[dict], results_root, restored_root, hib: dict, k: int = 3) -> str:
    """The drill-down section body (HTML), one collapsible block per test set."""
    import pandas as pd
    root = Path(params.testsets.out_dir)
    by_set: dict[str, list[dict]] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r)
    parts = []
    for s, set_rows in by_set.items():
        cells = []
        for r in set_rows:
            m, primary = r["method"], r.get("primary")
            csv = Path(results_root) / m / s / "per_image.csv"
            if not primary or not csv.is_file():
                cells.append(f"<p class='note'>{H.escape(m)}: no per-image results"
                             f"{'' if primary else ' (no real per-image metric)'}.</p>")
                continue
            df = pd.read_csv(csv, dtype={"id": str})
            if primary not in df.columns:
                continue
            rdir = Path(r["restored_dir"]) if r.get("restored_dir") else Path(restored_root) / m / s
            best, worst = pick_best_worst(df, primary, hib.get(primary, True), k)
            off = set(r.get("shown_only") or [])
            vals = df.set_index("id").to_dict("index")
            rows_html = []
            for label, ids in (("best", best), ("worst", worst)):
                strips = []
                for i in ids:
                    gtp, rsp = _find(root / s / "gt", i), _find(rdir, i)
                    gt, rs = _read(gtp), _read(rsp)
                    if gt is None or rs is None or gt.shape != rs.shape:
                        strips.append(f"<p class='note'>{H.escape(i)}: images not found</p>")
                        continue
                    lq = _read(_find(root / s / "lq", i))
                    strips.append(_strip(lq, rs, gt, vals[i], primary, off, gt.shape[0], i))
                if strips:
                    rows_html.append(f"<div class='dd-row'><b>{label} {len(ids)}</b>"
                                     + "".join(strips) + "</div>")
            cells.append(f"<div class='dd-cell'><h4>{H.escape(m)} <span class='note'>by "
                         f"{H.escape(primary)} ({'higher' if hib.get(primary, True) else 'lower'} "
                         f"is better), n={len(df)}</span></h4>" + "".join(rows_html) + "</div>")
        parts.append(f"<details class='dd-set'{' open' if not parts else ''}><summary>Test set "
                     f"<code>{H.escape(s)}</code></summary>" + "".join(cells) + "</details>")
    return "".join(parts)
