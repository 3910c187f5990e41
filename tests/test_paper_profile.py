"""The paper profile, validated without training (issue: it would have crashed before producing a
number): every trained entry builds at paper size and runs one forward (shapes on the meta
device here; real numbers at batch 1 in the slow test), every global batch divides by the
launcher's process count and equals the official total, the training presets make LQ at each
method's ``lq_size``, and the settings that used to be carried over silently from the built-in
tier are the official ones."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.errors import FRBenchError
from pipeline import profiles
from pipeline.config import Params, build, global_batches, launcher_processes

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"


@pytest.fixture(scope="module")
def paper():
    return build(Params, yaml.safe_load(profiles.render("paper", PROFILES)))


def _paper_dict():
    return yaml.safe_load(profiles.render("paper", PROFILES))


def _trained(paper):
    return [m for m in paper.pipeline.train if paper.methods[m].arch != "bicubic"]


# ------------------------------------------------------------------------------------- batches

# Official global batches (issue 16, audited against each repository):
OFFICIAL_GLOBAL_BATCH = {
    "prior": 32,            # StyleGAN2 config-f minibatch 32
    "dre": 32,              # panini moco/train.sh -b 32
    "panini": 2,            # panini_mfr.py samples_per_gpu 1 x 2 GPUs (train_script.sh)
    "panini_sr": 4,         # panini_sr.py samples_per_gpu 2 x 2 GPUs
    "panini_catconv": 4,    # the SR setting
    "gpen": 8, "gpen_noft": 8, "gpen_nonoise": 8, "gpen_noiseadd": 8,   # README: 4 GPUs x 2
    "gfpgan": 12, "gfpgan_sft": 12,                                      # 3 per GPU x 4
    "psp": 8,               # README --batch_size 8, one GPU
}


def test_global_batches_are_the_official_totals_and_divide_by_the_launcher(paper):
    nproc = launcher_processes(paper.pipeline.launcher)
    assert nproc == 2
    batches = global_batches(paper)
    assert batches == OFFICIAL_GLOBAL_BATCH
    assert all(b % nproc == 0 for b in batches.values())
    assert paper.dre.queue % paper.dre.batch_size == 0


def test_batches_split_over_the_launcher_processes(paper):
    """What the trainer does with them: every rank gets batch / nproc samples, together the
    global batch, none twice."""
    from methods.data import StepBatches
    nproc = launcher_processes(paper.pipeline.launcher)
    for name, b in global_batches(paper).items():
        seen = []
        for r in range(nproc):
            sb = StepBatches(folder=None, sample_fn=None, seed=0, name=name, global_batch=b,
                             rank=r, world=nproc)
            seen += list(sb.indices(0))
            assert sb.local == b // nproc
        assert sorted(seen) == list(range(b)), name


@pytest.mark.parametrize("launcher,n", [("python -m pipeline.cli", 1),
                                        ("torchrun --nproc_per_node=8 -m pipeline.cli", 8),
                                        ("torchrun --nnodes 2 --nproc-per-node 4 -m x", 8)])
def test_launcher_processes(launcher, n):
    assert launcher_processes(launcher) == n


def test_a_batch_the_processes_do_not_divide_is_refused_at_load():
    d = _paper_dict()
    d["pipeline"]["launcher"] = "torchrun --nproc_per_node=8 -m pipeline.cli"
    with pytest.raises(FRBenchError, match=r"batch_size: the global batch \d+ does not divide by "
                                           r"the 8 processes"):
        build(Params, d)
    d = _paper_dict()
    d["methods"]["gfpgan"]["batch_size"] = 3
    with pytest.raises(FRBenchError, match="methods.gfpgan.batch_size"):
        build(Params, d)


# ------------------------------------------------------------------------------------ LQ sizes

def test_training_presets_make_lq_at_each_methods_lq_size(paper):
    """One real draw per trained entry at paper size through the methods' sample function
    (``degrade_sample``, which GFP-GAN's wraps): the LQ array has the method's lq_size (the gpen
    and gfpgan presets used to return it at the HQ's 1024)."""
    from methods.base import degrade_sample
    from core.seeding import rng_for
    hq = rng_for("paper-profile", "hq").random((1024, 1024, 3), dtype=np.float32)
    done = set()
    for name in _trained(paper):
        cfg = paper.methods[name]
        key = (cfg.train_preset, repr(sorted((cfg.train_overrides or {}).items())), cfg.lq_size)
        if key in done:
            continue
        out = degrade_sample([hq], rng_for(1, name), preset=cfg.train_preset,
                             overrides=cfg.train_overrides, out_size=cfg.out_size,
                             lq_size=cfg.lq_size, hflip=True)
        assert out["lq"].shape == (3, cfg.lq_size, cfg.lq_size), name
        assert out["hq"].shape == (3, cfg.out_size, cfg.out_size), name
        done.add(key)
    assert len(done) == 5  # panini_mfr 512, sr16_bilinear 64, gpen 512, gfpgan 512, sr_bicubic 256
    # the DRE's positive pairs: LQ at the panini_mfr grid, pooled to input_size by the encoder
    from degradations import get_preset
    assert get_preset(paper.dre.preset, paper.dre.preset_overrides).lq_size(paper.dre.hq_size) \
        == paper.methods["panini"].lq_size


def test_test_set_lq_sizes_match_the_methods_that_restore_them(paper):
    from degradations import get_preset
    size = paper.data.size
    lq = {s: get_preset(c.preset, c.overrides or None).lq_size(size)
          for s, c in paper.testsets.sets.items()}
    pl = paper.pipeline
    # pSp takes every input resized to 256 (its test transform); restore() upsamples the 64 px
    # SR set, as the official pipeline would.
    # bicubic upsamples whatever it is given (restore() resizes to its lq_size first).
    exempt = {"psp", "bicubic"}
    # the main and SR matrices (the ablation matrix crosses the SR-trained Cat-Conv with the mfr
    # set and the 512 px GPEN/GFP-GAN ablations with the sr set: restore() resizes there)
    cells = [(m, s) for m in pl.methods for s in pl.testsets] + \
        [(m, s) for m in pl.sr_methods for s in pl.sr_testsets]
    for m, s in cells:
        if m in exempt:
            continue
        assert paper.methods[m].lq_size == lq[s], (m, s)
    assert lq == {"mfr": 512, "sr": 64, "ladder": 512, "gfpgan": 512}


# ------------------------------------------------------------------------ settings and sources

def test_settings_carried_over_silently_are_now_the_official_ones(paper):
    m = paper.methods
    assert paper.train.amp is False
    for name in ("panini", "panini_sr", "panini_catconv"):
        assert m[name].min_lr == 1e-7 and m[name].fuse_point == "post_rgb"
        assert m[name].init_latent_avg is False and m[name].lr_schedule == "cosine"
    assert m["panini"].finetune_dre is True
    for name in ("gpen", "gpen_noft", "gpen_nonoise", "gpen_noiseadd"):
        assert m[name].concat_init == 0.01 and m[name].steps == 800000
        assert (m[name].content_loss, m[name].fm_weight, m[name].id_weight) == ("l1", 0.02, 0.0)
    for name in ("gfpgan", "gfpgan_sft"):
        assert list(m[name].component_crop) == [160, 240]
        assert list(m[name].lr_milestones) == [600000, 700000] and m[name].lr_gamma == 0.5
    assert (m["psp"].train_preset, m["psp"].train_overrides, m["psp"].lq_size) == \
        ("sr_bicubic", {"lq_scale": 0.25}, 256)
    assert paper.dre.steps == 200 * (70000 // 32)


def test_every_changed_paper_setting_names_its_source():
    """Each line of the overlay that sets a method's batch, schedule or the keys of this audit
    carries a comment (its source)."""
    audited = ("batch_size", "min_lr", "fuse_point", "finetune_dre", "lr_milestones",
               "component_crop", "concat_init", "train.amp", "dre.steps", "psp.train_preset",
               "psp.lq_size", "psp.hflip")
    lines = (PROFILES / "paper.yaml").read_text().splitlines()
    first = {}
    for ln in lines:
        key = ln.split(":", 1)[0]
        if not key.startswith(("prior.", "dre.", "train.", "methods.")):
            continue
        for a in audited:
            if key.endswith(a) and a not in first:
                first[a] = ln
    assert set(first) == set(audited)
    for a, ln in first.items():
        assert "#" in ln, f"paper.yaml: '{ln}' has no source comment"


def test_gfpgan_lr_milestones_schedule():
    from methods.gfpgan import GFPGAN
    from methods.config import GFPGANConfig

    class Fake:
        cfg = type("C", (), {"lr_milestones": [600000, 700000], "lr_gamma": 0.5})()
    f = GFPGAN.lr_scale
    assert [f(Fake, s, 800000) for s in (0, 599999, 600000, 699999, 700000, 799999)] == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    Fake.cfg.lr_milestones = []  # the built-in tier: constant
    assert f(Fake, 123, 800000) == 1.0
    with pytest.raises(FRBenchError, match="lr_gamma"):
        GFPGANConfig.validate(type("C", (), {"out_size": 64, "lq_size": 32, "lr_milestones": [],
                                             "lr_gamma": 0.0, "component_crop": [1, 1],
                                             "component_channels": [1, 1, 1],
                                             "r1_every": 1})(), "methods.x")


# ------------------------------------------------------------------------- build and forward

def _build_meta(name, paper):
    import torch
    from pipeline.cmd_train import build_trainee
    with torch.device("meta"):
        return build_trainee(name, paper)


@pytest.mark.parametrize("name", list(OFFICIAL_GLOBAL_BATCH))
def test_every_trainee_builds_at_paper_size_and_forwards_batch_1(name, paper):
    """Built at paper size on the meta device (no memory, no compute: shapes only) and one
    forward at batch 1 through the real module code."""
    import torch
    t = _build_meta(name, paper)
    assert all(p.device.type == "meta" for p in t.parameters())
    with torch.device("meta"), torch.no_grad():
        if name == "prior":
            z = torch.zeros(1, paper.prior.arch.style_dim)
            img = t.generator([z])
            img = img[0] if isinstance(img, tuple) else img
            assert tuple(img.shape) == (1, 3, 1024, 1024)
            assert tuple(t.discriminator(img).shape) == (1, 1)
        elif name == "dre":
            lq = torch.zeros(1, 3, 512, 512)
            fea, _ = t.encoder_q(lq)
            assert tuple(fea.shape) == (1, paper.dre.widths[-1])
        else:
            t.eval()
            y = t(torch.zeros(1, 3, t.lq_size, t.lq_size))
            assert tuple(y.shape) == (1, 3, 1024, 1024)
            assert (t.lq_size, t.out_size) == (paper.methods[name].lq_size, 1024)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["panini", "panini_sr", "gpen", "gfpgan", "psp"])
def test_paper_size_forward_batch_1_real_numbers(name, paper):
    """One real forward per architecture at paper size on CPU (30 s to 2.5 min each on 2 cores):
    finite output in [-1, 1] after restore()."""
    import torch
    from pipeline.cmd_train import build_trainee
    torch.manual_seed(0)
    m = build_trainee(name, paper).eval()
    lq = torch.rand(1, 3, m.lq_size, m.lq_size) * 2 - 1
    y = m.restore(lq)
    assert tuple(y.shape) == (1, 3, 1024, 1024)
    assert bool(torch.isfinite(y).all()) and float(y.abs().max()) <= 1.0


def test_lq_size_mismatch_is_named_before_training(paper):
    """The check preflight runs at non-builtin profiles: the old paper gfpgan entry (LQ at the
    HQ size from the gfpgan preset, lq_size 512) is named with the fix."""
    from methods.config import lq_size_mismatches
    assert lq_size_mismatches(paper.methods, paper.pipeline.train) == []
    d = _paper_dict()
    d["methods"]["gfpgan"]["train_overrides"] = {}
    bad = build(Params, d)
    msgs = lq_size_mismatches(bad.methods, bad.pipeline.train)
    assert len(msgs) == 1 and "methods.gfpgan" in msgs[0] and "1024 px LQ" in msgs[0]
