"""GFP-GAN v1: shapes/range, CS-SFT split, pyramid, component boxes + landmarks, losses, resume."""
import json

import numpy as np
import pytest
import torch

from methods.gfpgan import (COMPONENTS, GFPGANSample, component_boxes, cs_sft,
                            load_component_landmarks)
from method_helpers import (baseline_env, check_descent, check_resume_equality, fixed_batch,
                             ready_method, tiny_params)
from methods.trainer import load_for_inference
from pipeline.cmd_train import build_trainee
from core.errors import FRBenchError


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("gfpgan")
    return tmp, baseline_env(tmp)


def _ready(params, name="gfpgan"):
    return ready_method(name, params)


def _sft_params(tmp):
    return tiny_params(tmp, edit=lambda d: d["methods"]["gfpgan"].update(sft="full"))


def test_output_shape_range_and_frozen_prior(env):
    tmp, params = env
    m = _ready(params).eval()
    y = m.restore(torch.rand(2, 3, 20, 20) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and y.min() >= -1 and y.max() <= 1
    res = m.analyze(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert res["wplus"].shape == (2, m.generator.n_latent, params.prior.arch.style_dim)
    assert [tuple(r.shape) for r in res["rgbs"]] == [(2, 3, r, r) for r in (8, 16, 32)]
    assert not any(p.requires_grad for p in m.generator.parameters())
    assert set(m.make_optimizers()["g"].param_groups[0]["params"]) == set(m.unet.parameters())


def test_fix_decoder_false_finetunes_the_prior(tmp_path):
    params = baseline_env(tmp_path, edit=lambda d: d["methods"]["gfpgan"].update(
        fix_decoder=False))
    m = _ready(params)
    assert all(p.requires_grad for p in m.generator.parameters())
    assert set(m.generator_modules()) == set(m.ema_modules()) == {"unet", "generator"}
    opt = m.make_optimizers()["g"]
    assert set(opt.param_groups[0]["params"]) == set(m.unet.parameters()) | set(
        m.generator.parameters())
    before = [p.detach().clone() for p in m.generator.parameters()]
    loss, _ = m.g_step(fixed_batch(m, params), 1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, m.generator.parameters()))


def test_cs_sft_splits_channels_on_hand_made_tensors():
    x = torch.arange(2 * 4 * 2 * 2, dtype=torch.float32).view(2, 4, 2, 2)
    scale = torch.full((2, 2, 2, 2), 3.0)
    shift = torch.full((2, 2, 2, 2), -1.0)
    y = cs_sft(x, scale, shift, half=True)
    torch.testing.assert_close(y[:, :2], x[:, :2])          # first half untouched
    torch.testing.assert_close(y[:, 2:], x[:, 2:] * 3 - 1)  # second half modulated
    z = cs_sft(x, torch.full((2, 4, 2, 2), 3.0), torch.full((2, 4, 2, 2), -1.0), half=False)
    torch.testing.assert_close(z, x * 3 - 1)


def test_model_applies_cs_sft_after_the_up_conv(env):
    tmp, params = env
    for p, half in ((params, True), (_sft_params(tmp), False)):
        m = _ready(p).eval()
        dec = m.generator.channels
        x = torch.rand(1, 3, 16, 16) * 2 - 1
        _, conds, _ = m.unet(torch.nn.functional.interpolate(x, size=32, mode="bicubic",
                                                             align_corners=False))
        assert conds[16][0].shape[1] == (dec[16] // 2 if half else dec[16])
        seen = {}
        h1 = m.generator.convs[2].register_forward_hook(lambda mod, a, o: seen.update(up=o))
        h2 = m.generator.convs[3].register_forward_pre_hook(lambda mod, a: seen.update(inp=a[0]))
        with torch.no_grad():
            m(x)
        h1.remove()
        h2.remove()  # convs[2] = up-conv of 16 px, convs[3] = the second conv of 16 px
        torch.testing.assert_close(seen["inp"], cs_sft(seen["up"], *conds[16], half))
        if half:
            c = dec[16] // 2
            torch.testing.assert_close(seen["inp"][:, :c], seen["up"][:, :c])


def test_component_boxes_and_flip():
    e = {"left_eye": (20.0, 30.0, 4.0), "right_eye": (44.0, 30.0, 5.0), "mouth": (32.0, 46.0, 6.0),
         "size": 64.0}
    b = component_boxes(e, 32, False, 1.5)
    np.testing.assert_allclose(b[0], [10 - 3, 15 - 3, 10 + 3, 15 + 3])
    np.testing.assert_allclose(b[2], [16 - 3, 23 - 3, 16 + 3, 23 + 3])  # mouth not enlarged
    f = component_boxes(e, 32, True, 1.5)
    # flipped: the left-eye slot takes the mirrored right eye (x = 32 - 22)
    np.testing.assert_allclose(f[0], [10 - 3.75, 15 - 3.75, 10 + 3.75, 15 + 3.75])
    np.testing.assert_allclose(f[2][[0, 2]], 32 - b[2][[2, 0]])


def test_landmark_files(tmp_path):
    with pytest.raises(FRBenchError, match="FFHQ_eye_mouth_landmarks_512"):
        load_component_landmarks(tmp_path / "missing.pth")
    torch.save({"00000003": {c: [100.0, 200.0, 10.0] for c in COMPONENTS}}, tmp_path / "lm.pth")
    t = load_component_landmarks(tmp_path / "lm.pth")
    assert t["00000003"]["mouth"] == (100.0, 200.0, 10.0) and t["00000003"]["size"] == 512.0
    s = GFPGANSample(str(tmp_path / "lm.pth"), "panini_mfr", {}, 32, 16, False, 1.4)
    out = s([np.zeros((32, 32, 3), np.float32)], np.random.default_rng(0), ids=["00003"])
    np.testing.assert_allclose(out["boxes"][2], np.array([100 - 10, 200 - 10, 110, 210]) / 16)
    with pytest.raises(FRBenchError, match="no landmarks"):
        s([np.zeros((32, 32, 3), np.float32)], np.random.default_rng(0), ids=["00009"])
    (tmp_path / "bad.json").write_text(json.dumps({"a": {"left_eye": [1, 2]}}))
    with pytest.raises(FRBenchError, match="lacks"):
        load_component_landmarks(tmp_path / "bad.json")


def test_builtin_faces_give_boxes_around_the_eyes(env):
    _, params = env
    m = _ready(params)
    b = fixed_batch(m, params)
    assert b["boxes"].shape == (4, 3, 4)
    assert (b["boxes"][..., 2] > b["boxes"][..., 0]).all()
    # eyes above the mouth, left eye left of the right eye, inside the image
    assert (b["boxes"][:, 0, 1] < b["boxes"][:, 2, 1]).all()
    assert (b["boxes"][:, 0, 0] < b["boxes"][:, 1, 0]).all()
    assert (b["boxes"] > -4).all() and (b["boxes"] < 36).all()


def test_loss_step_lowers_objective(env):
    _, params = env
    m = _ready(params)
    batch = fixed_batch(m, params)
    opt = m.make_optimizers()["g"]
    for d in m.discriminator_modules().values():
        d.requires_grad_(False)
    m.eval()  # fixed decoder noise: the same objective at every evaluation

    def objective():
        loss, logs = m.g_step(batch, 1)
        assert set(logs) >= {"l1", "pyramid", "g_adv", "comp_adv", "comp_style"}
        return loss
    check_descent(objective, opt)


def test_resume_equality_and_wrong_checkpoint(env, tmp_path):
    _, params = env
    check_resume_equality("gfpgan", params, tmp_path, key="loss_d")
    with pytest.raises(FRBenchError, match="checkpoint is for method 'gfpgan'"):
        load_for_inference(build_trainee("gpen", params), tmp_path / "full" / "model.pt")
    # gfpgan_sft has other condition widths: refused with a clear error
    with pytest.raises(FRBenchError, match="does not match"):
        load_for_inference(build_trainee("gfpgan", _sft_params(tmp_path)),
                           tmp_path / "full" / "model.pt")


def test_random_init_losses_are_switched_off(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _, params = env
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0], edit=lambda d: d["methods"]["gfpgan"]
                    .update(id_weight=10.0, perceptual_weight=1.0, style_weight=50.0))
    m = _ready(p)
    assert m.id_weight == 0 and m.perceptual_weight == 0 and m._vgg is None
    assert "loss weight 0" in m.provenance["id_net"] and "loss weight 0" in m.provenance["vgg19"]


def test_clean_version_starts_from_the_converted_prior(env):
    """``version: clean`` (GFPGANv1Clean maths): the suite's prior is converted to the clean
    parameterisation at setup (same mapping output as the v1 model), and a G step trains."""
    tmp, params = env
    pc = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                     edit=lambda d: d["methods"]["gfpgan"].update(version="clean"))
    mc, m1 = _ready(pc), _ready(params)
    assert mc.clean and mc.generator.clean and not m1.generator.clean
    assert "converted to the clean layers" in mc.provenance["prior"]
    z = torch.randn(3, params.prior.arch.style_dim)
    torch.testing.assert_close(mc.generator.style(z), m1.generator.style(z), rtol=1e-4, atol=1e-5)
    y = mc.eval().restore(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and torch.isfinite(y).all()
    mc.train()
    loss, logs = mc.g_step(fixed_batch(mc, pc), 1)
    assert torch.isfinite(loss) and "pyramid" in logs
