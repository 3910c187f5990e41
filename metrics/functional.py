"""Weight-free metric formulas (PSNR, SSIM, MS-SSIM, Y conversion, Fréchet distance, KID, angle).

Conventions: PSNR/SSIM/MS-SSIM take ``float64`` torch tensors NCHW with values in [0, 255]
(uint8-valued images cast to float64, as BasicSR does), so batches of images of one size are
scored in one pass; results are per image (shape ``(N,)``).

- PSNR (BasicSR ``calculate_psnr``): ``10 log10(255^2 / MSE)`` over all (cropped) pixels and
  channels; ``inf`` when MSE == 0.
- SSIM (BasicSR ``calculate_ssim`` / Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, 'valid'
  region only, C1 = (0.01*255)^2, C2 = (0.03*255)^2; the SSIM map is averaged per channel, then
  over channels. Equals scikit-image ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``.
- Y channel: BT.601 "MATLAB rgb2ycbcr" luma from **RGB** input,
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255] (BasicSR's
  ``bgr2ycbcr`` applied to the correctly ordered channels), not rounded, float64.
- MS-SSIM (Wang et al. 2003, pytorch-msssim convention): per channel, contrast-structure terms
  ``cs_j`` at scales 1..L-1 and the SSIM at scale L, ReLU-clamped, combined as
  ``prod_j cs_j^w_j * ssim_L^w_L``, then averaged over channels; 2x2 average pooling between
  scales (zero padding of 1 px for odd sizes, as pytorch-msssim). Standard weights (0.0448,
  0.2856, 0.3001, 0.2363, 0.1333) for L = 5, used as published (they sum to 1.0001; pytorch-msssim
  does not renormalise them either). Small images
  (our convention, recorded in the protocol): L = the largest number <= 5 of scales such that
  ``min(H, W) > 10 * 2^(L-1)`` (pytorch-msssim's own condition for L = 5 is ``> 160``); the first L
  weights are renormalised to sum to 1. A 64 px image gets L = 3.
"""
from __future__ import annotations

import math

import numpy as np

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WIN = 11
SSIM_SIGMA = 1.5
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def _torch():
    import torch
    return torch


def rgb_to_y(x):
    """NCHW RGB in [0,255] (float64) -> N1HW BT.601 Y in [16, 235] (BasicSR ``to_y_channel``)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return (65.481 * r + 128.553 * g + 24.966 * b) / 255.0 + 16.0


def prepare(x, crop_border: int = 0, y_channel: bool = False):
    """Crop ``crop_border`` px from each side, optionally convert to Y. NCHW float64 [0,255]."""
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(x) if y_channel else x


def psnr(x, y):
    """Per-image PSNR (dB), NCHW float64 in [0,255] -> (N,) float64; inf where MSE == 0."""
    torch = _torch()
    mse = ((x - y) ** 2).flatten(1).mean(1)
    out = 10.0 * torch.log10(255.0 ** 2 / mse)
    return torch.where(mse == 0, torch.full_like(mse, math.inf), out)


def gaussian_window(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA):
    """1-D normalised Gaussian (as ``cv2.getGaussianKernel(11, 1.5)``), float64 tensor."""
    torch = _torch()
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(c ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(x, w):
    """Separable 'valid' Gaussian correlation of NCHW (per channel), as sums of shifted slices
    (in-place; float64 ``conv2d`` has no fast CPU kernel, this is ~50x faster)."""
    k = w.numel()
    h, wd = x.shape[-2:]
    taps = w.tolist()
    z = x[..., :, 0:wd - k + 1] * taps[0]
    for i in range(1, k):
        z.add_(x[..., :, i:wd - k + 1 + i], alpha=taps[i])
    out = z[..., 0:h - k + 1, :] * taps[0]
    for i in range(1, k):
        out.add_(z[..., i:h - k + 1 + i, :], alpha=taps[i])
    return out


def _ssim_cs(x, y, w):
    """Per-image, per-channel mean SSIM and contrast-structure maps over the valid region.

    Returns ``(ssim, cs)`` each (N, C) float64."""
    torch = _torch()
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # one filter pass for all five maps
    f = _filter_valid(stack, w)
    c = x.shape[1]
    mu1, mu2, e11, e22, e12 = (f[:, i * c:(i + 1) * c] for i in range(5))
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1, s2, s12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu12
    cs_map = (2 * s12 + C2) / (s1 + s2 + C2)
    ssim_map = ((2 * mu12 + C1) / (mu1_sq + mu2_sq + C1)) * cs_map
    return ssim_map.mean((2, 3)), cs_map.mean((2, 3))


def _per_image(fn, x, y):
    """Apply ``fn`` image by image (2x faster on CPU than whole batches: cache locality)."""
    torch = _torch()
    if x.device.type != "cpu" or x.shape[0] == 1:
        return fn(x.contiguous(), y.contiguous())
    return torch.cat([fn(x[i:i + 1].contiguous(), y[i:i + 1].contiguous())
                      for i in range(x.shape[0])])


def ssim(x, y):
    """Per-image SSIM (BasicSR/skimage), NCHW float64 [0,255] -> (N,); channels averaged."""
    h, w = x.shape[-2:]
    if min(h, w) < SSIM_WIN:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN} px, got {h}x{w}")
    win = gaussian_window().to(x.device)
    return _per_image(lambda a, b: _ssim_cs(a, b, win)[0].mean(1), x, y)


def msssim_scales(h: int, w: int) -> int:
    """Number of MS-SSIM scales for an HxW image (5 when min side > 160; fewer for small images)."""
    side = min(h, w)
    for levels in range(5, 0, -1):
        if side > (SSIM_WIN - 1) * 2 ** (levels - 1):
            return levels
    raise ValueError(f"MS-SSIM needs images larger than {SSIM_WIN - 1} px, got {h}x{w}")


def ms_ssim(x, y, levels: int | None = None):
    """Per-image RGB MS-SSIM, NCHW float64 [0,255] -> (N,). See module docstring for scales."""
    levels = levels or msssim_scales(*x.shape[-2:])
    return _per_image(lambda a, b: _ms_ssim(a, b, levels), x, y)


def _ms_ssim(x, y, levels: int):
    torch = _torch()
    F = torch.nn.functional
    wts = torch.tensor(MSSSIM_WEIGHTS[:levels], dtype=torch.float64, device=x.device)
    if levels < len(MSSSIM_WEIGHTS):  # the five standard weights are used as published
        wts = wts / wts.sum()
    win = gaussian_window().to(x.device)
    cs_list = []
    for j in range(levels):
        s, cs = _ssim_cs(x, y, win)
        if j < levels - 1:
            cs_list.append(torch.relu(cs))
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)  # as pytorch-msssim for odd sizes
            x = F.avg_pool2d(x, 2, padding=pad)
            y = F.avg_pool2d(y, 2, padding=pad)
    vals = torch.stack(cs_list + [torch.relu(s)], dim=0)  # (L, N, C)
    return torch.prod(vals ** wts.view(-1, 1, 1), dim=0).mean(1)


# ------------------------------------------------------------------------------------------
# Set-level: Fréchet distance and KID on (n, d) feature matrices (float64 numpy).

def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``, as pytorch-fid) of (n, d) features."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for FID statistics, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def sqrtm_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root via eigendecomposition (negative eigenvalues clipped to 0)."""
    s = (s + s.T) / 2
    lam, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(lam, 0, None))) @ v.T


def trace_sqrt_product(sqrt_s1: np.ndarray, s2: np.ndarray) -> float:
    """tr sqrt(S1^1/2 S2 S1^1/2) = tr sqrt(S1 S2) (the symmetric form is PSD, so real)."""
    m = sqrt_s1 @ s2 @ sqrt_s1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, sqrt_sigma1=None) -> float:
    """FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1^1/2 S2 S1^1/2)  (Heusel et al. 2017).

    Uses symmetric eigendecompositions only, so the result is real and finite even for
    rank-deficient covariances (n < d); ``sqrt_sigma1`` may be passed when cached."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if sqrt_sigma1 is None:
        sqrt_sigma1 = sqrtm_psd(sigma1)
    diff = mu1 - mu2
    tr = trace_sqrt_product(sqrt_sigma1, sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr)


def sqrt_factor_from_cov(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, d) with sqrt(sigma) = V diag(d) V^T, by symmetric eigendecomposition (d x d)."""
    lam, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return v, np.sqrt(np.clip(lam, 0, None))


def sqrt_factor_from_features(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, d) with sqrt(cov(feats)) = V diag(d) V^T from a thin SVD of the centred (n, d) features
    (B = U S V^T, cov = V S^2/(n-1) V^T): O(n^2 d) instead of a (d, d) eigenproblem."""
    f = np.asarray(feats, np.float64)
    b = f - f.mean(0)
    _, s, vt = np.linalg.svd(b, full_matrices=False)
    return vt.T, s / math.sqrt(f.shape[0] - 1)


def frechet_distance_features(feats: np.ndarray, mu_ref, sqrt_factor) -> float:
    """FID of a feature set (n, d) against a reference (mean ``mu_ref``, covariance given by its
    square-root factor ``(V, d)``: sqrt(S_ref) = V diag(d) V^T), exact and fast for n << dim.

    With A the centred features, S = A^T A / (n-1), the eigenvalues of S_ref^1/2 S S_ref^1/2 are
    the squared singular values of A S_ref^1/2 / sqrt(n-1); V^T has orthonormal rows, so these
    equal the singular values of A V diag(d) / sqrt(n-1): the trace term is their sum."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for FID, got {f.shape}")
    v, dvals = sqrt_factor
    mu = f.mean(0)
    a = f - mu
    tr = float(np.linalg.svd((a @ v) * dvals, compute_uv=False).sum()) / math.sqrt(f.shape[0] - 1)
    tr_s = float((a * a).sum()) / (f.shape[0] - 1)
    diff = mu - np.asarray(mu_ref, np.float64)
    return float(diff @ diff + float((dvals ** 2).sum()) + tr_s - 2.0 * tr)


def kid(feats1: np.ndarray, feats2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over ``num_subsets`` random subsets of
    ``m = min(subset_size, n1, n2)`` vectors drawn without replacement from each set.

    Returns ``(mean, std)`` over subsets. Deterministic for a given ``seed``."""
    f1 = np.asarray(feats1, np.float64)
    f2 = np.asarray(feats2, np.float64)
    d = f1.shape[1]
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors in each set")
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for i in range(num_subsets):
        x = f1[rng.choice(f1.shape[0], m, replace=False)]
        y = f2[rng.choice(f2.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        vals[i] = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) \
            - 2.0 * kxy.mean()
    return float(vals.mean()), float(vals.std())


def angle_degrees(e1, e2):
    """Angle between embeddings (torch (N, D)): ``degrees(arccos(clip(cos, -1, 1)))`` -> (N,)."""
    torch = _torch()
    e1 = e1.double()
    e2 = e2.double()
    cos = (e1 * e2).sum(1) / (e1.norm(dim=1) * e2.norm(dim=1)).clamp_min(1e-12)
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))
