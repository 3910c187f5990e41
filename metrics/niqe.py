"""NIQE (Mittal, Soundararajan, Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
IEEE SPL 2013), computed the way BasicSR's ``calculate_niqe`` does (the face-restoration papers'
NIQE column: GFP-GAN, VQFR, PMRF), written from the paper and the documented algorithm, not from
BasicSR's code. NumPy/SciPy only, float64. No ground truth is needed.

Steps (``niqe_rgb``):
1. luma: BT.601 "MATLAB rgb2ycbcr" Y from RGB, ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``
   (R, G, B in [0, 255]), crop ``crop_border`` pixels per side, **rounded to integers** (as the
   MATLAB release reads an 8-bit image);
2. the image is cut to a whole number of ``block`` x ``block`` tiles (96 by default, the paper's
   and the pristine model's patch size; no overlap), keeping the top-left part;
3. at two scales (full, then half size by MATLAB ``imresize(.., 0.5)``: bicubic a = -0.5 with
   antialiasing, symmetric borders — ``matlab_resize``): MSCN coefficients
   ``(I - mu) / (sigma + 1)`` with mu, sigma from the 7x7 Gaussian window of the pristine file
   (``scipy.ndimage`` correlation, 'nearest' borders); per tile (``block / scale`` px) 18
   features: the generalised Gaussian fit of the MSCN values (shape alpha, and the mean of the
   left/right scales) and, for the four neighbour products (horizontal, vertical, both
   diagonals; circular shifts inside the tile), the asymmetric GGD fit (alpha, its mean
   ``(beta_r - beta_l) Gamma(2/alpha) / Gamma(1/alpha)``, beta_l, beta_r). Shape parameters are
   moment-matched on the grid 0.2:0.001:10 (as the MATLAB release);
4. the tiles' 36-d features give a Gaussian (NaN-aware mean; covariance over NaN-free tiles);
   ``NIQE = sqrt((mu_p - mu_d) pinv((S_p + S_d) / 2) (mu_p - mu_d)^T)`` against the pristine
   model (``niqe_pris_params.npz``: ``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``;
   see metrics/data/README.md for its source).

Sizes: at least two tiles are needed for a covariance, i.e. an image of at least 2 x 1 blocks
(192 x 96 with 96 px blocks). Smaller images raise ``FRBenchError`` naming the size; the
built-in tier (64 px) enlarges Y x3 first (``Protocol.niqe_upscale``, a documented departure;
see metrics/protocols.py for why not smaller tiles).

Precision: BasicSR holds the image in float32, so its MSCN maps, half-size image and tile
moments are float32; so are ours by default (float64 would move NIQE by ~0.03 on a 512 px
photo: the local variance ``E[x^2] - mu^2`` loses digits in float32 in flat regions, which makes
NIQE sensitive to the last bit of the half-size image). The residual differences to BasicSR
(<= 7e-4, tests/data/niqe_basicsr_reference.json) are such last-bit differences of the float32
resize (summation order).

Parity: equal to BasicSR 1.4.2 ``calculate_niqe(img, 0, convert_to='y')`` to < 1e-3 on real
photos (tests/data/niqe_basicsr_reference.json, produced by scripts/niqe_basicsr_reference.py).
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import FRBenchError

BLOCK = 96


# ------------------------------------------------------------------------------------------
# MATLAB-compatible bicubic resize

def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel, a = -0.5 (MATLAB ``imresize`` 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int, scale: float, antialias: bool = True) -> np.ndarray:
    """(n_out, n_in) matrix M with ``out = M @ in`` along one axis, as MATLAB ``imresize``:
    output pixel k (1-based) samples input position ``k / scale + 0.5 (1 - 1/scale)``; when
    shrinking with antialiasing the kernel is stretched by ``1/scale`` (and scaled by ``scale``);
    weights are normalised per output pixel; input positions outside [1, n_in] are mirrored
    (``aux = [1..n, n..1]``)."""
    width = 4.0
    shrink_aa = scale < 1 and antialias
    if shrink_aa:
        width = width / scale
    k = np.arange(1, n_out + 1, dtype=np.float64)
    u = k / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]          # 1-based input positions
    d = u[:, None] - idx
    w = scale * _cubic(d * scale) if shrink_aa else _cubic(d)
    w = w / w.sum(1, keepdims=True)
    aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    src = aux[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
    m = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(n_out), taps), src.ravel()), w.ravel())
    return m


def matlab_resize(img: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """2-D float array resized by ``scale`` (output ``ceil(h * scale) x ceil(w * scale)``),
    computed in the array's dtype (float32 in, float32 out, as BasicSR's torch resize)."""
    h, w = img.shape
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    mh = resize_matrix(h, oh, float(scale), antialias).astype(img.dtype)
    mw = resize_matrix(w, ow, float(scale), antialias).astype(img.dtype)
    return mh @ img @ mw.T


# ------------------------------------------------------------------------------------------
# (A)GGD fits

_GAM = 0.2 + 0.001 * np.arange(9801)                   # 0.2:0.001:10


def _gamma_fn(x):
    from scipy.special import gamma
    return gamma(x)


@lru_cache(maxsize=1)
def _r_gam() -> np.ndarray:
    g = _gamma_fn
    return g(2 / _GAM) ** 2 / (g(1 / _GAM) * g(3 / _GAM))


def aggd_fit(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching -> (alpha, beta_l, beta_r).
    The moments are taken in ``x``'s dtype (NumPy's pairwise sums). Empty sides give NaN (such
    tiles drop out of the covariance)."""
    x = x.ravel()
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        neg, pos = x[x < 0], x[x > 0]
        sl = np.sqrt(np.mean(neg * neg))
        sr = np.sqrt(np.mean(pos * pos))
        g = sl / sr
        r = np.mean(np.abs(x)) ** 2 / np.mean(x * x)
        rn = r * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
        alpha = float(_GAM[np.argmin((_r_gam() - rn) ** 2)])
        f = math.sqrt(_gamma_fn(1 / alpha) / _gamma_fn(3 / alpha))
    return alpha, float(sl) * f, float(sr) * f


_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def tile_features(t: np.ndarray) -> list[float]:
    """18 NIQE features of one MSCN tile (see module docstring)."""
    a, bl, br = aggd_fit(t)
    out = [a, (bl + br) / 2]
    for s in _SHIFTS:
        a, bl, br = aggd_fit(t * np.roll(t, s, axis=(0, 1)))
        out += [a, (br - bl) * _gamma_fn(2 / a) / _gamma_fn(1 / a), bl, br]
    return out


def mscn(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """MSCN coefficients in ``img``'s dtype (the local moments are filtered in double and stored
    in that dtype, as ``scipy.ndimage`` does)."""
    from scipy.ndimage import correlate
    mu = correlate(img, window, mode="nearest")
    var = correlate(img * img, window, mode="nearest") - mu * mu
    return (img - mu) / (np.sqrt(np.abs(var)) + 1)


def niqe_features(y: np.ndarray, window: np.ndarray, block: int = BLOCK,
                  dtype=np.float32) -> np.ndarray:
    """(n_tiles, 36) features of a 2-D luma array (already cropped to whole tiles); the MSCN
    maps and tile moments in ``dtype`` (see ``niqe_luma``)."""
    nh, nw = y.shape[0] // block, y.shape[1] // block
    feats = []
    img = np.asarray(y, dtype=dtype)
    for scale in (1, 2):
        m = mscn(img, window)
        b = block // scale
        feats.append(np.array([tile_features(m[i * b:(i + 1) * b, j * b:(j + 1) * b])
                               for i in range(nh) for j in range(nw)]))
        if scale == 1:
            img = matlab_resize(img / dtype(255.0), 0.5) * dtype(255.0)
    return np.concatenate(feats, axis=1)


def niqe_luma(y: np.ndarray, params: dict, block: int = BLOCK, dtype=np.float32) -> float:
    """NIQE of a 2-D luma array in [0, 255] (already rounded/cropped as wanted).

    ``dtype``: precision of the MSCN maps and tile moments. BasicSR computes them in float32
    (its image is float32 after the Y conversion); float64 moves NIQE by a few 1e-2 (3.065 vs
    3.092 on ``skimage.data.astronaut()``), so float32 is the default for parity."""
    h, w = y.shape
    nh, nw = h // block, w // block
    if nh * nw < 2:
        raise FRBenchError(f"NIQE: a {w}x{h} image holds {nh * nw} tile(s) of {block}x{block} px; "
                           "NIQE needs at least 2 (e.g. 192x96); use larger images or a protocol "
                           "with smaller NIQE blocks")
    y = np.asarray(y)[:nh * block, :nw * block]
    f = niqe_features(y, params["gaussian_window"], block, dtype).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_d = np.nanmean(f, axis=0)
    ok = f[~np.isnan(f).any(axis=1)]
    cov_d = np.cov(ok, rowvar=False)
    diff = params["mu_pris_param"].reshape(-1) - mu_d
    q = diff @ np.linalg.pinv((params["cov_pris_param"] + cov_d) / 2) @ diff
    return float(np.sqrt(q))


def luma_u8(img: np.ndarray, crop_border: int = 0) -> np.ndarray:
    """uint8 HWC RGB -> rounded BT.601 Y (float64, 16..235), cropped."""
    x = img.astype(np.float64)
    y = (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0 + 16.0
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    return np.round(y)


def niqe_rgb(img: np.ndarray, params: dict, crop_border: int = 0, block: int = BLOCK,
             upscale: int = 1) -> float:
    """NIQE of a uint8 HWC RGB image (lower = more natural). ``upscale`` > 1 (a departure from
    BasicSR for images too small for two tiles): the rounded Y is enlarged by that factor with
    ``matlab_resize`` and rounded again (clipped to [0, 255])."""
    y = luma_u8(img, crop_border)
    if upscale != 1:
        y = np.round(np.clip(matlab_resize(y, float(upscale)), 0, 255))  # float64
    return niqe_luma(y, params, block)


def load_params(path: str | Path) -> dict:
    """The pristine model: ``{"mu_pris_param": (1,36), "cov_pris_param": (36,36),
    "gaussian_window": (7,7)}`` float64 (plain arrays only; no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k], dtype=np.float64)
                   for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
    except (OSError, KeyError, ValueError) as e:
        raise FRBenchError(f"{path}: not a NIQE pristine-parameter file ({e})") from None
    if out["mu_pris_param"].size != 36 or out["cov_pris_param"].shape != (36, 36):
        raise FRBenchError(f"{path}: NIQE parameters have the wrong shapes")
    return out
