"""Ranger, pSp's optimiser (methods.md §5.4): RAdam + Lookahead + gradient centralisation.

Written from the three papers' update rules (Liu et al. 2020 "On the variance of the adaptive
learning rate"; Zhang et al. 2019 "Lookahead optimizer"; Yong et al. 2020 "Gradient
centralization"), with pSp's settings as defaults: lr 1e-4, betas (0.95, 0.999), eps 1e-5,
Lookahead alpha 0.5 every k = 6 steps, gradient centralisation on every parameter with more than
one dimension, the rectified (adaptive) step once the variance estimate's length
``rho_t`` exceeds 5, a plain bias-corrected momentum step before that.

Per step, for each parameter with gradient g (after centralisation ``g - mean(g over all dims but
the first)``):

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1
    rho_inf = 2 / (1 - b2) - 1;  rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
    rho_t > 5:  p -= lr * r_t * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),
                r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    otherwise:  p -= lr / (1 - b1^t) * m
    every k steps: slow += alpha (p - slow);  p = slow

The state (moments, step, slow weights) lives in ``optimizer.state``, so the shared trainer's
checkpoint / resume covers it.
"""
from __future__ import annotations

import math

import torch


class Ranger(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas=(0.95, 0.999), eps: float = 1e-5,
                 weight_decay: float = 0.0, alpha: float = 0.5, k: int = 6,
                 rho_threshold: float = 5.0, use_gc: bool = True):
        if lr <= 0 or eps <= 0 or not 0 <= alpha <= 1 or k < 1:
            raise ValueError(f"Ranger: bad settings lr={lr} eps={eps} alpha={alpha} k={k}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Ranger: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, alpha=alpha, k=k,
                                      rho_threshold=rho_threshold, use_gc=use_gc))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            rho_inf = 2.0 / (1.0 - b2) - 1.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.float()
                if group["use_gc"] and g.dim() > 1:
                    g = g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True)
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    st["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                    st["slow"] = p.detach().float().clone()
                st["step"] += 1
                t = st["step"]
                m, v = st["exp_avg"], st["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                pf = p.detach().float()
                if group["weight_decay"]:
                    pf = pf - group["lr"] * group["weight_decay"] * pf
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                rho_t = rho_inf - 2 * t * b2 ** t / bc2
                if rho_t > group["rho_threshold"]:
                    r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                  / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    denom = v.sqrt().add_(group["eps"])
                    pf = pf - group["lr"] * r * math.sqrt(bc2) / bc1 * m / denom
                else:
                    pf = pf - group["lr"] / bc1 * m
                if t % group["k"] == 0:
                    slow = st["slow"]
                    slow.add_(pf - slow, alpha=group["alpha"])
                    pf = slow
                p.copy_(pf.to(p.dtype))
        return loss
