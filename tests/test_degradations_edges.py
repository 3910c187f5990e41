"""Boundaries of the degradation knobs and rarely taken paths: every bounded knob accepts its
limits and refuses just beyond them; resize's ``psp_bicubic`` mode; upsampling factors;
non-square inputs; JPEG quality limits; the ladder without blur; tiny LQ sizes; params checks."""
import dataclasses
import math

import numpy as np
import pytest

from core.errors import FRBenchError
from degradations import PRESETS, get_preset
from degradations import primitives as P
from degradations.presets import _KNOB_RULES


def _img(h=64, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((h, w, 3)).astype(np.float32)


INF = float("inf")
# What each operation allows, written out here (not read from the code under test): blur sizes
# and lengths are non-negative, integer pixel sides/kernels at least 1, noise levels and colour
# shifts in 8-bit units 0..255, JPEG qualities/strengths 0..100 (integers), probabilities 0..1,
# jitter factors non-negative, hue a fraction of a turn in [-0.5, 0.5], a scale factor > 0,
# the LQ grid's fraction of the HQ size in (0, 1].
LIMITS = {
    "sigma": (0.0, INF, False), "side": (1, INF, True), "noise": (0.0, 255.0, False),
    "jpeg": (0, 100, True), "motion_length": (0.0, INF, False), "factor": (1e-6, INF, False),
    "brightness": (0.0, INF, False), "contrast": (0.0, INF, False),
    "saturation": (0.0, INF, False), "hue": (-0.5, 0.5, False),
    "p_up_bilinear": (0.0, 1.0, False), "p_gaussian": (0.0, 1.0, False),
    "p_color_shift": (0.0, 1.0, False), "p_gray": (0.0, 1.0, False),
    "p_color_jitter": (0.0, 1.0, False), "ref_size": (1, INF, True),
    "side_ref_size": (1, INF, True), "kernel_size": (1, INF, True),
    "color_shift": (0.0, 255.0, False), "fixed_sigma": (0.0, INF, False),
    "fixed_noise": (0.0, 255.0, False), "fixed_q": (0, 100, True),
    "lq_scale": (1e-6, 1.0, False),  # the LQ grid as a fraction of the HQ size: > 0, at most 1
}


def test_every_knob_has_its_limits():
    assert set(_KNOB_RULES) == set(LIMITS)
    knobs = {f.name for p in PRESETS.values() for f in dataclasses.fields(p)}
    assert knobs - set(LIMITS) == {"down_modes", "factors", "literal"}  # checked on their own


def _knobs():
    """(preset, knob, low, high, integer, is_range) for every bounded knob of every preset
    (sr16_bilinear's integer ``factor`` has its own check, tested below)."""
    out = []
    for name, p in sorted(PRESETS.items()):
        for f in dataclasses.fields(p):
            if f.name in LIMITS and (name, f.name) != ("sr16_bilinear", "factor"):
                lo, hi, integer = LIMITS[f.name]
                out.append((name, f.name, lo, hi, integer, isinstance(getattr(p, f.name), tuple)))
    return out


@pytest.mark.parametrize("name,knob,lo,hi,integer,is_range", _knobs(),
                         ids=[f"{k[0]}-{k[1]}" for k in _knobs()])
def test_knob_limits(name, knob, lo, hi, integer, is_range):
    wrap = (lambda a, b: [a, b]) if is_range else (lambda a, b: a)
    top = hi if math.isfinite(hi) else lo + 1000
    get_preset(name, {knob: wrap(lo, top)})  # both limits are allowed
    step = 1 if integer else 1e-3
    with pytest.raises(FRBenchError, match=rf"'{name}': {knob}: .*must be"):
        get_preset(name, {knob: wrap(lo - step, top)})
    if math.isfinite(hi):
        with pytest.raises(FRBenchError, match=rf"{knob}: .*must be"):
            get_preset(name, {knob: wrap(lo, hi + step) if is_range else hi + step})
    mid = lo + (1 if integer else 0.5) if math.isfinite(hi) and hi - lo >= 1 else (lo + top) / 2
    if integer:
        with pytest.raises(FRBenchError, match="must hold finite integers"):
            get_preset(name, {knob: wrap(lo + 0.5, top)})
    else:
        get_preset(name, {knob: wrap(lo + 0.25 * (top - lo), top)})  # not an integer: fine
    if is_range:
        with pytest.raises(FRBenchError, match="low <= high"):
            get_preset(name, {knob: [top, mid] if top > mid else [mid + 1, mid]})


def test_factor_lists_and_sr16_factor():
    assert get_preset("panini_ladder", {"factors": [1, 2]}).levels == ("r001", "r002")
    assert get_preset("sr_bicubic", {"factors": [1]}).sample(np.random.default_rng(0), 64) == \
        {"factor": 1}
    for bad in ([0, 2], [1.5], [True], []):
        with pytest.raises(FRBenchError, match="factors: .* must be positive integers"):
            get_preset("panini_ladder", {"factors": bad})
    p1 = get_preset("sr16_bilinear", {"factor": 1})
    assert p1.lq_size(64) == 64
    np.testing.assert_allclose(p1.apply(_img(), p1.sample(None, 64)), _img(), atol=1e-6)
    assert get_preset("sr16_bilinear", {"factor": 64}).lq_size(64) == 1
    assert get_preset("sr16_bilinear", {"factor": 128}).lq_size(64) == 1  # never 0 px
    for bad in (0, 2.5, -16):
        with pytest.raises(FRBenchError, match="factor: .* must be a positive integer"):
            get_preset("sr16_bilinear", {"factor": bad})


def test_ladder_without_blur():
    p = get_preset("panini_ladder", {"factors": [2], "fixed_sigma": 0.0})
    d = p.sample(np.random.default_rng(0), 64, level="r002")
    assert d["blur"] == "none" and d["kernel_size"] == 1
    lq = p.apply(_img(), d)
    assert lq.shape == (32, 32, 3)
    d2 = get_preset("panini_ladder", {"factors": [2], "fixed_sigma": 1e-3}).sample(
        np.random.default_rng(0), 64, level="r002")
    assert d2["blur"] == "gaussian"


def test_resize_psp_mode():
    x = _img()
    np.testing.assert_array_equal(P.resize(x, 16, "psp_bicubic"), P.psp_bicubic_downsample(x, 4))
    for size in (20, (16, 20), (20, 16)):
        with pytest.raises(ValueError, match="integer factor"):
            P.resize(x, size, "psp_bicubic")
    y = _img(64, 32)
    assert P.resize(y, (8, 16), "psp_bicubic").shape == (16, 8, 3)
    with pytest.raises(ValueError, match="unknown resize mode"):
        P.resize(x, 16, "lanczos")
    with pytest.raises(ValueError, match=">= 1"):
        P.resize(x, (16, 0), "bilinear")
    assert P.resize(x, (1, 1), "bilinear").shape == (1, 1, 3)


def test_downsample_factor_below_one_upsamples_and_down_up_keeps_non_square_shapes():
    x = _img()
    assert P.downsample(x, factor=0.8).shape == (79, 79, 3)  # GFP-GAN's r from 0.8: 64 // 0.8
    with pytest.raises(ValueError, match="factor must be positive"):
        P.downsample(x, factor=0)
    y = _img(48, 64)
    assert P.downsample(y, factor=2).shape == (24, 32, 3)
    assert P.down_up(y, 10).shape == y.shape
    assert P.down_up(y, 10, "bicubic", "bicubic").shape == y.shape


def test_jpeg_quality_limits():
    x = _img()
    q1, q100 = P.jpeg(x, 1), P.jpeg(x, 100)
    assert np.abs(q100 - x).mean() < np.abs(q1 - x).mean()
    for bad in (0, 101):
        with pytest.raises(ValueError, match="1..100"):
            P.jpeg(x, bad)


def test_gaussian_kernel_and_blur_arguments():
    with pytest.raises(ValueError, match="odd"):
        P.gaussian_kernel(4, 1.0)
    with pytest.raises(ValueError, match="positive"):
        P.gaussian_kernel(5, 0.0)
    np.testing.assert_array_equal(P.gaussian_kernel(7, 1.3), P.gaussian_kernel(7, 1.3, 1.3, 0.0))
    x = _img()
    assert P.gaussian_blur(x, 1.0).shape == x.shape
    np.testing.assert_allclose(P.gaussian_blur(x, 1.0, 2.0),
                               P.filter2d(x, P.gaussian_kernel(P.auto_kernel_size(2.0), 1.0, 2.0)),
                               atol=0)
    assert P.auto_kernel_size(0.1) == 3 and P.auto_kernel_size(2.0) == 13
    with pytest.raises(ValueError, match="motion length"):
        P.motion_kernel(0, 10)


def test_data_and_testsets_params_limits():
    from degradations.config import DataConfig, TestsetsConfig
    from pipeline.config import build

    def data(**kw):
        d = {"source": "synthetic", "size": 16, "train": {"n": 1, "seed": 0},
             "test": {"n": 1, "seed": 0}, "workers": 1}
        d.update(kw)
        return build(DataConfig, d, "data")

    data()  # all at their lower limits
    for kw, key in (({"size": 15}, "data.size"), ({"workers": 0}, "data.workers"),
                    ({"train": {"n": 0, "seed": 0}}, "data.train.n"),
                    ({"test": {"n": 1, "seed": -1}}, "data.test.seed")):
        with pytest.raises(FRBenchError, match=key):
            data(**kw)
    data(source="folder", train={"n": 0, "seed": 0, "folder": "a"},
         test={"n": 0, "seed": 0, "folder": "b"})

    def sets(**kw):
        s = {"preset": "gpen", "n": 0, "seed": 0, "overrides": {"noise": [0, 5]}}
        s.update(kw)
        return build(TestsetsConfig, {"names": ["a"], "sets": {"a": s}, "workers": 1},
                     "testsets")

    assert sets().sets["a"].overrides == {"noise": [0, 5]}
    for kw, key in (({"n": -1}, "testsets.sets.a.n"), ({"seed": -1}, "testsets.sets.a.seed"),
                    ({"preset": "nope"}, "unknown preset 'nope'"),
                    ({"overrides": {"jpeg": [0, 101]}}, "testsets.sets.a: .*jpeg")):
        with pytest.raises(FRBenchError, match=key):
            sets(**kw)
    with pytest.raises(FRBenchError, match="testsets.workers"):
        build(TestsetsConfig, {"names": [], "sets": {}, "workers": 0}, "testsets")


@pytest.mark.parametrize("shape", [(64, 48, 3), (64, 64), (64, 64, 4)])
def test_presets_refuse_non_square_or_non_rgb_images(shape):
    for name in ("gpen", "sr_bicubic"):
        p = PRESETS[name]
        with pytest.raises(FRBenchError, match="expected a square HWC RGB image"):
            p.apply(np.zeros(shape, np.float32), p.sample(np.random.default_rng(0), 64))


@pytest.mark.parametrize("length,angle", [(7.0, 0.0), (9.3, 30.0), (5.5, 117.0), (12.0, 271.5)])
def test_motion_kernel_moments(length, angle):
    """The kernel is 64 samples per pixel along the segment, each splatted bilinearly: its mean
    is the centre, and its covariance is that of the sample points plus, per axis, the
    splat's own variance f (1 - f) (f the fractional position), with no cross term."""
    k = P.motion_kernel(length, angle)
    size = k.shape[0]
    c = size // 2
    n = max(2, math.ceil(length * 64))
    t = np.linspace(-length / 2, length / 2, n)
    x = c + t * math.cos(math.radians(angle))
    y = c - t * math.sin(math.radians(angle))
    fx, fy = x - np.floor(x), y - np.floor(y)
    yy, xx = np.mgrid[0:size, 0:size]
    assert k.sum() == pytest.approx(1.0, abs=1e-12) and k.min() >= 0
    mx, my = (k * xx).sum(), (k * yy).sum()
    assert (mx, my) == pytest.approx((c, c), abs=1e-9)
    cxx = (k * (xx - mx) ** 2).sum()
    cyy = (k * (yy - my) ** 2).sum()
    cxy = (k * (xx - mx) * (yy - my)).sum()
    assert cxx == pytest.approx(np.var(x) + np.mean(fx * (1 - fx)), abs=1e-9)
    assert cyy == pytest.approx(np.var(y) + np.mean(fy * (1 - fy)), abs=1e-9)
    assert cxy == pytest.approx(np.mean((x - x.mean()) * (y - y.mean())), abs=1e-9)


def test_builder_uses_a_process_pool_exactly_when_asked(tmp_path, monkeypatch):
    """--workers N > 1 runs the images in a pool (same bytes, tested elsewhere); 1 worker or a
    single image never starts one."""
    import degradations.builder as builder
    from core.imageio import write_png

    pools = []

    class FakePool:
        def __init__(self, n):
            pools.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def imap(self, fn, jobs, chunksize=1):
            return map(fn, jobs)

    class FakeContext:
        Pool = FakePool

    monkeypatch.setattr(builder.mp, "get_context", lambda method: FakeContext())
    for i in range(2):
        write_png(tmp_path / "hq" / f"{i:05d}.png", (_img(32, 32, i) * 255).astype(np.uint8))
    builder.build_testset(tmp_path / "hq", tmp_path / "a", "sr_bicubic", seed=1, workers=2)
    assert pools == [2]
    builder.build_testset(tmp_path / "hq", tmp_path / "b", "sr_bicubic", seed=1, workers=1)
    builder.build_testset(tmp_path / "hq", tmp_path / "c", "sr_bicubic", seed=1, n=1, workers=3)
    assert pools == [2]
