"""Degradation primitives against independent computations; presets' ranges and contracts."""
import math

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from degradations import DEGRADATIONS, PRESETS, degrade, get_preset
from degradations import primitives as P
from core.errors import FRBenchError
from core.imageio import to_float


def _img(n=48, seed=0):
    """A smooth + textured test image (float32 HWC [0,1])."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n] / n
    base = np.stack([0.5 + 0.3 * np.sin(6 * x), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.3 * x * y], -1)
    return np.clip(base + rng.normal(0, 0.08, (n, n, 3)), 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------- blur

def test_gaussian_kernel_matches_bivariate_normal_pdf():
    sx, sy, th, size = 3.0, 1.5, 0.6, 21
    k = P.gaussian_kernel(size, sx, sy, th)
    c, s = math.cos(th), math.sin(th)
    R = np.array([[c, -s], [s, c]])
    cov = R @ np.diag([sx ** 2, sy ** 2]) @ R.T
    ax = np.arange(size) - size // 2
    xx, yy = np.meshgrid(ax, ax)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    pdf = np.exp(-0.5 * np.einsum("ni,ij,nj->n", pts, np.linalg.inv(cov), pts)).reshape(size, size)
    np.testing.assert_allclose(k, pdf / pdf.sum(), rtol=1e-10, atol=1e-14)
    # second moments of a wide kernel approach the covariance
    k2 = P.gaussian_kernel(61, sx, sy, th)
    ax = np.arange(61) - 30
    xx, yy = np.meshgrid(ax, ax)
    m = np.array([[(k2 * xx * xx).sum(), (k2 * xx * yy).sum()],
                  [(k2 * xx * yy).sum(), (k2 * yy * yy).sum()]])
    np.testing.assert_allclose(m, cov, atol=2e-3)


def test_iso_blur_matches_scipy_gaussian_filter():
    img = _img()
    sigma = 1.7
    out = P.gaussian_blur(img, sigma)  # size 2*ceil(3σ)+1 -> radius ceil(3σ)
    radius = math.ceil(3 * sigma)
    ref = np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), sigma, mode="mirror",
                                            truncate=radius / sigma) for c in range(3)], -1)
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_aniso_blur_matches_scipy_convolve():
    img = _img()
    k = P.gaussian_kernel(15, 2.5, 0.8, 1.1)
    out = P.filter2d(img, k)
    # filter2D correlates; ndimage.correlate with 'mirror' = cv2 BORDER_REFLECT_101
    ref = np.stack([ndimage.correlate(img[..., c].astype(np.float64), k, mode="mirror")
                    for c in range(3)], -1)
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_motion_kernel_geometry():
    k0 = P.motion_kernel(9, 0.0)
    assert k0.shape[0] % 2 == 1 and abs(k0.sum() - 1) < 1e-12
    c = k0.shape[0] // 2
    assert np.allclose(k0[c].sum(), 1.0)  # horizontal line in the centre row
    cols = np.flatnonzero(k0[c] > 1e-3)
    assert 8 <= cols.max() - cols.min() + 1 <= 11
    k90 = P.motion_kernel(9, 90.0)
    np.testing.assert_allclose(k90, k0.T, atol=1e-9)
    # blur of a point = the kernel itself
    img = np.zeros((31, 31, 3), np.float32)
    img[15, 15] = 1
    out = P.motion_blur(img, 7, 30.0)
    k = P.motion_kernel(7, 30.0)
    r = k.shape[0] // 2
    np.testing.assert_allclose(out[15 - r:15 + r + 1, 15 - r:15 + r + 1, 0], k[::-1, ::-1], atol=1e-6)


# -------------------------------------------------------------------------------- resize

def test_bilinear_downsample_is_point_sampled_like_map_coordinates():
    img = _img(64)
    out = P.resize(img, 20, "bilinear")
    scale = 64 / 20
    coords = (np.arange(20) + 0.5) * scale - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    ref = np.stack([ndimage.map_coordinates(img[..., c].astype(np.float64), [yy, xx], order=1,
                                            mode="nearest") for c in range(3)], -1)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_pil_bilinear_is_antialiased_like_pil_uint8():
    u8 = (np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8)
    out = P.resize(to_float(u8), 8, "pil_bilinear")
    ref = np.asarray(Image.fromarray(u8).resize((8, 8), Image.BILINEAR), np.float32) / 255
    assert np.abs(out - ref).max() <= 1.01 / 255
    # antialiased: noise averages out much more than point sampling
    assert out.std() < 0.5 * P.resize(to_float(u8), 8, "bilinear").std()


def test_area_downsample_is_block_mean():
    img = _img(64)
    out = P.resize(img, 16, "area")
    ref = img.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_downsample_factor_rule_and_down_up():
    img = _img(64)
    assert P.downsample(img, factor=3.3).shape == (19, 19, 3)  # int(64 // 3.3)
    assert P.downsample(img, factor=200).shape == (1, 1, 3)
    assert P.downsample(img, size=10, mode="bicubic").shape == (10, 10, 3)
    assert P.down_up(img, 10).shape == img.shape
    with pytest.raises(ValueError):
        P.downsample(img)


@pytest.mark.parametrize("factor", [1, 2, 4, 8, 16])
def test_psp_bicubic_matches_torch_strided_conv(factor):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    img = _img(64)

    def keys(x, a=-0.5):  # written out again, as in pSp's BicubicDownSample
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0

    size = 4 * factor
    k = torch.tensor([keys((i - math.floor(size / 2) + 0.5) / factor) for i in range(size)],
                     dtype=torch.float64)
    k = k / k.sum()
    t = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None]
    pad = size - factor
    y = F.pad(t, (0, 0, pad // 2, pad - pad // 2), "reflect")
    y = F.conv2d(y, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), stride=(factor, 1), groups=3)
    y = F.pad(y, (pad // 2, pad - pad // 2, 0, 0), "reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), stride=(1, factor), groups=3)
    ref = y.clamp(0, 1)[0].permute(1, 2, 0).numpy()
    out = P.psp_bicubic_downsample(img, factor)
    assert out.shape == (64 // factor, 64 // factor, 3)
    np.testing.assert_allclose(out, ref, atol=1e-6)


# --------------------------------------------------------------------------------- noise

def test_gaussian_noise_statistics():
    img = np.full((256, 256, 3), 0.5, np.float32)
    out = P.gaussian_noise(img, 10.0, seed=7)
    d = (out - img).astype(np.float64)
    assert abs(d.mean()) < 1e-3
    np.testing.assert_allclose(d.reshape(-1, 3).std(0), 10 / 255, rtol=0.02)
    corr = np.corrcoef(d.reshape(-1, 3).T)
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.02  # channel-wise independent
    g = P.gaussian_noise(img, 10.0, seed=7, gray=True)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    assert np.array_equal(out, P.gaussian_noise(img, 10.0, seed=7))
    assert not np.array_equal(out, P.gaussian_noise(img, 10.0, seed=8))
    assert P.gaussian_noise(np.ones_like(img), 50, seed=1).max() <= 1.0  # clipped


# ---------------------------------------------------------------------------------- JPEG

def test_jpeg_size_and_error_monotone_in_quality():
    img = _img(64)
    qs = [10, 30, 50, 70, 90]
    sizes = [P.jpeg_bytes(img, q) for q in qs]
    errs = [float(np.mean((P.jpeg(img, q) - img) ** 2)) for q in qs]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    assert errs == sorted(errs, reverse=True)
    assert np.array_equal(P.jpeg(img, 40), P.jpeg(img, 40))  # deterministic


def test_jpeg_close_to_pil_420():
    import io

    img = _img(64)
    u8 = P.quantize(img)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=60, subsampling=2)
    ref = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255
    out = P.jpeg(img, 60)
    assert np.abs(out - ref).mean() < 2 / 255  # same codec family, same tables and subsampling
    with pytest.raises(ValueError):
        P.jpeg(img, 0)


# -------------------------------------------------------------------------------- colour

def test_grayscale_weights_match_cv2():
    img = _img()
    out = P.grayscale(img)
    ref = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(out[..., 0], ref, atol=1e-6)
    assert np.array_equal(out[..., 0], out[..., 2])
    assert abs(sum(P.GRAY_WEIGHTS) - 1) < 1e-12


def test_color_jitter_identities():
    img = _img()
    np.testing.assert_allclose(P.color_jitter(img), img, atol=1e-5)  # all neutral
    np.testing.assert_allclose(P.adjust_saturation(img, 0.0), P.grayscale(img), atol=1e-6)
    np.testing.assert_allclose(P.adjust_hue(img, 1.0), img, atol=1e-4)  # a full turn
    np.testing.assert_allclose(P.color_shift(img, (0.1, 0, 0))[..., 1], img[..., 1])


def test_degradations_table_is_explicit():
    assert {"gaussian_blur", "motion_blur", "downsample", "gaussian_noise", "jpeg", "grayscale",
            "color_jitter"} <= set(DEGRADATIONS)


# ------------------------------------------------------------------------------- presets

N_DRAWS = 500


def _draws(name, hq_size=512, **kw):
    p = get_preset(name, kw or None)
    rng = np.random.default_rng(123)
    return p, [p.sample(rng, hq_size) for _ in range(N_DRAWS)]


def test_panini_mfr_ranges():
    p, ds = _draws("panini_mfr", 1024)
    assert p.lq_size(1024) == 512
    for d in ds:
        assert 0 <= d["sigma_x"] <= 5 and 10 <= d["r"] <= 200 and d["side"] == d["r"]
        assert 0 <= d["noise_sigma"] <= 12.5 and 5 <= d["q"] <= 50
        assert d["jpeg_quality"] == 100 - d["q"]
        assert d["down_mode"] in ("bilinear", "bicubic") and d["up_mode"] in ("bilinear", "bicubic")
    ups = [d["up_mode"] for d in ds]
    assert 0.7 < ups.count("bilinear") / len(ups) < 0.9
    # scaled at the 64 px tier: side and sigma shrink by 32/512, noise and quality do not
    _, small = _draws("panini_mfr", 64)
    assert all(1 <= d["side"] <= round(200 / 16) and d["sigma_x"] <= 5 / 16 + 1e-9 for d in small)
    assert max(d["noise_sigma"] for d in small) > 11 and min(d["jpeg_quality"] for d in small) < 55


def test_panini_mfr_literal_ranges():
    _, ds = _draws("panini_mfr_literal", 1024)
    for d in ds:
        assert d["side"] == max(1, 512 // d["r"]) and d["jpeg_quality"] == d["q"]
        assert 5 <= d["jpeg_quality"] <= 50 and 0 <= d["noise_sigma"] <= 25


def test_gpen_ranges():
    _, ds = _draws("gpen", 512)
    kinds = {d["blur"] for d in ds}
    assert kinds == {"gaussian", "motion"}
    for d in ds:
        if d["blur"] == "gaussian":
            assert 0.1 <= d["sigma_x"] <= 10 and 0.1 <= d["sigma_y"] <= 10
        else:
            assert 5 <= d["motion_length"] <= 41 and 0 <= d["motion_angle"] < 180
        assert 10 <= d["s"] <= 200 and d["side"] == max(1, round(d["s"] / 2))
        assert 0 <= d["noise_sigma"] <= 25 and 50 <= d["jpeg_quality"] <= 95


def test_gfpgan_ranges():
    _, ds = _draws("gfpgan", 512)
    for d in ds:
        assert 0.1 <= d["sigma_x"] <= 10 and 0.1 <= d["sigma_y"] <= 10
        assert -math.pi <= d["theta"] <= math.pi and d["kernel_size"] == 41
        assert 0.8 <= d["factor"] <= 8 and 0 <= d["noise_sigma"] <= 20
        assert 60 <= d["jpeg_quality"] <= 100
        if d["color_shift"]:
            assert max(abs(v) for v in d["color_shift"]) <= 20 / 255
        if d["color_jitter"]:
            j = d["color_jitter"]
            assert 0.5 <= j["brightness"] <= 1.5 and 0 <= j["saturation"] <= 1.5
            assert -0.1 <= j["hue"] <= 0.1 and sorted(j["order"]) == [0, 1, 2, 3]
    frac = np.mean([d["color_shift"] is not None for d in ds])
    assert 0.22 < frac < 0.38
    assert np.mean([d["gray"] for d in ds]) < 0.04


def test_sr_presets():
    p, ds = _draws("sr16_bilinear", 1024)
    assert p.lq_size(1024) == 64 and all(d["side"] == 64 for d in ds)
    p8 = get_preset("sr16_bilinear", {"factor": 8})
    assert p8.lq_size(64) == 8
    lq = p8.apply(_img(64), p8.sample(np.random.default_rng(0), 64))
    assert lq.shape == (8, 8, 3)
    _, ds = _draws("sr_bicubic", 256)
    fs = [d["factor"] for d in ds]
    assert set(fs) == {1, 2, 4, 8, 16, 32}
    assert min(fs.count(f) for f in set(fs)) > N_DRAWS / 6 * 0.6


def test_ladder_levels_share_everything_but_r():
    p = get_preset("panini_ladder")
    assert p.levels == ("r016", "r032", "r064", "r128")
    draws = [p.sample(np.random.default_rng(5), 1024, level=lv) for lv in p.levels]
    assert [d["r"] for d in draws] == [16, 32, 64, 128]
    assert [d["side"] for d in draws] == [32, 16, 8, 4]
    for key in ("sigma_x", "noise_sigma", "noise_seed", "jpeg_quality"):
        assert len({d[key] for d in draws}) == 1
    p2 = get_preset("panini_ladder", {"factors": [2, 4, 8, 16]})
    assert p2.levels == ("r002", "r004", "r008", "r016")
    hq = _img(64)
    errs = [float(np.mean((p2.apply(hq, p2.sample(np.random.default_rng(5), 64, level=lv))
                           - P.resize(hq, 32, "area")) ** 2)) for lv in p2.levels]
    assert errs == sorted(errs)  # more degraded up the ladder
    with pytest.raises(FRBenchError, match="unknown level"):
        p.sample(np.random.default_rng(0), 64, level="r999")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_apply_contract(name):
    p = PRESETS[name] if name != "panini_ladder" else get_preset(name, {"factors": [2, 4]})
    if name == "sr16_bilinear":
        p = get_preset(name, {"factor": 8})
    hq, hq2 = _img(64, 1), _img(64, 2)
    lq, params = degrade(hq, p, np.random.default_rng(9))
    assert lq.dtype == np.float32 and lq.shape == (p.lq_size(64), p.lq_size(64), 3)
    assert 0 <= lq.min() and lq.max() <= 1
    import json

    params2 = json.loads(json.dumps(params))  # JSON-serialisable
    assert np.array_equal(p.apply(hq, params2), lq)  # deterministic given params
    lq2 = p.apply(hq2, params2)  # same params on another image (UDRL positive pairs)
    assert lq2.shape == lq.shape and not np.array_equal(lq2, lq)


def test_overrides_and_unknown_preset():
    with pytest.raises(FRBenchError, match="unknown preset 'nope'"):
        get_preset("nope")
    with pytest.raises(FRBenchError, match="unknown override 'factr'.*factor"):
        get_preset("sr16_bilinear", {"factr": 8})
    with pytest.raises(FRBenchError, match="must be a number"):
        get_preset("gfpgan", {"p_gray": "x"})
    with pytest.raises(FRBenchError, match="must be a list"):
        get_preset("gfpgan", {"noise": 3})
    with pytest.raises(FRBenchError, match="positive integer"):
        get_preset("sr16_bilinear", {"factor": 0})
    assert get_preset("gfpgan", {"noise": [0, 5]}).noise == (0, 5)
    assert PRESETS["gfpgan"].noise == (0.0, 20.0)  # the table entry is untouched


def test_separable_iso_blur_equals_2d_kernel():
    img = _img()
    for sigma, size in ((0.7, 5), (3.0, 41)):
        np.testing.assert_allclose(P.gaussian_blur_separable(img, sigma, size),
                                   P.filter2d(img, P.gaussian_kernel(size, sigma)), atol=2e-6)


# ------------------------------------------------------------------- lq_scale (paper profile)

@pytest.mark.parametrize("name,scale", [("gfpgan", 0.5), ("sr_bicubic", 0.25)])
def test_lq_scale_degrades_the_area_resized_hq(name, scale):
    """``lq_scale``: the same draws as the preset at the smaller HQ size, applied to the HQ
    area-resized to that grid (GFP-GAN degrades its 512 GT; pSp its 256 resize)."""
    hq = _img(64, seed=3)
    small = P.resize(hq, int(64 * scale), "area")
    p_scaled, p_plain = get_preset(name, {"lq_scale": scale}), get_preset(name)
    assert p_scaled.lq_size(64) == int(64 * scale) and p_plain.lq_size(64) == 64
    for seed in range(4):
        a = p_scaled.sample(np.random.default_rng(seed), 64)
        b = p_plain.sample(np.random.default_rng(seed), int(64 * scale))
        assert a == b
        np.testing.assert_array_equal(p_scaled.apply(hq, a), p_plain.apply(small, b))


def test_gpen_lq_scale_keeps_the_face_resolution():
    """GPEN at lq_scale 0.5: LQ on the half grid, blur lengths scaled to that grid, the target
    side ``s`` an absolute face resolution (hq / 1024), as at lq_scale 1."""
    p, q = get_preset("gpen", {"lq_scale": 0.5}), get_preset("gpen")
    hq = _img(128, seed=1)
    for seed in range(6):
        a, b = p.sample(np.random.default_rng(seed), 128), q.sample(np.random.default_rng(seed), 128)
        assert a["side"] == b["side"] and a["s"] == b["s"]
        for k in ("sigma_x", "motion_length"):
            if k in a:
                assert a[k] == pytest.approx(max(b[k] / 2, 1.0) if k == "motion_length" else b[k] / 2)
        assert p.apply(hq, a).shape == (64, 64, 3)


def test_lq_scale_is_validated_and_absent_from_default_manifests():
    with pytest.raises(FRBenchError, match="lq_scale"):
        get_preset("gfpgan", {"lq_scale": 1.5})
    with pytest.raises(FRBenchError, match="lq_scale"):
        get_preset("gpen", {"lq_scale": 0})
    for name in ("gpen", "gfpgan", "sr_bicubic"):
        assert "lq_scale" not in get_preset(name).config()   # built-in manifests unchanged
        assert get_preset(name, {"lq_scale": 0.5}).config()["lq_scale"] == 0.5
