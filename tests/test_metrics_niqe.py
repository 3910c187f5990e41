"""NIQE (metrics/niqe.py) against BasicSR's own figures on real photos, its pieces against
independent facts, and the no-GT path of `frbench evaluate`."""
import json
from pathlib import Path

import numpy as np
import pytest

import photos
from core.errors import FRBenchError
from metrics import niqe as N

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "tests/data/niqe_basicsr_reference.json").read_text())
TOL = 1e-3   # BasicSR's float32 resize differs from ours in the last bit; measured <= 7e-4


@pytest.fixture(scope="module")
def params():
    from metrics.weights import resolve
    return N.load_params(resolve("niqe_pris_params").path)


@pytest.fixture(scope="module")
def sk():
    return photos.skimage_images()


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera",
                                  "astronaut_box4"])
def test_equals_basicsr_on_skimage_photos(params, sk, name):
    assert N.niqe_rgb(sk[name], params) == pytest.approx(REF["niqe"][name], abs=TOL)


@pytest.mark.parametrize("name", ["obama.jpg", "obama2.jpg",
                                  pytest.param("obama3.jpg", marks=pytest.mark.slow),
                                  pytest.param("biden.jpg", marks=pytest.mark.slow)])
def test_equals_basicsr_on_portraits(params, name):
    img = photos.require_photo(name)
    assert N.niqe_rgb(img, params) == pytest.approx(REF["niqe"][name], abs=TOL)


def test_reference_figures_are_basicsr_1_4_2():
    assert REF["basicsr"] == "1.4.2" and len(REF["niqe"]) == 10
    # the degraded astronaut scores worse than the original (NIQE: lower = more natural)
    assert REF["niqe"]["astronaut_box4"] > REF["niqe"]["astronaut"] + 3


def test_shipped_parameters_are_the_pinned_file(params):
    from metrics.weights import resolve
    r = resolve("niqe_pris_params")
    assert r.path == ROOT / "metrics" / "data" / "niqe_pris_params.npz"
    assert r.provenance == "file:niqe_pris_params.npz@sha256:2a7c182a68c9e7f1"
    w = params["gaussian_window"]
    assert w.shape == (7, 7) and w.sum() == pytest.approx(1.0) and np.allclose(w, w.T)
    assert np.allclose(params["cov_pris_param"], params["cov_pris_param"].T)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 2.0])
def test_ggd_fit_recovers_shape_and_scale(alpha):
    from scipy.stats import gennorm
    from scipy.special import gamma
    x = gennorm.rvs(alpha, scale=0.7, size=200_000, random_state=np.random.default_rng(0))
    a, bl, br = N.aggd_fit(x.astype(np.float64))
    assert a == pytest.approx(alpha, rel=0.03)
    # moment matching returns beta = sigma_side * sqrt(G(1/a)/G(3/a)), i.e. the GGD scale
    assert bl == pytest.approx(0.7, rel=0.03) and br == pytest.approx(0.7, rel=0.03)
    assert gamma(1 / a) > 0


def test_matlab_resize_rows_and_linear_ramps():
    for n_in, n_out, s in ((96, 48, 0.5), (64, 192, 3.0)):
        m = N.resize_matrix(n_in, n_out, s)
        assert m.shape == (n_out, n_in) and np.allclose(m.sum(1), 1.0)
    # cubic kernels reproduce linear functions away from the mirrored borders
    ramp = np.tile(np.arange(64, dtype=np.float64), (64, 1))
    up = N.matlab_resize(ramp, 3.0)
    centres = (np.arange(192) + 0.5) / 3 - 0.5
    assert np.allclose(up[10, 6:-6], centres[6:-6], atol=1e-9)
    down = N.matlab_resize(np.tile(np.arange(96, dtype=np.float64), (96, 1)), 0.5)
    assert np.allclose(down[0, 4:-4], ((np.arange(48) + 0.5) * 2 - 0.5)[4:-4], atol=1e-9)


def test_too_small_and_small_with_upscale(params, sk):
    with pytest.raises(FRBenchError, match="at least 2"):
        N.niqe_rgb(sk["astronaut"][:100, :100], params)
    from PIL import Image
    small = np.asarray(Image.fromarray(sk["astronaut"][:256, 128:384]).resize((64, 64)))
    v = N.niqe_rgb(small, params, upscale=3)
    assert np.isfinite(v) and v > 0


def test_builtin_protocol_scores_64px_and_niqe_is_no_reference(sk, tmp_path):
    from PIL import Image
    from metrics.evaluate import evaluate_folders
    d = tmp_path / "r"
    d.mkdir()
    base = Image.fromarray(sk["astronaut"][:256, 128:384])
    base.resize((64, 64), Image.BICUBIC).save(d / "a.png")
    base.resize((8, 8), Image.BICUBIC).resize((64, 64), Image.BICUBIC).save(d / "b.png")
    s = evaluate_folders(d, None, "builtin", ["niqe"], out=tmp_path / "out", bootstrap_samples=0)
    assert s["provenance"] == {"niqe_pris_params": "file:niqe_pris_params.npz@sha256:2a7c182a68c9e7f1"}
    assert s["protocol_settings"]["niqe_upscale"] == 3
    rows = (tmp_path / "out" / "per_image.csv").read_text().splitlines()
    vals = {r.split(",")[0]: float(r.split(",")[1]) for r in rows[1:]}
    assert vals["b"] > vals["a"]                       # the 8 px copy is less natural
    with pytest.raises(FRBenchError, match="psnr need"):
        evaluate_folders(d, None, "builtin", ["psnr", "niqe"])


def test_cli_evaluate_without_gt(sk, tmp_path, capsys):
    from PIL import Image
    from pipeline.cli import main
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(sk["coffee"]).save(d / "coffee.png")
    Image.fromarray(sk["astronaut"]).save(d / "astronaut.png")
    rc = main(["evaluate", "--restored", str(d), "--protocol", "panini", "--metrics", "niqe",
               "--out", str(tmp_path / "ok"), "--params", "none", "--bootstrap-samples", "0"])
    assert rc == 0 and "niqe" in capsys.readouterr().out
    s = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert s["n"] == 2 and s["provenance"] == {
        "niqe_pris_params": "file:niqe_pris_params.npz@sha256:2a7c182a68c9e7f1"}
    want = (REF["niqe"]["coffee"] + REF["niqe"]["astronaut"]) / 2
    assert s["metrics"]["niqe"]["mean"] == pytest.approx(want, abs=TOL)
    # the protocol's full set without --gt: refused, naming the metrics, nothing written
    rc = main(["evaluate", "--restored", str(d), "--protocol", "panini", "--out",
               str(tmp_path / "bad"), "--params", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "error:" in err and "psnr, lpips, fid, kid need(s) it" in err
    assert "--metrics niqe" in err and not (tmp_path / "bad").exists()


def test_no_gt_output_rules(sk, tmp_path):
    from PIL import Image
    from metrics.evaluate import evaluate_folders
    d = tmp_path / "photos"
    d.mkdir()
    Image.fromarray(sk["chelsea"]).save(d / "chelsea.png")
    before = sorted(p.name for p in d.iterdir())
    with pytest.raises(FRBenchError):                       # the input folder is never an output
        evaluate_folders(d, None, "panini", ["niqe"], out=d)
    assert sorted(p.name for p in d.iterdir()) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("user data")
    with pytest.raises(FRBenchError):                       # a folder frbench did not make
        evaluate_folders(d, None, "panini", ["niqe"], out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "user data"
