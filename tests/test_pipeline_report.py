"""Reports from fake results (no torch, no training): leaderboard, ranking groups, paper tables,
metrics.json, HTML; the regression checker; preflight errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import build, Params, read_yaml
from core.errors import FRBenchError

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp, **pipeline):
    d = read_yaml(ROOT / "params.yaml")
    d["pipeline"].update(pipeline)
    d["report"]["published_dir"] = str(ROOT / "reports" / "published")
    d["testsets"]["out_dir"] = str(tmp / "testsets")
    d["testsets"]["src"] = str(tmp / "hq")  # absent: no dlib landmark figure (its own test)
    d["mlflow"]["enabled"] = False
    return build(Params, d)


def _summary(method, s, psnr, lpips, fid, prov="random-init:seed=0", protocol="builtin"):
    return {"method": method, "set": s, "protocol": protocol,
            "protocol_settings": {"size": 64}, "n": 4,
            "metrics": {"psnr": {"mean": psnr}, "lpips": {"mean": lpips}},
            "set_metrics": {"fid": fid}, "higher_is_better": {"psnr": True, "lpips": False,
                                                              "fid": False},
            "provenance": {"inception_fid": prov}, "comparable_with_published": False}


def _write(root, s):
    d = root / s["method"] / s["set"]
    d.mkdir(parents=True, exist_ok=True)
    (d / "summary.json").write_text(json.dumps(s))
    ids = ["r002_000", "r004_000"] if s["set"] == "ladder" else ["000", "001"]
    (d / "per_image.csv").write_text("id,psnr,lpips\n" + "".join(
        f"{i},{s['metrics']['psnr']['mean'] + k},{s['metrics']['lpips']['mean']}\n"
        for k, i in enumerate(ids)))


@pytest.fixture()
def fake(tmp_path):
    res = tmp_path / "results"
    for m, base in (("bicubic", 20.0), ("panini", 22.0)):
        for s in ("mfr", "ladder"):
            _write(res, _summary(m, s, base, 0.3 if m == "bicubic" else 0.2,
                                 10.0 if m == "bicubic" else 5.0))
    _write(res, _summary("panini_sr", "ladder", 25.0, 0.1, 1.0))
    _write(res, _summary("psp", "sr", 18.0, 0.4, 12.0))
    (res / "panini_theta.json").write_text(json.dumps(
        {"method": "panini", "set": "ladder", "levels": {"r002": {"theta": 0.3, "n": 2},
                                                     "r004": {"theta": 0.5, "n": 2}}}))
    p = _params(tmp_path, train=["bicubic", "panini", "panini_sr", "psp"],
                methods=["bicubic", "panini"], testsets=["mfr", "ladder"],
                sr_methods=["psp"], sr_testsets=["sr"], ablations=["panini_sr"],
                ablation_testsets=["ladder"], theta={"panini": "ladder"})
    return p, res, tmp_path


def test_report_files_and_ranks(fake):
    from pipeline.report import write_report
    params, res, tmp = fake
    out = tmp / "rep"
    r = write_report(params, res, out, tmp / "restored")
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "index.html", "metrics.json",
              "tables/panini_table1.md", "tables/panini_table4.csv", "figures/theta_vs_r.png",
              "figures/fid_vs_psnr.png", "figures/metric_vs_level.png"):
        assert (out / f).is_file(), f
    mj = json.loads((out / "metrics.json").read_text())
    assert mj["panini"]["mfr"]["psnr"] == 22.0 and mj["panini_theta"]["r004"] == 0.5
    assert r["metrics"] == mj
    import pandas as pd
    lb = pd.read_csv(out / "leaderboard.csv")
    mfr = lb[lb.set == "mfr"].set_index("method")
    assert mfr.loc["panini", "rank"] == 1 and mfr.loc["bicubic", "rank"] == 2  # better on all
    assert lb["not_comparable_with_published"].all()
    md = (out / "leaderboard.md").read_text()
    assert "NOT comparable with published" in md
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "sortable" in html and "http" not in \
        html.replace("http-equiv", "")


def test_ties_share_a_rank(fake):
    from pipeline.report import leaderboard_frame, load_rows
    params, res, tmp = fake
    _write(res, _summary("panini", "mfr", 20.0, 0.3, 10.0))   # same numbers as bicubic
    df, _ = leaderboard_frame(load_rows(params, res))
    assert list(df[df.set == "mfr"]["rank"]) == [1, 1]


def test_never_ranked_across_provenance(fake):
    from pipeline.report import leaderboard_frame, load_rows
    params, res, tmp = fake
    s = _summary("panini", "mfr", 99.0, 0.0, 0.0, prov="file:pt_inception.pth@sha256:abcd")
    _write(res, s)
    df, _ = leaderboard_frame(load_rows(params, res))
    mfr = df[df.set == "mfr"]
    assert mfr["group"].nunique() == 2
    assert list(mfr["rank"]) == [1, 1]   # each alone in its group: no cross-group ranking


def test_paper_table_diff(fake):
    from pipeline.report import load_published, load_rows, paper_tables
    params, res, tmp = fake
    rows = load_rows(params, res)
    tabs = {t.tid: t for t in paper_tables(load_published(ROOT / "reports/published"), rows,
                                           None, True)}
    rec = next(x for x in tabs["panini_table1"].records if x["ours"] == "panini")
    assert rec["psnr_published"] == 18.01 and rec["psnr_ours"] == 22.0
    assert rec["psnr_diff"] == pytest.approx(22.0 - 18.01)
    assert "NOT comparable" in tabs["panini_table1"].note


def test_missing_cell_is_an_error(fake):
    from pipeline.report import load_rows
    params, res, tmp = fake
    (res / "panini" / "mfr" / "summary.json").unlink()
    with pytest.raises(FRBenchError, match="panini/mfr/summary.json"):
        load_rows(params, res)


def test_published_have_sources():
    for f in (ROOT / "reports" / "published").glob("*.yaml"):
        doc = yaml.safe_load(f.read_text())
        assert doc["source"] and doc["tables"], f


# -- regression check -----------------------------------------------------------------------

def test_classify_directions():
    from pipeline.compare import compare
    from pipeline.config import RegressionRule
    rules = {"psnr": RegressionRule("higher", 0.05, 0.0), "lpips": RegressionRule("lower", 0.002),
             "deg_*": RegressionRule("lower", 0.5)}
    diff = {"m.s.psnr": {"old": 20.0, "new": 19.0}, "m.s.lpips": {"old": 0.3, "new": 0.2},
            "m.t.psnr": {"old": 20.0, "new": 19.97}, "m.s.deg_facenet": {"old": 5.0, "new": 6.0},
            "m.s.kid": {"old": 0.1, "new": 0.9}}
    st = {c.key: c.status for c in compare(diff, rules)}
    assert st == {"m.s.psnr": "regression", "m.s.lpips": "improvement", "m.t.psnr": "ok",
                  "m.s.deg_facenet": "regression", "m.s.kid": "info"}


def _git(cwd, *a):
    subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True)


def test_compare_cli_on_temp_repo(tmp_path):
    """A temp git+DVC repo: unchanged tree passes (exit 0), an injected regression fails (1)."""
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (repo / "reports").mkdir()
    m = {"panini": {"mfr": {"psnr": 20.0, "lpips": 0.3}}}
    (repo / "reports/metrics.json").write_text(json.dumps(m))
    (repo / "dvc.yaml").write_text("metrics:\n  - reports/metrics.json\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    env_cmd = [sys.executable, "-m", "pipeline.cli", "compare", "--baseline", "HEAD"]
    import os
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(env_cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASS" in (repo / "reports/regression.md").read_text()
    m["panini"]["mfr"]["psnr"] = 19.0   # injected regression
    (repo / "reports/metrics.json").write_text(json.dumps(m))
    p = subprocess.run(env_cmd, cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 1, p.stdout + p.stderr
    md = (repo / "reports/regression.md").read_text()
    assert "FAIL" in md and "panini.mfr.psnr" in md and "REGRESSION" in md


# -- preflight ------------------------------------------------------------------------------

def test_preflight_builtin_passes():
    from pipeline.cmd_preflight import check
    from pipeline.config import load_params
    rec = check(load_params(ROOT / "params.yaml"))
    assert rec["ok"] and rec["profile"] == "builtin"


def test_preflight_missing_folder_stops_with_path_and_fix(tmp_path):
    d = read_yaml(ROOT / "params.yaml")
    d["data"].update(source="folder")
    d["data"]["train"]["folder"] = str(tmp_path / "ffhq")
    d["data"]["test"]["folder"] = str(tmp_path / "celeba")
    pf = tmp_path / "params.yaml"
    pf.write_text(yaml.safe_dump(d))
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "preflight", "--params", str(pf),
                        "--out", str(tmp_path / "pf.json")], capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2
    assert str(tmp_path / "ffhq") in p.stderr and "FFHQ" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "pf.json").exists()


def test_preflight_missing_weight_file(tmp_path, monkeypatch):
    from pipeline.cmd_preflight import check
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    d = read_yaml(ROOT / "params.yaml")
    d["weights"].update(allow_random_init=False, allow_download=False)
    with pytest.raises(FRBenchError, match=r"pt_inception|vgg16|inception_fid|weight"):
        check(build(Params, d))


def test_report_folder_left_by_dvc_is_accepted_foreign_refused(tmp_path):
    """`dvc repro` deletes the report's outputs before rerunning it: reports/ then holds only the
    published numbers (its own input) and other committed files; that is the report's folder.
    A folder of foreign files is still refused."""
    import argparse
    from pipeline.cmd_report import check_report_out
    d = read_yaml(ROOT / "params.yaml")
    out = tmp_path / "reports"
    (out / "published").mkdir(parents=True)
    (out / "published" / "x.yaml").write_text("a: 1\n")
    (out / "screenshots").mkdir()
    d["report"].update(out_dir=str(out), published_dir=str(out / "published"))
    d["testsets"]["out_dir"] = str(tmp_path / "testsets")
    p = build(Params, d)
    args = argparse.Namespace(out=None, results=str(tmp_path / "results"),
                              restored=str(tmp_path / "restored"))
    check_report_out(p, args)  # no error
    d["report"]["published_dir"] = str(tmp_path / "elsewhere")
    with pytest.raises(FRBenchError, match="holds other files"):
        check_report_out(build(Params, d), args)
