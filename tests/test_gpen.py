"""GPEN: shapes/range, concatenated encoder features, widened prior, ablations, losses, resume."""
import pytest
import torch

from methods.gpen import GPEN, noise_list
from method_helpers import (baseline_env, check_descent, check_resume_equality, fixed_batch,
                             ready_method)
from methods.trainer import load_for_inference
from pipeline.cmd_train import build_trainee
from core.errors import FRBenchError


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("gpen")
    return tmp, baseline_env(tmp)


def _ready(name, params):
    return ready_method(name, params)


@pytest.mark.parametrize("name", ["gpen", "gpen_nonoise", "gpen_noiseadd"])
def test_output_shape_and_range(env, name):
    _, params = env
    p = params
    if name != "gpen":
        from method_helpers import tiny_params
        noise = {"gpen_nonoise": "none", "gpen_noiseadd": "add"}[name]
        p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                        edit=lambda d: d["methods"]["gpen"].update(noise=noise))
    m = _ready("gpen", p).eval()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = m.restore(torch.rand(3, 3, 24, 24) * 2 - 1)
    assert y.shape == (3, 3, 32, 32) and y.min() >= -1 and y.max() <= 1
    assert m(x).shape == (3, 3, 32, 32)
    with pytest.raises(FRBenchError, match="expects LQ"):
        m(torch.zeros(1, 3, 32, 32))


def test_noise_list_order():
    fs = [torch.full((1, 1, r, r), float(r)) for r in (32, 16, 8, 4)]
    assert [int(f[0, 0, 0, 0]) for f in noise_list(fs)] == [4, 8, 8, 16, 16, 32, 32]


def test_encoder_features_are_concatenated(env):
    """conv1's output = cat([modconv(x), s * f4]) with f4 the encoder's 4x4 feature."""
    _, params = env
    m = _ready("gpen", params).eval()
    assert m.generator.noise_mode == "concat"
    c4 = m.generator.channels[4]
    with torch.no_grad():
        m.generator.conv1.noise.weight.fill_(0.5)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    seen = {}
    h = m.generator.conv1.noise.register_forward_hook(lambda mod, a, out: seen.update(out=out))
    with torch.no_grad():
        m(x)
        _, feats = m.encoder(torch.nn.functional.interpolate(x, size=32, mode="bicubic",
                                                             align_corners=False))
    h.remove()
    out = seen["out"]
    assert out.shape == (2, 2 * c4, 4, 4)
    torch.testing.assert_close(out[:, c4:], 0.5 * feats[-1])
    # the next layer sees 2C input channels
    assert m.generator.convs[0].conv.in_ch == 2 * c4


def test_widened_prior_starts_as_the_pretrained_prior(env):
    """With the feature scalars at 0 the widened concat prior reproduces the add-noise prior."""
    _, params = env
    m = _ready("gpen", params).eval()
    from methods.prior import build_generator
    from methods.baseline_common import prior_state
    g = build_generator(params.prior.arch)
    gsd, _, _ = prior_state(params.train.checkpoint_dir, 32)
    g.load_state_dict(gsd)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in g.named_parameters():
            if n.endswith("noise.weight"):
                p.zero_()
        z = torch.randn(2, params.prior.arch.style_dim, generator=gen)
        feats = [torch.randn(2, m.generator.channels[r], r, r, generator=gen)
                 for r in (32, 16, 8, 4)]
        a = m.generator(z, noise=noise_list(feats), randomize_noise=False)
        b = g(z, randomize_noise=False)
        # equal up to the small new input columns' effect on the demodulation (measured
        # 6.7e-4 .. 1.0e-3 depending on z)
        torch.testing.assert_close(a, b, atol=2e-3, rtol=0)
        # the features enter once their scalar is non-zero. Compared with the same widened model
        # (so the widening's own error does not count), the change must exceed 5x the tolerance
        # above (measured 3.2e-2), and it is the features that make it (other features give
        # another output: measured 5.1e-2)
        m.generator.convs[1].noise.weight.fill_(1.0)
        a1 = m.generator(z, noise=noise_list(feats), randomize_noise=False)
        assert (a1 - a).abs().max() > 1e-2
        feats2 = [f.flip(0) for f in feats]
        a2 = m.generator(z, noise=noise_list(feats2), randomize_noise=False)
        assert (a2 - a1).abs().max() > 1e-2


def test_noft_trains_only_new_entries(env):
    from method_helpers import tiny_params
    _, params = env
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                    edit=lambda d: d["methods"]["gpen"].update(finetune_generator=False,
                                                               adv_weight=0.0, fm_weight=0.0))
    m = _ready("gpen", p)
    before = {k: v.clone() for k, v in m.generator.state_dict().items()}
    opt = m.make_optimizers()["g"]
    for _ in range(2):
        loss, _ = m.g_step(fixed_batch(m, p), 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = m.generator.state_dict()
    assert torch.equal(before["style.1.weight"], after["style.1.weight"])  # mapping frozen
    w0, w1 = before["convs.1.conv.weight"], after["convs.1.conv.weight"]
    cin = w0.shape[2] // 2
    assert torch.equal(w0[:, :, :cin], w1[:, :, :cin])  # pretrained columns fixed
    assert not torch.equal(w0[:, :, cin:], w1[:, :, cin:])  # new (concat) columns train
    assert not torch.equal(before["convs.1.noise.weight"], after["convs.1.noise.weight"])


def test_loss_step_lowers_objective(env):
    _, params = env
    m = _ready("gpen", params)
    batch = fixed_batch(m, params)
    opt = m.make_optimizers()["g"]
    for p in m.discriminator.parameters():
        p.requires_grad_(False)
    m.eval()  # fixed noise buffers: the same objective at every evaluation

    def objective():
        loss, logs = m.g_step(batch, 1)
        assert set(logs) >= {"content", "g_adv", "fm"}
        return loss
    check_descent(objective, opt)


def test_resume_equality_and_wrong_checkpoint(env, tmp_path):
    _, params = env
    check_resume_equality("gpen", params, tmp_path)
    # the checkpoint loads into GPEN, and is refused by another method
    load_for_inference(build_trainee("gpen", params), tmp_path / "full" / "model.pt")
    for other in ("gfpgan", "psp", "panini"):
        with pytest.raises(FRBenchError, match="checkpoint is for method 'gpen'"):
            load_for_inference(build_trainee(other, params), tmp_path / "full" / "model.pt")


def test_random_init_id_loss_is_switched_off_and_recorded(env, tmp_path, monkeypatch):
    from method_helpers import tiny_params
    _, params = env
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                    edit=lambda d: d["methods"]["gpen"].update(id_weight=1.0))
    m = _ready("gpen", p)
    assert m.id_weight == 0.0 and m._id is None
    assert "random-init" in m.provenance["id_net"] and "loss weight 0" in m.provenance["id_net"]
    assert isinstance(m, GPEN)


def test_path_length_regulariser_runs_and_resumes(tmp_path):
    """GPEN's official path-length term: logged on its steps, the running mean length moves and is
    saved with the model, so a resumed run matches an uninterrupted one."""
    params = baseline_env(tmp_path, edit=lambda d: d["methods"]["gpen"].update(
        path_reg_weight=2.0, path_reg_every=2))
    m = ready_method("gpen", params)
    batch = fixed_batch(m, params)
    _, logs = m.g_step(batch, 0)
    assert "path_len" in logs and float(m.pl_mean) > 0
    assert "path_len" not in m.g_step(batch, 1)[1]
    g = m.make_optimizers()["g"].param_groups[0]
    assert g["lr"] == pytest.approx(params.methods["gpen"].lr * 2 / 3)
    a = check_resume_equality("gpen", params, tmp_path / "run")
    assert float(a["pl_mean"]) > 0

