"""One evaluation cell end to end on a tiny test set (bicubic: no training, weight-free
metrics): outputs, summary fields, and nothing finished-looking left behind on failure."""
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import build, Params, read_yaml
from core.errors import FRBenchError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cell_env(tmp_path):
    import torch
    torch.set_num_threads(1)
    from PIL import Image
    rng = np.random.default_rng(0)
    ts = tmp_path / "testsets" / "mfr"
    for sub, px in (("gt", 64), ("lq", 32)):
        (ts / sub).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (px, px, 3), dtype=np.uint8)).save(
                ts / sub / f"{i:03d}.png")
    d = read_yaml(ROOT / "params.yaml")
    d["testsets"]["out_dir"] = str(tmp_path / "testsets")
    d["train"]["checkpoint_dir"] = str(tmp_path / "ckpt")
    d["evaluate"].update(metrics=["psnr", "ssim"], bootstrap_samples=10,
                         cache_dir=str(tmp_path / "cache"))
    d["mlflow"]["enabled"] = False
    params = build(Params, d)
    from methods.trainer import train
    from pipeline.cmd_train import build_trainee
    train(build_trainee("bicubic", params), params, tmp_path / "ckpt" / "bicubic",
          show_progress=False)
    return params, tmp_path


def test_cell_restores_and_scores(cell_env):
    from pipeline.cmd_cell import flat_metrics, run_cell
    params, tmp = cell_env
    s = run_cell("bicubic", "mfr", params, tmp / "restored", tmp / "results")
    out = tmp / "results" / "bicubic" / "mfr"
    saved = json.loads((out / "summary.json").read_text())
    assert saved == json.loads(json.dumps(s))
    assert (s["method"], s["set"], s["arch"], s["protocol"]) == ("bicubic", "mfr", "bicubic", "builtin")
    assert set(flat_metrics(s)) == {"psnr", "ssim"} and s["n"] == 3
    lines = (out / "per_image.csv").read_text().splitlines()
    assert lines[0] == "id,psnr,ssim" and len(lines) == 4
    from PIL import Image
    assert Image.open(tmp / "restored" / "bicubic" / "mfr" / "000.png").size == (64, 64)


def test_failed_cell_leaves_no_results(cell_env):
    from pipeline.cmd_cell import run_cell
    params, tmp = cell_env
    (tmp / "testsets" / "mfr" / "gt" / "001.png").unlink()   # unpaired restored file
    with pytest.raises(FRBenchError, match="cannot pair"):
        run_cell("bicubic", "mfr", params, tmp / "restored", tmp / "results")
    assert not (tmp / "results" / "bicubic" / "mfr").exists()


def test_missing_checkpoint_names_the_stage(cell_env):
    from pipeline.cmd_cell import run_cell
    params, tmp = cell_env
    (tmp / "ckpt" / "bicubic" / "model.pt").unlink()
    with pytest.raises(FRBenchError, match=r"dvc repro train@bicubic"):
        run_cell("bicubic", "mfr", params, tmp / "restored", tmp / "results")


def test_cell_crosses_lq_sizes_by_resizing(cell_env):
    """The matrices cross LQ sizes by design (bicubic on the SR set): the cell resizes the
    8 px inputs to the method's 32 px LQ size and the restored manifest records it."""
    from PIL import Image
    from pipeline.cmd_cell import run_cell
    params, tmp = cell_env
    ts = tmp / "testsets" / "sr"
    rng = np.random.default_rng(1)
    for sub, px in (("gt", 64), ("lq", 8)):
        (ts / sub).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (px, px, 3), dtype=np.uint8)).save(
                ts / sub / f"{i:03d}.png")
    s = run_cell("bicubic", "sr", params, tmp / "restored", tmp / "results")
    assert s["n"] == 2
    man = json.loads((tmp / "restored" / "bicubic" / "sr" / "manifest.json").read_text())
    assert man["resized"]["n"] == 2
