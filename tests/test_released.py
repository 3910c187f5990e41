"""Released checkpoints: parity with the official code through the golden fixtures
(tests/fixtures/official/, tests/official_fixtures.py), full-size layouts, and import errors.

Every fixture whose name maps to a format of this file is run: the official container is
rebuilt from the manifest, imported through ``import_checkpoint`` (the code path of
``frbench import``), our module runs on the fixture inputs and its outputs are compared with the
official ones (max abs diff <= 1e-4 x the output's ``stats.abs_max``; embeddings 1e-5 abs).
Fixtures of more than ~30 M elements or at 1024 px are ``slow``.
"""
from __future__ import annotations

import pytest
import torch

from core.errors import FRBenchError
from methods.released.base import check_layout, import_checkpoint
from tests import official_fixtures as of

REL = 1e-4
#: fixtures fast enough for `make test` (rebuild + import + forward well under ~5 s each)
FAST = {"sg2_rosinality_64_cm1", "gpen_bfr_256", "arcface_resnet18", "irse50"}


def _params(names):
    return [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in names]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _apply_ema(imp):
    """What ``load_for_inference`` does with the checkpoint's EMA copies."""
    for sub, sd in imp.checkpoint["ema"].items():
        imp.module.get_submodule(sub).load_state_dict(sd, strict=True)
    return imp.module.eval()


def test_fixture_tensors_rebuild_exactly():
    """The README §1 rules give each tensor's recorded check (sum, first) on a small fixture."""
    name = "gpen_d_512"
    m = of.manifest(name)
    bad = [of.check_tensor(e, of.build_tensor(e, int(m["seed"]))) for e in m["tensors"]]
    assert [b for b in bad if b] == []
    e = dict(m["tensors"][0])
    e["mean"] = float(e["mean"]) + 1e-3  # a perturbed recipe must be caught
    assert of.check_tensor(e, of.build_tensor(e, int(m["seed"]))) is not None


def assert_every_key_maps(name, conv, module):
    """Every tensor of the released file is mapped onto ours or skipped with a reason (checked
    kernels), and our model's keys are exactly the converted ones (none left over)."""
    file_keys = {"/".join(e["path"]) for e in of.manifest(name)["tensors"]}
    accounted = set(conv.origin.values()) | set(conv.skipped)
    assert sorted(file_keys - accounted) == []
    assert set(conv.state) == set(module.state_dict())
    skipped_tensors = [k for k in conv.skipped if k in file_keys]
    assert all(k.endswith(".kernel") for k in skipped_tensors), skipped_tensors
    return len(file_keys), len(skipped_tensors)


# ------------------------------------------------------------------------------------------
# rosinality StyleGAN2

@pytest.mark.parametrize("name", _params(of.fixtures_for("rosinality_stylegan2")))
def test_rosinality_parity(name):
    man = of.manifest(name)
    imp = import_checkpoint("rosinality_stylegan2", of.build_container(name), "prior",
                            out_root=None)
    cfg = man["config"]
    assert imp.converted.config["arch"]["size"] == cfg["size"]
    assert imp.converted.config["arch"]["channel_multiplier"] == cfg["channel_multiplier"]
    assert any(k.endswith(".kernel") for k in imp.converted.skipped)
    if "g" not in man["container"]["in_fixture"]:
        assert "generator.*" in imp.converted.filled
    prior = _apply_ema(imp)
    g = prior.generator
    ins, stored = of.build_inputs(name), of.outputs(name)
    res = {}
    with torch.no_grad():
        img, lat = g([ins["z"]], randomize_noise=False, return_latents=True)
        res["G.image"] = of.assert_close(name, "G.image", img, REL, stored=stored)
        res["G.latent"] = of.assert_close(name, "G.latent", lat, REL, stored=stored)
        noise = [ins[f"noise_{i}"] for i in range(g.num_layers)]
        img = g([ins["z"]], noise=noise)
        res["G.image_explicit_noise"] = of.assert_close(name, "G.image_explicit_noise", img, REL,
                                                        stored=stored)
        if "d" in man["container"]["in_fixture"]:
            res["D.logits"] = of.assert_close(name, "D.logits", prior.discriminator(ins["d_img"]),
                                              REL, stored=stored)
    assert set(res) == {o["name"] for o in man["outputs"]}


@pytest.mark.parametrize("name", of.fixtures_for("rosinality_stylegan2"))
def test_rosinality_full_layout(name):
    """Every key of the released configuration maps (meta tensors: shapes only)."""
    conv, module = check_layout("rosinality_stylegan2", of.shape_container(name), "prior",
                                meta=True)
    assert_every_key_maps(name, conv, module)
    assert set(conv.filled) == ({"pl_mean"} | ({"generator.*"} if "g" not in
                                                 of.manifest(name)["container"]["in_fixture"]
                                                 else set()))


def test_rosinality_wrong_file_is_a_clear_error():
    name = "sg2_rosinality_64_cm1"
    c = of.shape_container(name, device="cpu")
    with pytest.raises(FRBenchError, match=r"format rosinality_stylegan2: no 'g_ema' entry"):
        check_layout("rosinality_stylegan2", {"params_ema": c["g_ema"]}, "prior")
    c["g_ema"]["extra.weight"] = torch.zeros(3, 3)
    del c["g_ema"]["conv1.conv.weight"]
    with pytest.raises(FRBenchError) as e:
        check_layout("rosinality_stylegan2", c, "prior")
    msg = str(e.value)
    assert "rosinality_stylegan2" in msg and "generator.conv1.conv.weight (1, 512, 512, 3, 3)" in msg
    assert "g_ema/extra.weight (3, 3)" in msg


# ------------------------------------------------------------------------------------------
# GPEN

def _gpen_outputs(m, x):
    with torch.no_grad():
        z, feats = m.encoder(x)
        img, lat = m.generator(z, noise=m.noises(feats), randomize_noise=False,
                               return_latents=True)
        assert torch.equal(m(x), img)  # the method's forward is that call
    return {"image": img, "latent": lat, "enc_style": z}


@pytest.mark.parametrize("name", _params([n for n in of.fixtures_for("gpen_bfr")
                                          if n.startswith("gpen_bfr_")]))
def test_gpen_parity(name):
    man = of.manifest(name)
    imp = import_checkpoint("gpen_bfr", of.build_container(name), "gpen_x", out_root=None)
    arch = imp.converted.config["prior_arch"]
    for k in ("size", "channel_multiplier", "narrow"):
        assert arch[k] == man["config"][k], k
    assert "generator.noises.*" in imp.converted.filled
    assert imp.module.discriminator is None
    ins, stored = of.build_inputs(name), of.outputs(name)
    res = {k: of.assert_close(name, k, v, REL, stored=stored)
           for k, v in _gpen_outputs(imp.module.eval(), ins["x"]).items()}
    assert set(res) == {o["name"] for o in man["outputs"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in of.fixtures_for("gpen_bfr") if n.startswith("gpen_d_")])
def test_gpen_discriminator_parity(name):
    """The -D file through ``--extra d=...`` with the generator of the same size."""
    size = of.manifest(name)["config"]["size"]
    gname = f"gpen_bfr_{size}"
    imp = import_checkpoint("gpen_bfr", of.build_container(gname), "gpen_x", out_root=None,
                            extras={"d": of.build_container(name)})
    assert imp.converted.config["adv_weight"] > 0
    ins = of.build_inputs(name)
    with torch.no_grad():
        of.assert_close(name, "logits", imp.module.eval().discriminator(ins["x"]), REL)


@pytest.mark.parametrize("name", [n for n in of.fixtures_for("gpen_bfr")
                                  if n.startswith("gpen_bfr_")])
def test_gpen_full_layout(name):
    conv, module = check_layout("gpen_bfr", of.shape_container(name), "gpen_x", meta=True)
    assert_every_key_maps(name, conv, module)
    assert set(conv.filled) == {"generator.noises.*", "pl_mean"}
    d_names = [n for n in of.fixtures_for("gpen_bfr") if n == name.replace("bfr", "d")]
    for d in d_names:  # the -D file of the same configuration
        conv, module = check_layout("gpen_bfr", of.shape_container(name), "gpen_x", meta=True,
                                    extras={"d": of.shape_container(d)})
        d_keys = {f"d:{'/'.join(e['path'])}" for e in of.manifest(d)["tensors"]}
        assert d_keys <= set(conv.origin.values()) | set(conv.skipped)
        assert any(k.startswith("discriminator.") for k in conv.state)


def test_gpen_wrong_files_are_clear_errors():
    c = of.shape_container("gpen_bfr_256", device="cpu")
    with pytest.raises(FRBenchError, match=r"format gpen_bfr: .*GPEN FullGenerator"):
        check_layout("gpen_bfr", {"g_ema": c}, "x")
    with pytest.raises(FRBenchError) as e:  # a 256 file declared as 512 (wrong --set)
        check_layout("gpen_bfr", c, "x", overrides={"prior_arch.channel_multiplier": 2})
    assert "shape mismatch" in str(e.value) and "gpen_bfr" in str(e.value)


# ------------------------------------------------------------------------------------------
# pSp

@pytest.mark.slow
@pytest.mark.parametrize("name", of.fixtures_for("psp"))
def test_psp_parity(name):
    import torch.nn.functional as F
    man = of.manifest(name)
    imp = import_checkpoint("psp", of.build_container(name), "psp_x", out_root=None)
    cfg = imp.converted.config
    assert cfg["out_size"] == man["config"]["output_size"]
    assert cfg["encoder_input_size"] == man["config"]["input_size"] == 256
    m = imp.module.eval()
    assert m.latent_avg.shape == (man["config"]["n_styles"], 512)
    raw = []
    m.encoder.register_forward_hook(lambda mod, i, o: raw.append(o))
    ins, stored = of.build_inputs(name), of.outputs(name)
    with torch.no_grad():
        codes = m.codes(ins["x"])
        img = m.generator(codes, input_is_latent=True, randomize_noise=False)
        ours = {"image_1024": img, "codes_wplus": codes, "encoder_raw": raw[0],
                "image_256": F.adaptive_avg_pool2d(img, 256)}
    res = {k: of.assert_close(name, k, v, REL, stored=stored) for k, v in ours.items()}
    assert set(res) == {o["name"] for o in man["outputs"]}


@pytest.mark.parametrize("name", of.fixtures_for("psp"))
def test_psp_full_layout(name):
    """Every key of the released pSp maps; at encoder_input_size 256 the heads match pSp's
    (the 1024 px encoder would have 72 more tensors)."""
    conv, module = check_layout("psp", of.shape_container(name), "psp_x", meta=True)
    assert_every_key_maps(name, conv, module)
    assert conv.filled == {}
    with pytest.raises(FRBenchError, match="72 of our tensors have no counterpart in the file"):
        check_layout("psp", of.shape_container(name), "psp_x", meta=True,
                     overrides={"encoder_input_size": 1024})


# ------------------------------------------------------------------------------------------
# identity backbones

def _embedder(net, kind):
    """Our identity-loss preprocessing (methods.baseline_common.IdentityLoss.embed) around net."""
    from methods.baseline_common import ID_CROP, IdentityLoss
    loss = IdentityLoss.__new__(IdentityLoss)
    torch.nn.Module.__init__(loss)
    loss.net, loss.kind, loss.mode = net.eval(), kind, "cos"
    loss.crop = ID_CROP if kind == "irse50" else None
    return loss


@pytest.mark.parametrize("fmt,name", [(f, n) for f in ("arcface_resnet18", "irse50")
                                      for n in of.fixtures_for(f)])
def test_identity_backbone_parity(fmt, name):
    man = of.manifest(name)
    imp = import_checkpoint(fmt, of.build_container(name), "idnet", out_root=None)
    net = imp.module.eval()
    ins, stored = of.build_inputs(name), of.outputs(name)
    emb = _embedder(net, imp.converted.arch)
    with torch.no_grad():
        if fmt == "arcface_resnet18":
            ours = {"embedding": net(ins["x"]), "embedding_from_rgb": emb.embed(ins["rgb512"])}
        else:
            ours = {"embedding": net(ins["x"]), "embedding_psp_idloss": emb.embed(ins["x256"])}
    res = {k: of.assert_close(name, k, v, abs_tol=1e-5, stored=stored) for k, v in ours.items()}
    assert set(res) == {o["name"] for o in man["outputs"]}


@pytest.mark.parametrize("fmt,name", [(f, n) for f in ("arcface_resnet18", "irse50")
                                      for n in of.fixtures_for(f)])
def test_identity_backbone_full_layout(fmt, name):
    conv, module = check_layout(fmt, of.shape_container(name), "idnet", meta=True)
    assert_every_key_maps(name, conv, module)
