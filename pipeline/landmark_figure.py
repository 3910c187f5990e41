"""How dlib's face models behave on the suite's test faces: a report figure with its finding.

The built-in faces are drawn, not photographed, so a dlib number on them means something only
if the models still find the face. ``figures(params, out_dir)`` measures that and writes
``landmarks_dlib.png`` (returned in a list, empty when there is nothing to measure):

- top: a few HQ test faces enlarged 4x with the 68 points of ``lmd_dlib68`` (red) and, for
  built-in faces, the eye and mouth centres the generator drew (``faces.json``, green rings);
- bottom left: ``deg_dlib`` between each ladder-set GT and its LQ enlarged back by bicubic (the
  ``bicubic`` row of the ladder set) per level, against the band of angles between *different*
  test faces (median and quartiles);
- bottom right: ``lmd_dlib68`` of the same pairs per level;
- the caption (drawn into the image, so the HTML report shows it) states the measured numbers
  and the verdict: ``deg_dlib`` is called UNRELIABLE on these faces when a 2x down-and-up copy
  of a face is at least half as far from it as the median different face, or when any ladder
  level is as far as the median different face; the 68-point fit is called off target when the
  median eye/mouth centre error exceeds 10 % of the eye distance. ``finding(...)`` returns the
  numbers as a dict (logged too).
"""
from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

N_SHOW = 6
N_IDENTITY = 12


def _load(p: Path) -> np.ndarray:
    from core.imageio import read_image
    return read_image(p)


def _ladder_dir(params):
    ts = params.testsets
    for name in ts.names:
        spec = ts.sets.get(name)
        if spec is not None and spec.preset == "panini_ladder":
            return Path(ts.out_dir) / name
    return None


def _down_up(img: np.ndarray, f: int) -> np.ndarray:
    from PIL import Image
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, w // f), max(1, h // f)), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BICUBIC))


def finding(face, hq: list[tuple[str, np.ndarray]], annotations: dict,
            ladder: dict[str, list[tuple[np.ndarray, np.ndarray]]]) -> dict:
    """Numbers behind the figure. ``hq``: [(id, uint8 RGB)]; ``annotations``: faces.json (may be
    empty); ``ladder``: {level: [(gt, restored)]}."""
    from metrics.dlib_face import angle_degrees, landmark_distance

    out: dict = {"n_faces": len(hq)}
    lm = face.landmarks68([im for _, im in hq])
    errs, iod = [], []
    for (id_, _), pts in zip(hq, lm):
        a = annotations.get(id_)
        if not a:
            continue
        le, re, mo = pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0)
        errs.append([np.hypot(*(le - a["left_eye"])), np.hypot(*(re - a["right_eye"])),
                     np.hypot(*(mo - a["mouth"]))])
        iod.append(np.hypot(*(np.subtract(a["left_eye"], a["right_eye"]))))
    if errs:
        e = np.asarray(errs)
        out["landmark_error_px"] = {"median": float(np.median(e)), "p90": float(np.percentile(e, 90))}
        out["eye_distance_px"] = float(np.median(iod))
        out["landmark_error_rel"] = float(np.median(e) / np.median(iod))
        out["landmarks_on_target"] = bool(out["landmark_error_rel"] <= 0.10)
    ims = [im for _, im in hq[:N_IDENTITY]]
    d = face.descriptors(ims)
    i, j = np.triu_indices(len(ims), 1)
    diff = angle_degrees(d[i], d[j])
    self2 = angle_degrees(face.descriptors([_down_up(im, 2) for im in ims]), d)
    out["deg_different_faces"] = {"median": float(np.median(diff)),
                                  "q25": float(np.percentile(diff, 25)),
                                  "q75": float(np.percentile(diff, 75)),
                                  "min": float(diff.min())}
    out["deg_self_down_up_x2"] = float(np.median(self2))
    levels = {}
    for lvl, pairs in ladder.items():
        g = np.stack([p[0] for p in pairs])
        r = np.stack([p[1] for p in pairs])
        levels[lvl] = {
            "deg_dlib": float(angle_degrees(face.descriptors(r), face.descriptors(g)).mean()),
            "lmd_dlib68": float(landmark_distance(face.landmarks68(r), face.landmarks68(g)).mean()),
            "n": len(pairs)}
    out["ladder_bicubic"] = levels
    med = out["deg_different_faces"]["median"]
    out["deg_dlib_reliable"] = bool(out["deg_self_down_up_x2"] < 0.5 * med and
                                    all(v["deg_dlib"] < med for v in levels.values()))
    return out


def caption(f: dict, builtin: bool) -> str:
    kind = "built-in (drawn) faces" if builtin else "test faces"
    dd = f["deg_different_faces"]
    s = []
    if "landmark_error_px" in f:
        s.append(f"68-point fit vs the drawn eye/mouth centres: median error "
                 f"{f['landmark_error_px']['median']:.2f} px ({100 * f['landmark_error_rel']:.0f}% of "
                 f"the {f['eye_distance_px']:.0f} px eye distance; 90th pct "
                 f"{f['landmark_error_px']['p90']:.2f} px): the predictor "
                 + ("lands on the drawn features." if f["landmarks_on_target"] else
                    "does NOT land on the drawn features; lmd_dlib68 is unreliable here."))
    lv = f["ladder_bicubic"]
    lad = "; ".join(f"{k} {v['deg_dlib']:.1f}°/{v['lmd_dlib68']:.2f} px" for k, v in lv.items())
    rises = {m: bool(len(lv) > 1 and all(np.diff([v[m] for v in lv.values()]) > 0))
             for m in ("deg_dlib", "lmd_dlib68")}
    if lad:
        lad += " — " + ", ".join(f"{m} {'rises' if r else 'does NOT rise'} monotonically"
                                 for m, r in rises.items())
    s.append(f"deg_dlib between different {kind}: median {dd['median']:.1f}° (quartiles "
             f"{dd['q25']:.1f}-{dd['q75']:.1f}°); a face vs its own 2x down-and-up copy: "
             f"{f['deg_self_down_up_x2']:.1f}°."
             + (f" Bicubic on the ladder (deg_dlib/lmd_dlib68): {lad}." if lad else ""))
    if f["deg_dlib_reliable"]:
        s.append("Verdict: deg_dlib separates these identities better than mild degradations.")
    else:
        s.append("Verdict: deg_dlib is UNRELIABLE on these faces: dlib's descriptor sees the "
                 "drawn faces as near-identical, so a mildly degraded copy is about as far from "
                 "its GT as another face. Do not read deg_dlib here as identity preservation.")
    return " ".join(s)


def figures(params, out_dir, max_ladder: int = 8) -> list[Path]:
    """Write ``landmarks_dlib.png`` (+ ``landmarks_dlib.json``) into ``out_dir``; [] if the HQ
    test faces or the dlib models are missing (logged)."""
    from core.errors import FRBenchError
    from core.imageio import list_images

    src = Path(params.testsets.src)
    try:
        files = list_images(src)
    except FRBenchError as e:
        log.warning("landmark figure skipped: %s", e)
        return []
    try:
        from metrics.dlib_face import DlibFace
        face = DlibFace(getattr(params, "weights", None))
    except FRBenchError as e:
        log.warning("landmark figure skipped: %s", e)
        return []
    ann_path = src / "faces.json"
    annotations = json.loads(ann_path.read_text()) if ann_path.is_file() else {}
    hq = [(p.stem, _load(p)) for p in files[:max(N_SHOW, N_IDENTITY)]]
    ladder: dict[str, list] = {}
    lad = _ladder_dir(params)
    if lad is not None and (lad / "gt").is_dir() and (lad / "lq").is_dir():
        for p in sorted((lad / "gt").iterdir()):
            lq = lad / "lq" / p.name
            lvl = p.stem.partition("_")[0]
            if lq.is_file() and len(ladder.setdefault(lvl, [])) < max_ladder:
                from PIL import Image
                g = _load(p)
                r = np.asarray(Image.fromarray(_load(lq)).resize(g.shape[1::-1], Image.BICUBIC))
                ladder[lvl].append((g, r))
    builtin = bool(annotations) or params.profile.startswith("builtin")
    f = finding(face, hq, annotations, ladder)
    cap = caption(f, builtin)
    log.info("dlib on the test faces: %s", cap)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = _draw(face, hq[:N_SHOW], annotations, f, cap, out_dir / "landmarks_dlib.png")
    js = out_dir / "landmarks_dlib.json"
    tmp = js.with_name(f".{js.name}.tmp")
    tmp.write_text(json.dumps({**f, "caption": cap}, indent=2, sort_keys=True) + "\n")
    tmp.replace(js)
    return [path]


def _draw(face, hq, annotations, f, cap, path: Path) -> Path:
    from pipeline.plots import _plt, _save

    plt, _ = _plt()
    n = max(1, len(hq))
    fig = plt.figure(figsize=(2.0 * max(n, 4), 6.0))
    top = fig.add_gridspec(1, max(n, 4), top=0.90, bottom=0.56, wspace=0.05)
    bottom = fig.add_gridspec(1, 2, top=0.45, bottom=0.08, wspace=0.25)
    lm = face.landmarks68([im for _, im in hq])
    for k, ((id_, im), pts) in enumerate(zip(hq, lm)):
        ax = fig.add_subplot(top[0, k])
        ax.imshow(im, interpolation="nearest")
        ax.scatter(pts[:, 0], pts[:, 1], s=5, c="red", linewidths=0)
        a = annotations.get(id_)
        if a:
            xy = np.array([a["left_eye"], a["right_eye"], a["mouth"]])
            ax.scatter(xy[:, 0], xy[:, 1], s=40, facecolors="none", edgecolors="lime",
                       linewidths=1.0)
        ax.set_title(id_, fontsize=8)
        ax.axis("off")
    levels = list(f["ladder_bicubic"])
    dd = f["deg_different_faces"]
    for col, (key, label) in enumerate([("deg_dlib", "deg_dlib (°)"),
                                        ("lmd_dlib68", "lmd_dlib68 (px)")]):
        ax = fig.add_subplot(bottom[0, col])
        if levels:
            ax.plot(levels, [f["ladder_bicubic"][l][key] for l in levels], "o-",
                    label="ladder GT vs bicubic LQ")
        if key == "deg_dlib":
            ax.axhspan(dd["q25"], dd["q75"], color="grey", alpha=0.25)
            ax.axhline(dd["median"], color="grey", ls="--", label="different faces (median, IQR)")
            ax.axhline(f["deg_self_down_up_x2"], color="C2", ls=":", label="own 2x down-up copy")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xlabel("ladder level")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    fig.text(0.5, -0.01, "\n".join(textwrap.wrap(cap, 150)), ha="center", va="top", fontsize=8)
    fig.suptitle("dlib models on the test faces (68 landmarks in red; drawn eye/mouth centres "
                 "in green)", fontsize=10)
    p = _save(fig, path)
    plt.close(fig)
    return p
