"""MLflow bookkeeping: a parent run per repro, child runs per (method, set) with params,
metrics, per-image table, sample grid and tags; everything a no-op when disabled."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import build, Params, read_yaml

ROOT = Path(__file__).resolve().parents[1]


def _params(enabled, uri="sqlite:///mlflow.db"):
    d = read_yaml(ROOT / "params.yaml")
    d["mlflow"].update(enabled=enabled, tracking_uri=uri, experiment="frbench-test")
    return build(Params, d)


def _cell(tmp):
    from PIL import Image
    for sub in ("lq", "restored", "gt"):
        (tmp / sub).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp / sub / f"00{i}.png")
    out = tmp / "res"
    out.mkdir()
    (out / "per_image.csv").write_text("id,psnr\n000,20.0\n001,22.0\n")
    summary = {"method": "bicubic", "set": "mfr", "protocol": "builtin",
               "metrics": {"psnr": {"mean": 21.0}}, "set_metrics": {"fid": 3.0},
               "provenance": {"inception_fid": "random-init:seed=0"},
               "comparable_with_published": False}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary, out


def test_disabled_is_a_noop(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from pipeline import tracking
    from pipeline.cmd_cell import track_cell
    params = _params(False)
    summary, out = _cell(tmp_path)
    assert tracking.start_parent(params) is None
    track_cell(params, summary, out, tmp_path / "restored", tmp_path / "lq", tmp_path / "gt")
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    assert not tracking.PARENT_FILE.exists()


def test_parent_and_child_runs(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_STAGE", "restore_eval@bicubic-mfr")
    monkeypatch.delenv("FRBENCH_MLFLOW_PARENT", raising=False)
    monkeypatch.delenv("FRBENCH_MLFLOW", raising=False)
    from pipeline import tracking
    from pipeline.cmd_cell import track_cell
    params = _params(True, f"sqlite:///{tmp_path}/mlflow.db")
    pid = tracking.start_parent(params)
    assert pid and tracking.PARENT_FILE.read_text().strip() == pid
    summary, out = _cell(tmp_path)
    track_cell(params, summary, out, tmp_path / "restored", tmp_path / "lq", tmp_path / "gt")
    import mlflow
    runs = mlflow.search_runs(experiment_names=["frbench-test"], output_format="pandas")
    child = runs[runs["tags.mlflow.parentRunId"] == pid]
    assert len(child) == 1
    c = child.iloc[0]
    assert c["metrics.psnr"] == 21.0 and c["metrics.fid"] == 3.0
    assert c["tags.dvc_stage"] == "restore_eval@bicubic-mfr" and c["tags.protocol"] == "builtin"
    assert c["tags.git_dirty"] in ("true", "false") and "tags.git_commit" in c
    import torch
    assert c["tags.env_torch"] == torch.__version__ and c["tags.env_cpu"]
    assert c["tags.provenance.inception_fid"] == "random-init:seed=0"
    assert c["params.method"] == "bicubic"
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(c["run_id"])}
    assert {"per_image.json", "summary.json", "samples"} <= arts


def test_cli_never_imports_mlflow_when_disabled(tmp_path):
    code = ("import sys; from pipeline.cli import main; main(['preflight','--start-run','--out',"
            f"'{tmp_path}/pf.json','--params','{ROOT}/params.yaml']); "
            "print('mlflow' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                            "FRBENCH_MLFLOW": "0"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("False")


def test_git_dirty_ignores_pipeline_outputs(tmp_path, monkeypatch):
    from pipeline.tracking import git_state

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    for f in ("dvc.lock", "params.yaml"):
        (tmp_path / f).write_text("a\n")
    git("add", "-A")
    git("commit", "-qm", "x")
    monkeypatch.chdir(tmp_path)
    assert git_state()["git_dirty"] == "false"
    (tmp_path / "dvc.lock").write_text("b\n")      # rewritten by dvc during a repro
    assert git_state()["git_dirty"] == "false"
    (tmp_path / "params.yaml").write_text("b\n")   # a real change
    assert git_state()["git_dirty"] == "true"


def test_report_logs_one_child_run_per_cell(tmp_path, monkeypatch):
    """The report stage logs every cell of the matrices (one process), tagged with its stage."""
    pytest.importorskip("mlflow")
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FRBENCH_MLFLOW_PARENT", raising=False)
    monkeypatch.delenv("FRBENCH_MLFLOW", raising=False)
    from pipeline import tracking
    from pipeline.cmd_report import track_cells
    d = read_yaml(ROOT / "params.yaml")
    d["mlflow"].update(enabled=True, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                       experiment="frbench-cells")
    d["testsets"]["out_dir"] = str(tmp_path / "testsets")
    d["pipeline"].update(train=["bicubic", "panini", "panini_sr", "psp"], methods=["bicubic", "panini"],
                         testsets=["mfr"], sr_methods=["psp"], sr_testsets=["sr"],
                         ablations=["panini_sr"], ablation_testsets=["mfr"])
    params = build(Params, d)
    img = np.full((8, 8, 3), 60, np.uint8)
    for m, s in params.pipeline.cells():
        for folder in (tmp_path / "testsets" / s / "lq", tmp_path / "testsets" / s / "gt",
                       tmp_path / "restored" / m / s):
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / "000.png")
        out = tmp_path / "results" / m / s
        out.mkdir(parents=True)
        (out / "per_image.csv").write_text("id,psnr\n000,20.0\n")
        (out / "summary.json").write_text(json.dumps({
            "method": m, "set": s, "protocol": "builtin", "metrics": {"psnr": {"mean": 20.0}},
            "set_metrics": {}, "provenance": {}, "comparable_with_published": False}))
    pid = tracking.start_parent(params)
    assert track_cells(params, tmp_path / "results", tmp_path / "restored") == 4
    import mlflow
    runs = mlflow.search_runs(experiment_names=["frbench-cells"], output_format="pandas")
    child = runs[runs["tags.mlflow.parentRunId"] == pid]
    assert sorted(child["tags.dvc_stage"]) == ["ablation@panini_sr-mfr", "restore_eval@bicubic-mfr",
                                               "restore_eval@panini-mfr", "restore_eval_sr@psp-sr"]


def test_artifact_locations_relative_and_survive_a_move(tmp_path, monkeypatch):
    """MLflow stores absolute file:// artifact URIs; the clone-local store is rewritten to
    mlruns/..., so a moved clone still lists and downloads its artifacts."""
    pytest.importorskip("mlflow")
    import shutil
    import sqlite3
    clone = tmp_path / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)
    monkeypatch.delenv("FRBENCH_MLFLOW_PARENT", raising=False)
    monkeypatch.delenv("FRBENCH_MLFLOW", raising=False)
    from pipeline import tracking
    params = _params(True, "sqlite:///mlflow.db")
    pid = tracking.start_parent(params)
    (clone / "note.txt").write_text("hello")
    with tracking.run("test", "move", cfg=params.mlflow) as r:
        r.log_artifact(clone / "note.txt")
        rid = r.run_id
    with sqlite3.connect(clone / "mlflow.db") as con:
        locs = [x for (x,) in con.execute("SELECT artifact_uri FROM runs")]
        exps = [x for (x,) in con.execute("SELECT artifact_location FROM experiments")]
    assert len(locs) == 2 and all(x.startswith("mlruns/") for x in locs + exps), (locs, exps)
    assert str(clone) not in " ".join(locs + exps)
    moved = tmp_path / "moved"
    shutil.move(str(clone), str(moved))
    monkeypatch.chdir(moved)
    import mlflow
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    client = mlflow.MlflowClient()
    assert [a.path for a in client.list_artifacts(rid)] == ["note.txt"]
    got = client.download_artifacts(rid, "note.txt", str(tmp_path))
    assert Path(got).read_text() == "hello" and pid
    assert tracking._relative_location("file:///a/b/mlruns/1/x/artifacts") == "mlruns/1/x/artifacts"
    assert tracking._relative_location("s3://bucket/mlruns/1") == "s3://bucket/mlruns/1"
