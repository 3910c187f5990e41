"""DRE + UDRL: encoder shapes, InfoNCE vs a direct computation, positive pairs, queue, momentum."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from methods.dre import DREMoCo, Encoder, dre_pair_sample, info_nce
from method_helpers import tiny_params
from core.seeding import rng_for


def test_encoder_shapes_and_pooling():
    e = Encoder((4, 8, 12), input_size=16).eval()
    fea, out = e(torch.randn(2, 3, 40, 40))
    assert fea.shape == (2, 12) and out.shape == (2, 12)
    convs = [m for m in e.E if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [1, 1, 2, 1, 2, 1]
    assert [c.out_channels for c in convs] == [4, 4, 8, 8, 12, 12]
    lrelu = [m for m in e.E if isinstance(m, torch.nn.LeakyReLU)]
    assert len(lrelu) == 6 and all(m.negative_slope == 0.1 for m in lrelu)
    # the input is average-pooled to input_size
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(e.represent(x), e.represent(F.avg_pool2d(x, 2)))


def test_info_nce_equals_direct_computation():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(5, 8), dim=1)
    k = F.normalize(torch.randn(5, 8), dim=1)
    queue = F.normalize(torch.randn(8, 7), dim=0)
    t = 0.07
    loss, logits = info_nce(q, k, queue, t)
    direct = []
    for i in range(5):
        pos = torch.exp(q[i] @ k[i] / t)
        neg = torch.exp(q[i] @ queue / t).sum()
        direct.append(-torch.log(pos / (pos + neg)))
    torch.testing.assert_close(loss, torch.stack(direct).mean(), rtol=1e-5, atol=1e-5)
    assert logits.shape == (5, 8)


def test_positive_pair_is_same_degradation_on_two_different_faces():
    rng = np.random.default_rng(0)
    a = rng.random((32, 32, 3)).astype(np.float32)
    b = rng.random((32, 32, 3)).astype(np.float32)
    s = dre_pair_sample([a, b], rng_for(1, "x"), preset="sr16_bilinear", overrides={"factor": 4})
    assert s["q"].shape == s["k"].shape == (3, 8, 8)
    assert not np.allclose(s["q"], s["k"])
    # same params: the pair equals applying one draw to each image
    from degradations import get_preset
    p = get_preset("panini_mfr")
    pair = dre_pair_sample([a, b], rng_for(2, "y"), preset="panini_mfr", overrides={})
    params = p.sample(rng_for(2, "y"), 32)
    np.testing.assert_allclose(pair["k"], p.apply(b, params).transpose(2, 0, 1) * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(pair["q"], p.apply(a, params).transpose(2, 0, 1) * 2 - 1, atol=1e-6)


def test_moco_step_queue_and_momentum(tmp_path):
    params = tiny_params(tmp_path)
    m = DREMoCo(params.dre, params)
    K = params.dre.queue
    assert m.queue.shape == (8, K)
    torch.testing.assert_close(m.queue.norm(dim=0), torch.ones(K))
    q0 = m.queue.clone()
    with torch.no_grad():
        for p in m.encoder_q.parameters():
            p.add_(0.5)
    kp = [p.clone() for p in m.encoder_k.parameters()]
    qp = [p.clone() for p in m.encoder_q.parameters()]
    batch = {"q": torch.randn(4, 3, 16, 16), "k": torch.randn(4, 3, 16, 16)}
    loss, logs = m.g_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss) and 0 <= float(logs["top1"]) <= 1
    mom = params.dre.momentum
    for a, b, c in zip(m.encoder_k.parameters(), kp, qp):
        torch.testing.assert_close(a, mom * b + (1 - mom) * c)
    assert int(m.queue_ptr) == 4
    assert not torch.equal(m.queue[:, :4], q0[:, :4]) and torch.equal(m.queue[:, 4:], q0[:, 4:])
    torch.testing.assert_close(m.queue[:, :4].norm(dim=0), torch.ones(4))
    loss.backward()
    assert all(p.grad is None for p in m.encoder_k.parameters())
    assert any(p.grad is not None for p in m.encoder_q.parameters())
