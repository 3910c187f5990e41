"""Panini-Net: shapes per level, DAFI = eq. 7, masks, theta, dissection, Cat-Conv, VGG loss."""
import pytest
import torch

from methods.panini import CBAM, DAFIMaskGen, Panini, dafi
from method_helpers import tiny_params
from pipeline.cmd_train import build_trainee
from core.errors import FRBenchError


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    return tiny_params(tmp_path_factory.mktemp("pan"))


@pytest.mark.parametrize("name,lq", [("panini", 16), ("panini_sr", 4), ("panini_catconv", 4)])
def test_shapes_at_every_level(params, name, lq):
    m = build_trainee(name, params).eval()
    assert m.levels == [32, 16, 8, 4] and m.lq_size == lq
    x = torch.rand(2, 3, lq, lq) * 2 - 1
    feats, w = m.ife(x)
    ch = m.fusion_out[0].in_channels if m.cfg.fusion == "dafi" else m.ife.down[0][0].in_channels
    assert [tuple(f.shape) for f in feats] == [(2, ch, r, r) for r in (32, 16, 8, 4)]
    assert w.shape == (2, m.generator.n_latent, params.prior.arch.style_dim)
    seen = []
    res = m.analyze(x)
    assert res["out"].shape == (2, 3, 32, 32)
    if m.cfg.fusion == "dafi":
        assert [tuple(a.shape) for a, _ in res["masks"]] == \
            [(2, m.generator.channels[r], 1, 1) for r in (32, 16, 8, 4)]
        assert res["theta"].shape == (2,)
    else:
        assert res["masks"] is None and res["theta"] is None
        with pytest.raises(FRBenchError):
            m.theta(x)
    with pytest.raises(FRBenchError, match="expects LQ"):
        m(torch.zeros(1, 3, lq * 2, lq * 2))


def test_dafi_equals_eq7_on_hand_made_tensors():
    f_gpb = torch.arange(8.0).view(1, 2, 2, 2)
    f_ife = torch.full((1, 2, 2, 2), 10.0)
    m1 = torch.tensor([0.25, 0.9]).view(1, 2, 1, 1)
    out = dafi(f_gpb, f_ife, m1, 1 - m1)
    exp = torch.stack([0.25 * f_gpb[0, 0] + 0.75 * 10, 0.9 * f_gpb[0, 1] + 0.1 * 10])[None]
    torch.testing.assert_close(out, exp)


def test_masks_softmax_pairs_and_layout():
    torch.manual_seed(0)
    g = DAFIMaskGen(6, [3, 2])
    v = torch.randn(4, 6)
    masks = g(v)
    logits = g.logits(v)
    for (m1, m2), lg in zip(masks, logits):
        assert ((m1 > 0) & (m1 < 1)).all() and ((m2 > 0) & (m2 < 1)).all()
        torch.testing.assert_close(m1 + m2, torch.ones_like(m1))
        # m1 = sigmoid(l_gan - l_ife): softmax over the pair, GAN prior first
        torch.testing.assert_close(m1[:, :, 0, 0], torch.sigmoid(lg[:, 0] - lg[:, 1]))
    # layout: level 0 takes the first 2*3 outputs as (pair, channel)
    flat = g.mapping(v)
    torch.testing.assert_close(logits[0], flat[:, :6].view(4, 2, 3))
    # mask bias: > 0 increases every GAN-prior mask
    up = g(v, mask_bias=2.0)
    assert all((a[0] > b[0]).all() for a, b in zip(up, masks))


def test_forward_uses_eq7_with_the_model_masks(params):
    """Recompute the top level by hand: F = m1 * F_GPB + m2 * fusion_out(F_IFE)."""
    m = build_trainee("panini", params).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    res = m.analyze(x)
    feats, _ = m.ife(x)
    captured = {}
    # rerun the generator up to the top block with the same fusions below, capturing F_GPB
    masks = res["masks"]
    idx = {r: i for i, r in enumerate(m.levels)}

    def hook(point, r, f):
        if (point == "conv1" and r == 4) or (point == "block" and r in idx and r != 4):
            if r == 32:
                captured["gpb"] = f
            i = idx[r]
            f = masks[i][0] * f + masks[i][1] * m.fusion_out[i](feats[i])
        return f
    out = m.generator(res["wplus"], input_is_latent=True, randomize_noise=False, hook=hook)
    torch.testing.assert_close(out, res["out"])
    # theta = mean of the last (highest-res) block's GAN-prior mask
    torch.testing.assert_close(res["theta"], masks[0][0].mean(dim=(1, 2, 3)))


def test_dissection_and_mask_bias(params):
    m = build_trainee("panini", params).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    full = m.analyze(x)["out"]
    y_gpb = m.analyze(x, zero="ife")["out"]
    y_ife = m.analyze(x, zero="gpb")["out"]
    assert (full - y_gpb).abs().max() > 1e-5 and (full - y_ife).abs().max() > 1e-5
    t0 = m.theta(x)
    m.mask_bias = 3.0
    assert (m.theta(x) > t0).all()
    m.mask_bias = -3.0
    assert (m.theta(x) < t0).all()


def test_sr_variant_has_a_learnable_constant_dr(params):
    m = build_trainee("panini_sr", params)
    assert m.dre is None and m.choice_vector.shape == (1, params.dre.widths[-1])
    a = m.degradation_representation(torch.zeros(3, 3, 4, 4))
    assert a.shape == (3, 8) and torch.equal(a[0], a[2])
    # masks do not depend on the input
    t = m.eval().theta(torch.rand(2, 3, 4, 4))
    assert t[0] == pytest.approx(float(t[1]))


def test_post_rgb_fuse_point_leaves_top_level_without_effect(params):
    """The reference's fusion point: the top level (= output res here) cannot reach the RGB."""
    import dataclasses
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                    edit=lambda d: d["methods"]["panini"].update(fuse_point="post_rgb"))
    m = build_trainee("panini", p).eval()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        a = m(x)
        m.fusion_out[0].weight.add_(1.0)
        torch.testing.assert_close(m(x), a)
    mb = build_trainee("panini", params).eval()
    with torch.no_grad():
        a = mb(x)
        mb.fusion_out[0].weight.add_(1.0)
        assert (mb(x) - a).abs().max() > 1e-4


def test_cbam_applies_preprocess_twice():
    torch.manual_seed(0)
    c = CBAM(4, 2).eval()
    x = torch.randn(1, 4, 5, 5)
    calls = []
    h = c.fea_preprocess.register_forward_hook(lambda *a: calls.append(1))
    assert c(x).shape == x.shape and len(calls) == 2
    h.remove()


def test_vgg_perceptual_loss_random_init_only_when_allowed(params, tmp_path, monkeypatch):
    from methods.panini import VGGConv43
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache
    v = VGGConv43(params, allow_random=True)
    assert v.provenance.startswith("random-init")
    assert v(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)  # conv4_3, stride 8
    assert isinstance(v.features[-1], torch.nn.Conv2d)  # pre-ReLU
    with pytest.raises(FRBenchError, match="missing weights 'vgg16'"):
        VGGConv43(params, allow_random=False)


def test_wrong_prior_size_is_refused(params):
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                    edit=lambda d: d["methods"]["panini"].update(out_size=64, lq_size=32))
    with pytest.raises(FRBenchError, match="prior.arch.size"):
        build_trainee("panini", p)


def test_ladder_theta_groups_levels(params, tmp_path):
    import numpy as np
    from methods.analysis import ladder_theta
    from core.imageio import write_png
    m = build_trainee("panini", params)
    rng = np.random.default_rng(0)
    for lvl in ("r002", "r004"):
        for i in range(3):
            write_png(tmp_path / f"{lvl}_{i:05d}.png", rng.random((16, 16, 3)))
    res = ladder_theta(m, tmp_path)
    assert sorted(res) == ["r002", "r004"] and res["r002"]["n"] == 3
    x = torch.stack([torch.from_numpy(np.asarray(
        __import__("core.imageio", fromlist=["read_image"]).read_image(tmp_path / f"r004_{i:05d}.png"),
        dtype=np.float32)).permute(2, 0, 1) / 255 * 2 - 1 for i in range(3)])
    assert res["r004"]["theta"] == pytest.approx(float(m.theta(x).mean()), rel=1e-5)
    write_png(tmp_path / "nolevel.png", rng.random((16, 16, 3)))
    with pytest.raises(FRBenchError, match="level"):
        ladder_theta(m, tmp_path)
