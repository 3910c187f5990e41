"""Seaborn figures of the report (PNG, deterministic: fixed size/dpi, no timestamps).

- ``metric_vs_level.png``: each per-image metric vs degradation level (the ladder set's levels,
  from per_image.csv ids ``<level>_<id>``), one line per method, 95% CI bands;
- ``metric_vs_testset.png``: each metric per test set and method (bars, axis units, the
  evaluator's bootstrap 95% CIs as error bars; random-init metrics flagged);
- ``theta_vs_r.png``: Panini-Net Table 4, our theta per ladder level beside the published one;
- ``fid_vs_psnr.png``: realness (FID, lower better) vs fidelity (PSNR, higher better), one panel
  per test set, one labelled marker per method.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams["svg.hashsalt"] = "frbench"
    return plt, sns


def method_colors(methods) -> dict:
    """One colour per method, the same in every figure: tab10 in the pipeline's method order
    (params order, as the report's rows come), so a method never changes colour between plots."""
    import seaborn as sns
    methods = list(dict.fromkeys(methods))
    return dict(zip(methods, sns.color_palette("tab10", max(10, len(methods)))))


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight", metadata={"Software": None})
    tmp.replace(path)
    return path


def ladder_frame(rows, results_root):
    """Long DataFrame (method, level, metric, value) from the ladder cells' per_image.csv."""
    import pandas as pd
    recs = []
    for r in rows:
        p = Path(results_root) / r["method"] / r["set"] / "per_image.csv"
        if r["set"] != "ladder" or not p.is_file():
            continue
        df = pd.read_csv(p, dtype={"id": str})
        df["level"] = df["id"].str.partition("_")[0]
        for m in [c for c in df.columns if c not in ("id", "level")]:
            for lvl, v in zip(df["level"], df[m]):
                recs.append({"method": r["method"], "level": lvl, "metric": m, "value": v})
    return pd.DataFrame(recs)


def _shared_legend(fig, axes, n_used: int, y: float) -> None:
    """Blank the unused panels of a grid and put the first panel's legend above the figure."""
    for ax in list(axes.flat)[n_used:]:
        ax.axis("off")
    h, lab = [], []
    for ax in axes.flat:     # every method once, in order of appearance
        for hh, ll in zip(*ax.get_legend_handles_labels()):
            if ll not in lab:
                h.append(hh)
                lab.append(ll)
    fig.legend(h, lab, loc="upper center", ncol=min(8, len(lab)), frameon=False,
               bbox_to_anchor=(0.5, y))


def metric_vs_level(rows, results_root, out: Path, hib) -> Path | None:
    plt, sns = _plt()
    df = ladder_frame(rows, results_root)
    if df.empty:
        return None
    mets = list(dict.fromkeys(df["metric"]))
    ncol = min(3, len(mets))
    nrow = (len(mets) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    order = sorted(df["level"].unique())
    colors = method_colors(r["method"] for r in rows)
    for ax, m in zip(axes.flat, mets):
        sub = df[df["metric"] == m]
        hue = [m_ for m_ in colors if m_ in set(sub["method"])]
        sns.pointplot(data=sub, x="level", y="value", hue="method", order=order, ax=ax,
                      hue_order=hue, palette=colors, errorbar=("ci", 95), seed=0, dodge=0.3,
                      markersize=4, linewidth=1.2)
        ax.set_title(f"{m} ({'higher' if hib.get(m, True) else 'lower'} is better)")
        ax.set_xlabel("ladder level (downsampling factor r)")
        ax.set_ylabel(axis_label(m))
        if ax.get_legend():
            ax.get_legend().remove()
    _shared_legend(fig, axes, len(mets), y=1.02)
    fig.suptitle("Metrics vs degradation level (ladder set; 95% CI over images)", y=1.06)
    fig.tight_layout()
    p = _save(fig, out / "metric_vs_level.png")
    plt.close(fig)
    return p


UNITS = {"psnr": "PSNR (dB)", "psnr_y": "PSNR on Y (dB)", "ssim": "SSIM (0-1)",
         "ssim_y": "SSIM on Y (0-1)", "ms_ssim": "MS-SSIM (0-1)", "lpips": "LPIPS distance",
         "fid": "FID", "kid": "KID", "niqe": "NIQE", "lmd_dlib68": "landmark distance (px)"}


def axis_label(metric: str) -> str:
    """Y-axis label with the metric's unit (identity angles in degrees)."""
    if metric in UNITS:
        return UNITS[metric]
    if metric.startswith("deg_"):
        return f"identity angle, {metric[4:]} (°)"
    return metric


def metric_vs_testset(df, metrics, out: Path, hib, rows=None) -> Path | None:
    """One panel per metric: grouped bars (test set x method) with the bootstrap 95% CI the
    evaluator recorded as error bars (set-level FID/KID: no CI); random-init metrics say so."""
    plt, sns = _plt()
    import numpy as np
    sets = list(dict.fromkeys(df["set"]))
    colors = method_colors([r["method"] for r in rows or []] + list(df["method"]))
    methods = list(colors)
    mets = [m for m in metrics if df[m].notna().any()]
    if not mets:
        return None
    ci = {}
    for r in rows or []:
        for m, e in r.get("metrics", {}).items():
            if e.get("ci95") and None not in e["ci95"]:
                ci[(r["method"], r["set"], m)] = e["ci95"]
    off = set()
    if "not_ranked" in df.columns:
        for v in df["not_ranked"]:
            off |= set(filter(None, str(v).split(";")))
    ncol = min(3, len(mets))
    nrow = (len(mets) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.3 * nrow), squeeze=False)
    present = {s: [mt for mt in methods if ((df["set"] == s) & (df["method"] == mt)).any()]
               for s in sets}
    width = 0.84 / max(1, max(len(v) for v in present.values()))
    x = np.arange(len(sets))
    for ax, m in zip(axes.flat, mets):
        seen = set()
        for i, s in enumerate(sets):     # each set's methods side by side, centred on the set
            for j, meth in enumerate(present[s]):
                sub = df[(df["set"] == s) & (df["method"] == meth)]
                v = float(sub[m].iloc[0]) if sub[m].notna().iloc[0] else np.nan
                if not np.isfinite(v):
                    continue
                c = ci.get((meth, s, m))
                err = [[v - c[0]], [c[1] - v]] if c else None
                ax.bar(i + (j - (len(present[s]) - 1) / 2) * width, v, width * 0.92,
                       color=colors[meth], label=None if meth in seen else meth, yerr=err,
                       capsize=2, error_kw={"elinewidth": 0.8})
                seen.add(meth)
        ax.set_xticks(x, sets)
        ax.set_xlabel("test set")
        ax.set_ylabel(axis_label(m))
        ttl = f"{m} ({'higher' if hib.get(m, True) else 'lower'} is better)"
        notes = (["random-init, not ranked"] if m in off else []) + \
            (["bars: 95% bootstrap CI"] if any(k[2] == m for k in ci) else ["set-level, no CI"])
        ttl += "\n" + "; ".join(notes)
        ax.set_title(ttl, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    _shared_legend(fig, axes, len(mets), y=1.02)
    fig.suptitle("Each metric per test set and method", y=1.06)
    fig.tight_layout()
    p = _save(fig, out / "metric_vs_testset.png")
    plt.close(fig)
    return p


def theta_vs_r(theta, published, out: Path) -> Path | None:
    if not theta:
        return None
    plt, sns = _plt()
    pub = next((t for t in published.values() if t.get("kind") == "theta"), None)
    ours = list(theta["levels"].items())
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = list(range(len(ours)))
    ax.plot(x, [e["theta"] for _, e in ours], "o-", label=f"ours ({theta['method']}, "
            f"{theta.get('profile', '')})")
    labels = [lvl for lvl, _ in ours]
    if pub:
        k = min(len(pub["theta"]), len(ours)) if ours else len(pub["theta"])
        ax.plot(list(range(len(pub["theta"])))[:max(k, 1)], pub["theta"][:max(k, 1)], "s--",
                label="published (Panini-Net Table 4)")
        labels = [f"{lvl}\n(paper r={r})" for (lvl, _), r in zip(ours, pub["levels"])]
    ax.set_xticks(x, labels)
    ax.set_xlabel("degradation level (more downsampling →)")
    ax.set_ylabel("θ = mean prior mask, last DAFI block")
    ax.set_title("GAN-prior usage θ vs downsampling r")
    ax.legend(frameon=False, loc="upper left", fontsize=9)
    fig.tight_layout()
    p = _save(fig, out / "theta_vs_r.png")
    plt.close(fig)
    return p


def fid_vs_psnr(df, out: Path, order=()) -> Path | None:
    """Realness (FID) vs fidelity (PSNR): one panel per test set, one labelled marker per
    method, horizontal bars = PSNR 95% CI (FID is set-level: no CI)."""
    if "fid" not in df.columns or "psnr" not in df.columns:
        return None
    plt, sns = _plt()
    sub = df.dropna(subset=["fid", "psnr"])
    if sub.empty:
        return None
    sets = list(dict.fromkeys(sub["set"]))
    colors = method_colors(list(order) + list(sub["method"]))
    methods = [m for m in colors if m in set(sub["method"])]
    marks = dict(zip(methods, "osD^vP*Xhp<>"))
    ncol = min(3, len(sets))
    nrow = (len(sets) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.6 * nrow), squeeze=False)
    for ax, s in zip(axes.flat, sets):
        d = sub[sub["set"] == s]
        for _, r in d.iterrows():
            h = r.get("psnr_ci95_half")
            ax.errorbar(r["psnr"], r["fid"], xerr=None if h is None or h != h else h,
                        fmt=marks[r["method"]], color=colors[r["method"]], ms=7, mec="white",
                        mew=0.8, alpha=0.9, capsize=2, elinewidth=0.8, label=r["method"])
        # labels: stagger vertically in FID order so neighbours do not overprint
        for k, (_, r) in enumerate(d.sort_values("fid").iterrows()):
            ax.annotate(r["method"], (r["psnr"], r["fid"]), xytext=(6, -9 + 9 * (k % 3)),
                        textcoords="offset points", fontsize=7.5, color=colors[r["method"]])
        xs, ys = d["psnr"], d["fid"]
        ax.set_xlim(xs.min() - 0.12 * max(1e-6, xs.max() - xs.min()) - 0.3,
                    xs.max() + 0.35 * max(1e-6, xs.max() - xs.min()) + 0.6)
        pad = 0.12 * max(1e-6, ys.max() - ys.min()) + 0.05
        ax.set_ylim(ys.max() + pad, ys.min() - pad)   # inverted: up = lower FID
        ax.set_title(f"test set {s}", fontsize=10)
        ax.set_xlabel("PSNR (dB), right = better fidelity")
        ax.set_ylabel("FID, up = more realistic")
    for ax in list(axes.flat)[len(sets):]:
        ax.axis("off")
    h, lab = [], []
    for ax in axes.flat:
        for hh, ll in zip(*ax.get_legend_handles_labels()):
            if ll not in lab:
                h.append(hh)
                lab.append(ll)
    fig.legend(h, lab, loc="upper center", ncol=min(8, len(lab)), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    ri = "not_ranked" in df.columns and any("fid" in str(v).split(";") for v in df["not_ranked"])
    fig.suptitle("Realness vs fidelity per test set (bars: PSNR 95% CI)" +
                 ("\nFID from a random-init Inception here: not comparable, not ranked" if ri
                  else ""), y=1.08 if ri else 1.06)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    p = _save(fig, out / "fid_vs_psnr.png")
    plt.close(fig)
    return p


def make_all(df, metrics, rows, theta, published, results_root, out: Path, hib) -> list[Path]:
    figs = [metric_vs_level(rows, results_root, out, hib),
            metric_vs_testset(df, metrics, out, hib, rows),
            theta_vs_r(theta, published, out),
            fid_vs_psnr(df, out, [r["method"] for r in rows])]
    return [f for f in figs if f is not None]
