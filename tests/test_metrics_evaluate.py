"""evaluate_folders / Evaluator / `frbench evaluate`: pairing, invariants, caching, bad input."""
import json
import math

import numpy as np
import pytest

from metrics.config import WeightsConfig
from metrics.evaluate import Evaluator, check_finite, evaluate_folders, pair_files
from pipeline.cli import main
from core.errors import FRBenchError
from core.imageio import write_png

RAND = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
ALL = ["psnr", "ssim", "ms_ssim", "lpips", "fid", "kid", "deg_facenet"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _make(root, n=4, size=64, noise=20, suffix="", seed=0):
    rng = np.random.default_rng(seed)
    gt, res = root / "gt", root / "res"
    for i in range(n):
        yy, xx = np.mgrid[0:size, 0:size]
        base = np.stack([(xx * 3 + i * 17) % 256, (yy * 2 + i * 5) % 256,
                         (xx + yy + i * 31) % 256], -1).astype(np.uint8)
        write_png(gt / f"{i:05d}.png", base)
        r = np.clip(base.astype(int) + rng.integers(-noise, noise + 1, base.shape), 0, 255)
        write_png(res / f"{i:05d}{suffix}.png", r.astype(np.uint8))
    return res, gt


@pytest.fixture(scope="module")
def ev(tmp_path_factory):
    """One evaluator (nets built once) reused by the tests, as the pipeline does."""
    return Evaluator("builtin", ALL, weights=RAND, batch_size=7,
                     cache_dir=tmp_path_factory.mktemp("cache"), bootstrap_samples=200)


def test_identical_images_give_ideal_scores(ev, tmp_path):
    _, gt = _make(tmp_path, n=3)
    s = ev.evaluate(gt, gt, out=tmp_path / "out")
    m = s["metrics"]
    assert math.isinf(m["psnr"]["mean"])
    assert m["ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert m["ms_ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert m["lpips"]["mean"] == pytest.approx(0.0, abs=1e-7)
    assert m["deg_facenet"]["mean"] == pytest.approx(0.0, abs=0.05)
    assert s["set_metrics"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert s["comparable_with_published"] is False
    assert s["provenance"]["inception_fid"] == "random-init:seed=0"
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["protocol"] == "builtin" and on_disk["n"] == 3
    assert on_disk["protocol_settings"]["size"] == 64
    assert "torch" in on_disk["versions"]
    lines = (tmp_path / "out" / "per_image.csv").read_text().splitlines()
    assert lines[0] == "id,psnr,ssim,ms_ssim,lpips,deg_facenet" and len(lines) == 4


def test_batch_split_invariance_determinism_and_gt_cache(ev, tmp_path):
    res, gt = _make(tmp_path, n=7, suffix="_00")
    ev._gt_mem.clear()
    ev.batch_size = 7
    a = ev.evaluate(res, gt, out=tmp_path / "a")
    assert ev.last_fid_cache == "miss"
    assert list((ev.cache_dir / "fid").glob("*.npz"))
    # second evaluation against the same GT: features from disk, no GT Inception pass
    ev._gt_mem.clear()
    calls = []
    orig = ev.inception.forward
    ev.inception.forward = lambda x: calls.append(len(x)) or orig(x)
    ev.batch_size = 1
    try:
        b = ev.evaluate(res, gt, out=tmp_path / "b")
    finally:
        del ev.inception.forward
        ev.batch_size = 7
    assert ev.last_fid_cache == "hit"
    assert calls == [1] * 7  # restored images only
    for m in a["metrics"]:
        assert b["metrics"][m]["mean"] == pytest.approx(a["metrics"][m]["mean"], rel=1e-5, abs=1e-7)
        assert b["metrics"][m]["ci95"] == pytest.approx(a["metrics"][m]["ci95"], rel=1e-5, abs=1e-7)
    for m in a["set_metrics"]:
        assert b["set_metrics"][m] == pytest.approx(a["set_metrics"][m], rel=1e-4, abs=1e-7)
    assert a["set_metrics"]["fid"] > 0
    assert (tmp_path / "a" / "per_image.csv").read_text().splitlines()[1].startswith("00000,")


def test_scores_do_not_depend_on_the_cache_state(tmp_path):
    """Cold caches and warm ones (the disk FID cache, the in-memory GT outputs) give the same
    bytes: a restored image is never batched with GT images, so its network outputs do not
    depend on how many GT outputs happened to be cached (nor on which cell ran first)."""
    res, gt = _make(tmp_path, n=6)
    ev = Evaluator("builtin", ALL, weights=RAND, batch_size=3, cache_dir=tmp_path / "cache",
                   bootstrap_samples=50)
    a = ev.evaluate(res, gt, out=tmp_path / "a")      # disk miss, nothing in memory
    assert ev.last_fid_cache == "miss"
    b = ev.evaluate(res, gt, out=tmp_path / "b")      # disk hit, GT outputs in memory
    assert ev.last_fid_cache == "hit"
    ev.clear_memory()
    c = ev.evaluate(res, gt, out=tmp_path / "c")      # disk hit, memory empty
    want = (tmp_path / "a" / "per_image.csv").read_bytes()
    for x in ("b", "c"):
        assert (tmp_path / x / "per_image.csv").read_bytes() == want, x
    assert b["set_metrics"] == a["set_metrics"] == c["set_metrics"]
    assert a["set_metrics"]["fid"] > 0


def test_weight_free_metrics_need_no_weights(tmp_path):
    res, gt = _make(tmp_path, n=2)
    s = evaluate_folders(res, gt, "builtin", ["psnr", "ssim", "psnr_y"], out=tmp_path / "o")
    assert s["provenance"] == {} and set(s["metrics"]) == {"psnr", "ssim", "psnr_y"}
    assert s["metrics"]["psnr_y"]["mean"] > s["metrics"]["psnr"]["mean"] - 5


def test_pairing_suffix_missing_extra_and_ambiguous(tmp_path):
    res, gt = _make(tmp_path, n=3, suffix="_00")
    pairs = pair_files(res, gt)
    assert [p[0] for p in pairs] == ["00000", "00001", "00002"]
    (res / "00001_00.png").rename(res / "zzz.png")
    with pytest.raises(FRBenchError) as e:
        pair_files(res, gt)
    assert "00001.png" in str(e.value) and "zzz.png" in str(e.value)
    (res / "zzz.png").rename(res / "00001_00.png")
    write_png(res / "00001_01.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(FRBenchError, match="two restored files for GT id '00001'"):
        pair_files(res, gt)


def test_bad_inputs(tmp_path):
    res, gt = _make(tmp_path, n=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FRBenchError, match="no images found"):
        evaluate_folders(empty, gt, "builtin", ["psnr"])
    write_png(res / "00000.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(FRBenchError, match="evaluates at 64x64"):
        evaluate_folders(res, gt, "builtin", ["psnr"], out=tmp_path / "o1")
    with pytest.raises(FRBenchError, match="differs from GT"):
        evaluate_folders(res, gt, "panini", ["psnr"], out=tmp_path / "o1")
    assert not (tmp_path / "o1").exists()  # nothing half-written
    (res / "00000.png").write_bytes(b"not a png")
    with pytest.raises(FRBenchError, match="cannot read image"):
        evaluate_folders(res, gt, "builtin", ["psnr"])
    with pytest.raises(FRBenchError, match="unknown metric 'lmd'"):  # VQFR's LMD: not implemented
        evaluate_folders(res, gt, "builtin", ["lmd"])
    with pytest.raises(FRBenchError, match="unknown protocol"):
        evaluate_folders(res, gt, "nope", ["psnr"])
    with pytest.raises(FRBenchError, match="non-finite"):
        check_finite(np.array([1.0, np.nan]), "x")


def test_grayscale_files_are_replicated_to_rgb(tmp_path):
    from PIL import Image
    res, gt = _make(tmp_path, n=2)
    g = np.full((64, 64), 100, np.uint8)
    Image.fromarray(g, "L").save(gt / "00000.png")
    Image.fromarray(g, "L").save(res / "00000.png")
    s = evaluate_folders(res, gt, "builtin", ["psnr"])
    assert s["n"] == 2


def test_protocol_needing_missing_weights_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    res, gt = _make(tmp_path, n=2)
    with pytest.raises(FRBenchError) as e:
        evaluate_folders(res, gt, "gfpgan_celeba_test", ["fid"], weights=RAND)
    assert "inception_FFHQ_512-f7b384ab.pth" in str(e.value)


def test_cli_evaluate(tmp_path, capsys):
    res, gt = _make(tmp_path, n=2, suffix="_00")
    out = tmp_path / "out"
    rc = main(["evaluate", "--restored", str(res), "--gt", str(gt), "--protocol", "builtin",
               "--metrics", "psnr,ssim", "--out", str(out), "--params", str(tmp_path / "none")])
    assert rc == 0 and (out / "summary.json").is_file()
    assert "psnr" in capsys.readouterr().out
    (res / "00001_00.png").unlink()
    rc = main(["evaluate", "--restored", str(res), "--gt", str(gt), "--protocol", "builtin",
               "--metrics", "psnr", "--out", str(tmp_path / "o2"), "--params", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and "00001.png" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()
    rc = main(["evaluate", "--restored", str(gt), "--gt", str(gt), "--protocol", "builtin",
               "--metrics", "lpips", "--out", str(tmp_path / "o3"), "--params", "none"])
    assert rc == 2 and "vgg16-397923af.pth" in capsys.readouterr().err


def test_params_sections_and_device_check():
    import torch

    from metrics.config import EvaluateConfig
    from pipeline.config import build, load_params
    p = load_params("params.yaml")
    assert p.weights.allow_random_init is True and p.weights.allow_download is False
    assert p.evaluate.protocol == "builtin"
    with pytest.raises(FRBenchError, match="unknown protocol 'nope'"):
        build(EvaluateConfig, {"protocol": "nope"}, "evaluate")
    with pytest.raises(FRBenchError, match="unknown metric 'foo'"):
        build(EvaluateConfig, {"protocol": "builtin", "metrics": ["psnr", "foo"]}, "evaluate")
    with pytest.raises(FRBenchError, match="unknown key 'weights.paths.bogus'"):
        build(WeightsConfig, {"allow_random_init": True, "allow_download": False,
                              "random_init_seed": 0, "paths": {"bogus": None}}, "weights")
    if not torch.cuda.is_available():
        with pytest.raises(FRBenchError, match="CUDA is not available"):
            Evaluator("builtin", ["psnr"], device="cuda")


def test_identity_exclusion_below_one_degree_and_bootstrap_ci():
    ev = Evaluator("gfpgan_celeba_test", ["psnr"], bootstrap_samples=500)
    s = ev._summary(["a", "b", "c", "d"], {"deg_arcface18": [0.5, 10.0, 20.0, 30.0],
                                            "psnr": [20.0, 21.0, 22.0, 23.0]}, {}, {})
    d = s["metrics"]["deg_arcface18"]
    assert d["mean"] == pytest.approx(20.0) and d["n_excluded"] == 1 and d["n"] == 3
    lo, hi = s["metrics"]["psnr"]["ci95"]
    assert 20.0 <= lo < 21.5 < hi <= 23.0
    assert s["metrics"]["psnr"]["higher_is_better"] and not d["higher_is_better"]
    assert s["comparable_with_published"] is True and s["provenance"] == {}
    again = ev._summary(["a", "b", "c", "d"], {"psnr": [20.0, 21.0, 22.0, 23.0]}, {}, {})
    assert again["metrics"]["psnr"]["ci95"] == [lo, hi]  # fixed bootstrap seed


def test_fid_against_precomputed_stats_file(tmp_path):
    """gfpgan_celeba_test: FID vs a BasicSR-style stats file ({'mean', 'cov'}) equals the Frechet
    distance computed here independently from the restored features. The restored covariance
    S = A^T A / (n-1) has rank n-1, so tr sqrt(S^1/2 C S^1/2) = sum sqrt(eig(A C A^T / (n-1))):
    an n x n problem instead of the implementation's 2048-d factor (was a 12 s slow test)."""
    import scipy.linalg
    import torch

    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 2048)) * 0.1
    mu, cov = base.mean(0), np.cov(base, rowvar=False) + 1e-3 * np.eye(2048)
    stats = tmp_path / "inception_FFHQ_512-f7b384ab.pth"
    torch.save({"mean": mu, "cov": cov}, stats)
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0,
                      paths={"fid_stats_ffhq512": str(stats)})
    res, gt = _make(tmp_path, n=3, size=512)
    ev = Evaluator("gfpgan_celeba_test", ["fid"], weights=w, cache_dir=tmp_path / "c")
    s = ev.evaluate(res, gt)
    assert s["provenance"]["fid_ref:fid_stats_ffhq512"].startswith("file:inception_FFHQ_512")
    assert s["set_metrics_info"]["fid_reference"].startswith("stats:file:")
    from core.imageio import read_image
    x = torch.from_numpy(np.stack([read_image(p) for p in sorted(res.glob("*.png"))]))
    with torch.no_grad():
        f = ev.inception(x.permute(0, 3, 1, 2).float() / 255).double().numpy()
    m1 = f.mean(0)
    a = f - m1
    n = len(f)
    lam = scipy.linalg.eigvalsh(a @ cov @ a.T / (n - 1))
    ref = float((m1 - mu) @ (m1 - mu) + np.trace(cov) + (a * a).sum() / (n - 1)
                - 2 * np.sqrt(np.clip(lam, 0, None)).sum())
    assert s["set_metrics"]["fid"] == pytest.approx(ref, rel=1e-6)
