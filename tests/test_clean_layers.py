"""The ``clean`` switch of methods/stylegan2.py (GFPGANv1Clean maths on our StyleGAN2 layers).

- switch off: the layers are unchanged (init, RNG use and outputs recorded from the code before
  the switch existed, commit eab63c8);
- switch on: same parameter names/shapes, and each layer computes the official clean formula
  (TencentARC/GFPGAN gfpgan/archs/stylegan2_clean_arch.py, gfpganv1_clean_arch.py), written out
  independently below with the official grouped-conv form;
- ``equalized_to_clean_state`` (GFP-GAN's convert_gfpganv_to_clean.py rule) keeps every
  non-resampling part of a generator's function.
"""
import hashlib
import math

import pytest
import torch
import torch.nn.functional as F

from methods.gfpgan import GFPGANUNet, ResUpBlock, cs_sft
from methods.stylegan2 import (ConvLayer, Discriminator, EqualLinear, Generator, ResBlock,
                               StyledConv, ToRGB, equalized_to_clean_state)


def _digest(sd):
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _tiny(clean=False):
    torch.manual_seed(0)
    g = Generator(32, 16, 2, channel_multiplier=2, max_channels=16, clean=clean).eval()
    d = Discriminator(32, 2, 16)
    u = GFPGANUNet(32, {4: 8, 8: 8, 16: 8, 32: 8}, {4: 8, 8: 8, 16: 8, 32: 8}, g.n_latent, 16,
                   clean=clean).eval()
    return g, d, u


def test_switch_off_keeps_init_and_outputs():
    """Values recorded with the code before the switch (eab63c8): state digests exact (init and
    RNG use unchanged); output sums to float rounding (other CPUs may round differently)."""
    torch.set_num_threads(1)
    g, d, u = _tiny()
    assert (_digest(g.state_dict()), _digest(d.state_dict()), _digest(u.state_dict())) == \
        ("473677a20ebdb5db", "d091147b2449944a", "8f5f5914edc6da72")
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 16, generator=gen)
    x = torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1
    with torch.no_grad():
        img = g([z], randomize_noise=False)
        logit = d(img)
        w, conds, rgbs = u(x)
        hook = lambda p, r, f: cs_sft(f, *conds[r], True) if p == "up" and r in conds else f
        out = g(w, input_is_latent=True, randomize_noise=False, hook=hook)
    want = {"g": (-1364.1607229390647, 2963.515183133306),
            "d": (0.1529238587245345, 0.1529238587245345),
            "unet_w": (-0.23198857996612787, 8.688192587345839),
            "unet_rgb32": (641.7279149295209, 876.138492385755),
            "sft": (-2577.8108622403815, 6833.7926798714325)}
    got = {"g": img, "d": logit, "unet_w": w, "unet_rgb32": rgbs[-1], "sft": out}
    for k, (s, a) in want.items():
        t = got[k].double()
        assert t.abs().sum().item() == pytest.approx(a, rel=1e-6), k
        assert t.sum().item() == pytest.approx(s, rel=1e-5, abs=1e-6 * a), k


def test_clean_has_the_same_parameters_and_rng_use():
    g, d, u = _tiny()
    after = torch.rand(1)
    gc, _, uc = _tiny(clean=True)
    assert torch.equal(torch.rand(1), after)  # same number of random draws
    for a, b in ((g, gc), (u, uc)):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        assert all(sa[k].shape == sb[k].shape for k in sa)
    # fresh clean weights = the equalised layer's effective weights (same function at init)
    torch.testing.assert_close(gc.convs[0].conv.weight, g.convs[0].conv.weight * g.convs[0].conv.scale)
    torch.testing.assert_close(gc.style[1].weight, g.style[1].weight * g.style[1].scale)


def _grouped_modconv(x, weight, mod_w, mod_b, style, demodulate, padding):
    """The official clean ModulatedConv2d: plain linear modulation, weight * style, demod,
    grouped conv (x already resampled)."""
    b, c = x.shape[:2]
    s = F.linear(style, mod_w, mod_b).view(b, 1, c, 1, 1)
    w = weight * s
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8).view(b, -1, 1, 1, 1)
    o = w.shape[1]
    out = F.conv2d(x.reshape(1, b * c, *x.shape[2:]), w.view(b * o, c, *w.shape[3:]),
                   padding=padding, groups=b)
    return out.view(b, o, *out.shape[2:])


def test_clean_styled_conv_and_torgb_follow_the_official_formula():
    torch.manual_seed(3)
    conv = StyledConv(6, 5, 3, 8, upsample=True, clean=True)
    with torch.no_grad():
        conv.noise.weight.fill_(0.3)
        conv.activate.bias.normal_()
    x, style, noise = torch.randn(2, 6, 4, 4), torch.randn(2, 8), torch.randn(2, 1, 8, 8)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    ref = _grouped_modconv(up, conv.conv.weight, conv.conv.modulation.weight,
                           conv.conv.modulation.bias, style, True, 1) * math.sqrt(2)
    ref = F.leaky_relu(ref + 0.3 * noise + conv.activate.bias.view(1, -1, 1, 1), 0.2)
    torch.testing.assert_close(conv(x, style, noise=noise), ref, rtol=1e-5, atol=1e-5)

    rgb = ToRGB(5, 8, clean=True)
    with torch.no_grad():
        rgb.bias.normal_()
    y, skip = torch.randn(2, 5, 8, 8), torch.randn(2, 3, 4, 4)
    ref = _grouped_modconv(y, rgb.conv.weight, rgb.conv.modulation.weight,
                           rgb.conv.modulation.bias, style, False, 0) + rgb.bias
    ref = ref + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(rgb(y, style, skip), ref, rtol=1e-5, atol=1e-5)


def test_clean_linear_resblocks_follow_the_official_formula():
    torch.manual_seed(4)
    lin = EqualLinear(6, 4, lr_mul=0.01, activation="fused_lrelu", clean=True)
    v = torch.randn(3, 6)
    torch.testing.assert_close(lin(v), F.leaky_relu(F.linear(v, lin.weight, lin.bias), 0.2))

    def conv(layer, t, slot_w, slot_b=None):
        b = None if slot_b is None else layer[slot_b].bias
        return F.conv2d(t, layer[slot_w].weight, b, padding=layer[slot_w].weight.shape[-1] // 2)

    x = torch.randn(2, 4, 8, 8)
    half = lambda t: F.interpolate(t, scale_factor=0.5, mode="bilinear", align_corners=False)
    dbl = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
    down = ResBlock(4, 6, clean=True)
    with torch.no_grad():
        for p in down.parameters():
            p.normal_(0, 0.3)
    h = F.leaky_relu(conv(down.conv1, x, 0, 1), 0.2)
    ref = F.leaky_relu(conv(down.conv2, half(h), 1, 2), 0.2) + conv(down.skip, half(x), 1)
    torch.testing.assert_close(down(x), ref, rtol=1e-5, atol=1e-5)

    upb = ResUpBlock(4, 6, clean=True)
    with torch.no_grad():
        for p in upb.parameters():
            p.normal_(0, 0.3)
    h = F.leaky_relu(conv(upb.conv1, x, 0, 1), 0.2)
    ref = F.leaky_relu(F.conv2d(dbl(h), upb.conv2.conv.weight, padding=1)
                       + upb.conv2.act.bias.view(1, -1, 1, 1), 0.2) \
        + F.conv2d(dbl(x), upb.skip.conv.weight)
    torch.testing.assert_close(upb(x), ref, rtol=1e-5, atol=1e-5)
    first = ConvLayer(3, 4, 1, clean=True)
    y = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(first(y), F.leaky_relu(conv(first, y, 0, 1), 0.2))


def test_equalized_to_clean_state_keeps_the_non_resampling_parts():
    """Mapping network, the 4x4 StyledConv and the first ToRGB compute the same after the
    conversion (only the FIR -> bilinear resampling of later levels differs)."""
    torch.manual_seed(5)
    g = Generator(16, 8, 3, channel_multiplier=1, max_channels=8, lr_mlp=0.01).eval()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("activate.bias"):
                p.normal_()
    gc = Generator(16, 8, 3, channel_multiplier=1, max_channels=8, lr_mlp=0.01, clean=True).eval()
    gc.load_state_dict(equalized_to_clean_state(g.state_dict(), 0.01), strict=True)
    z = torch.randn(4, 8)
    torch.testing.assert_close(gc.style(z), g.style(z), rtol=1e-5, atol=1e-5)
    seen = {}

    def grab(tag):
        def hook(point, res, f):
            if res == 4 and point in ("conv1", "rgb"):
                seen[(tag, point)] = f
            return f
        return hook
    with torch.no_grad():
        a = g([z], randomize_noise=False, hook=grab("eq"))
        b = gc([z], randomize_noise=False, hook=grab("clean"))
    for point in ("conv1", "rgb"):
        torch.testing.assert_close(seen[("clean", point)], seen[("eq", point)], rtol=1e-4,
                                   atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-3)  # the resampling does differ
