"""bench.quality (behind bench.panini_quality / bench.baselines_quality): the shared self-check."""
import json

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT


@pytest.fixture()
def setup(tmp_path):
    from core.imageio import write_png
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["methods"]["bicubic"]["train_preset"] = "panini_mfr"
    p["train"]["checkpoint_dir"] = str(tmp_path / "ck")
    p["mlflow"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    hq = tmp_path / "hq"
    hq.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    for i in range(3):
        c = rng.uniform(0.2, 0.8, 3)
        img = np.clip(c * (0.6 + 0.4 * np.sin(3 * xx + i)[..., None] * yy[..., None]), 0, 1)
        write_png(hq / f"{i:03d}.png", (img * 255).astype(np.uint8))
    return tmp_path


def test_bicubic_row_equals_lq_row_and_lq_is_seeded(setup):
    from bench.quality import degraded, main
    from pipeline.config import load_params
    from core.imageio import list_images, read_image, to_float
    out = setup / "res.json"
    assert main(["--params", str(setup / "params.yaml"), "--hq", str(setup / "hq"), "--n", "3",
                 "--methods", "bicubic", "--train", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["bicubic"]
    # the bicubic "method" restores exactly what the LQ-input row scores
    assert row["method"] == row["lq_bicubic"]
    assert 5 < row["method"]["psnr"] < 60 and 0 < row["method"]["lpips_randinit_vgg"] < 1
    assert row["beats_lq_psnr"] is False and row["preset"] == "panini_mfr"
    params = load_params(setup / "params.yaml")
    files = list_images(setup / "hq")
    hqs = [to_float(read_image(f)) for f in files]
    a = degraded(params, "panini_mfr", {}, files, hqs)
    assert a.shape == (3, 3, 32, 32)
    assert np.array_equal(a.numpy(), degraded(params, "panini_mfr", {}, files, hqs).numpy())
    b = degraded(params, "sr16_bilinear", {"factor": 8}, files, hqs)
    assert b.shape == (3, 3, 8, 8)


def test_unknown_method_is_a_clear_error(setup):
    from bench.quality import main
    from core.errors import FRBenchError
    with pytest.raises(FRBenchError, match="no methods entry"):
        main(["--params", str(setup / "params.yaml"), "--hq", str(setup / "hq"),
              "--methods", "nosuch"])
