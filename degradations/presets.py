"""Published degradation presets: ``PRESETS[name]`` -> ``Preset``.

API (docs/architecture.md): ``preset.sample(rng, hq_size) -> params`` (JSON-serialisable, with the
noise seed), ``preset.apply(hq, params) -> lq`` (deterministic given params; float32 HWC [0,1] in
and out), ``preset.lq_size(hq_size)``, and ``degrade(hq, preset, rng) -> (lq, params)``.

**Scaling rule.** Each range is stated at its paper's reference resolution (``ref_size``: 512 for
the GFP-GAN / GPEN / Panini working grids) and scaled to the working size: lengths in pixels (blur
sigma, kernel size, motion length, target side) are multiplied by ``working_size / ref_size``;
scale factors, noise levels (8-bit units) and JPEG qualities are NOT scaled. For Panini's MFR the
working grid is the LQ grid (half the HQ size), so ``s`` is scaled by ``lq_size / 512`` (equal to
``hq_size / 1024``).

**Overrides.** ``get_preset(name, overrides)`` (or ``preset.override(**kw)``) returns a copy with
fields replaced; unknown keys raise ``FRBenchError`` listing the allowed ones. E.g. the built-in
64 px tier uses ``sr16_bilinear`` with ``{factor: 8}`` (LQ 8 px; a 16x set at 64 px would be 4 px)
and ``panini_ladder`` with ``{factors: [2, 4, 8, 16]}``.

**Levels.** ``panini_ladder`` has ``levels`` (one LQ per level per image); ``sample(rng, hq_size,
level=L)`` draws for one level, ``sample`` without ``level`` picks one at random (training use).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from degradations import primitives as P
from core.errors import FRBenchError

_SEED_MAX = 2 ** 31 - 1
_INF = float("inf")

#: allowed values of the knobs, by name: (low, high, integer). A knob that is a pair (a range
#: drawn from) must be ordered (low <= high) with both ends inside; a scalar knob must lie inside.
#: Bounds are those of the operation: a blur sigma or noise level cannot be negative, a JPEG
#: quality / strength lies in 0..100, a probability in 0..1, a scale factor is positive.
_KNOB_RULES: dict[str, tuple[float, float, bool]] = {
    "sigma": (0.0, _INF, False), "side": (1, _INF, True), "noise": (0.0, 255.0, False),
    "jpeg": (0, 100, True), "motion_length": (0.0, _INF, False), "factor": (1e-6, _INF, False),
    "brightness": (0.0, _INF, False), "contrast": (0.0, _INF, False),
    "saturation": (0.0, _INF, False), "hue": (-0.5, 0.5, False),
    "p_up_bilinear": (0.0, 1.0, False), "p_gaussian": (0.0, 1.0, False),
    "p_color_shift": (0.0, 1.0, False), "p_gray": (0.0, 1.0, False),
    "p_color_jitter": (0.0, 1.0, False), "ref_size": (1, _INF, True),
    "side_ref_size": (1, _INF, True), "kernel_size": (1, _INF, True),
    "color_shift": (0.0, 255.0, False), "fixed_sigma": (0.0, _INF, False),
    "fixed_noise": (0.0, 255.0, False), "fixed_q": (0, 100, True),
    "lq_scale": (1e-6, 1.0, False),
}
_DOWN_MODES = ("bilinear", "bicubic")


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


@dataclass(frozen=True)
class Preset:
    """Base class. Subclasses are frozen dataclasses whose fields are the overridable knobs."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""

    @property
    def levels(self) -> tuple[str, ...]:
        return ()

    def lq_size(self, hq_size: int) -> int:
        return int(hq_size)

    def sample(self, rng: np.random.Generator, hq_size: int, level: str | None = None) -> dict:
        raise NotImplementedError

    def apply(self, hq: np.ndarray, params: dict) -> np.ndarray:
        raise NotImplementedError

    def override(self, **kw: Any) -> "Preset":
        """Copy with fields replaced (lists become tuples); unknown keys -> FRBenchError."""
        allowed = {f.name: f for f in dataclasses.fields(self)}
        bad = sorted(set(kw) - set(allowed))
        if bad:
            raise FRBenchError(f"preset '{self.name}': unknown override '{bad[0]}' "
                               f"(allowed: {', '.join(sorted(allowed))})")
        clean = {}
        for k, v in kw.items():
            cur = getattr(self, k)
            if isinstance(v, list):
                v = tuple(v)
            if isinstance(cur, tuple) and not isinstance(v, tuple):
                raise FRBenchError(f"preset '{self.name}': override '{k}' must be a list like "
                                   f"{list(cur)}, got {v!r}")
            if isinstance(cur, (int, float)) and not isinstance(cur, bool) and \
                    (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise FRBenchError(f"preset '{self.name}': override '{k}' must be a number, "
                                   f"got {v!r}")
            clean[k] = v
        out = dataclasses.replace(self, **clean)
        out.validate()
        return out

    def validate(self) -> None:
        """FRBenchError naming the knob when a value is outside what the operation allows."""
        for f in dataclasses.fields(self):
            k, v = f.name, getattr(self, f.name)
            if k == "down_modes":
                if not v or any(m not in _DOWN_MODES for m in v):
                    raise FRBenchError(f"preset '{self.name}': {k}: {list(v)} must be a non-empty "
                                       f"list of {', '.join(_DOWN_MODES)}")
                continue
            rule = _KNOB_RULES.get(k)
            if rule is None or isinstance(v, bool):
                continue
            lo, hi, integer = rule
            vals = list(v) if isinstance(v, tuple) else [v]
            shown = list(v) if isinstance(v, tuple) else v
            if isinstance(v, tuple) and len(vals) != 2:
                raise FRBenchError(f"preset '{self.name}': {k}: {shown} must be a range "
                                   "[low, high]")
            for x in vals:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) \
                        or (integer and int(x) != x):
                    raise FRBenchError(f"preset '{self.name}': {k}: {shown} must hold finite "
                                       f"{'integers' if integer else 'numbers'}")
                if not lo <= x <= hi:
                    bound = (f"within [{lo}, {hi}]" if hi != _INF else
                             "> 0" if k == "factor" else f">= {lo}")
                    raise FRBenchError(f"preset '{self.name}': {k}: {shown} must be {bound}")
            if len(vals) == 2 and vals[0] > vals[1]:
                raise FRBenchError(f"preset '{self.name}': {k}: {shown} must be [low, high] with "
                                   "low <= high")

    #: knobs recorded in manifests only when set away from their default (added after test sets
    #: were published, so that existing manifests stay byte-identical)
    _omit_if_default: ClassVar[tuple[str, ...]] = ("lq_scale",)

    def config(self) -> dict:
        """The preset's knobs (for manifests)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()
                if not (k in self._omit_if_default and v == defaults.get(k))}

    def _check(self, hq: np.ndarray) -> np.ndarray:
        x = np.asarray(hq, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != 3 or x.shape[0] != x.shape[1]:
            raise FRBenchError(f"preset '{self.name}': expected a square HWC RGB image, "
                               f"got shape {x.shape}")
        return x


def _grid(hq_size: int, lq_scale: float) -> int:
    """Side of the working (= LQ) grid of the same-size presets: ``round(hq_size * lq_scale)``."""
    return max(1, int(round(int(hq_size) * float(lq_scale))))


def _to_grid(x: np.ndarray, side: int) -> np.ndarray:
    """HQ -> the working grid with cv2.INTER_AREA (GPEN's and Panini's HQ resize); no-op at size."""
    return x if x.shape[0] == side else P.resize(x, side, "area")


def _check_factors(p: Preset) -> None:
    f = p.factors
    if not f or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x)
                    or int(x) != x or x < 1 for x in f):
        raise FRBenchError(f"preset '{p.name}': factors: {list(f)} must be positive integers")


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _SEED_MAX))


def _blur_from(x: np.ndarray, p: dict) -> np.ndarray:
    kind = p.get("blur", "none")
    if kind == "none":
        return x
    if kind == "motion":
        return P.motion_blur(x, p["motion_length"], p["motion_angle"])
    if p["sigma_x"] == p["sigma_y"]:  # isotropic: separable, same kernel
        return P.gaussian_blur_separable(x, p["sigma_x"], p["kernel_size"])
    return P.filter2d(x, P.gaussian_kernel(p["kernel_size"], p["sigma_x"], p["sigma_y"],
                                           p["theta"]))


# ---------------------------------------------------------------------------------- Panini MFR

@dataclass(frozen=True)
class PaniniMFR(Preset):
    """Panini-Net multi-degradation (MFR), the chain measured on its released pairs
    (measured on the example pairs of jianzhangcs/panini), at the LQ working grid (half the HQ size):

    1. HQ -> LQ grid with ``cv2.INTER_AREA`` (HQ 1024 -> 512 in the paper);
    2. Gaussian blur, sigma ~ U[sigma] px at 512 (full kernel ±3 sigma; sigma < 0.2 px: none);
    3. downsample to an s x s square, s integer ~ U{side} at 512 (the paper's "r in [10,200]" read
       as a pixel side), point-sampled (non-antialiased) bilinear or bicubic (``down_modes``);
    4. upsample back to the LQ grid: bilinear with probability ``p_up_bilinear`` else bicubic;
    5. per-channel Gaussian noise, delta ~ U[noise] (8-bit units; paper [0,25] read as defined at
       1024, hence [0,12.5] on the 512 grid, matching the measured 2-12);
    6. JPEG (4:2:0) at libjpeg quality ``100 - q``, q integer ~ U{jpeg} = [5,50] (the paper's q is a
       compression strength; measured qualities 57-95).
    Scaling: sigma and s scale with lq_size/512; noise and q do not. LQ = HQ/2.

    ``panini_mfr_literal`` sets ``literal=True``: r is a downsampling *factor* (side = L // r) and
    q a libjpeg *quality*, noise [0,25] at the LQ grid - the paper's words taken literally (much
    harsher than Panini's own test inputs).
    """

    name: ClassVar[str] = "panini_mfr"
    source: ClassVar[str] = "Panini-Net AAAI'22 Table 1; chain measured on jianzhangcs/panini examples"
    sigma: tuple = (0.0, 5.0)
    side: tuple = (10, 200)
    noise: tuple = (0.0, 12.5)
    jpeg: tuple = (5, 50)
    down_modes: tuple = ("bilinear", "bicubic")
    p_up_bilinear: float = 0.8
    ref_size: int = 512
    literal: bool = False

    def lq_size(self, hq_size: int) -> int:
        return max(1, int(hq_size) // 2)

    def sample(self, rng, hq_size, level=None):
        L = self.lq_size(hq_size)
        scale = L / self.ref_size
        sigma = _u(rng, *self.sigma) * scale
        r = int(rng.integers(int(self.side[0]), int(self.side[1]) + 1))
        if self.literal:
            side = max(1, L // r)
        else:
            side = max(1, int(round(r * scale)))
        p = {"blur": "gaussian" if sigma >= 0.2 * scale else "none",
             "sigma_x": sigma, "sigma_y": sigma, "theta": 0.0,
             "kernel_size": P.auto_kernel_size(sigma),
             "r": r, "side": side,
             "down_mode": str(self.down_modes[int(rng.integers(len(self.down_modes)))]),
             "up_mode": "bilinear" if rng.random() < self.p_up_bilinear else "bicubic",
             "noise_sigma": _u(rng, *self.noise), "noise_seed": _seed(rng)}
        q = int(rng.integers(int(self.jpeg[0]), int(self.jpeg[1]) + 1))
        p["q"] = q
        p["jpeg_quality"] = q if self.literal else 100 - q
        return p

    def apply(self, hq, params):
        x = self._check(hq)
        L = self.lq_size(x.shape[0])
        x = P.resize(x, L, "area")
        x = _blur_from(x, params)
        x = P.down_up(x, params["side"], params["down_mode"], params["up_mode"])
        x = P.gaussian_noise(x, params["noise_sigma"], params["noise_seed"])
        return P.jpeg(x, params["jpeg_quality"])


@dataclass(frozen=True)
class PaniniLadder(PaniniMFR):
    """Panini-Net Table 4 ladder: the same image, the same blur sigma / noise delta / JPEG q, only
    the downsampling changing, r in {16, 32, 64, 128} as a *factor* of the 512 LQ grid (bigger r =
    more degraded, as the table's increasing prior-usage ratio implies): side = max(1, round(L/r)).
    Fixed values (paper does not print them): sigma 2 px at 512 (scaled), delta 7 (the measured
    median), q 25 (quality 75); the noise seed is drawn per image and shared by the levels.
    Levels are named ``r016`` ...; ``factors`` overrides them (the 64 px built-in tier uses
    [2, 4, 8, 16], since 128x of a 32 px grid is below one pixel). Chain as ``panini_mfr``
    with bilinear down/up.
    """

    name: ClassVar[str] = "panini_ladder"
    source: ClassVar[str] = "Panini-Net AAAI'22 Table 4"
    factors: tuple = (16, 32, 64, 128)
    fixed_sigma: float = 2.0
    fixed_noise: float = 7.0
    fixed_q: int = 25

    @property
    def levels(self):
        return tuple(f"r{int(f):03d}" for f in self.factors)

    def validate(self):
        super().validate()
        _check_factors(self)

    def sample(self, rng, hq_size, level=None):
        L = self.lq_size(hq_size)
        noise_seed = _seed(rng)
        if level is None:
            level = self.levels[int(rng.integers(len(self.levels)))]
        if level not in self.levels:
            raise FRBenchError(f"preset '{self.name}': unknown level '{level}' "
                               f"(one of {', '.join(self.levels)})")
        r = int(self.factors[self.levels.index(level)])
        sigma = self.fixed_sigma * L / self.ref_size
        return {"level": level, "blur": "gaussian" if sigma > 0 else "none",
                "sigma_x": sigma, "sigma_y": sigma, "theta": 0.0,
                "kernel_size": P.auto_kernel_size(sigma) if sigma > 0 else 1,
                "r": r, "side": max(1, int(round(L / r))), "down_mode": "bilinear",
                "up_mode": "bilinear", "noise_sigma": float(self.fixed_noise),
                "noise_seed": noise_seed, "q": int(self.fixed_q),
                "jpeg_quality": 100 - int(self.fixed_q)}


# -------------------------------------------------------------------------------------- GPEN

@dataclass(frozen=True)
class GPEN(Preset):
    """GPEN (CVPR'21) paper degradation X = ((Y ⊛ k)↓s + n_σ)_JPEGq at the HQ grid, LQ = HQ size:

    k: Gaussian (iso/aniso as BasicSR, sigma ~ U[0.1,10] px at 512, 41 px kernel at 512) with
    probability ``p_gaussian``, else linear motion blur (length ~ U[motion_length] px at 512,
    angle ~ U[0,180)); the paper gives no kernel ranges, these are GFP-GAN's (the code GPEN
    released) plus an assumed motion range. s integer ~ U{10..200} read as Panini's measured
    target side at 1024 (scaled by hq/1024), non-antialiased bilinear down and up;
    noise sigma ~ U[0,25] per channel; JPEG quality 100 - q, q ~ U{5..50} (read as a compression
    strength, as for Panini which copied these ranges). Lengths scale with hq/512 (s with hq/1024).

    ``lq_scale`` (default 1: LQ = HQ size): the HQ is first resized (cv2.INTER_AREA, as GPEN's
    loader resizes its GT) to ``round(hq * lq_scale)`` and the chain runs on that grid, so the LQ
    has that size (the paper profile's 512 LQ from 1024 HQ). Lengths then scale with the grid / 512;
    the target side ``s`` stays an absolute face resolution (hq / 1024).
    """

    name: ClassVar[str] = "gpen"
    source: ClassVar[str] = "GPEN CVPR'21 Sec. 3"
    p_gaussian: float = 0.5
    sigma: tuple = (0.1, 10.0)
    kernel_size: int = 41
    motion_length: tuple = (5.0, 41.0)
    side: tuple = (10, 200)
    side_ref_size: int = 1024
    noise: tuple = (0.0, 25.0)
    jpeg: tuple = (5, 50)
    ref_size: int = 512
    lq_scale: float = 1.0

    def lq_size(self, hq_size):
        return _grid(hq_size, self.lq_scale)

    def sample(self, rng, hq_size, level=None):
        scale = self.lq_size(hq_size) / self.ref_size
        p: dict = {}
        if rng.random() < self.p_gaussian:
            aniso = bool(rng.random() < 0.5)
            sx = _u(rng, *self.sigma) * scale
            sy = _u(rng, *self.sigma) * scale if aniso else sx
            th = _u(rng, -math.pi, math.pi) if aniso else 0.0
            p.update(blur="gaussian", sigma_x=sx, sigma_y=sy, theta=th,
                     kernel_size=max(3, int(round(self.kernel_size * scale)) | 1))
        else:
            p.update(blur="motion", motion_length=max(1.0, _u(rng, *self.motion_length) * scale),
                     motion_angle=_u(rng, 0.0, 180.0))
        s = int(rng.integers(int(self.side[0]), int(self.side[1]) + 1))
        p.update(s=s, side=max(1, int(round(s * hq_size / self.side_ref_size))),
                 noise_sigma=_u(rng, *self.noise), noise_seed=_seed(rng))
        q = int(rng.integers(int(self.jpeg[0]), int(self.jpeg[1]) + 1))
        p.update(q=q, jpeg_quality=100 - q)
        return p

    def apply(self, hq, params):
        x = _to_grid(self._check(hq), self.lq_size(np.asarray(hq).shape[0]))
        x = _blur_from(x, params)
        x = P.down_up(x, params["side"], "bilinear", "bilinear")
        x = P.gaussian_noise(x, params["noise_sigma"], params["noise_seed"])
        return P.jpeg(x, params["jpeg_quality"])


# ------------------------------------------------------------------------------------ GFP-GAN

@dataclass(frozen=True)
class GFPGAN(Preset):
    """GFP-GAN's released training degradation (train_gfpgan_v1.yml + ffhq_degradation_dataset.py,
    TencentARC/GFPGAN options/train_gfpgan_v1.yml), LQ = HQ size:

    blur iso/aniso 0.5/0.5, kernel 41, sigma_x, sigma_y ~ U[0.1,10], theta ~ U[-pi,pi] (px at 512);
    downsample factor r ~ U[0.8,8] with cv2 INTER_LINEAR to int(W // r); per-channel noise
    ~ U[0,20]; JPEG quality int(U[60,100]); resize back INTER_LINEAR; colour shift p=0.3
    (U[-20/255, 20/255] per channel); grayscale p=0.01; torchvision ColorJitter p=0.3
    (brightness 0.5, contrast 0.5, saturation 1.5 upper, hue 0.1, random order); output quantised to
    8 bits (the dataset's round/clip). Sigma and kernel size scale with hq/512; r, noise, quality
    do not.

    ``lq_scale`` (default 1: LQ = HQ size): the HQ is first resized (cv2.INTER_AREA) to
    ``round(hq * lq_scale)`` and the chain runs on that grid (lengths scale with grid / 512), so a
    1024 HQ with ``lq_scale: 0.5`` is degraded exactly as GFP-GAN degrades its 512 px GT.
    """

    name: ClassVar[str] = "gfpgan"
    source: ClassVar[str] = "GFP-GAN CVPR'21 released config (options/train_gfpgan_v1.yml)"
    sigma: tuple = (0.1, 10.0)
    kernel_size: int = 41
    factor: tuple = (0.8, 8.0)
    noise: tuple = (0.0, 20.0)
    jpeg: tuple = (60, 100)
    p_color_shift: float = 0.3
    color_shift: float = 20.0
    p_gray: float = 0.01
    p_color_jitter: float = 0.3
    brightness: tuple = (0.5, 1.5)
    contrast: tuple = (0.5, 1.5)
    saturation: tuple = (0.0, 1.5)
    hue: tuple = (-0.1, 0.1)
    ref_size: int = 512
    lq_scale: float = 1.0

    def lq_size(self, hq_size):
        return _grid(hq_size, self.lq_scale)

    def sample(self, rng, hq_size, level=None):
        scale = self.lq_size(hq_size) / self.ref_size
        aniso = bool(rng.random() < 0.5)
        sx = _u(rng, *self.sigma) * scale
        sy = _u(rng, *self.sigma) * scale if aniso else sx
        th = _u(rng, -math.pi, math.pi) if aniso else 0.0
        p = {"blur": "gaussian", "sigma_x": sx, "sigma_y": sy, "theta": th,
             "kernel_size": max(3, int(round(self.kernel_size * scale)) | 1),
             "factor": _u(rng, *self.factor), "noise_sigma": _u(rng, *self.noise),
             "noise_seed": _seed(rng),
             "jpeg_quality": int(_u(rng, float(self.jpeg[0]), float(self.jpeg[1])))}
        shift = None
        if rng.random() < self.p_color_shift:
            c = self.color_shift / 255.0
            shift = [float(v) for v in rng.uniform(-c, c, 3)]
        p["color_shift"] = shift
        p["gray"] = bool(rng.random() < self.p_gray)
        jit = None
        if rng.random() < self.p_color_jitter:
            jit = {"order": [int(i) for i in rng.permutation(4)],
                   "brightness": _u(rng, *self.brightness), "contrast": _u(rng, *self.contrast),
                   "saturation": _u(rng, *self.saturation), "hue": _u(rng, *self.hue)}
        p["color_jitter"] = jit
        return p

    def apply(self, hq, params):
        x = self._check(hq)
        x = _to_grid(x, self.lq_size(x.shape[0]))
        n = x.shape[0]
        x = _blur_from(x, params)
        x = P.downsample(x, factor=params["factor"], mode="bilinear")
        x = P.gaussian_noise(x, params["noise_sigma"], params["noise_seed"])
        x = P.jpeg(x, params["jpeg_quality"])
        x = P.resize(x, n, "bilinear")
        if params.get("color_shift"):
            x = P.color_shift(x, params["color_shift"])
        if params.get("gray"):
            x = P.grayscale(x)
        j = params.get("color_jitter")
        if j:
            x = P.color_jitter(x, j["brightness"], j["contrast"], j["saturation"], j["hue"],
                               tuple(j["order"]))
        return P.quantize(x).astype(np.float32) / np.float32(255.0)


# --------------------------------------------------------------------------------------- SR

@dataclass(frozen=True)
class SR16Bilinear(Preset):
    """Panini-Net 16x face SR (Table 2/3): antialiased bilinear resize straight from the HQ
    (PIL ``Image.resize(BILINEAR)``, as measured on Panini's released 64 px inputs); no blur,
    noise or JPEG. LQ = HQ // factor (not upsampled back). ``factor`` is overridable: the 64 px
    built-in tier uses 8 (LQ 8 px) since 16x would leave 4 px.
    """

    name: ClassVar[str] = "sr16_bilinear"
    source: ClassVar[str] = "Panini-Net AAAI'22 Table 2; resize measured on jianzhangcs/panini examples"
    factor: int = 16

    def validate(self):
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or \
                not math.isfinite(self.factor) or int(self.factor) != self.factor or \
                self.factor < 1:
            raise FRBenchError(f"preset '{self.name}': factor: {self.factor!r} must be a positive "
                               "integer")

    def lq_size(self, hq_size):
        return max(1, int(hq_size) // int(self.factor))

    def sample(self, rng, hq_size, level=None):
        return {"factor": int(self.factor), "side": self.lq_size(hq_size)}

    def apply(self, hq, params):
        return P.resize(self._check(hq), params["side"], "pil_bilinear")


@dataclass(frozen=True)
class SRBicubic(Preset):
    """pSp super-resolution (CVPR'21, eladrich/pixel2style2pixel SR config): factor f ~ uniform choice
    over ``factors`` = {1,2,4,8,16,32}, ``BicubicDownSample(f)`` (Keys a=-0.5, reflect pad,
    stride-f), then back to the HQ size with PIL bilinear. LQ = HQ size. Factors are scale-free
    (not scaled); factors whose output is below one pixel or does not divide the size are skipped
    at sampling time.

    ``lq_scale`` (default 1): the HQ is first resized (cv2.INTER_AREA) to ``round(hq * lq_scale)``
    and the factors apply on that grid, LQ at that size: pSp's ``Resize(256)`` of the 1024 face
    before ``BicubicDownSample`` is ``lq_scale: 0.25`` (pSp resizes with PIL bilinear, antialiased;
    for a 4x integer reduction the area average differs from it by a small blur).
    """

    name: ClassVar[str] = "sr_bicubic"
    source: ClassVar[str] = "pSp CVPR'21 SR config (eladrich/pixel2style2pixel)"
    factors: tuple = (1, 2, 4, 8, 16, 32)
    lq_scale: float = 1.0

    def validate(self):
        super().validate()
        _check_factors(self)

    def lq_size(self, hq_size):
        return _grid(hq_size, self.lq_scale)

    def sample(self, rng, hq_size, level=None):
        g = self.lq_size(hq_size)
        ok = [int(f) for f in self.factors if g % int(f) == 0 and g // int(f) >= 1]
        if not ok:
            raise FRBenchError(f"preset '{self.name}': no factor in {list(self.factors)} divides "
                               f"the working size {g}")
        return {"factor": ok[int(rng.integers(len(ok)))]}

    def apply(self, hq, params):
        x = self._check(hq)
        x = _to_grid(x, self.lq_size(x.shape[0]))
        n = x.shape[0]
        return P.resize(P.psp_bicubic_downsample(x, params["factor"]), n, "pil_bilinear")


# ------------------------------------------------------------------------------------- table

@dataclass(frozen=True)
class PaniniMFRLiteral(PaniniMFR):
    """``panini_mfr`` with the paper's words taken literally: r in [10,200] a downsampling factor
    of the LQ grid, noise delta ~ U[0,25] at the LQ grid, JPEG libjpeg quality q ~ U{5..50}."""

    name: ClassVar[str] = "panini_mfr_literal"
    noise: tuple = (0.0, 25.0)
    literal: bool = True


PRESETS: dict[str, Preset] = {
    "panini_mfr": PaniniMFR(),
    "panini_mfr_literal": PaniniMFRLiteral(),
    "panini_ladder": PaniniLadder(),
    "gpen": GPEN(),
    "gfpgan": GFPGAN(),
    "sr16_bilinear": SR16Bilinear(),
    "sr_bicubic": SRBicubic(),
}


def get_preset(name: str, overrides: dict | None = None) -> Preset:
    """``PRESETS[name]`` with ``overrides`` applied; FRBenchError on an unknown name or key."""
    if name not in PRESETS:
        raise FRBenchError(f"unknown preset '{name}' (one of {', '.join(sorted(PRESETS))})")
    p = PRESETS[name]
    return p.override(**overrides) if overrides else p


def degrade(hq: np.ndarray, preset: Preset | str, rng: np.random.Generator,
            level: str | None = None) -> tuple[np.ndarray, dict]:
    """Draw params with ``rng`` and apply them: float32 HWC [0,1] -> (lq, params)."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    params = preset.sample(rng, int(np.asarray(hq).shape[0]), level=level)
    return preset.apply(hq, params), params
