"""Reports from the results of one repro (``frbench report``; the ``report`` DVC stage).

Inputs are the cells named in params.yaml (``pipeline.methods`` x ``pipeline.testsets``,
``pipeline.sr_methods`` x ``pipeline.sr_testsets`` and ``pipeline.ablations`` x
``pipeline.ablation_testsets``; never a glob of results/, so cells
left over from an earlier, larger matrix are ignored), ``results/panini_theta.json`` and the
published numbers in ``reports/published/*.yaml``. Outputs (``report.out_dir``):

- ``leaderboard.{md,csv,tex}`` and ``index.html`` (self-contained and offline: a header naming
  commit, date, profile, machine and torch; sortable tables; sample grids per test set and per
  ladder level; a per-image drill-down per cell with click-to-zoom and a before/after slider;
  plots; all images embedded as base64 PNGs);
- ``tables/<table>.{md,csv,tex}``: each paper table with the published number, ours and the
  difference (ours - published). The ``.tex`` files are booktabs tables for pdflatex
  (``\\usepackage{booktabs}``; Debian ``texlive-latex-base`` + ``texlive-latex-recommended``);
- ``figures/*.png``: seaborn plots (metric vs degradation level, theta vs r, FID vs PSNR);
- ``metrics.json``: ``{method: {set: {metric: value}}, "panini_theta": {level: theta}}`` for
  ``dvc metrics diff`` / ``frbench compare``.

Ranking rule: within one test set, rows are ranked only inside a group of identical protocol,
protocol settings and backbone provenance (``metrics.provenance.check_comparable``); each group
gets its own label and ranks. The rank is the mean of each row's per-metric ranks over the
group's *deciding* metrics: those whose ``metrics.METRICS[m].needs`` is empty or whose every
needed weight is a real file in the row's ``provenance`` (``metric_is_real``). Metrics from a
``random-init:`` backbone are shown greyed with a note and never decide a rank. Neighbouring
ranks whose bootstrap 95% CIs overlap on every deciding metric are marked tied.
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
from pipeline.report_text import (NOT_COMPARABLE, arrow, fmt, fmt_pm,  # noqa: F401
                                  md_table, provenance_key, provenance_lines, tex_tabular)

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


def _need_entries(row: dict, need: str) -> list[str]:
    """Provenance strings of ``row`` that belong to weight ``need`` (a ``MetricSpec.needs``
    entry): the key itself or ``<need>_...`` (LPIPS: ``lpips_<net>``, ``lpips_<net>_lin``), or
    any entry naming the need's file (``metrics.weights.KNOWN``)."""
    prov = row.get("provenance") or {}
    out = [v for k, v in prov.items() if k == need or k.startswith(need + "_")]
    if not out:
        try:
            from metrics.weights import KNOWN
            fname = KNOWN[need].filename if need in KNOWN else None
        except Exception:  # noqa: BLE001 (a missing attribute must not break the report)
            fname = None
        if fname:
            out = [v for v in prov.values() if f":{fname}@" in str(v)]
    return [str(v) for v in out]


def metric_is_real(row: dict, metric: str) -> bool:
    """True when ``metric`` of ``row`` needs no weights or every weight it needs is a real file
    (provenance ``file:...``). A ``random-init:`` backbone, a missing provenance entry or an
    unknown metric makes it unreal: such a number is shown, never ranked on."""
    from metrics import METRICS
    spec = METRICS.get(metric)
    if spec is None:
        return False
    for need in spec.needs:
        entries = _need_entries(row, need)
        if not entries or not all(e.startswith("file:") for e in entries):
            return False
    return True


def ci_half(row: dict, metric: str) -> Optional[float]:
    """Half-width of the bootstrap 95% CI the evaluator recorded (``metrics.<m>.ci95``)."""
    ci = (row.get("metrics", {}).get(metric) or {}).get("ci95")
    if not ci or ci[0] is None or ci[1] is None:
        return None
    lo, hi = float(ci[0]), float(ci[1])
    return (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None


def _ci(row: dict, metric: str) -> Optional[tuple[float, float]]:
    ci = (row.get("metrics", {}).get(metric) or {}).get("ci95")
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return float(ci[0]), float(ci[1])


def _finite(row: dict, metric: str) -> bool:
    v = value(row, metric)
    return v is not None and math.isfinite(v)


def protocol_unranked(row: dict) -> dict[str, str]:
    """{metric: reason} of the metrics the row's protocol shows but never ranks on
    (``metrics.protocols.Protocol.unranked``); empty for an unknown protocol."""
    from metrics.protocols import PROTOCOLS
    proto = PROTOCOLS.get(row.get("protocol") or "")
    return dict(proto.unranked) if proto is not None else {}


def deciding_metrics(group: list[dict], metrics: list[str]) -> list[str]:
    """Metrics that rank ``group``: real for every row (``metric_is_real``), not excluded by the
    rows' protocol (``protocol_unranked``) and present in at least one row (two rows for a group
    of several)."""
    need = 2 if len(group) > 1 else 1
    return [m for m in metrics if all(metric_is_real(r, m) and m not in protocol_unranked(r)
                                      for r in group if m in metric_names([r]))
            and sum(_finite(r, m) for r in group) >= need]


def ci_tied(a: dict, b: dict, metrics: list[str]) -> bool:
    """True when the 95% CIs of ``a`` and ``b`` overlap on every metric of ``metrics`` that has a
    CI in both rows (and there is at least one): the data do not separate the two rows."""
    seen = 0
    for m in metrics:
        ca, cb = _ci(a, m), _ci(b, m)
        if ca is None or cb is None:
            continue
        seen += 1
        if ca[1] < cb[0] or cb[1] < ca[0]:
            return False
    return seen > 0


def add_ranks(rows: list[dict], metrics: list[str]) -> None:
    """Set row['rank'] (1 = best) within each set and comparable group: the mean of per-metric
    ranks over the group's deciding metrics (``deciding_metrics``: real weights or none needed).
    Also sets ``ranked_on``, ``shown_only`` (random-init metrics), ``primary`` (the first
    per-image deciding metric: ties and the drill-down use it) and ``tied_with`` (neighbouring
    ranks whose CIs overlap on every deciding metric)."""
    by_set: dict[str, list[dict]] = {}
    for r in rows:
        by_set.setdefault(r["set"], []).append(r)
    for set_rows in by_set.values():
        for g in rank_groups(set_rows):
            decide = deciding_metrics(g, metrics)
            score = {id(r): [] for r in g}
            for m in decide:
                have = [r for r in g if _finite(r, m)]
                if len(have) < 2:
                    continue
                sign = 1.0 if higher_is_better(g, m) else -1.0
                for r in have:  # competition ranking: ties share the better rank
                    score[id(r)].append(1 + sum(sign * value(o, m) > sign * value(r, m)
                                                for o in have))
            means = {k: (sum(v) / len(v) if v else math.inf) for k, v in score.items()}
            unranked = len(g) > 1 and all(math.isinf(v) for v in means.values())
            shown = [m for m in metrics if m not in decide and any(m in metric_names([r]) for r in g)]
            image_level = [m for m in decide if any(m in r.get("metrics", {}) for r in g)]
            for r in g:
                r["rank"] = None if unranked else 1 + sum(means[id(o)] < means[id(r)] for o in g)
                r["group"] = provenance_key(r)
                r["ranked_on"] = decide
                r["shown_only"] = shown
                r["primary"] = image_level[0] if image_level else None
                r["tied_with"] = []
            levels: dict[int, list[dict]] = {}
            for r in g:
                if r["rank"] is not None:
                    levels.setdefault(r["rank"], []).append(r)
            ks = sorted(levels)
            pairs = [(a, b) for k in ks for i, a in enumerate(levels[k])
                     for b in levels[k][i + 1:]]                   # equal ranks
            pairs += [(a, b) for k, k2 in zip(ks, ks[1:]) for a in levels[k]
                      for b in levels[k2] if ci_tied(a, b, decide)]  # neighbouring ranks
            for a, b in pairs:
                a["tied_with"].append(b["method"])
                b["tied_with"].append(a["method"])


def leaderboard_frame(rows: list[dict]):
    """pandas DataFrame: set, group, rank, tied_with, method, arch, ablation, n, then per metric
    its mean and ``<metric>_ci95_half`` (half-width of the bootstrap 95% CI, empty for set-level
    metrics), then ranked_on / not_ranked (random-init) and comparable_with_published."""
    import pandas as pd
    metrics = metric_names(rows)
    add_ranks(rows, metrics)
    recs = []
    for r in rows:
        rec = {"set": r["set"], "group": r.get("group", provenance_key(r)), "rank": r.get("rank"),
               "tied_with": ";".join(r.get("tied_with", [])),
               "method": r["method"], "arch": r.get("arch", ""), "ablation": r.get("ablation", False),
               "n": r.get("n")}
        for m in metrics:
            rec[m] = value(r, m)
            rec[f"{m}_ci95_half"] = ci_half(r, m)
        rec["ranked_on"] = ";".join(r.get("ranked_on", []))
        rec["not_ranked"] = ";".join(r.get("shown_only", []))
        rec["comparable_with_published"] = bool(r.get("comparable_with_published"))
        recs.append(rec)
    df = pd.DataFrame(recs)
    df["rank"] = df["rank"].astype("Int64")
    order = {s: i for i, s in enumerate(dict.fromkeys(r["set"] for r in rows))}  # params order
    df["_o"] = [order[s] for s in df["set"]]
    df = df.sort_values(["_o", "group", "rank"], kind="stable", na_position="last").drop(columns="_o")
    df = df.reset_index(drop=True)
    df.attrs["unranked"] = {m: why for r in rows for m, why in protocol_unranked(r).items()
                            if m in metrics}
    return df, metrics  # ties keep params order (stable sort)


def ranking_note(df) -> list[str]:
    """Sentences saying which metrics decided the ranking (one per distinct decision, naming
    the test sets and groups it applies to) and which were shown only."""
    by_rule: dict[tuple[str, str], list[str]] = {}
    for (s, g), gdf in df.groupby(["set", "group"], sort=False):
        by_rule.setdefault((gdf["ranked_on"].iloc[0], gdf["not_ranked"].iloc[0]), []).append(
            f"{s} ({g})")
    out = []
    for (on, off), where in by_rule.items():
        txt = (f"{', '.join(where)}: ranked on {', '.join(on.split(';'))}" if on else
               f"{', '.join(where)}: not ranked (no metric with real weights)")
        if off:
            txt += ("; shown only, never ranked on (random-init or unverifiable weights, or "
                    f"excluded by the protocol): {', '.join(off.split(';'))}")
        out.append(txt)
    out += [f"{m} is excluded from ranking by the protocol: {why}"
            for m, why in df.attrs.get("unranked", {}).items()]
    return out


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


RANK_RULE = ("Rows are ranked only within one test set and one comparability group (same "
             "protocol, settings and backbone weights), by the mean of per-metric ranks over the "
             "deciding metrics: those needing no weights or computed with real weight files. "
             "Columns marked † come from random-init backbones, or are metrics the protocol "
             "excludes from ranking (its reason is listed): shown for reference only (greyed "
             "in the HTML), they never decide a rank. Values are means ± the half-width of the "
             "bootstrap 95% CI over images (FID/KID: set-level, no CI). \"tied\": the CIs of "
             "neighbouring ranks overlap on every deciding metric, so the data do not separate "
             "them.")


def _rank_cell(r) -> str:
    rk = r["rank"]
    return "–" if rk is None or rk != rk else str(int(rk))


def _lb_cells(gdf, metrics) -> tuple[list[str], list[list[str]], list[str]]:
    """(metric header labels, body rows, random-init metrics) of one group, text only."""
    off = set(filter(None, gdf["not_ranked"].iloc[0].split(";")))
    body = []
    for _, r in gdf.iterrows():
        body.append([_rank_cell(r), r["method"] + (" (abl.)" if r["ablation"] else ""),
                     ", ".join(r["tied_with"].split(";")) if r["tied_with"] else "",
                     "–" if r["n"] is None or r["n"] != r["n"] else str(int(r["n"]))] +
                    [fmt_pm(r[m], r[f"{m}_ci95_half"], m) for m in metrics])
    return [m + (" †" if m in off else "") for m in metrics], body, [m for m in metrics if m in off]


def leaderboard_md(df, metrics, rows, builtin: bool, hib: dict) -> str:
    lines = ["# frbench leaderboard", ""]
    if builtin:
        lines += [f"> **{NOT_COMPARABLE}**", ""]
    lines += [RANK_RULE + " Ablations are marked *(abl.)*.", ""]
    for (s, g), gdf in df.groupby(["set", "group"], sort=False):
        lines += [f"## Test set `{s}` — group `{g}`", ""]
        labels, body, off = _lb_cells(gdf, metrics)
        on = gdf["ranked_on"].iloc[0]
        lines += [f"Ranked on: {', '.join(on.split(';')) if on else 'nothing (no real metric)'}."
                  + (f" † not ranked on (random-init, or excluded by the protocol): {', '.join(off)}." if off else ""), ""]
        header = ["rank", "method", "tied with", "n"] + [f"{lab} {arrow(hib[m])}"
                                                         for lab, m in zip(labels, metrics)]
        for row in body:
            row[1] = row[1].replace(" (abl.)", " *(abl.)*")
        lines += [md_table(header, body), ""]
    lines += ["## Provenance", ""] + [f"- {x}" for x in provenance_lines(rows)] + [""]
    return "\n".join(lines)


TEX_PACKAGES = ("booktabs",)
TEX_HEAD = ("% Generated by `frbench report`; do not edit. Plain pdflatex; needs \\usepackage{booktabs}\n"
            "% (Debian: texlive-latex-base + texlive-latex-recommended). Use with \\input{...}.\n")


def leaderboard_tex(df, metrics, builtin: bool, hib: dict) -> str:
    """The leaderboard as one booktabs table (a \\midrule between groups), escaped for pdflatex."""
    header, body, rules, off_all = None, [], [], set()
    for (s, g), gdf in df.groupby(["set", "group"], sort=False):
        labels, rows_, off = _lb_cells(gdf, metrics)
        off_all |= set(off)
        rules.append(len(body))
        for r in rows_:
            body.append([s, r[0], r[1] + (" (tied)" if r[2] else "")] + [r[3]] + r[4:])
    header = (["set", "rank", "method", "n"] +
              [f"{m}{' †' if m in off_all else ''} {arrow(hib[m])}" for m in metrics])
    notes = [RANK_RULE]
    if builtin:
        notes.insert(0, NOT_COMPARABLE)
    head = TEX_HEAD + ("% " + NOT_COMPARABLE + "\n" if builtin else "")
    return head + tex_tabular(header, body, "llll" + "r" * len(metrics),
                              caption="frbench leaderboard", label="tab:frbench-leaderboard",
                              notes=notes, midrules=rules)


def paper_table_tex(t: "PaperTable") -> str:
    return TEX_HEAD + tex_tabular(t.header, t.body, "ll" + "r" * (len(t.header) - 2),
                                  caption=f"{t.title}. Source: {t.source}",
                                  label=f"tab:frbench-{t.tid}", notes=[t.note] if t.note else [])


def write_report(params, results_root="results", out_dir=None, restored_root="restored",
                 theta_path=None) -> dict:
    """Write every report file; returns {'files': [...], 'metrics': metrics.json dict}."""
    from core.manifest import dumps_json
    from pipeline import landmark_figure, plots
    from pipeline.html import DRILLDOWN_PAGE, render_drilldown_html, render_html

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
        w(f"tables/{t.tid}.tex", paper_table_tex(t))
    figs = plots.make_all(df, metrics, rows, theta, published, results_root, out / "figures", hib)
    figs += landmark_figure.figures(params, out / "figures")  # dlib on the test faces + finding
    files += figs
    mj = metrics_json(rows, theta)
    w("metrics.json", dumps_json(mj, indent=2, sort_keys=True) + "\n")
    html = render_html(params, df, metrics, rows, tables, figs, theta, builtin, hib,
                       restored_root=restored_root, results_root=results_root)
    w("index.html", html)
    w(DRILLDOWN_PAGE, render_drilldown_html(params, rows, hib, restored_root=restored_root,
                                            results_root=results_root))
    files += __import__("pipeline.records", fromlist=["x"]).write_records(params, out, results_root)
    return {"files": files, "metrics": mj}
