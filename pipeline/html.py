"""The self-contained HTML report (reports/index.html): no external files or scripts; tables
sortable by clicking a header (inline JS), images embedded as base64 PNG, a single column at
most 1200 px wide (images and wide tables shrink or wrap instead of scrolling sideways)."""
from __future__ import annotations

import base64
import html as H
import json
from pathlib import Path

from pipeline.report_text import NOT_COMPARABLE, arrow, fmt, provenance_lines

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:16px 20px}
h1{font-size:1.6em;margin:.3em 0} h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:1.1em 0 .4em}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:10px 14px;border-radius:6px}
.note{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:13px;max-width:100%}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
table.wide{font-size:11.5px} table.wide th,table.wide td{padding:2px 4px}
th{background:#eef1f5;cursor:pointer;user-select:none;white-space:normal}
th.sorted-asc::after{content:" ▲"} th.sorted-desc::after{content:" ▼"}
td.l,th.l{text-align:left} tr:nth-child(even) td{background:#f6f7f9}
.wrap{overflow-x:auto;max-width:100%}
img{max-width:100%;height:auto;image-rendering:pixelated}
img.plot{image-rendering:auto;display:block;margin:.5em 0}
.grids{display:flex;flex-wrap:wrap;gap:14px}
.grids figure{margin:0;max-width:100%} figcaption{font-size:.85em;color:#444}
code{background:#eef;padding:0 3px;border-radius:3px}
nav a{margin-right:12px}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var asc=!th.classList.contains('sorted-asc');
      t.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
      th.classList.add(asc?'sorted-asc':'sorted-desc');
      var rows=Array.from(t.tBodies[0].rows);
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v!==undefined?a.cells[i].dataset.v:a.cells[i].textContent;
        var y=b.cells[i].dataset.v!==undefined?b.cells[i].dataset.v:b.cells[i].textContent;
        var fx=parseFloat(x),fy=parseFloat(y);
        var c=(!isNaN(fx)&&!isNaN(fy))?fx-fy:String(x).localeCompare(String(y));
        return asc?c:-c;});
      rows.forEach(function(r){t.tBodies[0].appendChild(r)});
    });
  });
});
"""


def _b64(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _table(header, body, numeric_vals=None, cls="sortable", left_cols=1) -> str:
    if len(header) > 12:  # paper tables with many metrics: compact, so no sideways scrolling
        cls += " wide"
    out = [f'<div class="wrap"><table class="{cls}"><thead><tr>']
    out += [f'<th class="{"l" if i < left_cols else ""}">{H.escape(h)}</th>'
            for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for ri, row in enumerate(body):
        out.append("<tr>")
        for i, c in enumerate(row):
            v = numeric_vals[ri][i] if numeric_vals else None
            dv = f' data-v="{v}"' if v is not None else ""
            out.append(f'<td class="{"l" if i < left_cols else ""}"{dv}>{H.escape(str(c))}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _grids(params, rows, restored_root) -> str:
    from pipeline.grids import labelled_grid_png, pick_ids
    rc = params.report
    n, px = (rc.samples, rc.grid_px) if rc else (4, 96)
    root = Path(params.testsets.out_dir)
    by_set: dict[str, list[str]] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r["method"])
    parts = []
    for s, methods in by_set.items():
        gt = root / s / "gt"
        if not gt.is_dir():
            continue
        folders = [root / s / "lq"] + [Path(restored_root) / m / s for m in methods] + [gt]
        labels = ["LQ"] + methods + ["GT"]
        levels = sorted({p.stem.partition("_")[0] for p in gt.iterdir()
                         if "_" in p.stem}) if s == "ladder" else [None]
        figs = []
        for lvl in levels:
            ids = pick_ids(gt, n, prefix=f"{lvl}_" if lvl else None)
            png = labelled_grid_png(folders, labels, ids, px)
            cap = f"{s}" + (f", level {lvl}" if lvl else "") + f": {', '.join(labels)}"
            w = round(len(labels) * (px + 2) * 1.5)  # shown 1.5x, pixelated (small file)
            figs.append(f'<figure><img src="{_b64(png)}" width="{w}" alt="{H.escape(cap)}">'
                        f"<figcaption>{H.escape(cap)}</figcaption></figure>")
        parts.append(f"<h3>Test set <code>{H.escape(s)}</code></h3><div class='grids'>"
                     + "".join(figs) + "</div>")
    return "".join(parts)


def render_html(params, df, metrics, rows, tables, figs, theta, builtin, hib,
                restored_root="restored") -> str:
    o = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
         "<meta name='viewport' content='width=device-width, initial-scale=1'>",
         "<title>frbench report</title><style>", CSS, "</style></head><body><main>",
         "<h1>frbench report</h1>",
         f"<p class='note'>profile <code>{H.escape(params.profile)}</code>, protocol "
         f"<code>{H.escape(params.evaluate.protocol)}</code>, methods "
         f"{H.escape(', '.join(params.pipeline.methods))}; SR methods "
         f"{H.escape(', '.join(params.pipeline.sr_methods))}; ablations "
         f"{H.escape(', '.join(params.pipeline.ablations))}.</p>",
         "<nav><a href='#leaderboard'>Leaderboard</a><a href='#tables'>Paper tables</a>"
         "<a href='#plots'>Plots</a><a href='#samples'>Samples</a>"
         "<a href='#provenance'>Provenance</a></nav>"]
    if builtin:
        o.append(f"<p class='warn'><b>Not comparable with published numbers.</b> "
                 f"{H.escape(NOT_COMPARABLE)}</p>")
    o.append("<h2 id='leaderboard'>Leaderboard</h2><p class='note'>Ranked only within one test "
             "set and one comparability group (same protocol, settings and backbone weights); "
             "rank by the mean of per-metric ranks (ties share a rank). Click a column header to sort.</p>")
    for s, sdf in df.groupby("set", sort=False):
        for g, gdf in sdf.groupby("group", sort=False):
            header = ["rank", "method"] + [f"{m} {arrow(hib[m])}" for m in metrics]
            body, nums = [], []
            for _, r in gdf.iterrows():
                body.append([r["rank"], r["method"] + (" (abl.)" if r["ablation"] else "")] +
                            [fmt(r[m], m) for m in metrics])
                nums.append([r["rank"], None] + [None if r[m] is None or r[m] != r[m] else
                                                 repr(float(r[m])) for m in metrics])
            o.append(f"<h3>Test set <code>{H.escape(s)}</code> <span class='note'>group "
                     f"{H.escape(g)}</span></h3>")
            o.append(_table(header, body, nums, left_cols=2))
    o.append("<h2 id='tables'>Paper tables beside published numbers</h2>")
    for t in tables:
        o.append(f"<h3>{H.escape(t.title)}</h3><p class='note'>Source: {H.escape(t.source)}</p>")
        if t.note:
            o.append(f"<p class='note'>{H.escape(t.note)}</p>")
        o.append(_table(t.header, t.body, left_cols=2))
    o.append("<h2 id='plots'>Plots</h2>")
    for f in figs:
        o.append(f"<img class='plot' src='{_b64(Path(f).read_bytes())}' "
                 f"alt='{H.escape(Path(f).stem)}'>")
    o.append("<h2 id='samples'>Samples per degradation level</h2><p class='note'>Columns: LQ "
             "input, each method, GT; 256-colour thumbnails shown 1.5x (nearest neighbour).</p>")
    o.append(_grids(params, rows, restored_root))
    o.append("<h2 id='provenance'>Provenance</h2><ul>")
    o += [f"<li>{H.escape(x)}</li>" for x in provenance_lines(rows)]
    o.append("</ul>")
    if theta:
        o.append(f"<p class='note'>θ per level ({H.escape(theta['method'])}): "
                 f"{H.escape(json.dumps({k: round(v['theta'], 4) for k, v in theta['levels'].items()}))}</p>")
    o.append(f"</main><script>{JS}</script></body></html>\n")
    return "".join(o)
