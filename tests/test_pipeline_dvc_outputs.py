"""DVC-native outputs: flat per-cell metrics files read by `dvc metrics show` as a table, and the
`dvc plots` data (ladder levels, training losses) written by the report stage and drawn with the
repository's templates. Also: a training process never imports torchvision (sample grids)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _repo(tmp_path):
    from dvc.repo import Repo
    Repo.init(str(tmp_path), no_scm=True).close()
    for f in ("dvc.yaml", "params.yaml", "submissions.yaml"):
        shutil.copy(ROOT / f, tmp_path / f)
    shutil.copytree(ROOT / ".dvc" / "plots", tmp_path / ".dvc" / "plots")
    return tmp_path


def _params(tmp_path):
    from pipeline.config import build, Params
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    d["train"]["checkpoint_dir"] = str(tmp_path / "checkpoints")
    return build(Params, d)


def test_metrics_show_reads_one_row_per_cell(tmp_path):
    from dvc.repo import Repo
    _repo(tmp_path)
    pl = yaml.safe_load((ROOT / "params.yaml").read_text())["pipeline"]
    vals = {"psnr": 20.5, "ssim": 0.61, "lpips": 0.2, "fid": 3.5}
    for m in pl["train"]:
        for s in ("mfr", "sr"):
            p = tmp_path / "reports" / "cells" / m / f"{s}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(vals))
    with Repo(str(tmp_path)) as repo:
        shown = repo.metrics.show()
    files = shown[""]["data"] if "" in shown else shown["workspace"]["data"]
    want = {f"reports/cells/{m}/{s}.json" for m in pl["train"] for s in ("mfr", "sr")}
    assert want <= set(files)
    for f in want:  # flat: one value per metric, so `dvc metrics show` prints a table
        assert files[f]["data"] == vals


def test_plot_data_and_definitions(tmp_path):
    from dvc.repo import Repo
    from pipeline.dvc_plots import write_plot_data
    _repo(tmp_path)
    params = _params(tmp_path)
    for m in ("bicubic", "panini"):
        out = tmp_path / "results" / m / "ladder"
        out.mkdir(parents=True)
        rows = ["id,psnr,lpips"] + [f"r{r:03d}_{i:05d},{20 - r / (2 if m == 'panini' else 4) + i},0.{r}"
                                    for r in (2, 4, 8, 16) for i in range(2)]
        (out / "per_image.csv").write_text("\n".join(rows) + "\n")
    log = tmp_path / "checkpoints" / "panini"
    log.mkdir(parents=True)
    hist = [{"step": s, "time_s": 0.1, "data_s": 0.0, "lr_scale": 1.0, "loss_g": 1.0 / s,
             "loss_d": 0.5} for s in range(1, 1001)]
    (log / "train_log.json").write_text(json.dumps({"history": hist}))
    files = write_plot_data(params, tmp_path / "results", tmp_path / "reports" / "plots")
    ladder = (tmp_path / "reports/plots/ladder.csv").read_text().splitlines()
    assert ladder[0] == "metric,method,level,value"
    assert ladder[1:5] == ["psnr,bicubic,2,20", "psnr,bicubic,4,19.5", "psnr,bicubic,8,18.5",
                           "psnr,bicubic,16,16.5"]           # mean over the 2 images per level
    assert "lpips,panini,16,0.16" in ladder
    loss = (tmp_path / "reports/plots/train_loss.csv").read_text().splitlines()
    assert loss[0] == "method,loss,step,value" and {r.split(",")[1] for r in loss[1:]} == \
        {"loss_g", "loss_d"}                                   # no timing columns
    steps = [int(r.split(",")[2]) for r in loss[1:] if ",loss_g," in r]
    assert len(steps) == 200 and steps[-1] == 1000             # thinned, last step kept
    assert [p.name for p in files] == ["ladder.csv", "train_loss.csv"]
    with Repo(str(tmp_path)) as repo:
        shown = repo.plots.show()
    data = shown["workspace"]["definitions"]["data"]["dvc.yaml"]["data"]
    ids = {list(d)[0] if isinstance(d, dict) else d for d in data} if isinstance(data, list) \
        else set(data)
    assert {"ladder", "train_loss"} <= ids
    for name in ("facet_by_metric", "facet_by_method"):
        tpl = json.loads((ROOT / ".dvc" / "plots" / f"{name}.json").read_text())
        text = json.dumps(tpl)
        assert "<DVC_METRIC_DATA>" in text and '"field": "rev"' in text


def test_training_never_imports_torchvision(tmp_path):
    """Sample grids use methods.trainer.image_grid (torchvision.utils.make_grid's layout)."""
    import torch
    from torchvision.utils import make_grid

    from methods.trainer import image_grid
    for b, n, c in ((8, 4, 3), (7, 3, 3), (1, 4, 3), (5, 8, 1), (9, 3, 3)):
        x = torch.rand(b, c, 6, 5)
        assert torch.equal(make_grid(x, nrow=n, padding=1), image_grid(x, n, 1)), (b, n, c)
    code = ("import sys; import pipeline.cmd_train, methods.trainer, methods.panini, methods.gpen, "
            "methods.gfpgan, methods.psp, methods.dre, methods.prior, pipeline.stage_eval; "
            "print('torchvision' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_install_hands_pips_sources_to_uv():
    """`make install` (scripts/install_deps.py) gives uv the sources pip is configured with,
    local indexes first, so torch comes from the same local wheels as with pip."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import install_deps as I
    finally:
        sys.path.pop(0)
    text = ("global.cert='/etc/ssl/certs/ca.crt'\n"
            "global.constraint='/etc/xdg/pip/constraints.txt'\n"
            "global.extra-index-url='https://mirror.example/simple file:///opt/pypi-more/simple'\n"
            "global.find-links='/opt/wheels'\n"
            ":env:.find-links='/opt/wheels'\n")
    src = I.parse_pip_config(text)
    assert src["find-links"] == ["/opt/wheels"] and src["cert"] == ["/etc/ssl/certs/ca.crt"]
    args = I.uv_args("/v/bin/python", src)
    idx = [args[i + 1] for i, a in enumerate(args) if a == "--extra-index-url"]
    assert idx == ["file:///opt/pypi-more/simple", "https://mirror.example/simple"]
    assert args[args.index("--constraint") + 1] == "/etc/xdg/pip/constraints.txt"
    assert "unsafe-best-match" in args and "--index-url" not in args
