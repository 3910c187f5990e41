"""Profiles: builtin.yaml never drifts from params.yaml; the paper overlay validates; switching
round-trips; the DVC stages' params are per method (one method's change reruns only its own)."""
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import profiles
from core.errors import FRBenchError

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"


def test_builtin_profile_equals_params():
    params = ROOT / "params.yaml"
    prof = yaml.safe_load(params.read_text())["profile"]
    if prof == "builtin":
        assert (PROFILES / "builtin.yaml").read_bytes() == params.read_bytes(), \
            "params.yaml changed: run `frbench profile save` (or `profile use builtin`)"
    else:  # a user switched: params.yaml must be exactly the rendered profile
        assert params.read_text() == profiles.render(prof, PROFILES)


def test_paper_profile_validates():
    from pipeline.config import build, Params
    d = yaml.safe_load(profiles.render("paper", PROFILES))
    p = build(Params, d)
    assert p.profile == "paper" and p.device == "cuda" and p.data.source == "folder"
    assert p.data.size == 1024 and p.weights.allow_random_init is False
    assert p.methods["panini"].out_size == 1024 and p.methods["panini"].lq_size == 512
    assert p.methods["panini_sr"].lq_size == 64 and p.testsets.sets["sr"].overrides == {}
    assert p.pipeline.launcher.startswith("torchrun")
    assert set(p.methods) == set(yaml.safe_load((PROFILES / "builtin.yaml").read_text())["methods"])


def test_builtin_long_changes_only_training_budgets():
    """builtin_long: the same faces, test sets, protocol and models; only steps / batch sizes and
    checkpoint cadence differ, and every method sees the same number of training images."""
    from pipeline.config import build, Params
    base = yaml.safe_load((PROFILES / "builtin.yaml").read_text())
    long = yaml.safe_load(profiles.render("builtin_long", PROFILES))
    build(Params, long)  # validates
    for key in ("data", "testsets", "weights", "evaluate", "prior", "dre", "pipeline"):
        assert long[key] == base[key], key
    budget = {"steps", "batch_size"}
    for name, m in long["methods"].items():
        diff = {k for k in m if m[k] != base["methods"][name].get(k)}
        assert diff <= budget, (name, diff)
    images = {n: m["steps"] * m["batch_size"] for n, m in long["methods"].items()
              if m["arch"] != "bicubic"}
    assert set(images.values()) == {images["panini"]} and images["panini"] > \
        base["methods"]["panini"]["steps"] * base["methods"]["panini"]["batch_size"]


def test_overlay_rejects_unknown_key():
    with pytest.raises(FRBenchError, match="data.sise"):
        profiles.apply_overlay({"data": {"size": 64}}, {"data.sise": 1024})
    assert profiles.apply_overlay({"data": {"size": 64}}, {"data.size": 1024}) == \
        {"data": {"size": 1024}}


def test_use_and_back(tmp_path):
    shutil.copytree(PROFILES, tmp_path / "profiles")
    params = tmp_path / "params.yaml"
    shutil.copy(PROFILES / "builtin.yaml", params)
    profiles.use("paper", params, tmp_path / "profiles")
    assert yaml.safe_load(params.read_text())["profile"] == "paper"
    with pytest.raises(FRBenchError, match="paper"):
        profiles.save(params, tmp_path / "profiles")   # only builtin is saved
    profiles.use("builtin", params, tmp_path / "profiles")
    assert params.read_bytes() == (PROFILES / "builtin.yaml").read_bytes()


def test_preflight_paper_profile_stops_first(tmp_path, monkeypatch):
    """At the paper profile with nothing supplied, preflight names the FFHQ folder and the fix."""
    from pipeline.cmd_preflight import check
    from pipeline.config import build, Params
    monkeypatch.chdir(tmp_path)
    p = build(Params, yaml.safe_load(profiles.render("paper", PROFILES)))
    with pytest.raises(FRBenchError, match=r"datasets/ffhq/images1024x1024.*FFHQ"):
        check(p)


def test_dvc_stages_track_one_method_each():
    """Static check of dvc.yaml: methods.<m> is a param of train@<m> and of <m>'s cells only."""
    from dvc.repo import Repo
    with Repo(str(ROOT)) as repo:
        stages = {s.addressing: s for s in repo.index.stages}
    import yaml as y
    pl = y.safe_load((ROOT / "params.yaml").read_text())["pipeline"]
    for m in pl["train"]:
        users = set()
        for name, st in stages.items():
            keys = {k for d in st.deps if hasattr(d, "params") and d.params for k in d.params}
            if f"methods.{m}" in keys or "methods" in keys:
                users.add(name)
        expected = {f"train@{m}"}
        for stage, ms, ss in (("restore_eval", "methods", "testsets"),
                              ("restore_eval_sr", "sr_methods", "sr_testsets"),
                              ("ablation", "ablations", "ablation_testsets")):
            if m in pl[ms]:
                expected |= {f"{stage}@{m}-{s}" for s in pl[ss]}
        assert expected <= set(stages), expected - set(stages)
        if m in pl["theta"]:
            expected.add(f"panini_theta@{m}")
        assert users == expected, (m, users ^ expected)
