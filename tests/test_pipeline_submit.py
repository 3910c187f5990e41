"""Per-method evaluation stage and ``frbench submit`` on a tiny tree (bicubic: no training).

- ``eval@<m>`` (all of a method's cells in one process) writes the same bytes as one process
  per cell, plus the flat per-cell metrics file of the stage;
- a copy of the bicubic outputs submitted under another name scores identically and ranks
  beside bicubic; ``--remove`` undoes it; a folder that does not pair with the GT is refused
  with the evaluator's message; the submitted folder is never written.
"""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.errors import FRBenchError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base_tree(tmp_path_factory):
    """A repo root: params.yaml (bicubic on mfr + sr, which share their GT; bicubic_sr as the
    ablation), built test sets, trained bicubic checkpoints. Built once per module."""
    import torch
    torch.set_num_threads(1)
    from PIL import Image

    from pipeline.config import build, Params
    root = tmp_path_factory.mktemp("tree")
    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    for s, lq_px in (("mfr", 32), ("sr", 8)):
        for sub in ("gt", "lq"):
            (root / "data/testsets" / s / sub).mkdir(parents=True)
        for i, g in enumerate(gts):
            Image.fromarray(g).save(root / "data/testsets" / s / "gt" / f"{i:03d}.png")
            lq = np.asarray(Image.fromarray(g).resize((lq_px, lq_px), Image.BILINEAR))
            Image.fromarray(lq).save(root / "data/testsets" / s / "lq" / f"{i:03d}.png")
        (root / "data/testsets" / s / "manifest.json").write_text(json.dumps({"set": s}))
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    d["evaluate"].update(metrics=["psnr", "ssim"], bootstrap_samples=10, cache_dir="cache")
    d["mlflow"]["enabled"] = False
    d["methods"]["bicubic_sr"] = {"arch": "bicubic", "out_size": 64, "lq_size": 8}
    d["pipeline"].update(train=["bicubic", "bicubic_sr"], methods=["bicubic"],
                         testsets=["mfr"], sr_methods=["bicubic"], sr_testsets=["sr"],
                         ablations=["bicubic_sr"], ablation_testsets=["sr"],
                         theta={})
    d["testsets"]["out_dir"] = "data/testsets"
    d["train"]["checkpoint_dir"] = "checkpoints"
    (root / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    params = build(Params, d)
    from methods.trainer import train
    from pipeline.cmd_train import build_trainee
    for m in ("bicubic", "bicubic_sr"):
        train(build_trainee(m, params), params, root / "checkpoints" / m, show_progress=False)
    return root


def _tree(base_tree, tmp_path, monkeypatch):
    """A fresh copy of the base tree as cwd; its params loaded (with submissions.yaml)."""
    from pipeline.config import load_params
    for item in base_tree.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, tmp_path / item.name)
    monkeypatch.chdir(tmp_path)
    return load_params("params.yaml")


def _digest(folder: Path, images_only: bool = False) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if not images_only or p.suffix == ".png"}


def test_eval_method_scores_every_cell_and_writes_flat_metrics(base_tree, tmp_path, monkeypatch):
    from pipeline.cmd_cell import flat_metrics
    from pipeline.stage_eval import eval_method, plan
    params = _tree(base_tree, tmp_path, monkeypatch)
    assert params.pipeline.sets_of("bicubic") == ["mfr", "sr"]
    sums = eval_method(params, "bicubic")
    assert [(s["method"], s["set"]) for s in sums] == [("bicubic", "mfr"), ("bicubic", "sr")]
    for s in sums:
        flat = json.loads((tmp_path / "reports/cells/bicubic" / f"{s['set']}.json").read_text())
        assert flat == pytest.approx(flat_metrics(s)) and set(flat) == {"psnr", "ssim"}
        assert (tmp_path / "results/bicubic" / s["set"] / "per_image.csv").is_file()
    # the plan: one file per train entry, with the sets of its cells and their manifests' hash
    files = plan(params, "data/plan")
    assert sorted(f.name for f in files) == ["bicubic.json", "bicubic_sr.json"]
    doc = json.loads((tmp_path / "data/plan/bicubic.json").read_text())
    assert [c["set"] for c in doc["cells"]] == ["mfr", "sr"]
    before = (tmp_path / "data/plan/bicubic_sr.json").read_bytes()
    (tmp_path / "data/testsets/mfr/manifest.json").write_text(json.dumps({"set": "mfr", "v": 2}))
    plan(params, "data/plan")   # mfr changed: only the methods with an mfr cell see it
    assert (tmp_path / "data/plan/bicubic_sr.json").read_bytes() == before
    assert json.loads((tmp_path / "data/plan/bicubic.json").read_text()) != doc


def test_eval_method_bytes_do_not_depend_on_workers_or_cache(base_tree, tmp_path, monkeypatch):
    """``eval@<m>`` in one process, in forked worker processes (cold disk FID cache: mfr and sr
    share their GT, so which cell fills the cache depends on the scheduling) and one process per
    cell (``frbench cell``) write the same bytes, with network metrics (random-init LPIPS,
    Inception) in the evaluation."""
    from pipeline.cmd_cell import run_cell
    from pipeline.stage_eval import eval_method
    params = _tree(base_tree, tmp_path, monkeypatch)
    params.evaluate.metrics = ["psnr", "lpips", "fid", "kid"]

    def files(tag):
        return {f"{d}/{s}": _digest(tmp_path / tag / d / "bicubic" / s)
                for d in ("results", "restored") for s in ("mfr", "sr")}

    for tag, workers in (("one", 1), ("forked", 2)):
        params.evaluate.cache_dir = str(tmp_path / tag / "cache")
        sums = eval_method(params, "bicubic", tmp_path / tag / "restored",
                           tmp_path / tag / "results", None, workers=workers)
        assert [s["set"] for s in sums] == ["mfr", "sr"]
        assert sums[0]["set_metrics"]["fid"] > 0
    params.evaluate.cache_dir = str(tmp_path / "alone" / "cache")
    for s in ("sr", "mfr"):       # the other order: sr fills the FID cache here
        run_cell("bicubic", s, params, tmp_path / "alone" / "restored",
                 tmp_path / "alone" / "results")
    assert files("forked") == files("one") == files("alone")


def test_submit_scores_like_bicubic_and_remove_undoes(base_tree, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main
    from pipeline.config import load_params
    from pipeline.report import leaderboard_frame, load_rows
    from pipeline.stage_eval import eval_method, eval_submission
    params = _tree(base_tree, tmp_path, monkeypatch)
    eval_method(params, "bicubic")
    eval_method(params, "bicubic_sr")
    mine = tmp_path / "mine"
    shutil.copytree(tmp_path / "restored/bicubic/mfr", mine)
    before = _digest(mine)
    assert main(["submit", "--name", "bicubic_copy", "--set", "mfr", "--restored", "mine"]) == 0
    rec = yaml.safe_load((tmp_path / "submissions.yaml").read_text())["submissions"]
    entry = rec["bicubic_copy-mfr"]
    assert entry["restored"] == "mine" and entry["n_files"] == 3
    assert entry["files"] == _digest(mine, images_only=True)   # the images the evaluator scores
    params = load_params("params.yaml")
    assert params.pipeline.cells()[-1] == ("bicubic_copy", "mfr")
    assert params.pipeline.stage_of("bicubic_copy", "mfr") == "submission@bicubic_copy-mfr"
    s = eval_submission(params, "bicubic_copy-mfr")
    assert _digest(mine) == before                      # the submitted folder is only read
    assert s["arch"] == "external"
    assert s["external"]["provenance"] == f"external:sha256:{entry['sha256']}"
    a, b = tmp_path / "results/bicubic/mfr", tmp_path / "results/bicubic_copy/mfr"
    assert (a / "per_image.csv").read_bytes() == (b / "per_image.csv").read_bytes()
    sa, sb = (json.loads((x / "summary.json").read_text()) for x in (a, b))
    assert sa["metrics"] == sb["metrics"] and sa["set_metrics"] == sb["set_metrics"]
    assert (json.loads((tmp_path / "reports/cells/bicubic_copy/mfr.json").read_text())
            == json.loads((tmp_path / "reports/cells/bicubic/mfr.json").read_text()))
    # the report reads the submitted cell and ranks it beside bicubic (a tie: same numbers)
    df, _ = leaderboard_frame(load_rows(params, "results"))
    mfr = df[df["set"] == "mfr"].set_index("method")
    assert set(mfr.index) == {"bicubic", "bicubic_copy"} and mfr.loc["bicubic_copy", "arch"] == "external"
    assert mfr.loc["bicubic", "group"] == mfr.loc["bicubic_copy", "group"]
    assert mfr.loc["bicubic", "rank"] == mfr.loc["bicubic_copy", "rank"] == 1
    # remove undoes the record; the report's cells are the suite's again
    assert main(["submit", "--remove", "--name", "bicubic_copy"]) == 0
    assert yaml.safe_load((tmp_path / "submissions.yaml").read_text())["submissions"] == {}
    assert ("bicubic_copy", "mfr") not in load_params("params.yaml").pipeline.cells()
    assert main(["submit", "--remove", "--name", "bicubic_copy"]) == 2
    assert "no submission 'bicubic_copy'" in capsys.readouterr().err


def test_submission_that_does_not_pair_is_refused(base_tree, tmp_path, monkeypatch, capsys):
    from pipeline.cli import main
    from metrics.evaluate import pair_files
    params = _tree(base_tree, tmp_path, monkeypatch)
    from pipeline.stage_eval import eval_method
    eval_method(params, "bicubic")
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "restored/bicubic/mfr", bad)
    (bad / "001.png").rename(bad / "x01.png")
    with pytest.raises(FRBenchError) as want:
        pair_files(Path("bad"), Path("data/testsets/mfr/gt"))
    assert main(["submit", "--name", "mine", "--set", "mfr", "--restored", "bad"]) == 2
    err = capsys.readouterr().err
    assert f"error: {want.value}" in err and "cannot pair" in err
    assert not (tmp_path / "submissions.yaml").exists()
    (bad / "x01.png").rename(bad / "001.png")
    from PIL import Image
    Image.new("RGB", (32, 32)).save(bad / "002.png")        # wrong size
    assert main(["submit", "--name", "mine", "--set", "mfr", "--restored", "bad"]) == 2
    assert "restored images must be at GT size" in capsys.readouterr().err
    # names of methods entries, unknown sets and pipeline-managed folders are refused too
    assert main(["submit", "--name", "panini", "--set", "mfr", "--restored", "bad"]) == 2
    assert main(["submit", "--name", "mine", "--set", "nope", "--restored", "bad"]) == 2
    assert main(["submit", "--name", "mine", "--set", "mfr",
                 "--restored", "restored/bicubic/mfr"]) == 2
    assert "inside restored/" in capsys.readouterr().err
    assert not (tmp_path / "submissions.yaml").exists()


def test_submission_changed_after_submit_is_refused(base_tree, tmp_path, monkeypatch):
    from pipeline.cli import main
    from pipeline.config import load_params
    from pipeline.stage_eval import eval_method, eval_submission
    params = _tree(base_tree, tmp_path, monkeypatch)
    eval_method(params, "bicubic")
    shutil.copytree(tmp_path / "restored/bicubic/mfr", tmp_path / "mine")
    assert main(["submit", "--name", "mine", "--set", "mfr", "--restored", "mine"]) == 0
    from PIL import Image
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "mine" / "000.png")
    with pytest.raises(FRBenchError, match="changed since `frbench submit`"):
        eval_submission(load_params("params.yaml"), "mine-mfr")
    assert not (tmp_path / "results/mine/mfr").exists()
    assert not (tmp_path / "restored/mine/mfr").exists()


def test_dvc_yaml_templates_a_stage_per_submission(tmp_path):
    """dvc.yaml turns each submissions.yaml entry into submission@<name>-<set>: the folder and
    the set are its deps, its own record its params, a flat per-cell metrics file its metrics;
    the report tracks submissions.yaml."""
    from dvc.repo import Repo
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    Repo.init(str(repo_dir), no_scm=True).close()
    for f in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / f, repo_dir / f)
    sub = tmp_path / "mine"            # outside the repo: an absolute dependency
    (repo_dir / "submissions.yaml").write_text(yaml.safe_dump({"submissions": {"mine-mfr": {
        "name": "mine", "set": "mfr", "restored": str(sub), "sha256": "0" * 64, "n_files": 0,
        "files": {}}}}))
    with Repo(str(repo_dir)) as repo:
        stages = {s.name: s for s in repo.index.stages}
        st = stages["submission@mine-mfr"]
        deps = {str(d.def_path) for d in st.deps}
        assert {str(sub), "data/testsets/mfr"} <= deps
        params = {k for d in st.deps if getattr(d, "params", None) for k in d.params}
        assert {"submissions.mine-mfr.sha256", "submissions.mine-mfr.restored"} <= params
        assert [str(o.def_path) for o in st.outs if o.metric] == ["reports/cells/mine/mfr.json"]
        assert [o.use_cache for o in st.outs if o.metric] == [False]
        rep = {k for d in stages["report"].deps if getattr(d, "params", None) for k in d.params}
        assert "submissions" in rep
