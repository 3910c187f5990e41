"""The `released` profile (imported files, no training), the import@ stage (`frbench import
--entry`), the paper profile's imported prior (prior.source: released) and preflight."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from core.errors import FRBenchError
from method_helpers import baseline_env, ready_method, tiny_dict
from pipeline import profiles
from pipeline.cli import main
from pipeline.config import Params, build, load_params, to_dict

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"

#: released weight name -> fixture of the same released configuration (layout/entry checks)
RELEASE_FIXTURES = {"gpen_bfr_512": "gpen_bfr_512", "gpen_bfr_256": "gpen_bfr_256",
                    "psp_celebs_super_resolution": "psp_superres_1024",
                    "gfpgan_v1": "gfpgan_v1_512_cm1", "gfpgan_v1_3": "gfpgan_v1clean_512_cm2",
                    "gfpgan_v1_4": "gfpgan_v1clean_512_cm2"}


def _released() -> Params:
    return build(Params, yaml.safe_load(profiles.render("released", PROFILES)))


def test_released_profile_has_no_training_stage(tmp_path):
    """dvc.yaml resolved with the released params: import@ stages, no pretrain@/train@."""
    from dvc.repo import Repo
    p = _released()
    pl = p.pipeline
    assert pl.pretrain == [] and pl.train == [] and pl.imported
    assert {m for m, _ in pl.cells()} <= set(pl.imported)
    assert p.evaluate.protocol == "gfpgan_celeba_test"
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(profiles.render("released", PROFILES))
    Repo.init(str(tmp_path), no_scm=True)
    with Repo(str(tmp_path)) as repo:
        names = {s.name for s in repo.index.stages}
    assert not [n for n in names if n.startswith(("pretrain", "train@"))], names
    assert {f"import@{m}" for m in pl.imported} <= names
    assert {f"restore_eval@{m}-gfpgan" for m in pl.methods} <= names
    assert not [n for n in names if n.startswith("panini_theta")]


def test_released_entries_are_what_the_formats_print():
    """Each imported entry of the profile equals the conversion of its released configuration
    (full-size shapes of the fixture of that release) and fits it key for key."""
    from methods.released import FORMATS
    from methods.released.base import build_config, check_layout
    from tests import official_fixtures as of
    p = _released()
    checked = []
    for name, spec in p.pipeline.imported.items():
        fx = RELEASE_FIXTURES.get(spec.file)
        if spec.format not in FORMATS or fx is None:
            continue
        conv, _ = check_layout(spec.format, of.shape_container(fx), name, meta=True)
        assert build_config(conv, name) == p.methods[name], name
        check_layout(spec.format, of.shape_container(fx), name, meta=True,
                     overrides=to_dict(p.methods[name]))
        checked.append(name)
    assert {"gpen", "gfpgan", "gfpgan_v13", "gfpgan_v14"} <= set(checked)


def test_released_preflight_names_each_missing_file(tmp_path, monkeypatch):
    from pipeline.cmd_preflight import check
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    p = _released()
    with pytest.raises(FRBenchError) as e:
        check(p)
    msg = str(e.value)
    for needed in ("GPEN-BFR-512.pth", "pt_inception-2015-12-05-6726825d.pth",
                   "vgg16-397923af.pth", "resnet18_110.pth", "inception_FFHQ_512-f7b384ab.pth",
                   "datasets/celeba_test/lq", "datasets/celeba_test/gt", "GFPGANv1.pth",
                   "GFPGANv1.3.pth", "GFPGANv1.4.pth"):
        assert needed in msg, needed
    assert "Put it at" in msg and "weights.paths.gpen_bfr_512" in msg
    n = int(re.match(r"(\d+) missing input", msg).group(1))
    assert n == 10
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "GPEN-BFR-512.pth").write_bytes(b"x")  # found by search_dirs
    with pytest.raises(FRBenchError) as e:
        check(p)
    assert "GPEN-BFR-512.pth" not in str(e.value) and str(e.value).startswith("9 missing")


def test_released_external_testset_is_taken_as_is(tmp_path):
    from core.imageio import read_image, write_png
    from core.manifest import sha256_file
    from degradations.external import import_pairs
    import numpy as np
    rng = np.random.default_rng(0)
    for side, s in (("lq", 16), ("gt", 32)):
        (tmp_path / side).mkdir()
        for i in range(3):
            write_png(tmp_path / side / f"{i:08d}.png", rng.random((s, s, 3)).astype(np.float32))
    m = import_pairs(tmp_path / "lq", tmp_path / "gt", tmp_path / "set", "celeba", n=2)
    assert m["n_images"] == 2 and m["hq_size"] == 32 and m["lq_size"] == 16
    for i in range(2):
        for side in ("lq", "gt"):
            a, b = tmp_path / side / f"{i:08d}.png", tmp_path / "set" / side / f"{i:08d}.png"
            assert a.read_bytes() == b.read_bytes()  # PNG bytes unchanged
            assert m["images"][f"{i:08d}"][f"{side}_sha256"] == sha256_file(b)
    assert not (tmp_path / "set" / "lq" / "00000002.png").exists()
    (tmp_path / "gt" / "00000001.png").unlink()
    with pytest.raises(FRBenchError, match="same file names"):
        import_pairs(tmp_path / "lq", tmp_path / "gt", tmp_path / "set2", "celeba")
    assert not (tmp_path / "set2").exists()
    assert read_image(tmp_path / "set" / "gt" / "00000000.png").shape == (32, 32, 3)


def test_import_stage_uses_the_resolver_and_the_params_entry(tmp_path, monkeypatch, capsys):
    """`frbench import --entry NAME` (stage import@NAME): the file via weights.paths, the
    checkpoint configured exactly as methods.NAME; an entry that does not fit is an error."""
    from test_import_cli import TINY_ARCH, tiny_gpen_release
    from methods.released.gpen import ENTRY_DEFAULTS
    monkeypatch.chdir(tmp_path)
    src, _ = tiny_gpen_release()
    torch.save(src, tmp_path / "tiny.pth")
    d = tiny_dict(tmp_path)
    entry = {**ENTRY_DEFAULTS, "out_size": 32, "lq_size": 16, "prior_arch": dict(TINY_ARCH),
             "adv_weight": 0.0, "fm_weight": 0.0}
    d["methods"]["gpen_rel"] = entry
    d["weights"] = {"allow_random_init": False, "allow_download": False, "random_init_seed": 0,
                    "paths": {"gpen_bfr_512": str(tmp_path / "tiny.pth")}}
    d["pipeline"] = {"train": [], "pretrain": [], "methods": ["gpen_rel"],
                     "testsets": ["mfr"], "sr_methods": [], "sr_testsets": [], "ablations": [],
                     "ablation_testsets": [], "theta": {}, "launcher": "python -m pipeline.cli",
                     "imported": {"gpen_rel": {"format": "gpen_bfr", "file": "gpen_bfr_512"}}}
    d["testsets"] = {"names": ["mfr"], "sets": {"mfr": {"preset": "panini_mfr", "n": 2,
                                                         "seed": 1}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    assert main(["import", "--entry", "gpen_rel"]) == 0
    ck = torch.load(tmp_path / "ckpt" / "gpen_rel" / "model.pt", weights_only=True)
    assert ck["provenance"]["source"].startswith("file:tiny.pth@sha256:")
    assert ck["config"]["cfg"]["lq_size"] == 16  # the params entry, not the format's default
    d["methods"]["gpen_rel"]["prior_arch"]["max_channels"] = 4
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    shutil.rmtree(tmp_path / "ckpt")
    assert main(["import", "--entry", "gpen_rel"]) == 2
    assert "shape mismatches" in capsys.readouterr().err
    assert not (tmp_path / "ckpt" / "gpen_rel").exists()


# ------------------------------------------------------------------------------------------
# the paper profile's prior: the released FFHQ StyleGAN2 when prior.source is released

def tiny_rosinality_release(params) -> dict:
    """Our tiny prior exported in the rosinality container layout ({g_ema, d, latent_avg} with
    the FIR kernels, D blocks as convs.{i})."""
    from pipeline.cmd_train import build_trainee
    prior = build_trainee("prior", params)
    kern = {k: v for k, v in prior.named_buffers() if k.endswith("kernel")}
    g = {k[len("generator."):]: v for k, v in {**prior.state_dict(), **kern}.items()
         if k.startswith("generator.")}
    d = {}
    for k, v in {**prior.state_dict(), **kern}.items():
        if not k.startswith("discriminator."):
            continue
        k = k[len("discriminator."):]
        if k.startswith("conv0."):
            k = "convs.0." + k[len("conv0."):]
        elif k.startswith("blocks."):
            i, rest = k[len("blocks."):].split(".", 1)
            k = f"convs.{int(i) + 1}.{rest}"
        d[k] = v
    return {"g_ema": g, "d": d, "latent_avg": torch.randn(params.prior.arch.style_dim)}


def test_paper_profile_imports_the_released_prior():
    p = build(Params, yaml.safe_load(profiles.render("paper", PROFILES)))
    assert p.prior.source == "released" and "prior" in p.pipeline.pretrain
    assert p.methods["psp"].encoder_input_size == 256
    from pipeline.cmd_preflight import released_files
    assert ("prior.source: released (the FFHQ StyleGAN2 prior)", "stylegan2_ffhq_1024") in \
        released_files(p)


def test_train_prior_imports_when_source_is_released(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = baseline_env(tmp_path)  # a trained 2-step prior for comparison of the layout
    release = tiny_rosinality_release(params)
    torch.save(release, tmp_path / "stylegan2-ffhq-config-f.pt")
    d = tiny_dict(tmp_path)
    d["prior"]["source"] = "released"
    d["weights"] = {"allow_random_init": True, "allow_download": False, "random_init_seed": 0,
                    "search_dirs": [str(tmp_path)]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    shutil.rmtree(tmp_path / "ckpt" / "prior")
    assert main(["train", "prior", "--no-progress"]) == 0
    ck = torch.load(tmp_path / "ckpt" / "prior" / "model.pt", weights_only=True)
    assert ck["kind"] == "prior" and ck["provenance"]["format"] == "rosinality_stylegan2"
    assert ck["step"] == ck["total_steps"]
    assert torch.equal(ck["ema"]["generator"]["input.input"], release["g_ema"]["input.input"])
    # the methods start from it; pSp takes the file's latent_avg as its w_avg
    p2 = load_params(tmp_path / "params.yaml")
    m = ready_method("psp", p2)
    assert m.provenance["prior"].startswith("file:stylegan2-ffhq-config-f.pt@sha256:")
    assert m.provenance["latent_avg"] == "latent_avg of the released prior file"
    torch.testing.assert_close(m.latent_avg[0], release["latent_avg"])
    # training over an imported checkpoint is refused (it would replace the released model)
    d["prior"]["source"] = "train"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    assert main(["train", "prior", "--no-progress"]) == 2
