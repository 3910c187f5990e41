"""Released GFP-GAN (v1, clean) and Panini-Net (MFR, SR) checkpoints: parity with the official
code through the golden fixtures, full-size layouts and clear errors.

Everything comes from tests/fixtures/official/ (tests/official_fixtures.py): every fixture whose
name maps to one of these formats is rebuilt, imported through ``import_checkpoint`` (the code
path of ``frbench import``), run on the fixture inputs and compared with the official outputs
(max abs diff <= 1e-4 x the output's ``stats.abs_max``). The whole-model runs take 15-50 s on
one CPU thread (512 px GFP-GAN, 1024 px Panini) and are ``slow``; the fast tests cover the same
mappings on the cheap parts (GFP-GAN's U-Net encoder path: the W+ codes of one sample; the three
component discriminators; Panini's DAFI masks and DR vector).
"""
from __future__ import annotations

import pytest
import torch

from core.errors import FRBenchError
from methods.dre import Encoder
from methods.gfpgan import COMPONENTS, FacialComponentDiscriminator, GFPGANUNet
from methods.panini import DAFIMaskGen
from methods.released import gfpgan as rg
from methods.released import panini as rp
from methods.released.base import check_layout, import_checkpoint
from methods.stylegan2 import channel_table
from tests import official_fixtures as of
from tests.test_released import assert_every_key_maps

REL = 1e-4
GFPGAN = of.fixtures_for("gfpgan_v1") + of.fixtures_for("gfpgan_clean")
GFPGAN_G = [n for n in GFPGAN if n != "gfpgan_v1_discriminators"]
PANINI = of.fixtures_for("panini_mfr") + of.fixtures_for("panini_sr")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rgb_names(name):
    return sorted((o["name"] for o in of.manifest(name)["outputs"] if o["name"].startswith("rgb_")),
                  key=lambda s: int(s.split("_")[1]))


def _partial_state(name, keep) -> dict:
    """{file key: tensor} of the manifest entries whose (last path) key passes ``keep``."""
    m = of.manifest(name)
    return {e["path"][-1]: of.build_tensor(e, int(m["seed"])) for e in m["tensors"]
            if keep(e["path"][-1])}


def test_fixture_mapping_covers_every_gfpgan_and_panini_fixture():
    assert set(GFPGAN) >= {"gfpgan_v1_512_cm1", "gfpgan_v1clean_512_cm2", "gfpgan_v1_discriminators"}
    assert set(PANINI) >= {"panini_mfr_1024", "panini_sr_1024"}


# ------------------------------------------------------------------------------------------
# GFP-GAN

@pytest.mark.parametrize("name", GFPGAN_G)
def test_gfpgan_style_code_parity(name):
    """The U-Net's encoder path (conv_body_first, conv_body_down, final_conv, final_linear) from
    the fixture's tensors mapped by the format's key map: W+ codes of the first fixture sample
    (fast; the whole model, both samples and every output are in ``test_gfpgan_parity``)."""
    man, fmt = of.manifest(name), of.format_of(name)
    clean = fmt == "gfpgan_clean"
    enc = ("conv_body_first.", "conv_body_down.", "final_conv.", "final_linear.")
    state = {}
    for k, t in _partial_state(name, lambda k: k.startswith(enc)).items():
        ours, fn = rg.map_generator_key(k, clean)
        state[ours[len("unet."):]] = fn(t) if fn else t
    cfg = man["config"]
    dec = channel_table(cfg["out_size"], cfg["channel_multiplier"])
    unet_ch = {r: c // 2 for r, c in dec.items()}
    unet = GFPGANUNet(cfg["out_size"], unet_ch, unet_ch, cfg["num_latent"], cfg["num_style_feat"],
                      clean=clean).eval()
    own = unet.state_dict()
    assert set(state) == {k for k in own if k.startswith(enc)}
    unet.load_state_dict({**own, **state}, strict=True)
    x = of.build_inputs(name)["x"][:1]
    with torch.no_grad():
        f = unet.conv_body_first(x)
        for blk in unet.conv_body_down:
            f = blk(f)
        w = unet.final_linear(unet.final_conv(f).flatten(1)).view(1, cfg["num_latent"], -1)
    ref = of.outputs(name)["full"]["style_code"][:1]
    tol = REL * of.output_spec(name, "style_code")["stats"]["abs_max"]
    assert float((w - ref).abs().max()) <= tol


def test_gfpgan_component_discriminators_parity():
    """The three FacialComponentDiscriminators (names as ours) on the fixture crops (fast)."""
    name = "gfpgan_v1_discriminators"
    c = of.build_container(name)
    ins, stored = of.build_inputs(name), of.outputs(name)
    for comp in COMPONENTS:
        d = FacialComponentDiscriminator(64, 128, 256).eval()
        d.load_state_dict(c[f"net_d_{comp}"]["params"], strict=True)
        with torch.no_grad():
            out, (f0, f1) = d(ins[comp])
        of.assert_close(name, f"{comp}.out", out, REL, stored=stored)
        of.assert_close(name, f"{comp}.feat0", f0, REL, stored=stored)
        of.assert_close(name, f"{comp}.feat1", f1, REL, stored=stored)


@pytest.mark.slow
@pytest.mark.parametrize("name", GFPGAN_G)
def test_gfpgan_parity(name):
    """Whole model through ``import_checkpoint``: image, W+ and the pyramid."""
    fmt = of.format_of(name)
    imp = import_checkpoint(fmt, of.build_container(name), "gfpgan", out_root=None)
    m = imp.module.eval()
    assert m.cfg.version == ("clean" if fmt == "gfpgan_clean" else "v1")
    assert m.generator.channels[64] == 256 * of.manifest(name)["config"]["channel_multiplier"]
    stored = of.outputs(name)
    with torch.no_grad():
        res = m.analyze(of.build_inputs(name)["x"])  # eval: the fixed noise buffers
    got = {"image": res["out"], "style_code": res["wplus"],
           **dict(zip(_rgb_names(name), res["rgbs"], strict=True))}
    assert set(got) == {o["name"] for o in of.manifest(name)["outputs"]}
    for out, t in got.items():
        of.assert_close(name, out, t, REL, stored=stored)


@pytest.mark.slow
def test_gfpgan_discriminators_parity_through_import():
    """GFPGANv1.pth + the four discriminator files (extras) -> our discriminator.* / comp_d.*:
    the whole set imported together, every D output compared."""
    name = "gfpgan_v1_discriminators"
    dc = of.build_container(name)
    imp = import_checkpoint("gfpgan_v1", of.build_container("gfpgan_v1_512_cm1"), "gfpgan",
                            out_root=None, extras={k: dc[k] for k in dc})
    m = imp.module.eval()
    assert m.cfg.gan_weight > 0 and m.cfg.component_weight > 0
    ins, stored = of.build_inputs(name), of.outputs(name)
    res = {}
    with torch.no_grad():
        res["net_d.logits"] = of.assert_close(name, "net_d.logits", m.discriminator(ins["x512"]),
                                              REL, stored=stored)
        for comp in COMPONENTS:
            out, (f0, f1) = m.comp_d[comp](ins[comp])
            for tag, t in (("out", out), ("feat0", f0), ("feat1", f1)):
                res[f"{comp}.{tag}"] = of.assert_close(name, f"{comp}.{tag}", t, REL,
                                                       stored=stored)
    assert set(res) == {o["name"] for o in of.manifest(name)["outputs"]}


@pytest.mark.parametrize("name", GFPGAN_G)
def test_gfpgan_full_layout(name):
    """Every key of GFPGANv1.pth / GFPGANv1.3-1.4.pth maps (meta tensors: shapes only)."""
    fmt = of.format_of(name)
    conv, module = check_layout(fmt, of.shape_container(name), "gfpgan", meta=True)
    n, skipped = assert_every_key_maps(name, conv, module)
    assert n == len(of.manifest(name)["tensors"]) and skipped == 0
    assert not any(k.startswith(("discriminator.", "comp_d.")) for k in conv.state)
    assert conv.config["prior_arch"]["channel_multiplier"] == \
        of.manifest(name)["config"]["channel_multiplier"]


def test_gfpgan_discriminators_full_layout():
    dc = of.shape_container("gfpgan_v1_discriminators")
    g = of.shape_container("gfpgan_v1_512_cm1")
    conv, module = check_layout("gfpgan_v1", {**g, **dc}, "gfpgan", meta=True)
    d_keys = {f"{e['path'][0]}/params/{e['path'][-1]}"
              for e in of.manifest("gfpgan_v1_discriminators")["tensors"]}
    assert d_keys <= set(conv.origin.values())
    assert set(conv.state) == set(module.state_dict())
    assert any(k.startswith("discriminator.blocks.") for k in conv.state)
    assert {k.split(".")[1] for k in conv.state if k.startswith("comp_d.")} == set(COMPONENTS)


def test_gfpgan_wrong_files_are_clear_errors(tmp_path):
    v1 = of.shape_container("gfpgan_v1_512_cm1", device="cpu")
    clean = of.shape_container("gfpgan_v1clean_512_cm2", device="cpu")
    with pytest.raises(FRBenchError, match=r"format gfpgan_v1: .*not GFPGANv1 keys.*gfpgan_clean"):
        check_layout("gfpgan_v1", clean, "gfpgan", meta=True)
    with pytest.raises(FRBenchError, match=r"format gfpgan_clean: .*not GFPGANv1Clean keys"):
        check_layout("gfpgan_clean", v1, "gfpgan", meta=True)
    with pytest.raises(FRBenchError, match=r"format gfpgan_v1: no 'params' entry.*g_ema"):
        check_layout("gfpgan_v1", {"g_ema": v1["params_ema"]}, "gfpgan", meta=True)
    sd = dict(v1["params_ema"])
    sd["toRGB.0.weight"] = torch.zeros(3, 8, 1, 1)  # wrong width
    del sd["final_linear.bias"]
    with pytest.raises(FRBenchError) as e:
        import_checkpoint("gfpgan_v1", {"params_ema": sd}, "gfpgan", out_root=tmp_path)
    msg = str(e.value)
    assert "gfpgan_v1" in msg and "unet.final_linear.bias (8192,)" in msg
    assert "params_ema/toRGB.0.weight (3, 8, 1, 1)" in msg
    assert not any(tmp_path.iterdir())  # nothing written
    dc = of.shape_container("gfpgan_v1_discriminators", device="cpu")
    with pytest.raises(FRBenchError, match="four; missing net_d_mouth"):
        check_layout("gfpgan_v1", {**v1, **{k: dc[k] for k in dc if k != "net_d_mouth"}},
                     "gfpgan", meta=True)


# ------------------------------------------------------------------------------------------
# Panini-Net

def test_panini_orderings_on_hand_made_tensors():
    """Fusion convs and mask row blocks: official level 0 = 4x4, ours level 0 = top (64)."""
    assert rp.map_key("fusion_out.0.weight")[0] == "fusion_out.4.weight"
    assert rp.map_key("fusion_out.4.bias")[0] == "fusion_out.0.bias"
    rows = torch.arange(10.0).view(10, 1)  # 5 levels x (2 x 1 channel)
    out = rp.reverse_level_blocks(rows)
    assert out.view(-1).tolist() == [8, 9, 6, 7, 4, 5, 2, 3, 0, 1]
    assert rp.map_key("encoder.5.3.weight")[0] == "ife.latent_fc.weight"
    assert rp.map_key("encoder.4.0.bias")[0] == "ife.down.3.0.bias"
    assert rp.map_key("encoder.0.0.body.22.rdb3.conv5.weight")[0] == \
        "ife.encoder0.0.body.22.rdbs.2.convs.4.weight"
    assert rp.map_key("generator.style_mapping.3.linear.weight_orig")[0] == \
        "generator.style.3.weight"
    assert rp.map_key("generator.convs.4.conv.blur.kernel")[1] == "kernel"


@pytest.mark.parametrize("name", PANINI)
def test_panini_masks_and_dr_parity(name):
    """The DAFI masks (the mask generator's reversed row blocks) and the DR vector (MFR: the DRE
    on the pooled input; SR: the learned choice vector) from the fixture's tensors through the
    format's key map (fast; the IFE and the 1024 px generator are in ``test_panini_parity``)."""
    man = of.manifest(name)
    variant = "mfr" if of.format_of(name) == "panini_mfr" else "sr"
    keep = ("generator.AFS_maskGen.", "generator.deg_encoder.", "generator.choice_vector")
    state = {}
    for e in man["tensors"]:
        key = e["path"][-1]
        if key.startswith(keep):
            ours, kind = rp.map_key(key[len("generator."):])
            t = of.build_tensor(e, int(man["seed"]))
            state[ours] = rp.reverse_level_blocks(t) if kind == "mask_rows" else t
    entry = rp.entry(variant)
    mask_gen = DAFIMaskGen(entry["dr_dim"], [512] * rp.N_LEVELS).eval()
    mask_gen.load_state_dict({k[len("mask_gen."):]: v for k, v in state.items()
                              if k.startswith("mask_gen.")}, strict=True)
    lq, stored = of.build_inputs(name)["lq"], of.outputs(name)
    with torch.no_grad():
        if variant == "mfr":
            dre = Encoder(entry["dre_arch"]["widths"], entry["dre_arch"]["input_size"]).eval()
            dre.load_state_dict({k[len("dre."):]: v for k, v in state.items()
                                 if k.startswith("dre.")}, strict=True)
            v = dre.represent(lq)
            of.assert_close(name, "deg_style", v, REL, stored=stored)
        else:
            assert set(state) - {k for k in state if k.startswith("mask_gen.")} == \
                {"choice_vector"}
            v = state["choice_vector"].expand(lq.shape[0], -1)
        masks = mask_gen(v)
    of.assert_close(name, "masks_m1", torch.stack([a for a, _ in masks[::-1]], 1), REL,
                    stored=stored)  # official index 0 = 4x4, ours 0 = the top level
    of.assert_close(name, "masks_m2", torch.stack([b for _, b in masks[::-1]], 1), REL,
                    stored=stored)


@pytest.mark.slow
@pytest.mark.parametrize("name", PANINI)
def test_panini_parity(name):
    """Whole model through ``import_checkpoint`` (1024 px): image, W+, masks, DR vector."""
    fmt = of.format_of(name)
    imp = import_checkpoint(fmt, of.build_container(name), "panini", out_root=None)
    m = imp.module.eval()
    assert m.cfg.fuse_point == "post_rgb" and m.levels == [64, 32, 16, 8, 4]
    lq, stored = of.build_inputs(name)["lq"], of.outputs(name)
    with torch.no_grad():
        res = m.analyze(lq)
        got = {"image": res["out"], "latent_wplus": res["wplus"],
               "masks_m1": torch.stack([a for a, _ in res["masks"][::-1]], 1),
               "masks_m2": torch.stack([b for _, b in res["masks"][::-1]], 1)}
        if m.dre is not None:
            got["deg_style"] = m.dre.represent(lq)
    assert set(got) == {o["name"] for o in of.manifest(name)["outputs"]}
    for out, t in got.items():
        of.assert_close(name, out, t, REL, stored=stored)


@pytest.mark.parametrize("name", PANINI)
def test_panini_full_layout(name):
    """Every key of the released MFR / SR generator maps (meta tensors), the 16 FIR kernels are
    checked-and-skipped, and the real file's discriminator / VGG / meta entries are skipped
    with a reason."""
    fmt = of.format_of(name)
    c = of.shape_container(name)
    c["state_dict"]["discriminator.convs.0.0.weight"] = torch.empty(32, 3, 1, 1, device="meta")
    c["state_dict"]["perceptual_loss.vgg.features.0.weight"] = torch.empty(64, 3, 3, 3,
                                                                           device="meta")
    c["meta"] = {"mmedit_version": "0.14.0"}
    conv, module = check_layout(fmt, c, "panini", meta=True)
    n, kernels = assert_every_key_maps(name, conv, module)
    assert kernels == 16 and n == len(of.manifest(name)["tensors"])
    assert {"state_dict/discriminator.*", "state_dict/perceptual_loss.*", "meta"} <= \
        set(conv.skipped)
    assert conv.config["fuse_point"] == "post_rgb"


def test_panini_wrong_files_are_clear_errors(tmp_path):
    mfr = of.shape_container("panini_mfr_1024", device="cpu")
    sr = of.shape_container("panini_sr_1024", device="cpu")
    with pytest.raises(FRBenchError, match="SR .*use format panini_sr"):
        check_layout("panini_mfr", sr, "panini", meta=True)
    with pytest.raises(FRBenchError, match="MFR model; use format panini_mfr"):
        check_layout("panini_sr", mfr, "panini", meta=True)
    with pytest.raises(FRBenchError, match="format panini_mfr: no 'state_dict' entry"):
        check_layout("panini_mfr", {"params_ema": {}}, "panini", meta=True)
    with pytest.raises(FRBenchError, match="fuse_point post_rgb"):
        check_layout("panini_mfr", mfr, "panini", overrides={"fuse_point": "block"}, meta=True)
    sd = dict(mfr["state_dict"])
    sd["generator.fusion_out.0.weight"] = torch.zeros(256, 512, 3, 3)
    with pytest.raises(FRBenchError) as e:
        import_checkpoint("panini_mfr", {"state_dict": sd}, "panini", out_root=tmp_path)
    assert "state_dict/generator.fusion_out.0.weight (256, 512, 3, 3) vs ours " \
        "fusion_out.4.weight (512, 512, 3, 3)" in str(e.value)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------
# frbench import -> restore, on tiny files in the official GFP-GAN layouts

def _tiny_gfpgan_release(fmt: str, seed: int = 3):
    """A 32 px GFP-GAN (decoder widths <= 8) with random weights, saved under the official key
    names: the key list of the format's 512 px fixture restricted to the levels a 32 px model
    has (-> (container, our module))."""
    from methods.released.base import Converted, build_module
    clean = fmt == "gfpgan_clean"
    e = rg.entry("clean" if clean else "v1", 1, False, 32)
    e["prior_arch"]["max_channels"] = 8
    torch.manual_seed(seed)
    m = build_module(Converted("method", "gfpgan", e, {}), "src").eval()
    with torch.no_grad():  # non-trivial biases / noise scales (a constant would hide swaps)
        for n, p in m.named_parameters():
            if p.dim() <= 1 or n.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    ours = m.state_dict()
    name = of.fixtures_for(fmt)[0]
    official, seen = {}, set()
    for entry in of.manifest(name)["tensors"]:
        k = entry["path"][-1]
        our, fn = rg.map_generator_key(k, clean)
        if our in ours:
            official[k] = (ours[our].view(1, -1, 1, 1) if fn else ours[our]).clone()
            seen.add(our)
    assert seen == set(ours)
    return {"params_ema": official}, m


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    import numpy as np
    import yaml
    from core.imageio import write_png
    from method_helpers import tiny_dict
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_dict(tmp_path), sort_keys=False))
    (tmp_path / "lq").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_png(tmp_path / "lq" / f"{i:05d}.png", rng.random((32, 32, 3)).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("fmt", ["gfpgan_v1", "gfpgan_clean"])
def test_cli_import_then_restore(cli_env, fmt, capsys):
    from core.imageio import read_image
    from methods.trainer import load_for_inference
    from pipeline.cli import main
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params
    tmp = cli_env
    container, module = _tiny_gfpgan_release(fmt)
    torch.save(container, tmp / "GFPGAN-32.pth")
    rc = main(["import", fmt, str(tmp / "GFPGAN-32.pth"), "--name", "gfp_rel", "--write-params",
               "--set", "prior_arch.max_channels=8"])
    assert rc == 0, capsys.readouterr().err
    assert "gfp_rel: {arch: gfpgan" in capsys.readouterr().out
    ck_path = tmp / "ckpt" / "gfp_rel" / "model.pt"
    ck = torch.load(ck_path, weights_only=True)
    assert ck["provenance"]["format"] == fmt and ck["step"] == ck["total_steps"] > 0
    m = build_trainee("gfp_rel", load_params(tmp / "params.yaml"))
    load_for_inference(m, ck_path)
    assert m.cfg.version == ("clean" if fmt == "gfpgan_clean" else "v1")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), module(x))
    assert main(["restore", "--method", "gfp_rel", "--input", str(tmp / "lq"),
                 "--output", str(tmp / "restored")]) == 0
    outs = sorted((tmp / "restored").glob("*.png"))
    assert len(outs) == 2 and read_image(outs[0]).shape == (32, 32, 3)


def test_cli_wrong_files_write_nothing(cli_env, capsys):
    from pipeline.cli import main
    tmp = cli_env
    before = (tmp / "params.yaml").read_text()
    v1, _ = _tiny_gfpgan_release("gfpgan_v1")
    torch.save(v1, tmp / "v1.pth")
    torch.save({"state_dict": {"generator.choice_vector": torch.zeros(1, 256)}}, tmp / "pan.pth")
    cases = [("gfpgan_clean", "v1.pth", r"format gfpgan_clean: .* not GFPGANv1Clean keys"),
             ("gfpgan_v1", "pan.pth", r"format gfpgan_v1: no 'params' entry .*state_dict"),
             ("panini_mfr", "v1.pth", r"format panini_mfr: no 'state_dict' entry .*params_ema"),
             ("panini_mfr", "pan.pth", r"use format panini_sr")]
    for fmt, f, pat in cases:
        rc = main(["import", fmt, str(tmp / f), "--name", "x", "--write-params"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, err
        assert __import__("re").search(pat, err), (pat, err)
    assert not (tmp / "ckpt" / "x").exists()
    assert (tmp / "params.yaml").read_text() == before
