"""The shared trainer: exact resume, multi-process equivalence, NaN guard, checkpoint errors."""
import json
import os
import math

import pytest
import torch

from method_helpers import make_hq, tiny_params
from methods.trainer import load_checkpoint, load_for_inference, train
from pipeline.cmd_train import build_trainee
from core.errors import FRBenchError


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Tiny HQ folder + pretrained (2-step) prior and DRE checkpoints."""
    tmp = tmp_path_factory.mktemp("trainer")
    make_hq(tmp / "hq", n=8, size=32)
    params = tiny_params(tmp)
    torch.set_num_threads(1)
    for name in ("prior", "dre"):
        train(build_trainee(name, params), params, tmp / "ckpt" / name, steps=2, show_progress=False)
    return tmp, params


def _weights(path):
    return load_checkpoint(path)["model"]


def test_resume_equals_uninterrupted(env, tmp_path):
    tmp, params = env
    full = train(build_trainee("panini", params), params, tmp_path / "full", show_progress=False)
    part = train(build_trainee("panini", params), params, tmp_path / "split", stop_after=2,
                 show_progress=False)
    # an interrupted run leaves only a partial checkpoint, never model.pt
    assert part["step"] == 2 and not (tmp_path / "split" / "model.pt").exists()
    pck = load_checkpoint(tmp_path / "split" / "model.partial.pt")
    assert (pck["step"], pck["total_steps"]) == (2, 4)
    rest = train(build_trainee("panini", params), params, tmp_path / "split", resume=True,
                 show_progress=False)
    assert rest["step"] == full["step"] == 4
    assert not (tmp_path / "split" / "model.partial.pt").exists()  # removed once complete
    keys = ("loss_g", "loss_d", "l1")
    a = [[h[k] for k in keys] for h in full["history"]]
    b = [[h[k] for k in keys] for h in rest["history"]]
    assert len(a) == len(b) == 4
    assert a == b  # exact: resume is bitwise (same machine, same thread count)
    wa, wb = _weights(tmp_path / "full" / "model.pt"), _weights(tmp_path / "split" / "model.pt")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # a fresh run from scratch with another seed differs (the comparison can fail)
    other = tiny_params(tmp, edit=lambda d: d.update(seed=8))
    o = train(build_trainee("panini", other), other, tmp_path / "other", show_progress=False)
    assert o["history"][-1]["loss_g"] != pytest.approx(full["history"][-1]["loss_g"], rel=1e-6)


def test_checkpoint_contents_and_rng_state(env, tmp_path):
    tmp, params = env
    train(build_trainee("prior", params), params, tmp_path / "p", steps=2, show_progress=False)
    ck = load_checkpoint(tmp_path / "p" / "model.pt")
    for key in ("format", "kind", "method", "arch", "config", "step", "model", "ema", "optimizers",
                "scalers", "rng", "data_position", "provenance"):
        assert key in ck
    assert ck["kind"] == "prior" and ck["step"] == 2 and ck["data_position"] == 8
    assert set(ck["rng"][0]) >= {"torch", "python", "numpy"}
    assert set(ck["ema"]) == {"generator"}
    # EMA differs from the raw weights after training
    raw = {k[len("generator."):]: v for k, v in ck["model"].items() if k.startswith("generator.")}
    assert any(not torch.equal(raw[k], v) for k, v in ck["ema"]["generator"].items())
    log = json.loads((tmp_path / "p" / "train_log.json").read_text())
    assert log["environment"]["torch"] == torch.__version__ and log["environment"]["cpu"]


def test_checkpoint_mismatch_and_corrupt_errors(env, tmp_path):
    tmp, params = env
    dre_ck = tmp / "ckpt" / "dre" / "model.pt"
    with pytest.raises(FRBenchError, match="checkpoint is for dre"):
        load_for_inference(build_trainee("panini", params), dre_ck)
    train(build_trainee("panini", params), params, tmp_path / "pan", steps=1, show_progress=False)
    # same arch, other sizes (SR: lq 4 instead of 16)
    with pytest.raises(FRBenchError, match="lq_size"):
        load_for_inference(build_trainee("panini_sr", params), tmp_path / "pan" / "model.pt")
    # same arch and sizes but another architecture inside (Cat-Conv vs DAFI, both SR)
    train(build_trainee("panini_sr", params), params, tmp_path / "sr", steps=1, show_progress=False)
    with pytest.raises(FRBenchError, match="does not match"):
        load_for_inference(build_trainee("panini_catconv", params), tmp_path / "sr" / "model.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(FRBenchError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(FRBenchError, match="not an frbench checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(FRBenchError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # resume with changed params is refused
    changed = tiny_params(tmp, edit=lambda d: d["methods"]["panini"].update(l1_weight=2.0))
    with pytest.raises(FRBenchError, match="different params"):
        train(build_trainee("panini", changed), changed, tmp_path / "pan", resume=True,
              show_progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(env, tmp_path):
    tmp, params = env
    p = tiny_params(tmp, edit=lambda d: d["train"].update(ckpt_every=1))
    tr = build_trainee("panini", p)
    orig = tr.g_step

    def g_step(batch, step):
        loss, logs = orig(batch, step)
        return (loss * float("nan") if step == 2 else loss), logs
    tr.g_step = g_step
    with pytest.raises(FRBenchError, match=r"loss_g is nan at step 2.*model.partial.pt \(step 2\) is kept"):
        train(tr, p, tmp_path / "nan", show_progress=False)
    assert not (tmp_path / "nan" / "model.pt").exists()
    ck = load_checkpoint(tmp_path / "nan" / "model.partial.pt")
    assert ck["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_bicubic_checkpoint_and_restore(env, tmp_path):
    tmp, params = env
    m = build_trainee("bicubic", params)
    train(m, params, tmp_path / "bic", show_progress=False)
    m2 = build_trainee("bicubic", params)
    load_for_inference(m2, tmp_path / "bic" / "model.pt")
    lq = torch.rand(2, 3, 16, 16) * 2 - 1
    out = m2.restore(lq)
    ref = torch.nn.functional.interpolate(lq, size=(32, 32), mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, ref.clamp(-1, 1))
    # restore resizes other input sizes; forward insists on lq_size
    assert m2.restore(torch.zeros(1, 3, 20, 20)).shape == (1, 3, 32, 32)
    with pytest.raises(FRBenchError, match="expects LQ"):
        m2(torch.zeros(1, 3, 20, 20))
    with pytest.raises(FRBenchError, match="square"):
        m2.restore(torch.zeros(1, 3, 20, 24))


def _ddp_worker(rank, world, init_file, tmp, out):
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        params = tiny_params(tmp)
        train(build_trainee("prior", params), params, out, steps=3, show_progress=False)
    finally:
        dist.destroy_process_group()


def test_two_process_gloo_equals_one_process(env, tmp_path):
    """2 ranks x 2 samples == 1 process x 4 samples (prior: fixed noise, stddev group 1)."""
    tmp, params = env
    one = train(build_trainee("prior", params), params, tmp_path / "one", steps=3,
                show_progress=False)
    import torch.multiprocessing as mp
    # fork: no re-import of torch in the children (spawn costs ~10 s more on 2 cores)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp), str(tmp_path / "two")),
                       nprocs=2, join=True, start_method="fork")
    ck1, ck2 = load_checkpoint(tmp_path / "one" / "model.pt"), load_checkpoint(tmp_path / "two" / "model.pt")
    assert ck2["world_size"] == 2 and ck2["step"] == 3
    for h1, h2 in zip(ck1["history"], ck2["history"]):
        assert h1["loss_d"] == pytest.approx(h2["loss_d"], rel=1e-4)
        assert h1["loss_g"] == pytest.approx(h2["loss_g"], rel=1e-4)
    for k, v in ck1["model"].items():
        torch.testing.assert_close(v, ck2["model"][k], rtol=1e-4, atol=1e-5, msg=k)
    moved = [k for k, v in ck1["model"].items() if v.is_floating_point()
             and not torch.equal(v, load_checkpoint(tmp / "ckpt" / "prior" / "model.pt")["model"][k])]
    assert moved  # training changed the weights


def test_restore_folder_writes_out_size_pngs_atomically(env, tmp_path):
    from pipeline.cmd_restore import restore_folder
    from core.imageio import read_image, write_png
    import numpy as np
    tmp, params = env
    m = build_trainee("bicubic", params)
    inp = tmp_path / "lq"
    for i in range(3):
        write_png(inp / f"{i:05d}.png", np.full((16, 16, 3), 0.25 * i, np.float32))
    assert restore_folder(m, inp, tmp_path / "out") == 3
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["resized"] is None and man["resize_allowed"] is False and man["n_images"] == 3
    write_png(inp / "00003.png", np.zeros((20, 20, 3), np.float32))  # another size
    with pytest.raises(FRBenchError, match=r"00003.png: 20x20 px, but bicubic takes 16x16 px"):
        restore_folder(m, inp, tmp_path / "strict")
    assert restore_folder(m, inp, tmp_path / "out", resize=True) == 4  # replaces its own output
    outs = sorted(p for p in (tmp_path / "out").iterdir() if p.suffix == ".png")
    assert [p.name for p in outs] == [f"{i:05d}.png" for i in range(4)]
    assert read_image(outs[1]).shape == (32, 32, 3) and read_image(outs[3]).shape == (32, 32, 3)
    assert abs(int(read_image(outs[1])[5, 5, 0]) - 64) <= 1
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["resize_allowed"] is True and man["resized"]["n"] == 1
    assert man["resized"]["from_sizes"] == {"20": 1} and man["resized"]["to"] == 16
    write_png(inp / "00004.png", np.zeros((16, 18, 3), np.float32))
    with pytest.raises(FRBenchError, match="not square"):
        restore_folder(m, inp, tmp_path / "bad", resize=True)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "strict").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_panini_setup_loads_prior_ema_and_frozen_dre(env):
    from methods.base import TrainContext
    tmp, _ = env
    p = tiny_params(tmp, edit=lambda d: d["methods"]["panini"].update(init_latent_avg=True))
    m = build_trainee("panini", p)
    m.setup_training(TrainContext(p, torch.device("cpu"), str(tmp / "ckpt")))
    ck = load_checkpoint(tmp / "ckpt" / "prior" / "model.pt")
    for k, v in ck["ema"]["generator"].items():
        torch.testing.assert_close(m.generator.state_dict()[k], v, msg=k)
    assert not any(p_.requires_grad for p_ in m.dre.parameters())
    assert not any(p_.requires_grad for p_ in m.generator.style.parameters())
    m.train()
    assert not m.dre.training and m.ife.training
    b = m.ife.latent_fc.bias.view(m.generator.n_latent, -1)
    torch.testing.assert_close(b[0], b[-1])
    assert "prior" in m.provenance and "dre" in m.provenance


def test_prior_path_length_regularisation_runs(env):
    tmp, _ = env
    p = tiny_params(tmp, edit=lambda d: d["prior"].update(path_reg_weight=2.0))
    m = build_trainee("prior", p)
    batch = {"z_g": torch.randn(4, 2, 16), "inj_g": torch.tensor([2, 8, 8, 3])}
    loss, logs = m.g_step(batch, 0)
    assert "path_len" in logs and float(m.pl_mean) > 0
    loss.backward()
    # style mixing: layers < inject take code 0
    w = m.wplus(batch["z_g"], batch["inj_g"])
    torch.testing.assert_close(w[0, 1], m.generator.style(batch["z_g"][0, :1])[0])
    torch.testing.assert_close(w[0, 2], m.generator.style(batch["z_g"][0, 1:2])[0])
    torch.testing.assert_close(w[1, 7], m.generator.style(batch["z_g"][1, :1])[0])


def test_resume_equals_uninterrupted_with_random_noise(env, tmp_path):
    """The prior with random noise injection: the torch RNG stream must survive the resume."""
    tmp, _ = env
    p = tiny_params(tmp, edit=lambda d: d["prior"].update(train_noise="random"))
    full = train(build_trainee("prior", p), p, tmp_path / "full", show_progress=False)
    train(build_trainee("prior", p), p, tmp_path / "split", stop_after=2, show_progress=False)
    rest = train(build_trainee("prior", p), p, tmp_path / "split", resume=True, show_progress=False)
    assert len(full["history"]) == len(rest["history"]) == 4
    for a, b in zip(full["history"], rest["history"]):
        assert (a["loss_g"], a["loss_d"]) == (b["loss_g"], b["loss_d"])  # exact
    wa, wb = _weights(tmp_path / "full" / "model.pt"), _weights(tmp_path / "split" / "model.pt")
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_r1_penalty_matches_the_analytic_gradient():
    """R1 of D(x) = sum(w * x^2): grad = 2 w x, so R1 = mean over the batch of sum((2 w x)^2)."""
    import torch
    from torch import nn

    from methods.base import r1_penalty

    class Quad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.linspace(0.5, 2.0, 3 * 4 * 4).view(1, 3, 4, 4))

        def forward(self, x):
            return (self.w * x * x).flatten(1).sum(1)

    d = Quad()
    x = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    want = (2 * d.w * x).pow(2).flatten(1).sum(1).mean()
    got = r1_penalty(d, x)
    assert torch.allclose(got, want, rtol=1e-6)
    got.backward()  # differentiable w.r.t. D's parameters (create_graph)
    assert d.w.grad is not None and torch.isfinite(d.w.grad).all()


def test_trainer_reports_to_the_logger_it_is_handed(env, tmp_path):
    """methods/ knows no MLflow: the caller hands a logger; metrics every log_every steps, the
    sample grids and train_log.json reach it, inside one run context."""
    from contextlib import contextmanager

    from methods.trainer import TrainLogger
    tmp, _ = env
    p = tiny_params(tmp, edit=lambda d: d["train"].update(log_every=1, sample_every=2))
    calls = []

    class Rec:
        def log_metrics(self, metrics, step=None):
            calls.append(("metrics", step, sorted(metrics)))

        def log_artifact(self, path, artifact_path=None):
            calls.append(("artifact", artifact_path, os.path.basename(path)))

    class Logger(TrainLogger):
        @contextmanager
        def run(self, name, params, tags):
            calls.append(("start", name, params["total_steps"], tags["kind"]))
            yield Rec()
            calls.append(("end",))

    train(build_trainee("prior", p), p, tmp_path / "p", steps=2, show_progress=False,
          logger=Logger())
    assert calls[0] == ("start", "prior", 2, "prior") and calls[-1] == ("end",)
    assert [c[1] for c in calls if c[0] == "metrics"] == [1, 2]
    assert "loss_g" in calls[1][2] and "lr_scale" in calls[1][2]
    arts = [c for c in calls if c[0] == "artifact"]
    assert arts == [("artifact", "samples", "step_000002.png"), ("artifact", None, "train_log.json")]


def test_library_packages_never_import_the_pipeline():
    """core/ < degradations/, metrics/, methods/ < pipeline/ (docs/architecture.md)."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    bad = []
    for pkg in ("core", "degradations", "metrics", "methods"):
        for f in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for n in names:
                    top = n.split(".")[0]
                    if top == "pipeline" or (pkg == "core" and top in
                                             ("degradations", "metrics", "methods")):
                        bad.append(f"{f.relative_to(root)} imports {n}")
    assert not bad, bad
