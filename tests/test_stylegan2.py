"""StyleGAN2: shapes, hook points, concat noise, the operator formulas of methods.md §1.3."""
import math

import pytest
import torch
import torch.nn.functional as F

from methods.stylegan2 import (Discriminator, Generator, ModulatedConv2d, NoiseInjection, PixelNorm,
                               channel_table, upfirdn2d, make_kernel, EqualLinear)


def tiny_g(size=32, **kw):
    torch.manual_seed(0)
    kw.setdefault("max_channels", 16)
    return Generator(size, style_dim=16, n_mlp=2, **kw)


def test_channel_table_matches_reference_and_cap():
    t = channel_table(1024, 2)
    assert [t[r] for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)] == \
        [512, 512, 512, 512, 512, 256, 128, 64, 32]
    t1 = channel_table(512, 1)
    assert [t1[r] for r in (64, 128, 256, 512)] == [256, 128, 64, 32]
    assert set(channel_table(64, 2, max_channels=32).values()) == {32}
    assert channel_table(512, 1, narrow=0.5)[4] == 256


@pytest.mark.parametrize("size", [32, 64])
def test_generator_shapes_latents_and_hooks(size):
    g = tiny_g(size)
    log = int(math.log2(size))
    assert g.n_latent == 2 * log - 2 and g.num_layers == 2 * (log - 2) + 1
    seen = []

    def hook(point, res, x):
        seen.append((point, res, tuple(x.shape)))
        return x

    img, w = g([torch.randn(2, 16)], hook=hook, return_latents=True)
    assert img.shape == (2, 3, size, size) and w.shape == (2, g.n_latent, 16)
    c = g.channels
    exp = [("conv1", 4, (2, c[4], 4, 4)), ("post_rgb", 4, (2, c[4], 4, 4)), ("rgb", 4, (2, 3, 4, 4))]
    r = 8
    while r <= size:
        exp += [("up", r, (2, c[r], r, r)), ("block", r, (2, c[r], r, r)),
                ("post_rgb", r, (2, c[r], r, r)), ("rgb", r, (2, 3, r, r))]
        r *= 2
    assert seen == exp


def test_hook_output_replaces_feature():
    g = tiny_g()
    z = [torch.randn(2, 16)]
    base = g(z, randomize_noise=False)
    same = g(z, randomize_noise=False, hook=lambda p, r, x: x)
    torch.testing.assert_close(base, same)
    # zeroing the feature at the last block leaves only the ToRGB bias + upsampled skip
    changed = g(z, randomize_noise=False, hook=lambda p, r, x: x * 0 if (p, r) == ("block", 32) else x)
    assert (changed - base).abs().max() > 1e-4


def test_concat_noise_doubles_channels():
    g = tiny_g(noise_mode="concat")
    c = g.channels
    feats = {}
    noise = [torch.randn(2, c[4], 4, 4)]
    for r in (8, 16, 32):
        noise += [torch.randn(2, c[r], r, r)] * 2
    g([torch.randn(2, 16)], noise=noise, hook=lambda p, r, x: feats.setdefault((p, r), x.shape[1]) and x)
    assert feats[("conv1", 4)] == 2 * c[4] and feats[("block", 32)] == 2 * c[32]
    assert g.convs[1].conv.in_ch == 2 * c[8] and g.to_rgbs[-1].conv.in_ch == 2 * c[32]
    # weight init 0: the concatenated half is exactly zero, noise does not matter at init
    inj = NoiseInjection("concat")
    x = torch.randn(1, 3, 4, 4)
    y = inj(x, torch.randn(1, 3, 4, 4))
    assert torch.equal(y[:, :3], x) and torch.equal(y[:, 3:], torch.zeros_like(x))
    with pytest.raises(ValueError):
        inj(x, torch.randn(1, 5, 4, 4))


def test_add_noise_and_fixed_buffers():
    g = tiny_g()
    z = [torch.randn(2, 16)]
    for m in g.modules():
        if isinstance(m, NoiseInjection):
            m.weight.data.fill_(0.5)
    a = g(z, randomize_noise=False)
    torch.testing.assert_close(a, g(z, randomize_noise=False))
    assert (a - g(z, randomize_noise=True)).abs().max() > 1e-4
    assert g.noises.noise_0.shape == (1, 1, 4, 4) and g.noises.noise_2.shape == (1, 1, 8, 8)


def test_style_mixing_and_truncation():
    g = tiny_g()
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w = g.styles_to_wplus([z1, z2], inject_index=3)
    torch.testing.assert_close(w[:, 2], g.style(z1))
    torch.testing.assert_close(w[:, 3], g.style(z2))
    avg = g.mean_latent(64)
    wt = g.styles_to_wplus([z1], truncation=0.0, truncation_latent=avg)
    torch.testing.assert_close(wt, avg.expand(2, g.n_latent, 16))
    # W+ input path
    img = g(w, input_is_latent=True, randomize_noise=False)
    assert img.shape == (2, 3, 32, 32)


def test_modulated_conv_equals_grouped_reference():
    torch.manual_seed(1)
    m = ModulatedConv2d(6, 5, 3, 8)
    x, s = torch.randn(3, 6, 7, 7), torch.randn(3, 8)
    torch.testing.assert_close(m(x, s), m.forward_grouped(x, s), rtol=1e-4, atol=1e-5)
    # demodulation: each (sample, out-channel) effective kernel has unit norm
    sty = m.modulation(s)
    wt = m.scale * m.weight * sty.view(3, 1, 6, 1, 1)
    wt = wt * torch.rsqrt(wt.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8)
    torch.testing.assert_close(wt.pow(2).sum([2, 3, 4]), torch.ones(3, 5), rtol=1e-4, atol=1e-4)


def test_upsampling_modconv_equals_grouped_transposed_then_blur():
    torch.manual_seed(2)
    m = ModulatedConv2d(4, 3, 3, 8, upsample=True)
    x, s = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    out = m(x, s)
    assert out.shape == (2, 3, 10, 10)
    # literal rosinality: grouped transposed conv with per-sample demodulated weights, then blur
    sty = m.modulation(s).view(2, 1, 4, 1, 1)
    wt = m.scale * m.weight * sty
    wt = wt * torch.rsqrt(wt.pow(2).sum([2, 3, 4]) + 1e-8).view(2, 3, 1, 1, 1)
    wt = wt.transpose(1, 2).reshape(2 * 4, 3, 3, 3)
    ref = F.conv_transpose2d(x.reshape(1, 8, 5, 5), wt, stride=2, groups=2).view(2, 3, 11, 11)
    ref = upfirdn2d(ref, make_kernel([1, 3, 3, 1]) * 4, pad=(1, 1))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_upfirdn2d_against_scipy():
    scipy_signal = pytest.importorskip("scipy.signal")
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    k = make_kernel([1, 3, 3, 1]).double()
    out = upfirdn2d(x, k, pad=(2, 1))
    import numpy as np
    ref = scipy_signal.convolve2d(np.pad(x[0, 0].numpy(), ((2, 1), (2, 1))), k.numpy(), mode="valid")
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=1e-10)
    up = upfirdn2d(x, k * 4, up=2, pad=(2, 1))
    assert up.shape[-1] == 12
    # a constant image stays constant after FIR upsampling (away from the borders)
    c = upfirdn2d(torch.ones(1, 1, 8, 8), make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    torch.testing.assert_close(c[..., 3:-3, 3:-3], torch.ones_like(c[..., 3:-3, 3:-3]))


def test_equalized_lr_and_pixelnorm():
    lin = EqualLinear(100, 10, lr_mul=0.01, bias_init=1.0)
    assert lin.scale == pytest.approx(0.01 / 10)
    x = torch.randn(4, 100)
    torch.testing.assert_close(lin(x), x @ (lin.weight * lin.scale).t() + lin.bias * 0.01)
    y = PixelNorm()(torch.randn(3, 7) * 5)
    torch.testing.assert_close((y ** 2).mean(1), torch.ones(3), rtol=1e-4, atol=1e-4)
    z = torch.randn(2, 3, 7)  # (B, codes, D): each code normalised on its own
    torch.testing.assert_close(PixelNorm()(z)[:, 1], PixelNorm()(z[:, 1]))


def test_discriminator_shapes_features_and_stddev_group():
    torch.manual_seed(0)
    d = Discriminator(32, max_channels=16, stddev_group=4)
    x = torch.randn(6, 3, 32, 32)
    out, feats = d(x, return_features=True)
    assert out.shape == (6, 1) and [f.shape[-1] for f in feats] == [16, 8, 4]
    assert d._group(6) == 3 and d._group(4) == 4 and d._group(1) == 1
    # rosinality's groups are strided (view(G, -1, ...)): with B=6, G=3 the groups are {0,2,4}
    # and {1,3,5}; changing the odd samples leaves the even scores unchanged
    x2 = x.clone()
    x2[1::2] = torch.randn(3, 3, 32, 32)
    out2 = d(x2)
    torch.testing.assert_close(out[0::2], out2[0::2])
    assert (out[1::2] - out2[1::2]).abs().max() > 1e-5
    with pytest.raises(ValueError):
        d(torch.randn(1, 3, 16, 16))
