"""Seaborn figures of the report (PNG, deterministic: fixed size/dpi, no timestamps).

- ``metric_vs_level.png``: each per-image metric vs degradation level (the ladder set's levels,
  from per_image.csv ids ``<level>_<id>``), one line per method, 95% CI bands;
- ``metric_vs_testset.png``: each metric per test set and method (bars);
- ``theta_vs_r.png``: Panini-Net Table 4, our theta per ladder level beside the published one;
- ``fid_vs_psnr.png``: realness (FID, lower better) vs fidelity (PSNR, higher better), one point
  per (method, test set).
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
    h, lab = axes.flat[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="upper center", ncol=min(6, len(lab)), frameon=False,
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
    for ax, m in zip(axes.flat, mets):
        sub = df[df["metric"] == m]
        sns.pointplot(data=sub, x="level", y="value", hue="method", order=order, ax=ax,
                      errorbar=("ci", 95), seed=0, dodge=0.3, markersize=4, linewidth=1.2)
        ax.set_title(f"{m} ({'higher' if hib.get(m, True) else 'lower'} is better)")
        ax.set_xlabel("ladder level (downsampling factor r)")
        ax.set_ylabel(m)
        if ax.get_legend():
            ax.get_legend().remove()
    _shared_legend(fig, axes, len(mets), y=1.02)
    fig.suptitle("Metrics vs degradation level (ladder set; 95% CI over images)", y=1.06)
    fig.tight_layout()
    p = _save(fig, out / "metric_vs_level.png")
    plt.close(fig)
    return p


def metric_vs_testset(df, metrics, out: Path, hib) -> Path | None:
    plt, sns = _plt()
    long = df.melt(id_vars=["set", "method"], value_vars=metrics, var_name="metric",
                   value_name="value").dropna()
    if long.empty:
        return None
    ncol = min(4, len(metrics))
    nrow = (len(metrics) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.9 * nrow), squeeze=False)
    methods = list(dict.fromkeys(df["method"]))
    for ax, m in zip(axes.flat, metrics):
        sub = long[long["metric"] == m]
        sns.barplot(data=sub, x="set", y="value", hue="method", hue_order=methods, ax=ax)
        ax.set_title(f"{m} {'↑' if hib.get(m, True) else '↓'}")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelsize=8)
        if ax.get_legend():
            ax.get_legend().remove()
    _shared_legend(fig, axes, len(metrics), y=1.04)
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


def fid_vs_psnr(df, out: Path) -> Path | None:
    if "fid" not in df.columns or "psnr" not in df.columns:
        return None
    plt, sns = _plt()
    sub = df.dropna(subset=["fid", "psnr"])
    if sub.empty:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.2))
    sns.scatterplot(data=sub, x="psnr", y="fid", hue="method", style="set", s=70, ax=ax)
    ax.invert_yaxis()
    ax.set_xlabel("PSNR (dB) → better fidelity")
    ax.set_ylabel("FID (inverted axis: up = more realistic)")
    ax.set_title("Realness vs fidelity (one point per method x test set)")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False, fontsize=8)
    fig.tight_layout()
    p = _save(fig, out / "fid_vs_psnr.png")
    plt.close(fig)
    return p


def make_all(df, metrics, rows, theta, published, results_root, out: Path, hib) -> list[Path]:
    figs = [metric_vs_level(rows, results_root, out, hib), metric_vs_testset(df, metrics, out, hib),
            theta_vs_r(theta, published, out), fid_vs_psnr(df, out)]
    return [f for f in figs if f is not None]
