"""Reports from the results of one repro (``frbench report``; the ``report`` DVC stage).

Inputs are the cells named in params.yaml (``pipeline.methods`` x ``pipeline.testsets``,
``pipeline.sr_methods`` x ``pipeline.sr_testsets`` and ``pipeline.ablations`` x
``pipeline.ablation_testsets``; never a glob of results/, so cells
left over from an earlier, larger matrix are ignored), ``results/panini_theta.json`` and the
published numbers in ``reports/published/*.yaml``. Outputs (``report.out_dir``):

- ``leaderboard.{md,csv,tex}`` and ``index.html`` (self-contained: sortable tables, sample grids
  per test set and per ladder level, plots, all as embedded base64 PNGs);
- ``tables/<table>.{md,csv}``: each paper table with the published number, ours and the
  difference (ours - published);
- ``figures/*.png``: seaborn plots (metric vs degradation level, theta vs r, FID vs PSNR);
- ``metrics.json``: ``{method: {set: {metric: value}}, "panini_theta": {level: theta}}`` for
  ``dvc metrics diff`` / ``frbench compare``.

Ranking rule: within one test set, rows are ranked only inside a group of identical protocol,
protocol settings and backbone provenance (``metrics.provenance.check_comparable``); each group
gets its own label and ranks. The rank is the mean over metrics of each row's per-metric rank.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from core.errors import FRBenchError
from pipeline.report_text import (NOT_COMPARABLE, arrow, fmt, md_table,  # noqa: F401
                                  provenance_key, provenance_lines)

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------
# Loading

def cells(params) -> list[tuple[str, str]]:
    """(method, set) cells of this pipeline: main matrix, SR matrix, then the ablations."""
    pl = params.pipeline
    if pl is None:
        raise FRBenchError("params: missing section 'pipeline' (methods, testsets, ablations)")
    return pl.cells()


def load_rows(params, results_root: str | Path = "results") -> list[dict]:
    """summary.json of every cell (FRBenchError naming the first missing one)."""
    from metrics.evaluate import read_summary

    rows = []
    for m, s in cells(params):
        p = Path(results_root) / m / s / "summary.json"
        if not p.is_file():
            raise FRBenchError(f"{p}: missing; run `dvc repro` (cell {m} x {s})")
        row = read_summary(p)  # null + *_nonfinite flags -> inf again
        row.setdefault("method", m)
        row.setdefault("set", s)
        row["ablation"] = m in params.pipeline.ablations
        rows.append(row)
    return rows


def load_theta(path: str | Path) -> Optional[dict]:
    p = Path(path)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def load_published(folder: str | Path) -> dict[str, dict]:
    """{table id: table dict + 'source', 'protocol', 'file'} from reports/published/*.yaml."""
    out = {}
    for f in sorted(Path(folder).glob("*.yaml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for tid, t in (doc.get("tables") or {}).items():
            if "source" not in doc:
                raise FRBenchError(f"{f}: published numbers need a 'source'")
            out[tid] = {**t, "source": doc["source"], "protocol": doc.get("protocol", "unknown"),
                        "protocol_unknown": doc.get("protocol_unknown", ""), "file": f.name}
    return out


# ------------------------------------------------------------------------------------------
# Values, groups, ranks

def value(row: dict, metric: str) -> Optional[float]:
    if metric in row.get("metrics", {}):
        v = row["metrics"][metric]["mean"]
    else:
        v = row.get("set_metrics", {}).get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def higher_is_better(rows: list[dict], metric: str) -> bool:
    for r in rows:
        if metric in r.get("higher_is_better", {}):
            return bool(r["higher_is_better"][metric])
    from metrics import METRICS
    return METRICS[metric].higher_is_better


def metric_names(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for m in list(r.get("metrics", {})) + list(r.get("set_metrics", {})):
            if m not in names:
                names.append(m)
    return names


def rank_groups(rows: list[dict]) -> list[list[dict]]:
    """Split one test set's rows into comparable groups (order of first appearance)."""
    from metrics.provenance import check_comparable
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(provenance_key(r), []).append(r)
    for g in groups.values():
        check_comparable(g)  # same key => comparable; raises if the guard disagrees
    return list(groups.values())


def add_ranks(rows: list[dict], metrics: list[str]) -> None:
    """Set row['rank'] (1 = best) within each set and comparable group: mean per-metric rank."""
    by_set: dict[str, list[dict]] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r)
    for set_rows in by_set.values():
        for g in rank_groups(set_rows):
            score = {id(r): [] for r in g}
            for m in metrics:
                have = [r for r in g if value(r, m) is not None and math.isfinite(value(r, m))]
                if len(have) < 2:
                    continue
                sign = 1.0 if higher_is_better(g, m) else -1.0
                for r in have:  # competition ranking: ties share the better rank
                    score[id(r)].append(1 + sum(sign * value(o, m) > sign * value(r, m)
                                                for o in have))
            means = {k: (sum(v) / len(v) if v else math.inf) for k, v in score.items()}
            for r in g:
                r["rank"] = 1 + sum(means[id(o)] < means[id(r)] for o in g)
                r["group"] = provenance_key(r)


def leaderboard_frame(rows: list[dict]):
    """pandas DataFrame: set, group, rank, method, arch, ablation, <metrics...>, comparable."""
    import pandas as pd
    metrics = metric_names(rows)
    add_ranks(rows, metrics)
    recs = []
    for r in rows:
        rec = {"set": r["set"], "group": r.get("group", provenance_key(r)), "rank": r.get("rank"),
               "method": r["method"], "arch": r.get("arch", ""), "ablation": r.get("ablation", False),
               "n": r.get("n")}
        rec.update({m: value(r, m) for m in metrics})
        rec["comparable_with_published"] = bool(r.get("comparable_with_published"))
        recs.append(rec)
    df = pd.DataFrame(recs)
    order = {s: i for i, s in enumerate(dict.fromkeys(r["set"] for r in rows))}  # params order
    df["_o"] = [order[s] for s in df["set"]]
    df = df.sort_values(["_o", "group", "rank"], kind="stable").drop(columns="_o")
    return df.reset_index(drop=True), metrics  # ties keep params order (stable sort)


# ------------------------------------------------------------------------------------------
# Paper tables

@dataclass
class PaperTable:
    tid: str
    title: str
    source: str
    note: str
    header: list[str]
    body: list[list[str]]
    records: list[dict] = field(default_factory=list)


def paper_tables(published: dict, rows: list[dict], theta: Optional[dict],
                 builtin: bool) -> list[PaperTable]:
    """Each published table beside ours: per metric the published value, ours, ours - published."""
    by_cell = {(r["method"], r["set"]): r for r in rows}
    out = []
    for tid, t in published.items():
        notes = [t.get("note", "")]
        if t.get("protocol_unknown"):
            notes.append(f"Unknown in the published protocol: {t['protocol_unknown']}.")
        if builtin:
            notes.insert(0, NOT_COMPARABLE)
        if t.get("kind") == "theta":
            header = ["paper r", "published θ", "our level", "our θ", "diff"]
            body, recs = [], []
            ours = list((theta or {}).get("levels", {}).items())
            for i, (r, pub) in enumerate(zip(t["levels"], t["theta"])):
                lvl, ent = ours[i] if i < len(ours) else ("–", None)
                o = ent["theta"] if ent else None
                d = (o - pub) if o is not None else None
                body.append([str(r), fmt(pub), lvl, fmt(o), fmt(d)])
                recs.append({"paper_r": r, "published_theta": pub, "our_level": lvl,
                             "our_theta": o, "diff": d})
            out.append(PaperTable(tid, t["title"], t["source"], " ".join(n for n in notes if n),
                                  header, body, recs))
            continue
        mets = t["metrics"]
        hib = {m: higher_is_better(rows, m) if any(m in metric_names([r]) for r in rows)
               else m not in ("fid", "kid", "lpips") and not m.startswith("deg") for m in mets}
        header = ["method (published)", "ours"]
        for m in mets:
            header += [f"{m} {arrow(hib[m])} pub.", "ours", "diff"]
        body, recs = [], []
        for prow in t["rows"]:
            ours = prow.get("ours")
            r = by_cell.get((ours, t["testset"])) if ours else None
            cells_ = [prow["published"], (ours or "–") if r or not ours else f"{ours} (not run)"]
            rec = {"published_method": prow["published"], "ours": ours, "set": t["testset"]}
            for m in mets:
                pub = prow.get(m)
                o = value(r, m) if r else None
                d = (o - pub) if (o is not None and pub is not None) else None
                cells_ += [fmt(pub, m), fmt(o, m), fmt(d, m)]
                rec.update({f"{m}_published": pub, f"{m}_ours": o, f"{m}_diff": d})
            body.append(cells_)
            recs.append(rec)
        out.append(PaperTable(tid, t["title"] + f" (our test set: {t['testset']})", t["source"],
                              " ".join(n for n in notes if n), header, body, recs))
    return out


# ------------------------------------------------------------------------------------------
# metrics.json

def metrics_json(rows: list[dict], theta: Optional[dict]) -> dict:
    out: dict = {}
    for r in rows:
        vals = {}
        for m in metric_names([r]):
            v = value(r, m)
            if v is not None and math.isfinite(v):
                vals[m] = round(v, 6)
        out.setdefault(r["method"], {})[r["set"]] = vals
    if theta:
        out["panini_theta"] = {lvl: round(e["theta"], 6) for lvl, e in theta["levels"].items()}
    return out


# ------------------------------------------------------------------------------------------
# Writers

def _atomic_write(path: Path, data: str | bytes) -> None:
    import os
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    (tmp.write_bytes if isinstance(data, bytes) else
     lambda d: tmp.write_text(d, encoding="utf-8"))(data)
    os.replace(tmp, path)


def leaderboard_md(df, metrics, rows, builtin: bool, hib: dict) -> str:
    lines = ["# frbench leaderboard", ""]
    if builtin:
        lines += [f"> **{NOT_COMPARABLE}**", ""]
    lines += ["Rows are ranked only within one test set and one comparability group (same "
              "protocol, settings and backbone weights); rank by the mean of per-metric "
              "ranks (ties share a rank). Ablations are marked *(abl.)*.", ""]
    for s, sdf in df.groupby("set", sort=False):
        for g, gdf in sdf.groupby("group", sort=False):
            lines += [f"## Test set `{s}` — group `{g}`", ""]
            header = ["rank", "method"] + [f"{m} {arrow(hib[m])}" for m in metrics]
            body = [[str(r["rank"]), r["method"] + (" *(abl.)*" if r["ablation"] else "")] +
                    [fmt(r[m], m) for m in metrics] for _, r in gdf.iterrows()]
            lines += [md_table(header, body), ""]
    lines += ["## Provenance", ""] + [f"- {x}" for x in provenance_lines(rows)] + [""]
    return "\n".join(lines)


def leaderboard_tex(df, metrics, builtin: bool, hib: dict) -> str:
    cols = ["set", "rank", "method"] + metrics
    t = df[cols].copy()
    for m in metrics:
        t[m] = [fmt(v, m) for v in t[m]]
    up, down = "$\\uparrow$", "$\\downarrow$"
    t.columns = ["set", "rank", "method"] + [f"{m} {up if hib[m] else down}" for m in metrics]
    t["method"] = [x.replace("_", r"\_") for x in t["method"]]
    t["set"] = [x.replace("_", r"\_") for x in t["set"]]
    body = t.to_latex(index=False, escape=False, column_format="ll" + "l" + "r" * len(metrics))
    head = "% frbench leaderboard (generated by `frbench report`)\n"
    if builtin:
        head += "% " + NOT_COMPARABLE + "\n"
    return head + body


def write_report(params, results_root="results", out_dir=None, restored_root="restored",
                 theta_path=None) -> dict:
    """Write every report file; returns {'files': [...], 'metrics': metrics.json dict}."""
    from core.manifest import dumps_json
    from pipeline import landmark_figure, plots
    from pipeline.html import render_html

    rc = params.report
    out = Path(out_dir or (rc.out_dir if rc else "reports"))
    rows = load_rows(params, results_root)
    theta = load_theta(theta_path or Path(results_root) / "panini_theta.json")
    published = load_published(rc.published_dir if rc else out / "published")
    builtin = params.profile.startswith("builtin") or not all(r.get("comparable_with_published") for r in rows)
    df, metrics = leaderboard_frame(rows)
    hib = {m: higher_is_better(rows, m) for m in metrics}
    files = []

    def w(name, data):
        _atomic_write(out / name, data)
        files.append(out / name)

    w("leaderboard.md", leaderboard_md(df, metrics, rows, builtin, hib))
    csv = df.copy()
    csv.insert(0, "not_comparable_with_published", [not c for c in csv["comparable_with_published"]])
    w("leaderboard.csv", csv.drop(columns=["comparable_with_published"]).to_csv(
        index=False, float_format="%.6g"))
    w("leaderboard.tex", leaderboard_tex(df, metrics, builtin, hib))
    tables = paper_tables(published, rows, theta, builtin)
    import pandas as pd
    for t in tables:
        w(f"tables/{t.tid}.md", f"# {t.title}\n\nSource: {t.source}\n\n" +
          (f"> {t.note}\n\n" if t.note else "") + md_table(t.header, t.body) + "\n")
        w(f"tables/{t.tid}.csv", pd.DataFrame(t.records).to_csv(index=False, float_format="%.6g"))
    figs = plots.make_all(df, metrics, rows, theta, published, results_root, out / "figures", hib)
    figs += landmark_figure.figures(params, out / "figures")  # dlib on the test faces + finding
    files += figs
    mj = metrics_json(rows, theta)
    w("metrics.json", dumps_json(mj, indent=2, sort_keys=True) + "\n")
    html = render_html(params, df, metrics, rows, tables, figs, theta, builtin, hib,
                       restored_root=restored_root)
    w("index.html", html)
    return {"files": files, "metrics": mj}
