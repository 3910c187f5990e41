"""``make gpu-smoke`` (bench/gpu_smoke.py) cannot rot: without CUDA it says so, exits 0 and writes
nothing; its whole plumbing (params, generated faces, random checkpoints, the trainer's own step,
the evaluator comparison, the incremental JSON, one failing part not losing the others) runs at
32 px on the CPU (``--tiny``); the paper-size and pipeline params it would use validate."""
import json

import pytest

from bench import gpu_smoke


def test_skips_without_cuda(tmp_path, monkeypatch, capsys):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "gpu_smoke.json"
    assert gpu_smoke.main(["--out", str(out)]) == 0
    assert "skipped: no CUDA device" in capsys.readouterr().out
    assert not out.exists()


def test_tiny_plumbing_and_one_failure_keeps_the_rest(tmp_path, monkeypatch):
    real = gpu_smoke.measure_training

    def flaky(name, *a, **k):
        if name == "panini":
            raise RuntimeError("injected failure")
        return real(name, *a, **k)
    monkeypatch.setattr(gpu_smoke, "measure_training", flaky)
    out = tmp_path / "smoke.json"
    rc = gpu_smoke.main(["--tiny", "--device", "cpu", "--out", str(out), "--parts", "train",
                         "--models", "prior,panini,gfpgan", "--steps", "1", "--warmup", "0",
                         "--work", str(tmp_path / "w")])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["format"] == gpu_smoke.FORMAT and d["tiny"] is True
    parts = d["parts"]
    assert set(parts) == {"train/prior/b1/amp", "train/prior/b2/amp", "train/panini/b1/amp",
                          "train/panini/b2/amp", "train/gfpgan/b1/amp", "train/gfpgan/b2/amp"}
    assert parts["train/panini/b1/amp"]["status"] == "error"
    assert "injected failure" in parts["train/panini/b1/amp"]["error"]
    for k in ("train/prior/b2/amp", "train/gfpgan/b2/amp"):
        e = parts[k]
        assert e["status"] == "ok" and e["losses_finite"] and e["batch"] == 2
        assert e["step_s_median"] > 0 and len(e["step_s"]) == 1 and e["amp"] is False  # CPU
        assert {"loss_g", "loss_d"} <= set(e["last_losses"])
    assert parts["train/gfpgan/b1/amp"]["out_size"] == 32


def test_budget_skips_parts_that_no_longer_fit(tmp_path):
    out = tmp_path / "smoke.json"
    gpu_smoke.main(["--tiny", "--device", "cpu", "--out", str(out), "--parts", "train",
                    "--models", "prior", "--budget-s", "0", "--work", str(tmp_path / "w")])
    parts = json.loads(out.read_text())["parts"]
    assert parts and all(e["status"] == "skipped" and "budget" in e["reason"]
                         for e in parts.values())


def test_paper_size_and_pipeline_params_validate(tmp_path):
    from pipeline.config import Params, build, launcher_processes
    p = gpu_smoke.smoke_params(False, tmp_path, "cuda")
    assert p.prior.arch.size == 1024 and p.weights.allow_random_init
    assert p.methods["gfpgan"].random_init_losses and p.methods["gfpgan"].landmarks == ""
    assert launcher_processes(p.pipeline.launcher) == 2   # paper batch per process = global / 2
    d = gpu_smoke.pipeline_dict(tmp_path, "cuda")
    q = build(Params, d)
    assert q.prior.steps == 2 and all(getattr(m, "steps", 2) == 2 for m in q.methods.values())
    assert q.data.source == "folder" and q.data.size == 1024
    assert set(q.pipeline.train) == set(gpu_smoke.PIPELINE_METHODS)


@pytest.mark.slow
def test_tiny_full_run(tmp_path):
    """Every model at both batches, the evaluator comparison (CPU vs CPU: identical)."""
    out = tmp_path / "smoke.json"
    assert gpu_smoke.main(["--tiny", "--device", "cpu", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert all(e["status"] == "ok" for e in d["parts"].values()), d["parts"]
    assert len([k for k in d["parts"] if k.startswith("train/")]) == 2 * len(gpu_smoke.MODELS)
    a = d["parts"]["evaluator"]["agreement"]
    assert a["psnr_ssim_identical"] and a["features_within_1e-4"]


def test_scratch_repo_copy_skips_outputs_not_package_data(tmp_path, monkeypatch):
    """The pipeline part's copy: no pipeline outputs / caches of the root, but package data
    folders such as metrics/data are kept."""
    src = tmp_path / "src"
    for f in ("dvc.yaml", "metrics/data/x.npz", "data/hq/a.png", "cache/fid/k.npz",
              ".dvc/config", ".dvc/cache/ab", "pkg/__pycache__/m.pyc", "dvc.lock"):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_text("x")
    monkeypatch.setattr(gpu_smoke, "ROOT", src)
    dst = gpu_smoke.copy_repo(tmp_path / "dst")
    got = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert got == [".dvc/config", "dvc.yaml", "metrics/data/x.npz"]


@pytest.mark.slow
def test_tiny_pipeline_part(tmp_path):
    """The pipeline part end to end at 32 px on the CPU: scratch copy, params, `dvc repro` of
    every stage, the report's metrics read back."""
    out = tmp_path / "smoke.json"
    assert gpu_smoke.main(["--tiny", "--device", "cpu", "--out", str(out), "--parts", "pipeline",
                           "--budget-s", "1500", "--work", str(tmp_path / "w")]) == 0
    e = json.loads(out.read_text())["parts"]["pipeline"]
    assert e["status"] == "ok", e.get("error")
    assert e["returncode"] == 0 and "report" in e["stages_run"]
    assert {"panini", "gpen", "gfpgan", "psp"} <= set(e["metrics"])
    assert set(e["train_mean_step_s"]) >= {"prior", "dre", "panini", "psp"}
