"""Each preset's chain, in its order, against an independent rebuild from scipy / OpenCV / PIL /
numpy / torchvision with the parameters the preset drew; each colour jitter against
torchvision at non-neutral values. Every order test also shows that the same operations in a
wrong order (e.g. GFP-GAN's JPEG after the resize back) land far outside the tolerance."""
import io
import math

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from scipy import ndimage

from degradations import get_preset
from degradations import primitives as P
from core.seeding import rng_for

N = 96  # HQ side: big enough for every step to matter, small enough to be fast


def _hq(seed=0, n=N):
    """A colourful textured image (float32 HWC [0,1]); strongly blue, so RGB means and luma
    means differ (a contrast blended with the wrong mean is caught)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    base = np.stack([0.25 + 0.2 * np.sin(9 * x + 3 * y), 0.35 + 0.25 * np.cos(7 * y),
                     0.75 + 0.2 * np.sin(5 * x * y + 1)], -1)
    base[n // 4:n // 2, n // 3:2 * n // 3] *= 0.5
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


# ---------------------------------------------------------------- independent building blocks

def _correlate(x, k):
    """Per-channel correlation, mirror border (= OpenCV BORDER_REFLECT_101), in float64."""
    return np.stack([ndimage.correlate(x[..., c].astype(np.float64), k, mode="mirror")
                     for c in range(3)], -1).astype(np.float32)


def _gauss_kernel(size, sx, sy, theta):
    """The bivariate normal density on the integer grid (x along columns), normalised."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    inv = np.linalg.inv(rot @ np.diag([sx * sx, sy * sy]) @ rot.T)
    ax = np.arange(size) - size // 2
    pts = np.stack(np.meshgrid(ax, ax), -1).reshape(-1, 2)
    k = np.exp(-0.5 * np.einsum("ni,ij,nj->n", pts, inv, pts)).reshape(size, size)
    return k / k.sum()


def _blur(x, p):
    if p.get("blur", "none") == "none":
        return x
    if p["blur"] == "motion":
        return _correlate(x, P.motion_kernel(p["motion_length"], p["motion_angle"]))
    return _correlate(x, _gauss_kernel(p["kernel_size"], p["sigma_x"], p["sigma_y"], p["theta"]))


_CV = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}


def _cv_resize(x, w, h, mode):
    return x.copy() if (w, h) == x.shape[1::-1] else cv2.resize(x, (w, h), interpolation=_CV[mode])


def _noise(x, sigma, seed):
    """Documented draw: default_rng(seed).standard_normal((H, W, 3), float32) * sigma / 255."""
    z = np.random.default_rng(seed).standard_normal(x.shape, dtype=np.float32)
    return np.clip(x + z * np.float32(sigma / 255.0), 0, 1)


def _jpeg(x, q):
    """libjpeg (OpenCV's) at quality q, 4:2:0, from the 8-bit rounding of the float image."""
    u8 = np.clip(np.rint(x.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(q), cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(
        np.float32) / 255


def _pil(x, w, h, mode=Image.BILINEAR):
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c]), "F")
                                .resize((w, h), mode)) for c in range(3)], -1).astype(np.float32)


def _tv_jitter(x, j):
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    fns = [lambda a: TF.adjust_brightness(a, j["brightness"]),
           lambda a: TF.adjust_contrast(a, j["contrast"]),
           lambda a: TF.adjust_saturation(a, j["saturation"]),
           lambda a: TF.adjust_hue(a, j["hue"])]
    for i in j["order"]:
        t = fns[i](t)
    return t.permute(1, 2, 0).numpy()


def _close(ours, ref, what, mean_tol=2e-5):
    """Equal but for float rounding (a few 8-bit steps where a value sat on a rounding edge
    before JPEG/quantisation); -> the mean abs difference."""
    assert ours.shape == ref.shape, what
    d = float(np.abs(ours.astype(np.float64) - ref).mean())
    assert d < mean_tol, f"{what}: mean |diff| {d:.2e}"
    return d


def _far(ours, wrong, what, tol=2e-3):
    d = float(np.abs(ours.astype(np.float64) - wrong).mean())
    assert d > tol, f"{what}: the wrong order is only {d:.2e} away; the test could not see it"


def _draws(name, hq, want, overrides=None, n=60, level=None):
    """Parameters the preset draws from ``rng_for(0, name, i)``, the first that satisfy each
    predicate in ``want`` (so every branch of the chain is exercised)."""
    p = get_preset(name, overrides)
    out = {}
    for i in range(n):
        d = p.sample(rng_for(0, name, i), hq.shape[0], level=level)
        for k, pred in want.items():
            if k not in out and pred(d):
                out[k] = d
        if len(out) == len(want):
            return p, out
    raise AssertionError(f"no draw for {sorted(set(want) - set(out))}")


# ------------------------------------------------------------------------------- the presets

def _panini_ref(hq, d, order="paper"):
    L = hq.shape[0] // 2
    x = _cv_resize(hq, L, L, "area")
    x = _blur(x, d)
    small = _cv_resize(x, d["side"], d["side"], d["down_mode"])
    x = _cv_resize(small, L, L, d["up_mode"])
    if order == "jpeg-before-noise":
        return _noise(_jpeg(x, d["jpeg_quality"]), d["noise_sigma"], d["noise_seed"])
    return _jpeg(_noise(x, d["noise_sigma"], d["noise_seed"]), d["jpeg_quality"])


@pytest.mark.parametrize("name", ["panini_mfr", "panini_mfr_literal"])
def test_panini_mfr_chain(name):
    hq = _hq(1, 2 * N)
    p, ds = _draws(name, hq, {
        "blur-bicubic-down": lambda d: d["blur"] == "gaussian" and d["down_mode"] == "bicubic",
        "bilinear-down-bicubic-up": lambda d: d["down_mode"] == "bilinear" and
        d["up_mode"] == "bicubic",
        "no-blur": lambda d: d["blur"] == "none"} if name == "panini_mfr" else {
        "any": lambda d: d["side"] > 2})
    for what, d in ds.items():
        ours = p.apply(hq, d)
        assert ours.shape == (N, N, 3)
        _close(ours, _panini_ref(hq, d), f"{name} {what}")
    d = ds.get("blur-bicubic-down", ds.get("any"))
    _far(p.apply(hq, d), _panini_ref(hq, d, "jpeg-before-noise"), name)


def test_panini_ladder_chain_per_level():
    hq = _hq(2, 2 * N)
    p = get_preset("panini_ladder", {"factors": [2, 4, 8]})
    for level in p.levels:
        d = p.sample(rng_for(0, "ladder", "x"), hq.shape[0], level=level)
        assert (d["down_mode"], d["up_mode"]) == ("bilinear", "bilinear")
        assert d["side"] == round(N / int(level[1:]))
        _close(p.apply(hq, d), _panini_ref(hq, d), f"ladder {level}")


def _gpen_ref(hq, d, order="paper"):
    x = _blur(hq, d)
    if order == "noise-before-blur":
        x = _blur(_noise(hq, d["noise_sigma"], d["noise_seed"]), d)
        small = _cv_resize(x, d["side"], d["side"], "bilinear")
        return _jpeg(_cv_resize(small, N, N, "bilinear"), d["jpeg_quality"])
    small = _cv_resize(x, d["side"], d["side"], "bilinear")
    x = _cv_resize(small, N, N, "bilinear")
    return _jpeg(_noise(x, d["noise_sigma"], d["noise_seed"]), d["jpeg_quality"])


def test_gpen_chain():
    hq = _hq(3)
    p, ds = _draws("gpen", hq, {
        "iso": lambda d: d["blur"] == "gaussian" and d["sigma_x"] == d["sigma_y"],
        "aniso": lambda d: d["blur"] == "gaussian" and d["sigma_x"] != d["sigma_y"],
        "motion": lambda d: d["blur"] == "motion"}, n=200)
    for what, d in ds.items():
        _close(p.apply(hq, d), _gpen_ref(hq, d), f"gpen {what}")
    d = ds["motion"]
    _far(p.apply(hq, d), _gpen_ref(hq, d, "noise-before-blur"), "gpen")


def _gfpgan_ref(hq, d, order="released"):
    n = hq.shape[0]
    x = _blur(hq, d)
    side = max(1, int(n // d["factor"]))
    x = _cv_resize(x, side, side, "bilinear")
    x = _noise(x, d["noise_sigma"], d["noise_seed"])
    if order == "jpeg-after-resize-back":
        x = _jpeg(_cv_resize(x, n, n, "bilinear"), d["jpeg_quality"])
    else:
        x = _cv_resize(_jpeg(x, d["jpeg_quality"]), n, n, "bilinear")
    if d["color_shift"]:
        x = np.clip(x + np.asarray(d["color_shift"], np.float32), 0, 1)
    if d["gray"]:
        g = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        x = np.repeat(g[..., None], 3, 2)
    if d["color_jitter"]:
        x = _tv_jitter(x, d["color_jitter"])
    return np.clip(np.rint(x.astype(np.float64) * 255), 0, 255) / 255


def test_gfpgan_chain():
    hq = _hq(4)
    always = {"p_color_shift": 1.0, "p_color_jitter": 1.0}
    p, ds = _draws("gfpgan", hq, {"colour": lambda d: d["factor"] > 2.5 and
                                  d["sigma_x"] != d["sigma_y"]}, overrides=always)
    _, gray = _draws("gfpgan", hq, {"gray": lambda d: d["factor"] < 3},
                     overrides={"p_gray": 1.0, "p_color_jitter": 0.0})
    _, plain = _draws("gfpgan", hq, {"plain": lambda d: not d["color_shift"] and
                                     not d["color_jitter"] and d["sigma_x"] == d["sigma_y"]},
                      n=200)
    for what, d in {**ds, **gray, **plain}.items():
        ours = p.apply(hq, d)
        assert np.array_equal(np.rint(ours * 255) / 255, ours)  # quantised to 8 bits
        _close(ours, _gfpgan_ref(hq, d), f"gfpgan {what}", mean_tol=2e-4)
    for what, d in (("colour", ds["colour"]), ("plain", plain["plain"])):
        _far(p.apply(hq, d), _gfpgan_ref(hq, d, "jpeg-after-resize-back"), f"gfpgan {what}")


def test_sr16_bilinear_chain():
    hq = _hq(5)
    p = get_preset("sr16_bilinear", {"factor": 8})
    d = p.sample(rng_for(0, "sr16"), N)
    ours = p.apply(hq, d)
    ref = _pil(hq, N // 8, N // 8)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    # antialiased (PIL), not point-sampled
    assert float(np.abs(ref - _cv_resize(hq, N // 8, N // 8, "bilinear")).mean()) > 5e-3


def _psp_down(x, f):
    """pSp BicubicDownSample written out: Keys a=-0.5 taps, reflect pad, strided conv."""
    def keys(t, a=-0.5):
        t = abs(t)
        return ((a + 2) * t ** 3 - (a + 3) * t ** 2 + 1 if t <= 1 else
                a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a if t < 2 else 0.0)
    size = 4 * f
    k = torch.tensor([keys((i - math.floor(size / 2) + 0.5) / f) for i in range(size)],
                     dtype=torch.float64)
    k = k / k.sum()
    t = torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]
    pad = size - f
    t = torch.nn.functional.pad(t, (0, 0, pad // 2, pad - pad // 2), "reflect")
    t = torch.nn.functional.conv2d(t, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), stride=(f, 1),
                                   groups=3)
    t = torch.nn.functional.pad(t, (pad // 2, pad - pad // 2, 0, 0), "reflect")
    t = torch.nn.functional.conv2d(t, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), stride=(1, f),
                                   groups=3)
    return t.clamp(0, 1)[0].permute(1, 2, 0).numpy().astype(np.float32)


def test_sr_bicubic_chain():
    hq = _hq(6)
    p = get_preset("sr_bicubic")
    seen = set()
    for i in range(40):
        d = p.sample(rng_for(0, "srb", i), N)
        if d["factor"] in seen:
            continue
        seen.add(d["factor"])
        f = d["factor"]
        ref = _pil(_psp_down(hq, f), N, N)
        np.testing.assert_allclose(p.apply(hq, d), ref, rtol=0, atol=2e-6, err_msg=str(f))
    assert seen == {1, 2, 4, 8, 16, 32}


# ----------------------------------------------------------------------------- colour jitter

@pytest.mark.parametrize("f", [0.55, 1.4])
def test_brightness_matches_torchvision(f):
    x = _hq(7)
    np.testing.assert_allclose(P.adjust_brightness(x, f), _tv_jitter(
        x, {"order": [0], "brightness": f}), rtol=0, atol=1e-6)


@pytest.mark.parametrize("f", [0.5, 1.45])
def test_contrast_blends_with_the_mean_luma_like_torchvision(f):
    x = _hq(8)
    ours = P.adjust_contrast(x, f)
    ref = _tv_jitter(x, {"order": [1], "contrast": f})
    # torchvision's luma weights are 0.2989/0.587/0.114 (ours BT.601 0.299): 1e-4 of a mean
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)
    wrong = np.clip(x * f + (1 - f) * x.mean(), 0, 1)  # blended with the RGB mean instead
    assert np.abs(wrong - ref).max() > 2e-2


@pytest.mark.parametrize("f", [0.0, 0.3, 1.5])
def test_saturation_matches_torchvision(f):
    x = _hq(9)
    np.testing.assert_allclose(P.adjust_saturation(x, f), _tv_jitter(
        x, {"order": [2], "saturation": f}), rtol=0, atol=1e-4)


@pytest.mark.parametrize("h", [-0.45, -0.08, 0.1, 0.3])
def test_hue_matches_torchvision(h):
    x = _hq(10)
    ours = P.adjust_hue(x, h)
    np.testing.assert_allclose(ours, _tv_jitter(x, {"order": [3], "hue": h}), rtol=0, atol=2e-5)
    assert np.abs(ours - x).mean() > 1e-2


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_color_jitter_applies_in_the_drawn_order(order):
    x = _hq(11)
    j = {"order": list(order), "brightness": 1.3, "contrast": 0.6, "saturation": 1.4, "hue": 0.07}
    ours = P.color_jitter(x, j["brightness"], j["contrast"], j["saturation"], j["hue"], order)
    np.testing.assert_allclose(ours, _tv_jitter(x, j), rtol=0, atol=2e-4)
    other = _tv_jitter(x, {**j, "order": list(order[::-1])})
    assert np.abs(ours - other).mean() > 5e-3


def test_color_shift_and_grayscale():
    x = _hq(12)
    shift = (0.05, -0.07, 0.02)
    np.testing.assert_allclose(P.color_shift(x, shift),
                               np.clip(x + np.array(shift, np.float32), 0, 1), rtol=0, atol=0)
    g = P.grayscale(x)
    ref = np.asarray(Image.fromarray((x * 255).round().astype(np.uint8)).convert("L"),
                     np.float32) / 255
    assert np.abs(g[..., 0] - ref).max() <= 1 / 255 + 1e-6  # PIL's ITU-R 601-2 luma, 8-bit
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 0], g[..., 2])


def test_pil_jpeg_reference_agrees_with_the_cv2_one():
    """The chain references use OpenCV's libjpeg; PIL's (another build) is close to it, so the
    references are not just the implementation's own codec calls repeated."""
    x = _hq(13)
    u8 = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=70, subsampling=2)
    pil = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255
    assert np.abs(_jpeg(x, 70) - pil).mean() < 2 / 255
    np.testing.assert_array_equal(P.jpeg(x, 70), _jpeg(x, 70))
