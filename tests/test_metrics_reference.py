"""Metric wiring against independent references: MS-SSIM vs pytorch-msssim (5-scale path, weight
order, fewer scales), the SSIM constants where they matter (dark images), the bootstrap CI
percentiles, which results may be called comparable with published numbers, and the clear error
for images too small for a metric."""
import dataclasses

import numpy as np
import pytest
import pytorch_msssim
import torch
from pytorch_msssim.ssim import _ssim as pm_ssim
from skimage.metrics import structural_similarity

from core.errors import FRBenchError
from core.imageio import write_png
from metrics import functional as MF
from metrics.config import WeightsConfig
from metrics.evaluate import Evaluator, evaluate_folders
from metrics.protocols import PROTOCOLS
from pipeline.cli import main

STANDARD_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]  # Wang et al. 2003, Table 1


def _win64(c=3):
    """The 11-tap sigma-1.5 Gaussian in float64, shaped for pytorch-msssim (its own is float32)."""
    t = np.arange(11) - 5.0
    g = np.exp(-t ** 2 / (2 * 1.5 ** 2))
    return torch.from_numpy(g / g.sum()).view(1, 1, 11).repeat(c, 1, 1, 1)


def _pair(h, w, seed=0, n=2, noise=30.0):
    """Textured images (smooth ramps + noise) and a noisy, slightly blurred copy: the contrast
    terms differ from scale to scale, so the weights and their order matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 7.0 + c) * np.cos(yy / 11.0 - c) for c in range(3)])
    a = np.clip(base[None] + rng.normal(0, 20, (n, 3, h, w)), 0, 255).round()
    b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).round()
    b[..., 1:, :] = 0.5 * (b[..., 1:, :] + b[..., :-1, :])
    return torch.from_numpy(b), torch.from_numpy(a)


@pytest.mark.parametrize("hw", [(200, 200), (201, 187)])
def test_ms_ssim_five_scales_equals_pytorch_msssim(hw):
    x, y = _pair(*hw)
    assert MF.msssim_scales(*hw) == 5
    ours = MF.ms_ssim(x, y)
    ref = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=False, win=_win64())
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    # its own float32 window: the same up to that window's rounding
    ref32 = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=False)
    torch.testing.assert_close(ours, ref32, rtol=0, atol=2e-6)
    # the weights, in Wang et al.'s order (finest scale first) and not renormalised
    assert list(MF.MSSSIM_WEIGHTS) == STANDARD_WEIGHTS
    rev = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=False, win=_win64(),
                                 weights=STANDARD_WEIGHTS[::-1])
    assert (ours - rev).abs().min() > 1e-3  # so a reversed order could not pass the check above
    norm = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=False, win=_win64(),
                                  weights=list(np.array(STANDARD_WEIGHTS) / sum(STANDARD_WEIGHTS)))
    assert (ours - norm).abs().min() > 1e-7


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_ms_ssim_fewer_scales_use_the_first_weights_renormalised(levels):
    x, y = _pair(176, 176, seed=levels)
    w = np.array(STANDARD_WEIGHTS[:levels])
    ref = pytorch_msssim.ms_ssim(x, y, data_range=255, size_average=False, win=_win64(),
                                 weights=list(w / w.sum()))
    torch.testing.assert_close(MF.ms_ssim(x, y, levels=levels), ref, rtol=0, atol=1e-12)


def _ms_ssim_composed(x, y, levels):
    """MS-SSIM from pytorch-msssim's single-scale ``_ssim`` and 2x2 average pooling, for sizes
    its ``ms_ssim`` refuses (it asserts > 160 px whatever the number of weights)."""
    w = np.array(STANDARD_WEIGHTS[:levels])
    w = torch.from_numpy(w / w.sum())
    terms = []
    for j in range(levels):
        s, cs = pm_ssim(x, y, data_range=255, win=_win64(x.shape[1]), size_average=False)
        if j < levels - 1:
            terms.append(torch.relu(cs))
            pad = [d % 2 for d in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, 2, padding=pad)
            y = torch.nn.functional.avg_pool2d(y, 2, padding=pad)
    terms.append(torch.relu(s))
    return torch.prod(torch.stack(terms) ** w.view(-1, 1, 1), dim=0).mean(1)


@pytest.mark.parametrize("hw,levels", [((64, 64), 3), ((45, 50), 3), ((100, 81), 4),
                                       ((21, 30), 2), ((11, 16), 1)])
def test_ms_ssim_auto_scales_at_small_sizes(hw, levels):
    x, y = _pair(*hw, seed=3)
    assert MF.msssim_scales(*hw) == levels
    torch.testing.assert_close(MF.ms_ssim(x, y), _ms_ssim_composed(x, y, levels),
                               rtol=0, atol=1e-12)


def test_ssim_constants_matter_on_dark_low_contrast_images():
    """C1/C2 only matter where means and variances are small: dark, flat images."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 6, (40, 36, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-2, 3, a.shape), 0, 255).astype(np.uint8)
    x = torch.from_numpy(b).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(a).permute(2, 0, 1)[None].double()
    sk = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=255, channel_axis=2)
    assert MF.ssim(x, y).item() == pytest.approx(sk, abs=1e-9)
    ref = pytorch_msssim.ssim(x, y, data_range=255, size_average=False, win=_win64())
    assert MF.ms_ssim(x, y, levels=1).item() == pytest.approx(ref.item(), abs=1e-12)
    y8 = MF.prepare(x, 0, True)
    yy = MF.prepare(y, 0, True)
    ysk = structural_similarity(yy[0, 0].numpy(), y8[0, 0].numpy(), gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False, data_range=255)
    assert MF.ssim(y8, yy).item() == pytest.approx(ysk, abs=1e-9)


def test_gaussian_window_matches_cv2():
    import cv2
    np.testing.assert_allclose(MF.gaussian_window().numpy(),
                               cv2.getGaussianKernel(11, 1.5)[:, 0], rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------ bootstrap

def _percentile(sorted_vals, q):
    """Linear interpolation between order statistics (numpy's default 'linear' method)."""
    pos = q / 100.0 * (len(sorted_vals) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (pos - lo) * (sorted_vals[hi] - sorted_vals[lo])


def bootstrap_ci(values, samples, seed):
    """The documented bootstrap (protocols.py): ``samples`` resamples of the images with
    replacement drawn as one (samples, n) index matrix from ``default_rng(seed)``, the mean of
    each, and the 2.5th / 97.5th percentiles of those means."""
    v = list(map(float, values))
    idx = np.random.default_rng(seed).integers(0, len(v), size=(samples, len(v)))
    means = sorted(sum(v[i] for i in row) / len(v) for row in idx.tolist())
    return [_percentile(means, 2.5), _percentile(means, 97.5)]


def test_bootstrap_ci_is_the_2_5_and_97_5_percentiles():
    ev = Evaluator("panini", ["psnr"], bootstrap_samples=300)
    vals = list(np.random.default_rng(1).normal(30, 2, 9))
    s = ev._summary([str(i) for i in range(9)], {"psnr": vals}, {}, {})
    assert s["metrics"]["psnr"]["ci95"] == pytest.approx(bootstrap_ci(vals, 300, 0), abs=1e-12)
    assert s["metrics"]["psnr"]["mean"] == pytest.approx(np.mean(vals), abs=1e-12)
    # independent of how the resamples are drawn: the bootstrap CI of a mean approaches
    # mean +- 1.96 standard errors (10/90 percentiles would give +-1.28)
    rng = np.random.default_rng(5)
    vals = list(rng.normal(0, 1, 400))
    ev = Evaluator("panini", ["psnr"], bootstrap_samples=4000)
    lo, hi = ev._summary([str(i) for i in range(400)], {"psnr": vals}, {}, {})["metrics"]["psnr"][
        "ci95"]
    se = np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert (hi - lo) / (2 * se) == pytest.approx(1.96, abs=0.1)
    assert (lo + hi) / 2 == pytest.approx(np.mean(vals), abs=0.1 * se)


def test_bootstrap_off_and_identity_exclusion_in_the_ci():
    ev = Evaluator("gfpgan_celeba_test", ["psnr"], bootstrap_samples=0)
    s = ev._summary(["a", "b"], {"psnr": [20.0, 22.0]}, {}, {})
    assert s["metrics"]["psnr"]["ci95"] is None and s["metrics"]["psnr"]["mean"] == 21.0
    # excluded identity pairs (< 1 degree) are left out of every resample's mean
    ev = Evaluator("gfpgan_celeba_test", ["psnr"], bootstrap_samples=200)
    vals = [0.2, 10.0, 14.0, 30.0, 0.9, 22.0, 1.5]  # VQFR: pairs below 1 degree are left out
    d = ev._summary(list("abcdefg"), {"deg_arcface18": vals}, {}, {})["metrics"]["deg_arcface18"]
    assert d["n"] == 5 and d["n_excluded"] == 2 and d["mean"] == pytest.approx(15.5)
    assert d["excluded_below_deg"] == 1.0
    idx = np.random.default_rng(0).integers(0, 7, size=(200, 7))
    keep = np.array(vals) >= 1.0
    means = sorted(float(np.array(vals)[r][keep[r]].mean()) for r in idx if keep[r].any())
    assert d["ci95"] == pytest.approx([_percentile(means, 2.5), _percentile(means, 97.5)],
                                      abs=1e-12)


# ----------------------------------------------------------------- comparable with published

RAND = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)


def _folders(root, n=2, size=32):
    rng = np.random.default_rng(0)
    for i in range(n):
        g = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        write_png(root / "gt" / f"{i}.png", g)
        write_png(root / "res" / f"{i}.png", np.clip(g.astype(int) + 9, 0, 255).astype(np.uint8))
    return root / "res", root / "gt"


@pytest.fixture(autouse=True)
def _no_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_published_protocol_with_random_init_weights_is_not_comparable(tmp_path):
    res, gt = _folders(tmp_path)
    assert PROTOCOLS["panini"].published_comparable
    s = evaluate_folders(res, gt, "panini", ["psnr"], weights=RAND)
    assert s["provenance"] == {} and s["comparable_with_published"] is True
    s = evaluate_folders(res, gt, "panini", ["psnr", "lpips"], weights=RAND)
    assert s["provenance"]["lpips_alex"] == "random-init:seed=0"
    assert s["comparable_with_published"] is False
    # the built-in protocol never is, whatever the weights
    s = evaluate_folders(res, gt, dataclasses.replace(PROTOCOLS["builtin"], size=None), ["psnr"])
    assert s["comparable_with_published"] is False


def test_random_init_flag_reads_every_backbone():
    ev = Evaluator("panini", ["psnr"])
    ev.provenance = {"a": "file:a.pth@sha256:0123", "b": "file:b.pth@sha256:4567"}
    assert not ev.random_init
    assert ev._summary(["x"], {"psnr": [1.0]}, {}, {})["comparable_with_published"] is True
    ev.provenance["c"] = "random-init:seed=3"
    assert ev.random_init
    assert ev._summary(["x"], {"psnr": [1.0]}, {}, {})["comparable_with_published"] is False


# ------------------------------------------------------------------------ too small for a metric

def test_cli_ssim_on_8px_images_is_a_clear_error(tmp_path, capsys):
    res, gt = _folders(tmp_path, size=8)
    out = tmp_path / "out"
    rc = main(["evaluate", "--restored", str(res), "--gt", str(gt), "--protocol", "panini",
               "--metrics", "ssim", "--out", str(out), "--params", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert "0.png" in err and "8x8" in err
    assert not out.exists()


@pytest.mark.parametrize("metric", ["ssim", "ssim_y", "ms_ssim"])
def test_metric_too_large_for_the_cropped_image_is_a_clear_error(tmp_path, metric):
    res, gt = _folders(tmp_path, size=16)
    cropped = dataclasses.replace(PROTOCOLS["panini"], crop_border=3)  # 16 - 6 = 10 px < 11
    with pytest.raises(FRBenchError, match=rf"0.png: {metric} needs at least 11x11 px .*"
                                           r"crop_border 3.* 10 px; drop it with --metrics"):
        evaluate_folders(res, gt, cropped, ["psnr", metric], out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    ok = dataclasses.replace(PROTOCOLS["panini"], crop_border=2)  # 12 px: enough
    s = evaluate_folders(res, gt, ok, ["psnr", metric])
    assert 0 < s["metrics"][metric]["mean"] < 1
