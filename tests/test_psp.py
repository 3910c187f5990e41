"""pSp: shapes/range, W+ = E(x) + w_avg, map2style layout, losses, resume, wrong checkpoint."""
import pytest
import torch

from methods.psp import GradualStyleBlock, GradualStyleEncoder
from method_helpers import (baseline_env, check_descent, check_resume_equality, fixed_batch,
                             ready_method, tiny_params)
from methods.trainer import load_for_inference
from pipeline.cmd_train import build_trainee
from core.errors import FRBenchError


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("psp")
    return tmp, baseline_env(tmp)


def _ready(params):
    return ready_method("psp", params)


def test_output_shape_range_and_frozen_decoder(env):
    _, params = env
    m = _ready(params).eval()
    assert m.lq_size == 4
    y = m.restore(torch.rand(2, 3, 9, 9) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and y.min() >= -1 and y.max() <= 1
    assert not any(p.requires_grad for p in m.generator.parameters())
    # inference is deterministic (fixed noise buffers)
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x))


def test_codes_add_the_average_latent(env):
    _, params = env
    m = _ready(params).eval()
    assert m.latent_avg.abs().sum() > 0  # set from the prior's mapping in setup_training
    with torch.no_grad():
        for blk in m.encoder.styles:  # zero every map2style output -> codes = w_avg exactly
            blk.linear.weight.zero_()
            blk.linear.bias.zero_()
        x = torch.rand(2, 3, 4, 4) * 2 - 1
        codes = m.codes(x)
        assert m.latent_avg.shape == (m.generator.n_latent, m.prior_arch.style_dim)
        torch.testing.assert_close(codes, m.latent_avg.unsqueeze(0).expand(2, -1, -1))
        ref = m.generator(m.latent_avg.unsqueeze(0).expand(2, -1, -1), input_is_latent=True,
                          randomize_noise=False)
        torch.testing.assert_close(m(x), ref)
    p = tiny_params(params.train.hq_dir.rsplit("/", 1)[0],
                    edit=lambda d: d["methods"]["psp"].update(start_from_latent_avg=False))
    m2 = build_trainee("psp", p).eval()
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert m2.codes(x).abs().max() == 0


def test_map2style_layout():
    enc = GradualStyleEncoder(64, [1, 1, 1, 1], [4, 4, 8, 8], 8, 10, 16)
    # coarse heads read c3 (4x4: 2 convs), middle p2 (8x8: 3), fine p1 (16x16: 4)
    n_convs = [sum(isinstance(l, torch.nn.Conv2d) for l in s.convs) for s in enc.styles]
    assert n_convs == [2] * 3 + [3] * 4 + [4] * 3
    assert enc(torch.zeros(2, 3, 64, 64)).shape == (2, 10, 16)
    blk = GradualStyleBlock(8, 8, 16, 5)
    assert blk(torch.zeros(1, 8, 16, 16)).shape == (1, 5)
    with pytest.raises(FRBenchError, match="fpn_width"):
        GradualStyleEncoder(64, [1, 1, 1, 1], [4, 4, 8, 16], 8, 10, 16)


def test_loss_step_lowers_objective(env):
    _, params = env
    m = _ready(params)
    batch = fixed_batch(m, params)
    opt = m.make_optimizers()["g"]

    def objective():
        torch.manual_seed(0)  # the same decoder noise at every evaluation
        loss, logs = m.g_step(batch, 0)
        assert set(logs) >= {"l2", "w_norm"}
        return loss
    check_descent(objective, opt)


def test_resume_equality_and_wrong_checkpoint(env, tmp_path):
    _, params = env
    a = check_resume_equality("psp", params, tmp_path)
    assert "latent_avg" in a
    m = build_trainee("psp", params)
    load_for_inference(m, tmp_path / "full" / "model.pt")
    torch.testing.assert_close(m.latent_avg, a["latent_avg"])
    with pytest.raises(FRBenchError, match="checkpoint is for method 'psp'"):
        load_for_inference(build_trainee("gfpgan", params), tmp_path / "full" / "model.pt")


def test_random_init_backbone_losses_are_off_unless_allowed(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _, params = env
    root = params.train.hq_dir.rsplit("/", 1)[0]
    p = tiny_params(root, edit=lambda d: d["methods"]["psp"].update(id_weight=0.1,
                                                                    lpips_weight=0.8))
    m = _ready(p)
    assert m.id_weight == 0 and m.lpips_weight == 0
    assert "loss weight 0" in m.provenance["id_net"] and "loss weight 0" in m.provenance["lpips_alex"]
    p2 = tiny_params(root, edit=lambda d: d["methods"]["psp"].update(
        lpips_weight=0.8, random_init_losses=True))
    m2 = _ready(p2)
    assert m2.lpips_weight == 0.8 and m2._lpips is not None
    assert "random-init" in m2.provenance["lpips_alex"]
    loss, logs = m2.g_step(fixed_batch(m2, p2, n=2), 0)
    assert "lpips" in logs and torch.isfinite(loss)


def test_ranger_option_trains_and_resumes(tmp_path):
    from methods.optim import Ranger
    params = baseline_env(tmp_path, edit=lambda d: d["methods"]["psp"].update(optimizer="ranger"))
    m = ready_method("psp", params)
    assert isinstance(m.make_optimizers()["g"], Ranger)
    check_resume_equality("psp", params, tmp_path / "run")


def test_encoder_init_from_irse50_file(tmp_path):
    """encoder_init irse50 loads input_layer/body from model_ir_se50.pth (the ArcFace output
    layer is ignored, like pSp's strict=False) and records the file; a file that does not fit the
    encoder's widths is a clear error; a random-init resolution is skipped and recorded."""
    params = baseline_env(tmp_path, edit=lambda d: d["methods"]["psp"].update(
        encoder_init="irse50"))
    m = ready_method("psp", params)  # offline, random-init allowed: skipped, recorded
    assert m.provenance["encoder_init"].startswith("random-init") and "skipped" in \
        m.provenance["encoder_init"]
    enc = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
           for k, v in m.encoder.state_dict().items() if k.startswith(("input_layer.", "body."))}
    f = tmp_path / "model_ir_se50.pth"
    torch.save({**enc, "output_layer.3.weight": torch.zeros(4, 4)}, f)

    def with_file(d):
        d["methods"]["psp"].update(encoder_init="irse50")
        d["weights"] = {"allow_random_init": True, "allow_download": False,
                        "random_init_seed": 0, "paths": {"arcface_ir_se50": str(f)}}
    p2 = tiny_params(tmp_path, edit=with_file)
    m2 = ready_method("psp", p2)
    assert m2.provenance["encoder_init"].startswith("file:model_ir_se50.pth@sha256:")
    sd = m2.encoder.state_dict()
    for k, v in enc.items():
        assert torch.equal(sd[k], v), k
    k0 = "body.0.res_layer.1.weight"
    torch.save({**enc, k0: torch.zeros(3, 3, 3, 3)}, f)
    with pytest.raises(FRBenchError, match="does not fit this encoder"):
        ready_method("psp", p2)


def test_encoder_input_size(env):
    """encoder_input_size resizes every input to that side before the encoder (pSp: 256) and
    sizes the map2style heads for it; 0 keeps the output size (the built-in behaviour)."""
    _, params = env
    root = params.train.hq_dir.rsplit("/", 1)[0]
    m0 = build_trainee("psp", params).eval()
    assert m0.encoder_size == m0.out_size == 32
    p = tiny_params(root, edit=lambda d: d["methods"]["psp"].update(encoder_input_size=64))
    m = build_trainee("psp", p).eval()
    seen = []
    m.encoder.input_layer.register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[-1]))
    with torch.no_grad():
        y = m(torch.zeros(1, 3, 4, 4))
    assert seen == [64] and y.shape == (1, 3, 32, 32)
    n_convs = [sum(isinstance(l, torch.nn.Conv2d) for l in s.convs) for s in m.encoder.styles]
    n0 = [sum(isinstance(l, torch.nn.Conv2d) for l in s.convs) for s in m0.encoder.styles]
    assert n_convs == [c + 1 for c in n0]  # one more stride-2 conv per head at twice the side
    with pytest.raises(FRBenchError, match="encoder_input_size"):
        tiny_params(root, edit=lambda d: d["methods"]["psp"].update(encoder_input_size=48))
