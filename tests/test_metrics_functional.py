"""Weight-free formulas against scikit-image, an independent BasicSR re-derivation, and scipy."""
import math

import cv2
import numpy as np
import pytest
import scipy.linalg
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics import functional as MF


def _pair(seed, h=48, w=40, noise=25):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _t(*imgs):
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).double()


# --- independent re-derivation of BasicSR's numpy metrics (basicsr/metrics/psnr_ssim.py) ------

def _bsr_to_y(img_rgb):
    bgr = img_rgb[..., ::-1].astype(np.float64) / 255.0  # BasicSR reads BGR with cv2
    y = bgr @ np.array([24.966, 128.553, 65.481]) + 16.0  # bgr2ycbcr(y_only=True), [0,255]*...
    return (y / 255.0 * 255.0)[..., None]


def _bsr_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def _bsr_ssim_1ch(a, b):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = np.outer(k, k.T)
    f = lambda x: cv2.filter2D(x, -1, win)[5:-5, 5:-5]  # noqa: E731
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1 ** 2, f(b * b) - mu2 ** 2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))
    return m.mean()


def _bsr_ssim(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.mean([_bsr_ssim_1ch(a[..., i], b[..., i]) for i in range(a.shape[2])]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_ssim_match_skimage_and_basicsr(seed):
    a, b = _pair(seed)
    x, y = _t(b), _t(a)
    p = MF.psnr(x, y).item()
    s = MF.ssim(x, y).item()
    assert p == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-6)
    assert p == pytest.approx(_bsr_psnr(b, a), abs=1e-6)
    sk = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                               data_range=255, channel_axis=2)
    assert s == pytest.approx(sk, abs=1e-6)
    assert s == pytest.approx(_bsr_ssim(b, a), abs=1e-6)


def test_y_channel_and_crop_match_basicsr():
    a, b = _pair(3)
    x, y = MF.prepare(_t(b), 4, True), MF.prepare(_t(a), 4, True)
    ya, yb = _bsr_to_y(a)[4:-4, 4:-4], _bsr_to_y(b)[4:-4, 4:-4]
    assert MF.psnr(x, y).item() == pytest.approx(_bsr_psnr(yb, ya), abs=1e-6)
    assert MF.ssim(x, y).item() == pytest.approx(_bsr_ssim(yb, ya), abs=1e-6)


def test_y_psnr_is_yiq_psnr_plus_1_3219_db():
    a, b = _pair(4)
    x, y = _t(b), _t(a)
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    yiq = lambda t: (t * w).sum(1, keepdim=True)  # noqa: E731  (pyiqa 'yiq' Y, no rounding)
    d = MF.psnr(MF.rgb_to_y(x), MF.rgb_to_y(y)).item() - MF.psnr(yiq(x), yiq(y)).item()
    assert d == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)
    assert d == pytest.approx(1.3219, abs=1e-4)


def test_identical_images_and_batching():
    a, b = _pair(5)
    x = _t(a, b)
    assert torch.isinf(MF.psnr(x, x)).all()
    assert torch.allclose(MF.ssim(x, x), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(MF.ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    # per-image results do not depend on the batch they are in
    y = _t(b, a)
    both = MF.ssim(x, y)
    assert both[0].item() == pytest.approx(MF.ssim(x[:1], y[:1]).item(), abs=1e-12)


def test_ms_ssim_scales_and_one_scale_equals_ssim():
    assert MF.msssim_scales(512, 512) == 5 and MF.msssim_scales(161, 200) == 5
    assert MF.msssim_scales(160, 160) == 4 and MF.msssim_scales(64, 64) == 3
    with pytest.raises(ValueError):
        MF.msssim_scales(10, 10)
    a, b = _pair(6, 64, 64)
    x, y = _t(b), _t(a)
    assert MF.ms_ssim(x, y, levels=1).item() == pytest.approx(MF.ssim(x, y).item(), abs=1e-12)
    v = MF.ms_ssim(x, y).item()
    assert 0 < v < 1


def _scipy_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_matches_scipy_on_random_covariances():
    rng = np.random.default_rng(0)
    d = 32
    for _ in range(3):
        a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
        s1, s2 = a @ a.T / d + 0.1 * np.eye(d), b @ b.T / d + 0.1 * np.eye(d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        assert MF.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
            _scipy_fid(mu1, s1, mu2, s2), rel=1e-8, abs=1e-8)
    assert MF.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)


def test_frechet_near_singular_is_real_finite_and_fast_path_agrees():
    rng = np.random.default_rng(1)
    d = 64
    f1 = rng.normal(size=(10, d))           # rank 9 covariance in 64-d
    f2 = rng.normal(size=(12, d)) + 0.3
    mu1, s1 = MF.feature_stats(f1)
    mu2, s2 = MF.feature_stats(f2)
    v = MF.frechet_distance(mu2, s2, mu1, s1)
    assert np.isfinite(v) and isinstance(v, float) and v > 0
    fast = MF.frechet_distance_features(f1, mu2, MF.sqrt_factor_from_features(f2))
    assert fast == pytest.approx(v, rel=1e-7)
    assert MF.frechet_distance_features(f1, mu2, MF.sqrt_factor_from_cov(s2)) == pytest.approx(
        v, rel=1e-7)
    # identical sets -> ~0
    assert MF.frechet_distance_features(f1, mu1, MF.sqrt_factor_from_features(f1)) == \
        pytest.approx(0, abs=1e-8)
    # scipy agrees where its sqrtm is well defined (regularised)
    s1r, s2r = s1 + 1e-2 * np.eye(d), s2 + 1e-2 * np.eye(d)
    assert MF.frechet_distance(mu1, s1r, mu2, s2r) == pytest.approx(
        _scipy_fid(mu1, s1r, mu2, s2r), rel=1e-6)


def test_kid_matches_direct_computation():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(9, 16)), rng.normal(size=(7, 16)) + 0.5
    val, std = MF.kid(x, y, num_subsets=3, subset_size=5, seed=11)
    r = np.random.default_rng(11)
    k = lambda a, b: (a @ b / 16 + 1) ** 3  # noqa: E731
    vals = []
    for _ in range(3):
        xs = x[r.choice(9, 5, replace=False)]
        ys = y[r.choice(7, 5, replace=False)]
        m = 5
        sxx = sum(k(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j)
        syy = sum(k(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j)
        sxy = sum(k(xs[i], ys[j]) for i in range(m) for j in range(m))
        vals.append(sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / m ** 2)
    assert val == pytest.approx(np.mean(vals), rel=1e-10)
    assert std == pytest.approx(np.std(vals), rel=1e-8)
    assert MF.kid(x, y, 3, 5, seed=11) == (val, std)  # deterministic


def test_angle_degrees():
    e1 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    e2 = torch.tensor([[0.0, 3.0], [1.0, 1.0], [2.0, 0.0]])
    assert MF.angle_degrees(e1, e2).tolist() == pytest.approx([90.0, 45.0, 0.0], abs=1e-6)
