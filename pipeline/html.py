"""The self-contained HTML report (reports/index.html): no external files or scripts; tables
sortable by clicking a header (inline JS), images embedded as base64 PNG, a single column at
most 1200 px wide (images and wide tables shrink or wrap instead of scrolling sideways).

Sections: header (commit, date, profile, machine, torch), leaderboard (mean ± CI half-width, n,
ties, random-init columns greyed), paper tables, plots, samples per test set, per-image
drill-down (``pipeline/drilldown.py``), provenance, Panini-Net theta."""
from __future__ import annotations

import base64
import html as H
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from pipeline.report_text import NOT_COMPARABLE, arrow, fmt, fmt_pm, provenance_groups

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
th.ri,td.ri{color:#9a9a9a;background:#f3f3f3} td.tie{color:#8a5a00}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:.9em;margin:.4em 0}
dl.facts dt{color:#555} dl.facts dd{margin:0}
"""

JS = """
(function(){ // index.html#only-<section>: that section at the top (headless screenshots)
  var h=location.hash; if(h.indexOf('#only-')!==0) return;
  var t=document.getElementById(h.slice(6)); if(!t) return;
  for(var e=t.previousElementSibling;e;e=e.previousElementSibling) e.style.display='none';
})();
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


def _table(header, body, numeric_vals=None, cls="sortable", left_cols=1, col_cls=None,
           titles=None, cell_cls=None) -> str:
    """An HTML table. ``col_cls``: a CSS class per column (e.g. greyed random-init columns);
    ``titles``: a tooltip per header cell; ``cell_cls``: per-cell extra classes."""
    if len(header) > 12:  # paper tables with many metrics: compact, so no sideways scrolling
        cls += " wide"
    col_cls = col_cls or [""] * len(header)
    out = [f'<div class="wrap"><table class="{cls}"><thead><tr>']
    for i, h in enumerate(header):
        c = " ".join(x for x in ("l" if i < left_cols else "", col_cls[i]) if x)
        t = f' title="{H.escape(titles[i])}"' if titles and titles[i] else ""
        out.append(f'<th class="{c}"{t}>{H.escape(h)}</th>')
    out.append("</tr></thead><tbody>")
    for ri, row in enumerate(body):
        out.append("<tr>")
        for i, c in enumerate(row):
            v = numeric_vals[ri][i] if numeric_vals else None
            dv = f' data-v="{v}"' if v is not None else ""
            extra = cell_cls[ri][i] if cell_cls else ""
            k = " ".join(x for x in ("l" if i < left_cols else "", col_cls[i], extra) if x)
            out.append(f'<td class="{k}"{dv}>{H.escape(str(c))}</td>')
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
            cap = (f"level {lvl}: " if lvl else "") + f"columns {', '.join(labels)}; ids " + \
                ", ".join(ids)
            w = round(len(labels) * (px + 2) * 1.5)  # shown 1.5x, pixelated (small file)
            figs.append(f'<figure><img src="{_b64(png)}" width="{w}" alt="{H.escape(cap)}">'
                        f"<figcaption>{H.escape(cap)}</figcaption></figure>")
        what = ("one grid per degradation level" if s == "ladder" and levels != [None]
                else f"the first {n} images")
        parts.append(f"<h3>Test set <code>{H.escape(s)}</code> <span class='note'>{what}</span>"
                     "</h3><div class='grids'>" + "".join(figs) + "</div>")
    return "".join(parts)


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 (no git: the header says unknown)
        return ""


def _machine() -> dict:
    """CPU model, core count, NVIDIA GPU names and OS, read without importing torch."""
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    gpus = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            gpus += [ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines()
                     if ln.startswith("Model:")]
        except OSError:
            pass
    try:
        from importlib.metadata import version
        torch_v = version("torch")
    except Exception:  # noqa: BLE001
        torch_v = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": ", ".join(gpus), "torch": torch_v,
            "system": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"}


def header_facts(params, rows) -> list[tuple[str, str]]:
    """(label, text) pairs of the report header: commit, date, profile, machine, torch."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    status = _git("status", "--porcelain", "--untracked-files=no")
    changed = [ln[3:] for ln in status.splitlines()]
    dirty = any(not (f == "dvc.lock" or f.startswith("reports/")) for f in changed)
    cdate = _git("log", "-1", "--format=%cd", "--date=format:%Y-%m-%d %H:%M %z")
    sde = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds: a fixed date on request
    now = (datetime.fromtimestamp(int(sde), timezone.utc) if sde and sde.isdigit()
           else datetime.now(timezone.utc))
    env = _machine()
    machine = env["cpu"] + f", {env['cores']} cores" + (f", GPU {env['gpu']}" if env["gpu"]
                                                         else ", no GPU")
    machine += f" ({env['system']})"
    eval_torch = sorted({str((r.get("versions") or {}).get("torch")) for r in rows
                         if (r.get("versions") or {}).get("torch")})
    torch_txt = env.get("torch", "unknown")
    if eval_torch and eval_torch != [torch_txt]:
        torch_txt += f" (results computed with {', '.join(eval_torch)})"
    return [("commit", commit + (" + uncommitted changes" if dirty else "")
             + (f" (committed {cdate})" if cdate else "")),
            ("report built", now.strftime("%Y-%m-%d %H:%M UTC")),
            ("profile", f"{params.profile} (protocol {params.evaluate.protocol})"),
            ("machine", machine),
            ("torch", torch_txt)]


def _leaderboard(df, metrics, hib) -> str:
    o = []
    for (s, g), gdf in df.groupby(["set", "group"], sort=False):
        off = set(filter(None, gdf["not_ranked"].iloc[0].split(";")))
        on = [m for m in gdf["ranked_on"].iloc[0].split(";") if m]
        header = ["rank", "method", "tied with", "n"] + \
            [f"{m}{' †' if m in off else ''} {arrow(hib[m])}" for m in metrics]
        col_cls = ["", "", "", ""] + ["ri" if m in off else "" for m in metrics]
        titles = ["1 = best (mean of per-metric ranks over the deciding metrics)", "",
                  "neighbouring ranks whose 95% CIs overlap on every deciding metric",
                  "images"] + [("random-init backbone: shown for reference, never ranked on"
                                if m in off else "mean ± half-width of the bootstrap 95% CI"
                                if m in on else "") for m in metrics]
        body, nums, ccls = [], [], []
        for _, r in gdf.iterrows():
            rk = r["rank"]
            rk_txt = "–" if rk is None or rk != rk else str(int(rk))
            tied = ", ".join(r["tied_with"].split(";")) if r["tied_with"] else ""
            n = "–" if r["n"] is None or r["n"] != r["n"] else str(int(r["n"]))
            body.append([rk_txt, r["method"] + (" (abl.)" if r["ablation"] else ""),
                         f"tied: {tied}" if tied else "", n] +
                        [fmt_pm(r[m], r[f"{m}_ci95_half"], m) for m in metrics])
            nums.append([None if rk_txt == "–" else rk_txt, None, None, None if n == "–" else n]
                        + [None if r[m] is None or r[m] != r[m] else repr(float(r[m]))
                           for m in metrics])
            ccls.append(["", "", "tie" if tied else "", ""] + [""] * len(metrics))
        o.append(f"<h3>Test set <code>{H.escape(s)}</code> <span class='note'>group "
                 f"{H.escape(g)}</span></h3>")
        o.append(f"<p class='note'>Ranked on: <b>{H.escape(', '.join(on) or 'nothing')}</b>"
                 + (f"; † greyed, never ranked on (random-init, or excluded by the protocol): "
                    f"{H.escape(', '.join(m for m in metrics if m in off))}"
                    if off else "") + ".</p>")
        o.append(_table(header, body, nums, left_cols=3, col_cls=col_cls, titles=titles,
                        cell_cls=ccls))
    return "".join(o)


def _provenance(rows) -> str:
    o = ["<ul>"]
    for g in provenance_groups(rows):
        bb = ", ".join(f"<code>{H.escape(b)}</code> = <code>{H.escape(p)}</code>"
                       for b, p in g["backbones"]) or "none"
        o.append(f"<li>group <code>{H.escape(g['key'])}</code>: protocol "
                 f"<code>{H.escape(g['protocol'])}</code>; backbones: {bb}; comparable with "
                 f"published: {'yes' if g['comparable'] else 'no'}</li>")
    o.append("</ul>")
    return "".join(o)


def _theta(theta) -> str:
    lv = list(theta.get("levels", {}).items())
    header = ["level", "θ (mean prior mask, last DAFI block)", "images"]
    body = [[lvl, fmt(e.get("theta")), str(e.get("n", "–"))] for lvl, e in lv]
    return (f"<h3>Panini-Net θ per ladder level <span class='note'>method "
            f"<code>{H.escape(str(theta.get('method')))}</code>, set "
            f"<code>{H.escape(str(theta.get('set', '')))}</code></span></h3>"
            + _table(header, body, left_cols=1))


def render_html(params, df, metrics, rows, tables, figs, theta, builtin, hib,
                restored_root="restored", results_root="results") -> str:
    from pipeline.report import RANK_RULE, ranking_note
    facts = "".join(f"<dt>{H.escape(k)}</dt><dd>{H.escape(v)}</dd>"
                    for k, v in header_facts(params, rows))
    o = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
         "<meta name='viewport' content='width=device-width, initial-scale=1'>",
         "<title>frbench report</title><style>", CSS, "</style></head><body><main>",
         "<h1>frbench report</h1>", f"<dl class='facts'>{facts}</dl>",
         f"<p class='note'>Methods {H.escape(', '.join(params.pipeline.methods))}; SR methods "
         f"{H.escape(', '.join(params.pipeline.sr_methods))}; ablations "
         f"{H.escape(', '.join(params.pipeline.ablations))}.</p>",
         "<nav><a href='#leaderboard'>Leaderboard</a><a href='#tables'>Paper tables</a>"
         "<a href='#plots'>Plots</a><a href='#samples'>Samples</a>"
         "<a href='#drilldown'>Per-image drill-down</a>"
         "<a href='#provenance'>Provenance</a></nav>"]
    if builtin:
        o.append(f"<p class='warn'><b>Not comparable with published numbers.</b> "
                 f"{H.escape(NOT_COMPARABLE)}</p>")
    o.append(f"<h2 id='leaderboard'>Leaderboard</h2><p class='note'>{H.escape(RANK_RULE)} "
             "Click a column header to sort.</p>")
    o.append("<p class='note'><b>What decided the ranking:</b></p><ul class='note'>" +
             "".join(f"<li>{H.escape(x)}</li>" for x in ranking_note(df)) + "</ul>")
    o.append(_leaderboard(df, metrics, hib))
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
    o.append("<h2 id='samples'>Samples</h2><p class='note'>Per test set (the ladder set: per "
             "degradation level), columns LQ input, each method, GT; 256-colour thumbnails shown "
             "1.5x (nearest neighbour).</p>")
    o.append(_grids(params, rows, restored_root))
    o.append("<h2 id='drilldown'>Per-image drill-down</h2><p class='note'>"
             f"<a href='{DRILLDOWN_PAGE}'>{DRILLDOWN_PAGE}</a> (a page of its own beside this "
             f"one, self-contained too): {H.escape(_drilldown_about())}</p>")
    o.append("<h2 id='provenance'>Provenance</h2>")
    o.append(_provenance(rows))
    if theta:
        o.append(_theta(theta))
    o.append(f"</main><script>{JS}</script></body></html>\n")
    return "".join(o)


DRILLDOWN_PAGE = "drilldown.html"


def _drilldown_about() -> str:
    from pipeline import drilldown
    return ("for each method and test set, the best and the worst 3 images by the deciding "
            "metric (the first per-image metric that ranks the group). Tiles: LQ input, "
            f"restored, GT and |restored − GT| (mean over RGB, ×{drilldown.DIFF_GAIN}: black 0, "
            f"yellow ≥ {255 // drilldown.DIFF_GAIN}/255); 256-colour PNGs. Values of every metric "
            "under each strip († random-init). Click a strip to zoom, with a before/after slider.")


def render_drilldown_html(params, rows, hib, restored_root="restored",
                          results_root="results") -> str:
    """``reports/drilldown.html``: the per-image drill-down as its own self-contained page (its
    hundreds of inline tiles would otherwise make up most of index.html)."""
    from pipeline import drilldown
    facts = "".join(f"<dt>{H.escape(k)}</dt><dd>{H.escape(v)}</dd>"
                    for k, v in header_facts(params, rows))
    return "".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>frbench report: per-image drill-down</title><style>", CSS, drilldown.CSS,
        "</style></head><body><main>",
        "<h1>frbench report: per-image drill-down</h1>", f"<dl class='facts'>{facts}</dl>",
        "<nav><a href='index.html'>Back to the report (index.html)</a></nav>",
        f"<h2 id='drilldown'>Per-image drill-down</h2><p class='note'>"
        f"{H.escape(_drilldown_about()[0].upper() + _drilldown_about()[1:])}</p>",
        drilldown.render(params, rows, results_root, restored_root, hib),
        drilldown.MODAL,
        f"</main><script>{drilldown.JS}</script></body></html>\n"])
