"""The report's outputs beyond the numbers: ranking only on real metrics, CIs and ties, LaTeX
that compiles, the HTML header and per-image drill-down, text fixes, screenshots; the CLI's help
and version; evaluate's progress bar. Fake results and tiny images, no training."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import Params, build, read_yaml

ROOT = Path(__file__).resolve().parents[1]
FILE = "file:x.pth@sha256:0123456789abcdef"
RAND = "random-init:seed=0"


def _params(tmp, **pipeline):
    d = read_yaml(ROOT / "params.yaml")
    d["pipeline"].update(pipeline)
    d["report"]["published_dir"] = str(ROOT / "reports" / "published")
    d["testsets"]["out_dir"] = str(tmp / "testsets")
    d["mlflow"]["enabled"] = False
    return build(Params, d)


def _row(method, s, psnr, lpips, fid, *, backbone=RAND, ci=0.1, n=6):
    return {"method": method, "set": s, "protocol": "builtin", "protocol_settings": {"size": 16},
            "n": n,
            "metrics": {"psnr": {"mean": psnr, "ci95": [psnr - ci, psnr + ci]},
                        "lpips": {"mean": lpips, "ci95": [lpips - 0.01, lpips + 0.01]}},
            "set_metrics": {"fid": fid},
            "higher_is_better": {"psnr": True, "lpips": False, "fid": False},
            "provenance": {"inception_fid": backbone, "lpips_vgg": backbone,
                           "lpips_vgg_lin": FILE},
            "comparable_with_published": False, "versions": {"torch": "x"}}


def _images(root: Path, ids, size=16, value=100, seed=0):
    from PIL import Image
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in ids:
        a = np.clip(value + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root / f"{i}.png")


def _make_fake(tmp_path):
    """mfr: 'good' wins PSNR (real), 'bad' wins random-init LPIPS and FID; per-image files."""
    res, ts, rs = tmp_path / "results", tmp_path / "testsets", tmp_path / "restored"
    ids = [f"{i:03d}" for i in range(6)]
    _images(ts / "mfr" / "gt", ids)
    _images(ts / "mfr" / "lq", ids, size=8, seed=1)
    rows = {"good": _row("good", "mfr", 25.0, 0.5, 30.0), "bad": _row("bad", "mfr", 20.0, 0.1, 1.0),
            "near": _row("near", "mfr", 24.95, 0.6, 40.0)}
    for k, (m, r) in enumerate(rows.items()):
        d = res / m / "mfr"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(r))
        psnr = [r["metrics"]["psnr"]["mean"] + x for x in (-2, -1, 0, 1, 2, 3)]
        (d / "per_image.csv").write_text("id,psnr,lpips\n" + "".join(
            f"{i},{p},{0.3}\n" for i, p in zip(ids, psnr)))
        _images(rs / m / "mfr", ids, seed=10 + k)
    p = _params(tmp_path, train=["good", "bad", "near"], methods=["good", "bad", "near"],
                testsets=["mfr"], sr_methods=[], sr_testsets=[], ablations=[],
                ablation_testsets=[], theta={})
    return p, res, rs, tmp_path


@pytest.fixture()
def fake(tmp_path, _known_methods):
    return _make_fake(tmp_path)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The fake results with a theta file, reported once for every test that only reads the
    report's files (write_report costs seconds: plots, drill-down, landmark figure)."""
    from pipeline.config import PipelineConfig
    from pipeline.report import write_report
    from pipeline import landmark_figure
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PipelineConfig, "validate", lambda self, where: None)
        mp.setattr(Params, "validate", lambda self, where: None)
        # dlib on the test faces costs ~10-20 s; its figure has its own tests (test_landmark_figure)
        mp.setattr(landmark_figure, "figures", lambda params, out: [])
        params, res, rs, tmp = _make_fake(tmp_path_factory.mktemp("written"))
        (res / "panini_theta.json").write_text(json.dumps(
            {"method": "good", "set": "ladder", "levels": {"r002": {"theta": 0.3, "n": 2}}}))
        out = tmp / "rep"
        write_report(params, res, out, rs)
    return out


@pytest.fixture(autouse=True)
def _known_methods(monkeypatch):
    """The fake method names are not in params.yaml's methods and the fake pipeline has one
    matrix only: skip those validations (they are tested in test_config)."""
    from pipeline.config import PipelineConfig
    monkeypatch.setattr(PipelineConfig, "validate", lambda self, where: None)
    monkeypatch.setattr(Params, "validate", lambda self, where: None)


# -- ranking --------------------------------------------------------------------------------

def test_metric_is_real_from_needs_and_provenance():
    from pipeline.report import metric_is_real
    r = _row("a", "s", 1, 1, 1)
    assert metric_is_real(r, "psnr") and metric_is_real(r, "ms_ssim")     # needs nothing
    assert not metric_is_real(r, "lpips")        # lpips_vgg random-init (its head is a file)
    assert not metric_is_real(r, "fid") and not metric_is_real(r, "kid")
    assert not metric_is_real(r, "deg_facenet")  # no provenance entry: unverifiable
    assert not metric_is_real(r, "no_such_metric")
    real = _row("a", "s", 1, 1, 1, backbone=FILE)
    assert metric_is_real(real, "lpips") and metric_is_real(real, "fid")
    by_file = {**real, "provenance": {"x": "file:20180402-114759-vggface2.pt@sha256:00"}}
    assert metric_is_real(by_file, "deg_facenet")   # matched through the weight's file name


def test_random_init_never_decides_a_rank(fake):
    from pipeline.report import leaderboard_frame, load_rows
    params, res, _, _ = fake
    df, metrics = leaderboard_frame(load_rows(params, res))
    rk = dict(zip(df["method"], df["rank"]))
    # mean of ranks over psnr, lpips, fid would put 'bad' first; only psnr is real
    assert rk == {"good": 1, "near": 2, "bad": 3}
    assert set(df["ranked_on"]) == {"psnr"} and set(df["not_ranked"]) == {"lpips;fid"}
    # the same numbers with real backbones: lpips and fid decide too, 'bad' wins 2 of 3
    for m in ("good", "bad", "near"):
        p = res / m / "mfr" / "summary.json"
        r = json.loads(p.read_text())
        r["provenance"] = {k: FILE for k in r["provenance"]}
        p.write_text(json.dumps(r))
    df, _ = leaderboard_frame(load_rows(params, res))
    assert dict(zip(df["method"], df["rank"]))["bad"] == 1
    assert set(df["ranked_on"]) == {"psnr;lpips;fid"} and set(df["not_ranked"]) == {""}


def test_protocol_excludes_a_real_metric_from_ranking():
    """builtin lists deg_dlib as unranked (measured unreliable on drawn faces): with real dlib
    files it is still shown, never decides, and the note gives the protocol's reason."""
    from pipeline.report import leaderboard_frame, protocol_unranked, ranking_note
    dlib = {"dlib_shape5": "file:shape_predictor_5_face_landmarks.dat@sha256:00",
            "dlib_resnet_v1": "file:dlib_face_recognition_resnet_model_v1.dat@sha256:00"}
    rows = []
    for m, psnr, deg in (("a", 20.0, 40.0), ("b", 19.0, 10.0), ("c", 18.0, 20.0)):
        r = _row(m, "s", psnr, 0.1, 1.0)
        r["metrics"]["deg_dlib"] = {"mean": deg, "ci95": [deg - 0.1, deg + 0.1]}
        r["higher_is_better"]["deg_dlib"] = False
        r["provenance"].update(dlib)
        rows.append(r)
    assert "deg_dlib" in protocol_unranked(rows[0])
    df, _ = leaderboard_frame(rows)
    # on psnr alone a > b > c; deg_dlib (real files) would reverse a and b if it decided
    assert dict(zip(df["method"], df["rank"])) == {"a": 1, "b": 2, "c": 3}
    assert set(df["ranked_on"]) == {"psnr"} and "deg_dlib" in df["not_ranked"].iloc[0]
    assert any(line.startswith("deg_dlib is excluded from ranking by the protocol")
               for line in ranking_note(df))
    # another protocol without the exclusion lets it decide
    for r in rows:
        r["protocol"] = "panini"
    df, _ = leaderboard_frame(rows)
    assert "deg_dlib" in df["ranked_on"].iloc[0]


def test_ci_half_width_n_and_ties(fake):
    import pandas as pd
    from pipeline.report import ci_tied, leaderboard_frame, load_rows
    params, res, _, _ = fake
    df = leaderboard_frame(load_rows(params, res))[0].set_index("method")
    assert df.loc["good", "psnr_ci95_half"] == pytest.approx(0.1)
    assert pd.isna(df.loc["good", "fid_ci95_half"])   # set-level: no CI
    assert df.loc["good", "n"] == 6
    # good [24.9, 25.1] and near [24.85, 25.05] overlap; near and bad [19.9, 20.1] do not
    assert df.loc["good", "tied_with"] == "near" and df.loc["near", "tied_with"] == "good"
    assert df.loc["bad", "tied_with"] == ""
    a, b = _row("a", "s", 10.0, 0, 0, ci=0.1), _row("b", "s", 10.5, 0, 0, ci=0.1)
    assert not ci_tied(a, b, ["psnr"]) and ci_tied(a, b, ["lpips"])
    assert not ci_tied(a, b, ["psnr", "lpips"])   # separated on one deciding metric
    assert not ci_tied(a, b, ["fid"])             # no CI at all: no claim of a tie


def test_leaderboard_md_csv_show_ci_n_tie_and_decision(written):
    out = written
    md = (out / "leaderboard.md").read_text()
    assert "25.00 ± 0.10" in md and "| n |" in md and "Ranked on: psnr." in md
    assert "lpips †" in md and "never decide a rank" in md
    assert re.search(r"\| 1 \| good \| near \| 6 \|", md)
    import pandas as pd
    csv = pd.read_csv(out / "leaderboard.csv")
    assert {"psnr_ci95_half", "tied_with", "ranked_on", "not_ranked", "n"} <= set(csv.columns)


# -- LaTeX ----------------------------------------------------------------------------------

def _tex_structure(tex: str) -> None:
    """Booktabs table whose rows all have the declared number of columns; escaped text."""
    assert tex.isascii(), [c for c in tex if not c.isascii()][:5]
    body = "\n".join(ln for ln in tex.splitlines() if not ln.startswith("%"))
    assert body.count("{") - body.count(r"\{") == body.count("}") - body.count(r"\}")
    for k in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}", "\\end{table}"):
        assert k in body, k
    spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", body).group(1)
    rows = [ln for ln in body.splitlines() if ln.endswith(r"\\")]
    assert rows
    for ln in rows:
        assert len(re.findall(r"(?<!\\)&", ln)) == len(spec) - 1, ln
    # no bare TeX specials outside math: _ ^ % # must be escaped
    text = re.sub(r"\$[^$]*\$|\\label\{[^}]*\}", "", body)   # math and labels may hold _
    for ch in "_%#":
        assert not re.search(r"(?<!\\)" + re.escape(ch), text), ch


def test_tex_escaped_and_compiles(written, tmp_path):
    out = written
    texs = [out / "leaderboard.tex"] + sorted((out / "tables").glob("*.tex"))
    assert len(texs) >= 3, texs
    for t in texs:
        src = t.read_text()
        _tex_structure(src)
        assert "booktabs" in src.splitlines()[0]
    lb = texs[0].read_text()
    assert r"ms\_ssim" in lb or "ms_ssim" not in lb
    assert r"$\pm$" in lb and r"$\uparrow$" in lb
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: texlive-latex-base texlive-latex-recommended);"
                    " structure checked only")
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" +
                   "".join(f"\\input{{{t.as_posix()}}}\n\\clearpage\n" for t in texs) +
                   "\\end{document}\n")
    p = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                        "-no-shell-escape", doc.name], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert p.returncode == 0, log[-2000:]
    assert "Missing $" not in log and "Undefined control sequence" not in log
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_tex_escape_specials():
    from pipeline.report_text import tex_escape
    assert tex_escape("ms_ssim") == r"ms\_ssim"
    assert tex_escape("a&b%c$d#e{f}g~h^i\\j") == (r"a\&b\%c\$d\#e\{f\}g\textasciitilde{}h"
                                                  r"\textasciicircum{}i\textbackslash{}j")
    assert tex_escape("θ ↑ – ±").isascii() and tex_escape("漢") == "?"


# -- HTML -----------------------------------------------------------------------------------

def test_html_header_drilldown_and_text_fixes(written):
    out = written
    html = (out / "index.html").read_text()
    for k in ("<dt>commit</dt>", "<dt>report built</dt>", "<dt>profile</dt>", "<dt>machine</dt>",
              "<dt>torch</dt>"):
        assert k in html, k
    assert "Ranked on: <b>psnr</b>" in html and "class=\"ri\"" in html  # greyed lpips/fid
    assert "tied: near" in html and "25.00 ± 0.10" in html
    # drill-down: a page of its own, linked from index.html (which holds no tile of it)
    assert "href='drilldown.html'" in html and "figure class='dd'" not in html
    page = (out / "drilldown.html").read_text()
    assert "href='index.html'" in page and "<dt>commit</dt>" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)   # offline too
    # best 3 = highest PSNR (ids 005, 004, 003), worst 3 = lowest (000, 001, 002)
    dd = page[page.index("id='drilldown'"):]
    cell = dd[dd.index("<h4>good"):dd.index("<h4>bad")]
    best = cell[cell.index(">best 3<"):cell.index(">worst 3<")]
    worst = cell[cell.index(">worst 3<"):]
    assert re.findall(r"<figcaption>(\d+) ", best) == ["005", "004", "003"]
    assert re.findall(r"<figcaption>(\d+) ", worst) == ["000", "001", "002"]
    assert "psnr 28.00" in best and best.count("data:image/png;base64,") == 12  # 4 tiles x 3
    assert "id='zoom'" in page and "type='range'" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", html)   # offline: nothing external
    prov = html[html.index("id='provenance'"):]
    assert "`" not in prov and "<code>" in prov
    assert "{&#x27;" not in html and "{\"r002\"" not in html and "θ" in prov  # theta as a table
    assert "Samples per degradation level" not in html


def test_pick_best_worst_and_diff_map():
    import pandas as pd
    from pipeline.drilldown import diff_map, pick_best_worst
    df = pd.DataFrame({"id": list("abcde"), "lpips": [0.5, 0.1, np.nan, 0.3, 0.2]})
    assert pick_best_worst(df, "lpips", False, 2) == (["b", "e"], ["a", "d"])
    assert pick_best_worst(df, "lpips", False, 3) == (["b", "e", "d"], ["a"])  # never repeats
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255
    d = diff_map(a, b)
    assert d.shape == (4, 4, 3) and d.dtype == np.uint8
    assert d[1, 1].sum() < 30 and d[0, 0].sum() > 400    # black at 0, bright where different


def test_grid_labels_wrap_instead_of_cut():
    from pipeline.grids import wrap_label
    assert wrap_label("panini_catconv", 10) == ["panini_", "catconv"]
    assert "".join(wrap_label("averyveryverylongname", 8)) == "averyveryverylongname"
    assert wrap_label("LQ", 10) == ["LQ"]


def test_plot_axis_labels_have_units():
    from pipeline.plots import axis_label
    assert axis_label("psnr") == "PSNR (dB)" and "°" in axis_label("deg_facenet")


# -- screenshots ----------------------------------------------------------------------------

def test_screenshots_without_chromium_leave_a_note(tmp_path, monkeypatch):
    from pipeline import screenshots
    monkeypatch.setenv("FRBENCH_CHROMIUM", str(tmp_path / "no-such-chromium"))
    out = tmp_path / "shots"
    out.mkdir()
    (out / "report_top.png").write_bytes(b"stale")
    (tmp_path / "index.html").write_text("<html></html>")
    assert screenshots.take(tmp_path / "index.html", out) == []
    assert sorted(p.name for p in out.iterdir()) == [".frbench-output.json", "README.md"]  # stale PNG gone
    assert "Chromium was not found" in (out / "README.md").read_text()


@pytest.mark.slow
def test_screenshots_with_chromium(written):
    from pipeline import screenshots
    if screenshots.find_chromium() is None:
        pytest.skip("no chromium (Debian: apt-get install chromium)")
    out = written
    shots = screenshots.take(out / "index.html", out / "screenshots")
    assert len(shots) == len(screenshots.SHOTS)
    from PIL import Image
    for s in shots:
        im = Image.open(s)
        assert im.size[0] == 1280 and np.asarray(im.convert("L")).std() > 5   # not blank


# -- CLI ------------------------------------------------------------------------------------

def _cli(*args):
    import os
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def test_every_option_has_help():
    import argparse
    import importlib
    from pipeline.cli import COMMANDS
    missing = []
    for name, (mod, _) in COMMANDS.items():
        m = importlib.import_module(mod)
        p = argparse.ArgumentParser()
        (m.add_testsets_arguments if name == "testsets" else m.add_arguments)(p)
        missing += [f"{name} {a.option_strings or a.dest}" for a in p._actions
                    if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert not missing, missing


def test_top_level_help_and_version():
    p = _cli("--help")
    assert p.returncode == 0
    assert "panini_mfr" in p.stdout and "ms_ssim" in p.stdout and "gfpgan_celeba_test" in p.stdout
    desc = p.stdout.split("\n\n")[1]
    assert desc.rstrip().endswith("."), desc
    v = _cli("--version")
    assert v.returncode == 0 and re.fullmatch(r"frbench \d+\.\d+\.\d+\S*\n", v.stdout)


def test_evaluate_shows_progress_for_a_single_batch(tmp_path, monkeypatch, capsys):
    from metrics import evaluate as E
    monkeypatch.setattr(E, "PROGRESS_DELAY_S", 0.0)
    _images(tmp_path / "gt", ["000", "001"], size=64)
    _images(tmp_path / "rs", ["000", "001"], size=64, seed=3)
    E.evaluate_folders(tmp_path / "rs", tmp_path / "gt", "builtin", ["psnr"], batch_size=8,
                       bootstrap_samples=10)
    err = capsys.readouterr().err
    assert "evaluate" in err and "2/2" in err and "img" in err


def test_nothing_points_outside_the_repo():
    """Docs, code comments and published-number files cite public sources, never the
    development notes beside the clone; docs name no absolute machine path."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout
    bad_ref = "shared" + "/reference"
    hits = []
    for f in files.split():
        p = ROOT / f
        generated = f.startswith("reports/") and not f.startswith(("reports/published/",
                                                                    "reports/builtin_long/"))
        if p.suffix not in (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", "") or \
                not p.is_file() or generated:   # the report stage rewrites those from the above
            continue
        text = p.read_text(errors="replace")
        if bad_ref in text or ("shared" + "/DESIGN") in text:
            hits.append(f)
        if f.startswith("docs/") or f == "README.md":
            if re.search(r"(?<![\w.])/(work|home|root|Users)/", text):
                hits.append(f + " (absolute path)")
    assert not hits, hits


def test_screenshots_never_replace_a_foreign_folder(tmp_path, monkeypatch):
    from core.errors import FRBenchError
    from pipeline import screenshots
    monkeypatch.setenv("FRBENCH_CHROMIUM", str(tmp_path / "no-such-chromium"))
    (tmp_path / "index.html").write_text("<html></html>")
    out = tmp_path / "shots"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(FRBenchError, match="never replaced"):
        screenshots.take(tmp_path / "index.html", out)
    assert (out / "thesis.tex").read_text() == "mine"
