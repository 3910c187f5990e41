"""Pinned CPU numerics (core/numerics.py): applied before torch loads, switchable, recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core import numerics
from core.errors import FRBenchError

ROOT = Path(__file__).resolve().parents[1]
HAS_AVX2 = "avx2" in numerics.cpu_flags()

# What torch, numpy and the environment look like in a fresh process after the CLI entry ran
# (main() from the command line, argv None) and then torch was imported.
PROBE = r"""
import json, os, sys
sys.argv = ["frbench"] + sys.argv[1:]
from pipeline import cli
assert "torch" not in sys.modules and "numpy" not in sys.modules
rc = cli.main()          # 'profile list': no torch; pins (or not) first
import torch, numpy
print(json.dumps({
    "rc": rc, "isa": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
    "deterministic": torch.are_deterministic_algorithms_enabled(),
    "mkldnn_deterministic": bool(torch.backends.mkldnn.deterministic),
    "env": {k: os.environ.get(k) for k in %r},
}))
"""


def _probe(tmp_path, env_extra=None, args=("profile", "list")):
    env = {k: v for k, v in os.environ.items()
           if k not in numerics.pinned_env() and not k.startswith("FRBENCH_NUMERICS")}
    env.update({"PYTHONPATH": str(ROOT), **(env_extra or {})})
    keys = sorted(numerics.pinned_env())
    p = subprocess.run([sys.executable, "-c", PROBE % (keys,), *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAS_AVX2, reason="pinning targets x86-64 CPUs with AVX2")
def test_cli_entry_pins_before_torch_import(tmp_path):
    # the shell asks for 2 threads: the pinned count wins, independent of the core count
    got = _probe(tmp_path, {"OMP_NUM_THREADS": "2"})
    assert got["rc"] == 0
    assert got["isa"] == "AVX2"
    assert got["threads"] == 1
    assert got["deterministic"] and got["mkldnn_deterministic"]
    assert got["env"] == numerics.pinned_env(1)


def test_switch_native_leaves_the_process_alone(tmp_path):
    got = _probe(tmp_path, {"FRBENCH_NUMERICS": "native"})
    assert got["rc"] == 0
    assert not got["deterministic"]
    assert got["env"]["ATEN_CPU_CAPABILITY"] is None and got["env"]["MKL_CBWR"] is None


def _params(tmp_path, **over) -> Path:
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    d.update(over)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_decide_params_env_and_device(tmp_path):
    on = _params(tmp_path)
    on_, cfg, _ = numerics.decide(str(on), environ={})
    assert on_ is True and cfg.threads == 1 and cfg.onednn is True
    off = _params(tmp_path, numerics={"pinned": False, "threads": 3})
    on_, cfg, _ = numerics.decide(str(off), environ={})
    assert on_ is False and cfg.threads == 3
    strict = _params(tmp_path, numerics={"pinned": True, "threads": 1, "onednn": False})
    assert numerics.decide(str(strict), environ={})[1].onednn is False
    # the environment switch wins over params, both ways
    assert numerics.decide(str(off), environ={"FRBENCH_NUMERICS": "pinned"})[0] is True
    assert numerics.decide(str(on), environ={"FRBENCH_NUMERICS": "native"})[0] is False
    # GPU runs: not applied, whatever asked for it
    gpu = _params(tmp_path, device="cuda")
    on_, _, why = numerics.decide(str(gpu), environ={"FRBENCH_NUMERICS": "pinned"})
    assert on_ is False and "GPU" in why
    assert numerics.decide(str(on), device="cuda:0", environ={})[0] is False
    # no params file: pinned by default
    assert numerics.decide(str(tmp_path / "none.yaml"), environ={})[0] is True


def test_bad_switch_and_threads_are_clear_errors(tmp_path):
    with pytest.raises(FRBenchError, match="FRBENCH_NUMERICS"):
        numerics.decide(None, environ={"FRBENCH_NUMERICS": "fast"})
    bad = _params(tmp_path, numerics={"pinned": True, "threads": 0})
    from pipeline.config import load_params
    with pytest.raises(FRBenchError, match="numerics.threads"):
        load_params(bad)
    # a broken params file does not stop commands that never read it: the default applies
    assert numerics.decide(str(bad), environ={})[0] is True
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "profile", "list"], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT), "FRBENCH_NUMERICS": "fast"},
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "FRBENCH_NUMERICS" in p.stderr and "Traceback" not in p.stderr


def test_params_section_is_validated():
    from pipeline.config import load_params
    p = load_params(ROOT / "params.yaml")
    assert p.numerics.pinned is True and p.numerics.threads == 1


def test_environment_records_isa_threads_and_full_flags():
    from core.environment import environment
    env = environment()
    for k in ("torch", "cpu", "isa", "torch_threads", "numerics", "cpu_flags", "cpu_flags_sha256",
              "onednn_max_isa", "mkl_cbwr", "deterministic", "onednn", "gpu"):
        assert k in env, k
    import torch
    assert env["isa"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] == torch.get_num_threads()
    flags = numerics.cpu_flags()
    assert env["cpu_flags"] == " ".join(flags)
    assert env["cpu_flags_sha256"] == numerics.flags_hash(flags)
    if Path("/proc/cpuinfo").is_file():
        assert len(flags) > 10 and env["cpu_flags_sha256"] != numerics.flags_hash(flags[1:])


def test_tracking_tags_carry_the_environment(monkeypatch):
    from pipeline import tracking
    tags = {f"env_{k}": v for k, v in tracking.environment().items()}
    assert {"env_isa", "env_torch_threads", "env_cpu_flags", "env_cpu_flags_sha256",
            "env_numerics"} <= set(tags)


# A small conv net trained with Adam: the probe of kernel-dependent rounding.
TRAIN = r"""
import sys, hashlib
from core import numerics
if sys.argv[1] == "pinned":
    numerics.pin(1)
import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.LeakyReLU(0.2),
                          torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.LeakyReLU(0.2),
                          torch.nn.Conv2d(16, 3, 3, padding=1))
opt = torch.optim.Adam(net.parameters(), 1e-3)
x = torch.randn(8, 3, 32, 32)
for _ in range(20):
    loss = (net(x) - x).abs().mean()
    opt.zero_grad(); loss.backward(); opt.step()
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in net.parameters())).hexdigest())
"""


@pytest.mark.slow
@pytest.mark.skipif(not HAS_AVX2 or not Path("/usr/bin/taskset").exists(),
                    reason="x86-64 with AVX2 and taskset")
def test_pinned_weights_do_not_depend_on_threads_or_cores():
    """Pinned: the same bits whatever the shell's thread settings and the cores allowed."""
    def run(mode, env=None, cpus=None):
        e = {k: v for k, v in os.environ.items() if k not in numerics.pinned_env()}
        e.update({"PYTHONPATH": str(ROOT), **(env or {})})
        cmd = [sys.executable, "-c", TRAIN, mode]
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        return subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True,
                              check=True, timeout=300).stdout.strip()
    ncpu = len(os.sched_getaffinity(0))
    a = run("pinned", {"OMP_NUM_THREADS": str(max(2, ncpu))})
    b = run("pinned", cpus=str(sorted(os.sched_getaffinity(0))[-1]))
    c = run("pinned", {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO"})  # overridden
    assert a == b == c
