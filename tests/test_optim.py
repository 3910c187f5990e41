"""Ranger (pSp's optimiser): RAdam steps match torch.optim.RAdam, Lookahead, gradient
centralisation, and its state survives a state_dict round trip."""
import pytest
import torch

from methods.optim import Ranger


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 3, 2, 2, generator=g)
    target = torch.randn(5, 3, 2, 2, generator=g)
    return w, target


def _run(opt_fn, steps, seed=0):
    w, target = _problem(seed)
    p = torch.nn.Parameter(w.clone())
    opt = opt_fn([p])
    for _ in range(steps):
        opt.zero_grad()
        ((p - target) ** 2 * torch.arange(1.0, 6.0).view(5, 1, 1, 1)).sum().backward()
        opt.step()
    return p.detach()


def test_without_lookahead_and_gc_it_is_radam():
    # k larger than the run and no centralisation: Ranger reduces to RAdam (torch's reference)
    for steps in (3, 12):  # before and after rho_t passes 5 (at b2 = 0.999, t = 6)
        ours = _run(lambda ps: Ranger(ps, lr=1e-2, betas=(0.95, 0.999), eps=1e-5, k=10 ** 6,
                                      use_gc=False), steps)
        ref = _run(lambda ps: torch.optim.RAdam(ps, lr=1e-2, betas=(0.95, 0.999), eps=1e-5),
                   steps)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_lookahead_pulls_back_to_the_slow_weights_every_k_steps():
    w0, _ = _problem()
    fast = _run(lambda ps: Ranger(ps, lr=1e-2, k=10 ** 6, use_gc=False), 6)
    la = _run(lambda ps: Ranger(ps, lr=1e-2, k=6, alpha=0.5, use_gc=False), 6)
    # after k steps: slow = w0 + alpha (fast - w0)
    torch.testing.assert_close(la, w0 + 0.5 * (fast - w0), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(la, fast)


def test_gradient_centralisation_zero_mean_update_per_output_channel():
    p = torch.nn.Parameter(torch.zeros(4, 3, 3, 3))
    b = torch.nn.Parameter(torch.zeros(4))
    opt = Ranger([p, b], lr=0.1, k=10 ** 6)
    opt.zero_grad()
    (p * torch.randn(4, 3, 3, 3)).sum().add((b * torch.randn(4)).sum()).backward()
    opt.step()
    # the first steps are momentum steps along the centralised gradient: zero mean per filter
    assert p.detach().mean(dim=(1, 2, 3)).abs().max() < 1e-7
    assert p.detach().abs().max() > 0
    assert b.detach().abs().min() > 0  # 1-D parameters are not centralised


def test_state_dict_round_trip_resumes_exactly():
    w, target = _problem()

    def steps(p, opt, n):
        for _ in range(n):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    p1 = torch.nn.Parameter(w.clone())
    steps(p1, Ranger([p1], lr=1e-2), 10)  # uninterrupted: across a Lookahead sync (k = 6)
    p2 = torch.nn.Parameter(w.clone())
    o2 = Ranger([p2], lr=1e-2)
    steps(p2, o2, 4)
    p3 = torch.nn.Parameter(p2.detach().clone())
    o3 = Ranger([p3], lr=1e-2)
    o3.load_state_dict(o2.state_dict())
    steps(p3, o3, 6)
    torch.testing.assert_close(p3.detach(), p1.detach())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Ranger([torch.nn.Parameter(torch.zeros(1))], lr=0)
    with pytest.raises(ValueError):
        Ranger([torch.nn.Parameter(torch.zeros(1))], betas=(1.0, 0.999))
