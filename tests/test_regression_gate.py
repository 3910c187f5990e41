"""frbench compare's statistical gate (pipeline/compare.py) and its committed baseline records
(pipeline/records.py: reports/per_image.csv, reports/environment.json)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.compare import classify, compare, environment_note, markdown, paired_bootstrap
from pipeline.config import RegressionRule

ROOT = Path(__file__).resolve().parents[1]
RULES = {"psnr": RegressionRule("higher", 0.05, 0.002), "lpips": RegressionRule("lower", 0.002,
                                                                                  0.005),
         "fid": RegressionRule("lower", 0.5, 0.01), "kid": RegressionRule("lower", 0.001, 0.02)}
IDS = [f"{i:05d}" for i in range(24)]


def _base(seed=0, mean=20.0, sd=2.0):
    return dict(zip(IDS, np.random.default_rng(seed).normal(mean, sd, len(IDS)).tolist()))


def _shift(old: dict, mean: float, noise_sd: float, seed=1) -> dict:
    """new_i = old_i + mean + zero-mean noise (exactly: the mean difference is `mean`)."""
    e = np.random.default_rng(seed).normal(0, noise_sd, len(old))
    e -= e.mean()
    return {k: v + mean + float(x) for (k, v), x in zip(old.items(), e)}


def _verdict(old, new, metric="psnr"):
    mo, mn = float(np.mean(list(old.values()))), float(np.mean(list(new.values())))
    return classify(f"m.s.{metric}", mo, mn, RULES, old, new)


def test_bootstrap_ci_covers_the_mean_and_is_reproducible():
    d = np.random.default_rng(3).normal(-0.3, 0.1, 24)
    lo, hi = paired_bootstrap(d, 2000, seed=5)
    assert lo < d.mean() < hi and hi - lo < 0.2
    assert paired_bootstrap(d, 2000, seed=5) == (lo, hi)


def test_real_regression_is_flagged():
    old = _base()
    c = _verdict(old, _shift(old, -0.3, 0.1))          # every image ~0.3 dB worse
    assert c.status == "regression" and c.test == "paired bootstrap" and c.n == 24
    assert c.ci[1] < 0 and c.diff == pytest.approx(-0.3)


def test_noise_with_the_same_mean_difference_is_not_flagged():
    old = _base()
    c = _verdict(old, _shift(old, -0.3, 3.0))          # same mean change, large spread
    assert c.ci[0] < 0 < c.ci[1]                       # the CI overlaps zero
    assert c.diff == pytest.approx(-0.3) and c.beyond  # beyond the tolerance, yet:
    assert c.status == "ok"
    # the old fixed-tolerance rule would have cried wolf on exactly this change
    assert classify("m.s.psnr", 20.0, 19.7, RULES).status == "regression"


def test_significant_but_within_tolerance_is_ok_and_improvements_symmetric():
    old = _base()
    assert _verdict(old, _shift(old, -0.01, 0.001)).status == "ok"     # < atol 0.05
    assert _verdict(old, _shift(old, +0.3, 0.1)).status == "improvement"
    lp = _base(mean=0.2, sd=0.03)
    assert _verdict(lp, _shift(lp, +0.02, 0.002), "lpips").status == "regression"  # lower=better
    assert _verdict(lp, _shift(lp, -0.02, 0.002), "lpips").status == "improvement"
    assert _verdict(old, dict(old)).status == "ok"


def test_set_level_metrics_keep_the_tolerance_rule():
    c = classify("m.s.fid", 3.0, 4.0, RULES)
    assert c.status == "regression" and c.test == "tolerance (set-level)" and c.ci is None
    assert classify("m.s.fid", 3.0, 3.3, RULES).status == "ok"          # within atol 0.5
    assert classify("m.s.kid", 0.010, 0.0105, RULES).status == "ok"


def test_compare_reads_per_image_by_cell_and_falls_back():
    old, new = _base(), None
    new = _shift(old, -0.3, 3.0)
    diff = {"m.s.psnr": {"old": float(np.mean(list(old.values()))),
                         "new": float(np.mean(list(new.values())))},
            "m.s.fid": {"old": 3.0, "new": 3.1}, "m.t.psnr": {"old": 20.0, "new": 19.0}}
    per_old = {("m", "s", "psnr"): old}
    per_new = {("m", "s", "psnr"): new}
    st = {c.key: (c.status, c.test) for c in compare(diff, RULES, per_old, per_new)}
    assert st["m.s.psnr"] == ("ok", "paired bootstrap")
    assert st["m.s.fid"] == ("ok", "tolerance (set-level)")
    assert st["m.t.psnr"] == ("regression", "tolerance (no per-image values)")
    # different image ids (another test set): no pairing, the tolerance decides
    other = {k + "x": v for k, v in new.items()}
    c = compare({"m.s.psnr": diff["m.s.psnr"]}, RULES, per_old, {("m", "s", "psnr"): other})[0]
    assert c.test == "tolerance (image ids differ)" and c.status == "regression"


def test_markdown_shows_ci_n_and_noise_rows():
    old = _base()
    changes = [_verdict(old, _shift(old, -0.3, 3.0)), _verdict(old, _shift(old, -0.3, 0.1))]
    changes[1].key = "m.t.psnr"
    md = markdown(changes, "HEAD")
    assert "**FAIL**: 1 regression(s)" in md and "95% CI of diff" in md
    assert "m.s.psnr" in md and "| 24 |" in md and "paired bootstrap" in md


ENV = {"cpu": "AMD EPYC", "cpu_flags_sha256": "aaaa", "isa": "AVX2", "torch_threads": 1,
       "numerics": "pinned", "torch": "2.14.1", "gpu": "", "trained_on": {}}


def test_environment_note_comes_first_when_machines_differ():
    assert environment_note(ENV, dict(ENV)) == ""
    other = dict(ENV, cpu_flags_sha256="bbbb", cpu="Intel Xeon")
    note = environment_note(ENV, other)
    assert "Environment differs" in note and "cpu_flags_sha256" in note and "Intel Xeon" in note
    assert "bit for bit" in note                      # both pinned: equality expected
    md = markdown([classify("m.s.fid", 3.0, 3.1, RULES)], "HEAD", env_note=note)
    assert md.index("Environment differs") < md.index("PASS")
    native = environment_note(ENV, dict(ENV, numerics="native", isa="AVX512"))
    assert "different kernels" in native and "AVX512" in native
    trained = environment_note(ENV, dict(ENV, trained_on={"gpen": {"cpu_flags_sha256": "cc"}}))
    assert "gpen trained with cpu_flags_sha256" in trained
    assert "unknown baseline" in environment_note(None, ENV)


def test_records_round_trip(tmp_path):
    from pipeline.records import (build_environment, parse_per_image, per_image_csv,
                                  per_image_rows)
    res = tmp_path / "results"
    for m, s in [("a", "mfr"), ("b", "sr")]:
        (res / m / s).mkdir(parents=True)
        (res / m / s / "per_image.csv").write_text(
            "id,psnr,deg_facenet\n00001,20.123456789012,nan\n00000,19.5,7.25\n")
    rows = per_image_rows([("a", "mfr"), ("b", "sr")], res)
    text = per_image_csv(rows)
    assert text.splitlines()[0] == "method,set,id,metric,value"
    assert text.splitlines()[1].startswith("a,mfr,00000,deg_facenet,7.25")
    back = parse_per_image(text)
    assert back[("a", "mfr", "psnr")] == {"00000": 19.5, "00001": pytest.approx(20.1234568)}
    assert np.isnan(back[("b", "sr", "deg_facenet")]["00001"])
    ck = tmp_path / "ckpt" / "gpen"
    ck.mkdir(parents=True)
    (ck / "train_log.json").write_text(json.dumps({"environment": dict(ENV, extra=1)}))
    env = build_environment(tmp_path / "ckpt")
    assert {"cpu", "cpu_flags", "cpu_flags_sha256", "isa", "torch_threads", "numerics",
            "torch"} <= set(env)
    assert isinstance(env["cpu_flags"], list)
    assert env["trained_on"]["gpen"]["cpu_flags_sha256"] == "aaaa"
    assert "extra" not in env["trained_on"]["gpen"]


def _git(cwd, *a):
    subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True)


def test_compare_cli_gate_on_temp_repo(tmp_path):
    """Committed per-image baseline + environment: noise of a regression's size passes, a real
    per-image regression fails, and a different machine is named first."""
    from pipeline.records import per_image_csv
    repo = tmp_path / "r"
    (repo / "reports").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@t")
    _git(repo, "config", "user.name", "t")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (repo / "dvc.yaml").write_text("metrics:\n  - reports/metrics.json\n")

    def write(per: dict, env: dict):
        rows = [{"method": "panini", "set": "mfr", "id": i, "metric": "psnr", "value": v}
                for i, v in sorted(per.items())]
        (repo / "reports/per_image.csv").write_text(per_image_csv(rows))
        m = {"panini": {"mfr": {"psnr": float(np.mean([r["value"] for r in rows]))}}}
        (repo / "reports/metrics.json").write_text(json.dumps(m))
        (repo / "reports/environment.json").write_text(json.dumps(env))
    old = _base()
    write(old, ENV)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    cmd = [sys.executable, "-m", "pipeline.cli", "compare", "--baseline", "HEAD"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    write(_shift(old, -0.3, 3.0), dict(ENV, cpu_flags_sha256="bbbb"))     # noise, other CPU
    p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    md = (repo / "reports/regression.md").read_text()
    assert p.returncode == 0, p.stdout + p.stderr
    assert md.index("Environment differs") < md.index("PASS") and "bbbb" in md
    write(_shift(old, -0.3, 0.1), ENV)                                    # a real regression
    p = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env)
    md = (repo / "reports/regression.md").read_text()
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL" in md and "REGRESSION" in md and "Environment differs" not in md
