"""``frbench import``: a released-layout file -> checkpoint + methods entry -> ``frbench restore``
and ``load_for_inference`` as for a trained model; wrong files fail clearly, writing nothing."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml

from method_helpers import tiny_dict
from pipeline.cli import main

TINY_ARCH = {"size": 32, "style_dim": 16, "n_mlp": 2, "channel_multiplier": 1,
             "max_channels": 8, "lr_mlp": 0.01, "narrow": 1.0}


def tiny_gpen_release(seed: int = 3):
    """A GPEN ``FullGenerator`` state dict in the official layout (GPEN's names, FIR kernels,
    no noise buffers), exported from our module with random weights: (container, module)."""
    from methods.released.base import Converted, build_module
    from methods.released.gpen import ENTRY_DEFAULTS
    entry = {**ENTRY_DEFAULTS, "out_size": 32, "lq_size": 32, "prior_arch": dict(TINY_ARCH),
             "adv_weight": 0.0, "fm_weight": 0.0}
    torch.manual_seed(seed)
    m = build_module(Converted("method", "gpen", entry, {}), "src").eval()
    with torch.no_grad():  # non-trivial noise scalars / biases (init 0 would hide swaps)
        for n, p in m.named_parameters():
            if p.dim() <= 1 or n.endswith("noise.weight"):
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "modulation.bias" in n else 0.0))
    out = {}
    tensors = {**m.state_dict(), **{k: v for k, v in m.named_buffers() if k.endswith("kernel")}}
    for k, v in tensors.items():
        if k.startswith("generator.noises.") or k == "pl_mean":
            continue
        if k.startswith("encoder.ecd0."):
            k = "ecd0.0." + k[len("encoder.ecd0."):]
        elif k.startswith("encoder.downs."):
            i, rest = k[len("encoder.downs."):].split(".", 1)
            k = f"ecd{int(i) + 1}.0.{rest}"
        elif k.startswith("encoder.final_linear."):
            k = "final_linear.0." + k[len("encoder.final_linear."):]
        out[k] = v.clone()
    return out, m


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tiny_dict(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    src, module = tiny_gpen_release()
    torch.save(src, tmp_path / "GPEN-BFR-32.pth")
    lq = tmp_path / "lq"
    lq.mkdir()
    from core.imageio import write_png
    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(lq / f"{i:05d}.png", rng.random((16, 16, 3)).astype(np.float32))
    return tmp_path, src, module


SETS = ["--set", "prior_arch.narrow=1", "--set", "prior_arch.max_channels=8",
        "--set", "lq_size=16"]


def test_import_restore_and_load_for_inference(env, capsys):
    tmp, src, module = env
    params_before = (tmp / "params.yaml").read_text()
    rc = main(["import", "gpen_bfr", str(tmp / "GPEN-BFR-32.pth"), "--name", "gpen_rel",
               "--write-params", *SETS])
    assert rc == 0
    out = capsys.readouterr().out
    assert "methods:\n  gpen_rel: {arch: gpen" in out and "filled  generator.noises.*" in out
    text = (tmp / "params.yaml").read_text()
    assert text.startswith(params_before.split("methods:")[0])  # the rest untouched
    ck_path = tmp / "ckpt" / "gpen_rel" / "model.pt"
    ck = torch.load(ck_path, weights_only=True)
    assert ck["step"] == ck["total_steps"] > 0 and ck["kind"] == "method"
    prov = ck["provenance"]
    assert re.fullmatch(r"file:GPEN-BFR-32\.pth@sha256:[0-9a-f]{16}", prov["source"])
    assert prov["format"] == "gpen_bfr" and prov["mapping_version"] == 1
    assert "generator.noises.*" in prov["filled"] and prov["skipped"]
    # load_for_inference on the entry written to params.yaml reproduces the source module
    from methods.trainer import load_for_inference
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params
    params = load_params(tmp / "params.yaml")
    m = build_trainee("gpen_rel", params)
    load_for_inference(m, ck_path)
    assert m.provenance["format"] == "gpen_bfr"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m.eval().generator.input.input, module.generator.input.input)
        z1, f1 = m.encoder(x)
        z0, f0 = module.encoder(x)
        torch.testing.assert_close(z1, z0)
        torch.testing.assert_close(m.generator(z1, noise=m.noises(f1), randomize_noise=False),
                                   module.generator(z0, noise=module.noises(f0),
                                                    randomize_noise=False))
    # frbench restore --method NAME works as for a trained model
    assert main(["restore", "--method", "gpen_rel", "--input", str(tmp / "lq"),
                 "--output", str(tmp / "restored")]) == 0
    outs = sorted((tmp / "restored").glob("*.png"))
    assert len(outs) == 3
    from core.imageio import read_image
    assert read_image(outs[0]).shape == (32, 32, 3)
    # importing again is idempotent; a second --write-params with the same entry is a no-op
    assert main(["import", "gpen_bfr", str(tmp / "GPEN-BFR-32.pth"), "--name", "gpen_rel",
                 "--write-params", *SETS]) == 0
    assert (tmp / "params.yaml").read_text() == text


def test_wrong_file_is_a_clear_error_and_writes_nothing(env, capsys):
    tmp, src, _ = env
    before = (tmp / "params.yaml").read_text()
    bad = dict(src)
    del bad["ecd1.0.1.weight"]
    bad["ecd1.0.9.weight"] = torch.zeros(2, 2)
    torch.save(bad, tmp / "bad.pth")
    torch.save({"g_ema": src}, tmp / "wrapped.pth")
    cases = [
        ("gpen_bfr", "bad.pth", [r"format gpen_bfr", r"encoder\.downs\.0\.1\.weight \(8, 8, 3, 3\)",
                                 r"ecd1\.0\.9\.weight \(2, 2\)"]),
        ("gpen_bfr", "wrapped.pth", [r"format gpen_bfr", r"GPEN FullGenerator"]),
        ("psp", "GPEN-BFR-32.pth", [r"format psp: no 'state_dict' entry"]),
        ("gpen_bfr", "missing.pth", [r"missing\.pth: file not found"]),
    ]
    for fmt, f, pats in cases:
        rc = main(["import", fmt, str(tmp / f), "--name", "x", "--write-params", *SETS])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, err
        for p in pats:
            assert re.search(p, err), (p, err)
    assert not (tmp / "ckpt" / "x").exists()
    assert (tmp / "params.yaml").read_text() == before
    # a shape mismatch (wrong --set) names both shapes
    rc = main(["import", "gpen_bfr", str(tmp / "GPEN-BFR-32.pth"), "--name", "x",
               "--set", "prior_arch.max_channels=4"])
    err = capsys.readouterr().err
    assert rc == 2 and "shape mismatches" in err and "vs ours" in err
    assert not (tmp / "ckpt" / "x").exists()


def test_import_never_replaces_a_trained_checkpoint(env, capsys):
    tmp, _, _ = env
    target = tmp / "ckpt" / "gpen"
    target.mkdir(parents=True)
    (target / "model.pt").write_bytes(b"trained weights")
    rc = main(["import", "gpen_bfr", str(tmp / "GPEN-BFR-32.pth"), "--name", "gpen", *SETS])
    assert rc == 2 and "not an imported checkpoint" in capsys.readouterr().err
    assert (target / "model.pt").read_bytes() == b"trained weights"


def test_list_formats(capsys):
    assert main(["import", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("rosinality_stylegan2", "gpen_bfr", "psp", "arcface_resnet18", "irse50"):
        assert name in out
