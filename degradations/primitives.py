"""Degradation primitives: pure functions on float32 HWC RGB images in [0, 1].

Every function takes an image ``img`` (float32, shape (H, W, 3), values in [0, 1]) and returns a
new float32 HWC image; nothing is modified in place. Random primitives take an explicit seed (an
``int``) so that a preset's drawn parameters fully determine the output. Noise levels are in 8-bit
units (sigma 25 means 25/255), JPEG qualities are libjpeg qualities (1..100).

Sources: BasicSR ``basicsr/data/degradations.py`` (Gaussian kernels, as GFP-GAN's released
config ``options/train_gfpgan_v1.yml`` uses them), pSp's ``BicubicDownSample`` (Keys a = -0.5;
eladrich/pixel2style2pixel), Panini-Net's chain as measured on the example pairs released in its
official repository (jianzhangcs/panini).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # determinism + no oversubscription inside worker processes

RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest", "pil_bilinear", "pil_bicubic",
                "psp_bicubic")
_CV2 = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA,
        "nearest": cv2.INTER_NEAREST}
_PIL = {"pil_bilinear": Image.BILINEAR, "pil_bicubic": Image.BICUBIC}


def _f32(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HWC RGB image, got shape {a.shape}")
    return a


# ------------------------------------------------------------------------------------- blur

def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None,
                    theta: float = 0.0) -> np.ndarray:
    """BasicSR's (an)isotropic Gaussian kernel, shape (size, size), summing to 1.

    ``k(p) ∝ exp(-½ pᵀ Σ⁻¹ p)`` on the integer grid ``p ∈ [-size//2, size//2]²`` with
    ``Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`` (isotropic: ``σy = σx``, ``θ = 0``). ``size`` must be odd.
    """
    if size % 2 != 1 or size < 1:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError("sigma must be positive")
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T
    inv = np.linalg.inv(cov)
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)  # xx varies along columns (x), yy along rows (y)
    q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
    k = np.exp(-0.5 * q)
    return k / k.sum()


def auto_kernel_size(sigma: float) -> int:
    """Odd size covering ±3σ: ``2·ceil(3σ) + 1`` (at least 3)."""
    return max(3, 2 * int(math.ceil(3.0 * sigma)) + 1)


def filter2d(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate each channel with ``kernel`` (cv2.filter2D, border BORDER_REFLECT_101)."""
    return cv2.filter2D(_f32(img), -1, np.asarray(kernel, dtype=np.float32),
                        borderType=cv2.BORDER_REFLECT_101)


def gaussian_blur(img: np.ndarray, sigma_x: float, sigma_y: float | None = None,
                  theta: float = 0.0, size: int | None = None) -> np.ndarray:
    """Blur with ``gaussian_kernel`` (size defaults to ``auto_kernel_size(max σ)``)."""
    sy = sigma_x if sigma_y is None else sigma_y
    size = auto_kernel_size(max(sigma_x, sy)) if size is None else int(size)
    return filter2d(img, gaussian_kernel(size, sigma_x, sy, theta))


def gaussian_blur_separable(img: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Isotropic ``gaussian_blur`` as two 1-D passes (cv2.sepFilter2D): the isotropic kernel is
    the outer product of two normalised 1-D Gaussians, so this equals ``filter2d`` with
    ``gaussian_kernel(size, sigma)`` up to float rounding, at a fraction of the cost."""
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    k = np.exp(-0.5 * (ax / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    return cv2.sepFilter2D(_f32(img), -1, k, k, borderType=cv2.BORDER_REFLECT_101)


def motion_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """Linear motion-blur kernel: a line segment of ``length`` px through the centre at
    ``angle`` degrees (counter-clockwise from +x, image y pointing down), rasterised by splatting
    64 samples per pixel bilinearly; sums to 1. ``size`` (odd) defaults to the smallest odd
    integer ≥ length + 2.
    """
    if length <= 0:
        raise ValueError("motion length must be positive")
    size = (int(math.ceil(length)) + 2) | 1 if size is None else int(size)
    k = np.zeros((size, size), dtype=np.float64)
    c = size // 2
    n = max(2, int(math.ceil(length * 64)))
    t = np.linspace(-length / 2.0, length / 2.0, n)
    x = c + t * math.cos(math.radians(angle))
    y = c - t * math.sin(math.radians(angle))
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        np.add.at(k, (yi[ok], xi[ok]), w[ok])
    return k / k.sum()


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Blur with ``motion_kernel(length, angle)``."""
    return filter2d(img, motion_kernel(length, angle))


# ------------------------------------------------------------------------------------ resize

def _psp_kernel(factor: int) -> np.ndarray:
    """pSp/PULSE BicubicDownSample 1-D kernel: 4·f taps of Keys(a=-0.5) at
    ``(i - floor(2f) + 0.5) / f``, normalised to sum 1."""
    a = -0.5
    size = 4 * factor
    x = np.abs((np.arange(size) - math.floor(size / 2) + 0.5) / factor)
    k = np.where(x <= 1, (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1,
                 np.where(x < 2, a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a, 0.0))
    return k / k.sum()


def psp_bicubic_downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """pSp's ``BicubicDownSample(factor)``: reflect-pad by ``(3f//2, 3f - 3f//2)``, separable
    stride-``f`` correlation with ``_psp_kernel(f)`` (rows first, then columns), clamp to [0,1].
    Output side ``H // f`` when ``f`` divides H."""
    factor = int(factor)
    if factor < 1:
        raise ValueError("factor must be a positive integer")
    x = _f32(img)
    pad = 3 * factor
    lo, hi = pad // 2, pad - pad // 2
    h, w = x.shape[:2]
    if factor >= 16:
        # large factors: the strided correlation as a small (n_out x padded) matrix product
        k64 = _psp_kernel(factor)
        for axis, n in ((0, h), (1, w)):
            idx = np.pad(np.arange(n), (lo, hi), mode="reflect")  # reflect pad (no edge repeat)
            n_out = (n + pad - 4 * factor) // factor + 1
            m = np.zeros((n_out, n), np.float64)
            for o in range(n_out):
                np.add.at(m[o], idx[o * factor: o * factor + 4 * factor], k64)
            x = np.tensordot(m, x, axes=([1], [axis])) if axis == 0 else \
                np.moveaxis(np.tensordot(m, x, axes=([1], [1])), 0, 1)
        return np.clip(x, 0.0, 1.0).astype(np.float32)
    k = _psp_kernel(factor).astype(np.float32)
    one = np.ones(1, np.float32)
    # rows: reflect-pad, full correlation anchored at tap 0, keep every f-th row
    xp = cv2.copyMakeBorder(x, lo, hi, 0, 0, cv2.BORDER_REFLECT_101)
    xp = cv2.sepFilter2D(xp, -1, one, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    x = xp[: (h + pad - 4 * factor) // factor * factor + 1: factor]
    xp = cv2.copyMakeBorder(np.ascontiguousarray(x), 0, 0, lo, hi, cv2.BORDER_REFLECT_101)
    xp = cv2.sepFilter2D(xp, -1, k, one, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    x = xp[:, : (w + pad - 4 * factor) // factor * factor + 1: factor]
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def resize(img: np.ndarray, size: int | tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize to ``size`` (int: square side; or (width, height)).

    Modes: ``bilinear``/``bicubic``/``nearest`` — OpenCV, point sampled (NOT antialiased when
    shrinking; cv2 bicubic uses Keys a = -0.75); ``area`` — cv2.INTER_AREA (box average when
    shrinking); ``pil_bilinear``/``pil_bicubic`` — PIL on float32 channels, antialiased (filter
    support scaled by the reduction factor, PIL's ``Image.resize`` semantics); ``psp_bicubic`` —
    ``psp_bicubic_downsample`` (integer factor W/size only).
    """
    x = _f32(img)
    w, h = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if w < 1 or h < 1:
        raise ValueError(f"target size must be >= 1, got {w}x{h}")
    if mode in _CV2:
        if (w, h) == (x.shape[1], x.shape[0]):
            return x.copy()
        return cv2.resize(x, (w, h), interpolation=_CV2[mode])
    if mode in _PIL:
        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c]), mode="F")
                            .resize((w, h), _PIL[mode]), dtype=np.float32) for c in range(3)]
        return np.stack(chans, axis=-1)
    if mode == "psp_bicubic":
        f = x.shape[1] // w
        if f * w != x.shape[1] or f * h != x.shape[0]:
            raise ValueError(f"psp_bicubic needs an integer factor, got {x.shape[1]} -> {w}")
        return psp_bicubic_downsample(x, f)
    raise ValueError(f"unknown resize mode {mode!r} (one of {', '.join(RESIZE_MODES)})")


def downsample(img: np.ndarray, factor: float | None = None, size: int | None = None,
               mode: str = "bilinear") -> np.ndarray:
    """Shrink by a real ``factor`` (new side ``max(1, int(W // factor))``, BasicSR's rule) or
    to a square ``size``; exactly one of the two. See ``resize`` for the modes."""
    if (factor is None) == (size is None):
        raise ValueError("give exactly one of factor and size")
    x = _f32(img)
    if size is None:
        if factor <= 0:
            raise ValueError("factor must be positive")
        wh = (max(1, int(x.shape[1] // factor)), max(1, int(x.shape[0] // factor)))
        return resize(x, wh, mode)
    return resize(x, int(size), mode)


def down_up(img: np.ndarray, size: int, down_mode: str = "bilinear",
            up_mode: str = "bilinear") -> np.ndarray:
    """Downsample to ``size`` x ``size`` then upsample back to the input size (the upsample-back
    option of the blind-restoration chains)."""
    x = _f32(img)
    small = resize(x, int(size), down_mode)
    return resize(small, (x.shape[1], x.shape[0]), up_mode)


# ------------------------------------------------------------------------------------- noise

def gaussian_noise(img: np.ndarray, sigma: float, seed: int, gray: bool = False,
                   clip: bool = True) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma``/255 (8-bit units), drawn from
    ``np.random.default_rng(seed)``: independent per channel, or one plane shared by the three
    channels when ``gray``. Clipped to [0, 1] when ``clip``."""
    x = _f32(img)
    rng = np.random.default_rng(int(seed))
    shape = x.shape[:2] + ((1,) if gray else (3,))
    out = rng.standard_normal(shape, dtype=np.float32)
    out *= np.float32(sigma / 255.0)
    out = out + x  # broadcasts the gray plane over the three channels
    return np.clip(out, 0.0, 1.0, out=out) if clip else out


# -------------------------------------------------------------------------------------- JPEG

def quantize(img: np.ndarray) -> np.ndarray:
    """float [0,1] -> uint8 (round half to even, clip), as ``core.imageio.to_uint8``."""
    y = np.asarray(img, dtype=np.float32) * np.float32(255.0)
    np.rint(y, out=y)
    return np.clip(y, 0, 255, out=y).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at libjpeg ``quality`` (1..100) with OpenCV: standard tables, 4:2:0 chroma
    subsampling, baseline; the input is quantised to 8 bits first. Deterministic."""
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    u8 = quantize(_f32(img))[..., ::-1]  # RGB -> BGR for OpenCV's colour conversion
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8),
                           [cv2.IMWRITE_JPEG_QUALITY, q,
                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return dec.astype(np.float32) / np.float32(255.0)


def jpeg_bytes(img: np.ndarray, quality: int) -> int:
    """Size in bytes of ``img`` encoded as in ``jpeg`` (for tests and diagnostics)."""
    u8 = quantize(_f32(img))[..., ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality),
                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    return int(len(buf))


# ------------------------------------------------------------------------------------ colour

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as cv2.cvtColor(RGB2GRAY)


def grayscale(img: np.ndarray) -> np.ndarray:
    """Luma ``Y = 0.299 R + 0.587 G + 0.114 B`` replicated to 3 channels."""
    x = _f32(img)
    y = x[..., 0] * np.float32(GRAY_WEIGHTS[0]) + x[..., 1] * np.float32(GRAY_WEIGHTS[1]) + \
        x[..., 2] * np.float32(GRAY_WEIGHTS[2])
    return np.repeat(y[..., None], 3, axis=2)


def color_shift(img: np.ndarray, shift: tuple[float, float, float]) -> np.ndarray:
    """BasicSR ``random_color_jitter`` given its draw: add a per-channel (R, G, B) offset in
    [0,1] units, clip."""
    return np.clip(_f32(img) + np.asarray(shift, dtype=np.float32), 0.0, 1.0)


def adjust_brightness(img: np.ndarray, f: float) -> np.ndarray:
    """``clip(f · x)`` (torchvision adjust_brightness)."""
    return np.clip(_f32(img) * np.float32(f), 0.0, 1.0)


def adjust_contrast(img: np.ndarray, f: float) -> np.ndarray:
    """Blend with the mean luma: ``clip(f·x + (1-f)·mean(Y))`` (torchvision)."""
    x = _f32(img)
    m = float(grayscale(x)[..., 0].mean())
    return np.clip(x * np.float32(f) + np.float32((1 - f) * m), 0.0, 1.0)


def adjust_saturation(img: np.ndarray, f: float) -> np.ndarray:
    """Blend with the luma image: ``clip(f·x + (1-f)·Y)`` (torchvision)."""
    x = _f32(img)
    return np.clip(x * np.float32(f) + grayscale(x) * np.float32(1 - f), 0.0, 1.0)


def adjust_hue(img: np.ndarray, h: float) -> np.ndarray:
    """Rotate the hue by ``h`` turns (h in [-0.5, 0.5]) in HSV space (cv2, float32)."""
    hsv = cv2.cvtColor(_f32(img), cv2.COLOR_RGB2HSV)  # H in degrees [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(h * 360.0), 360.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


def color_jitter(img: np.ndarray, brightness: float = 1.0, contrast: float = 1.0,
                 saturation: float = 1.0, hue: float = 0.0,
                 order: tuple[int, ...] = (0, 1, 2, 3)) -> np.ndarray:
    """torchvision-style ColorJitter given its draws; ``order`` is the permutation of
    (brightness, contrast, saturation, hue) to apply."""
    fns = (lambda a: adjust_brightness(a, brightness), lambda a: adjust_contrast(a, contrast),
           lambda a: adjust_saturation(a, saturation), lambda a: adjust_hue(a, hue))
    x = _f32(img)
    for i in order:
        x = fns[int(i)](x)
    return x
