"""Where do two machines' numbers part? Stage-by-stage bisect of the pipeline's numerics.

``python -m bench.numerics bisect --work /tmp/nb [--steps 3] [--profiles ...] [--stages ...]``

A *profile* emulates one machine's kernel choices on this one: pinned or native numerics
(core/numerics.py), a thread count, a core mask (``taskset``), or one library left unpinned
(``ATEN_CPU_CAPABILITY=avx512`` is what an AVX-512 machine runs when torch's ISA is not capped,
...). Every profile runs each stage from the *same* inputs (made once under the reference
profile), in one process per profile, so a difference is that stage's own:

- ``hq``: synthetic faces (numpy/PIL); ``testsets``: the four presets on the common faces
  (numpy/OpenCV/PIL/libjpeg); ``prior``, ``dre``: a few training steps; one per method
  (``panini``, ``panini_sr``, ``panini_catconv``, ``gpen``, ``gfpgan``, ``psp``): a few steps
  from the common prior/DRE; ``restore``: Panini on the common mfr set from the common
  checkpoint; ``evaluate``: the builtin protocol on the common restored images (FID included).

Printed: per stage and profile, ``=`` when every output is bit-identical to the reference's,
else the number of differing files/tensors and the largest absolute difference.
``python -m bench.numerics ops --work DIR --stage prior --profile A --profile B`` then compares
the activations of every module in one training step, in call order, then the losses and
parameter gradients (the first one that differs is the operation that diverges). ``python -m bench.numerics cost`` times a
training run under native and pinned numerics side by side (``docs/numerics.md``).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["panini", "panini_sr", "panini_catconv", "gpen", "gfpgan", "psp"]
STAGES = ["hq", "testsets", "prior", "dre", *METHODS, "restore", "evaluate"]
PRESETS = {"panini_mfr": [], "gfpgan": [], "sr16_bilinear": ["factor=8"],
           "panini_ladder": ["factors=[2,4,8,16]"]}
_KNOBS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
          "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "OPENCV_CPU_DISABLE", "OMP_NUM_THREADS",
          "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FRBENCH_NUMERICS", "FRBENCH_NUMERICS_STATE")

# name -> {pin: bool, threads: int|None, env: {VAR: value | None (unset)}, cpus: taskset list,
#          stages: the stages it runs (default all)}
_TORCH = ["prior", "dre", "panini", "gpen", "gfpgan", "psp", "restore", "evaluate"]
_NUMPY = ["hq", "testsets", "panini", "gfpgan", "evaluate"]
PROFILES: dict[str, dict] = {
    "pinned": {"pin": True, "threads": 1},                    # the reference
    # this machine as it comes (AVX-512, torch's default threads = the cores it may use)
    "native": {"pin": False},
    # the three variables and 1 thread (MKL_CBWR=AVX2 as first proposed)
    "torch3": {"pin": False, "env": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                     "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "1",
                                     "MKL_NUM_THREADS": "1"}},
    "pinned-repeat": {"pin": True, "threads": 1},             # control: run-to-run equality
    "pinned-2threads": {"pin": True, "threads": 2, "stages": _TORCH},
    "pinned-core1": {"pin": True, "threads": 1, "cpus": "1", "stages": _TORCH},
    # pinned but one library left at this machine's own choice (= what differs between an
    # AVX-512 and an AVX2 machine, or an AMD and an Intel one, if it were not pinned)
    "pinned-mklauto": {"pin": True, "threads": 1, "env": {"MKL_CBWR": None}, "stages": _TORCH},
    "pinned-aten512": {"pin": True, "threads": 1, "env": {"ATEN_CPU_CAPABILITY": "avx512"},
                       "stages": _TORCH},
    "pinned-onednn512": {"pin": True, "threads": 1, "env": {"ONEDNN_MAX_CPU_ISA": None},
                         "stages": _TORCH},
    "pinned-opencv512": {"pin": True, "threads": 1, "env": {"OPENCV_CPU_DISABLE": None},
                         "stages": _NUMPY},
    "pinned-numpy512": {"pin": True, "threads": 1, "env": {"NPY_DISABLE_CPU_FEATURES": None},
                        "stages": _NUMPY},
    "pinned-openblas512": {"pin": True, "threads": 1, "env": {"OPENBLAS_CORETYPE": None},
                           "stages": _NUMPY},
    # oneDNN off: convolutions through ATen (im2col/col2im + MKL SGEMM, depthwise in ATen)
    "pinned-nomkldnn": {"pin": True, "threads": 1, "mkldnn": False, "stages": _TORCH},
    "pinned-nomkldnn-aten512": {"pin": True, "threads": 1, "mkldnn": False,
                                "env": {"ATEN_CPU_CAPABILITY": "avx512"}, "stages": _TORCH},
    # not in the default run
    "native-1core": {"pin": False, "cpus": "1"},              # a 1-core machine: 1 thread
    "pinned-2threads-1core": {"pin": True, "threads": 2, "cpus": "1", "stages": _TORCH},
}
DEFAULT_PROFILES = list(PROFILES)[:12]


# ------------------------------------------------------------------------------------------
# worker side: one process per profile

def _apply_profile(spec: dict) -> None:
    """Inside the worker, before numpy/torch load: pin (or not), then the profile's overrides."""
    from core import numerics
    if spec.get("pin"):
        numerics.pin(int(spec.get("threads") or 1), onednn=spec.get("mkldnn", True))
    else:
        os.environ["FRBENCH_NUMERICS_STATE"] = "native"
    for k, v in (spec.get("env") or {}).items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = str(v)


def _params_file(work: Path, pdir: Path, ckpt: Path) -> Path:
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    d["train"].update(hq_dir=str(work / "common" / "hq_train"), checkpoint_dir=str(ckpt),
                      log_every=0, sample_every=0, ckpt_every=0, threads=0)
    d["mlflow"]["enabled"] = False
    d["evaluate"]["cache_dir"] = str(pdir / "cache")
    d["evaluate"]["bootstrap_samples"] = 200
    out = pdir / f"params-{ckpt.name}.yaml"
    out.write_text(yaml.safe_dump(d, sort_keys=False))
    return out


def _run_stages(work: Path, pdir: Path, stages: list[str], steps: int) -> dict:
    from pipeline.cli import main
    common = work / "common"
    pdir.mkdir(parents=True, exist_ok=True)
    own = _params_file(work, pdir, pdir / "ckpt")          # prior/dre land in pdir/ckpt
    shared = _params_file(work, pdir, common / "ckpt")     # methods read the common prior/dre
    times = {}

    def cli(*argv):
        rc = main([str(a) for a in argv])
        if rc:
            raise SystemExit(f"frbench {' '.join(map(str, argv))} -> {rc}")

    for st in stages:
        t0, c0 = time.perf_counter(), time.process_time()
        if st == "hq":
            cli("synth-faces", "--n", 8, "--size", 64, "--seed", 202, "--out", pdir / "hq")
        elif st == "testsets":
            for preset, sets in PRESETS.items():
                cli("degrade", "--preset", preset, "--src", common / "hq_test", "--seed", 2026,
                    "--out", pdir / "ts" / preset, *sum((["--set", s] for s in sets), []))
        elif st in ("prior", "dre"):
            cli("train", st, "--params", own, "--steps", steps, "--no-progress",
                "--out", pdir / "ckpt" / st)
        elif st in METHODS:
            cli("train", st, "--params", shared, "--steps", steps, "--no-progress",
                "--out", pdir / "ckpt" / st)
        elif st == "restore":
            cli("restore", "--method", "panini", "--params", shared, "--checkpoint",
                common / "ckpt" / "panini" / "model.pt",
                "--input", common / "ts" / "panini_mfr" / "lq", "--output", pdir / "restored")
        elif st == "evaluate":
            cli("evaluate", "--params", own, "--restored", common / "restored", "--gt",
                common / "ts" / "panini_mfr" / "gt", "--protocol", "builtin",
                "--allow-random-init", "--out", pdir / "eval")
        else:
            raise SystemExit(f"unknown stage {st}")
        times[st] = time.perf_counter() - t0
        times[st + "_cpu"] = time.process_time() - c0
    return times


def _worker(args) -> int:
    spec = json.loads(args.spec)
    _apply_profile(spec)
    import logging
    logging.disable(logging.WARNING)
    times = _run_stages(Path(args.work), Path(args.pdir), args.stages.split(","), args.steps)
    import torch
    from core.environment import environment
    env = environment()
    env.pop("cpu_flags", None)
    Path(args.pdir, "facts.json").write_text(json.dumps(
        {"times": times, "environment": env, "mkldnn": torch.backends.mkldnn.is_available()},
        indent=1))
    return 0


def spawn(work: Path, name: str, spec: dict, stages: list[str], steps: int, pdir: Path,
          extra_env: dict | None = None, capture: Path | None = None) -> float:
    """Run the stages under a profile in a fresh process; returns its wall time."""
    env = {k: v for k, v in os.environ.items() if k not in _KNOBS}
    env["FRBENCH_NUMERICS"] = "native"        # the worker pins itself, per the profile
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "bench.numerics", "_worker", "--work", str(work), "--pdir",
           str(pdir), "--spec", json.dumps(spec), "--stages", ",".join(stages), "--steps",
           str(steps)]
    if spec.get("cpus"):
        cmd = ["taskset", "-c", spec["cpus"], *cmd]
    import resource
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    err = open(capture, "w") if capture else None
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=err or subprocess.DEVNULL,
                       stderr=err or subprocess.PIPE, text=True)
    if err:
        err.close()
    if p.returncode:
        tail = "" if capture else p.stderr[-3000:]
        raise SystemExit(f"profile {name} failed ({p.returncode}):\n{tail}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawn.cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------
# comparing outputs

def _files(d: Path) -> dict[str, str]:
    skip = {"manifest.json", "summary.json", "facts.json", "train_log.json"}
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and p.name not in skip
            and "cache" not in p.parts and p.suffix != ".yaml"}


def _tensors(path: Path) -> dict:
    import torch
    ck = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for part in ("model", "ema"):
        for k, v in (ck.get(part) or {}).items():
            if hasattr(v, "dtype") and v.is_floating_point():
                out[f"{part}.{k}"] = v
    return out


def compare_stage(stage: str, ref: Path, other: Path) -> str:
    """'=' when identical, else 'N/M differ, max |d| x'."""
    import numpy as np
    if stage in ("prior", "dre", *METHODS):
        a, b = _tensors(ref / "ckpt" / stage / "model.pt"), _tensors(other / "ckpt" / stage /
                                                                     "model.pt")
        diff = [k for k in a if not bool((a[k] == b[k]).all())]
        if not diff:
            return "="
        m = max(float((a[k] - b[k]).abs().max()) for k in diff)
        return f"{len(diff)}/{len(a)} tensors, max|d| {m:.2g}"
    sub = {"hq": "hq", "testsets": "ts", "restore": "restored", "evaluate": "eval"}[stage]
    fa, fb = _files(ref / sub), _files(other / sub)
    diff = sorted(k for k in fa if fa.get(k) != fb.get(k))
    if stage == "evaluate":
        sa = json.loads((ref / "eval" / "summary.json").read_text())
        sb = json.loads((other / "eval" / "summary.json").read_text())
        moved = {k: (sa["set_metrics"][k], sb["set_metrics"][k]) for k in sa["set_metrics"]
                 if sa["set_metrics"][k] != sb["set_metrics"][k]}
        means = {k: abs(sa["metrics"][k]["mean"] - sb["metrics"][k]["mean"])
                 for k in sa["metrics"] if sa["metrics"][k]["mean"] != sb["metrics"][k]["mean"]}
        if not diff and not moved:
            return "="
        return (f"per_image {'differs' if diff else '='}; means moved {sorted(means)}"
                f"{'; ' + ', '.join(f'{k} {x:.6g}->{y:.6g}' for k, (x, y) in moved.items()) if moved else ''}")
    if not diff:
        return "="
    big = 0.0
    for k in diff:
        if k.endswith(".png"):
            from PIL import Image
            x = np.asarray(Image.open(ref / sub / k), dtype=np.int16)
            y = np.asarray(Image.open(other / sub / k), dtype=np.int16)
            big = max(big, float(np.abs(x - y).max()))
    return f"{len(diff)}/{len(fa)} files, max|d| {big:g} (8-bit)"


# ------------------------------------------------------------------------------------------
# commands

def bisect(args) -> int:
    work = Path(args.work).resolve()
    stages = args.stages.split(",") if args.stages else STAGES
    profiles = args.profiles.split(",") if args.profiles else DEFAULT_PROFILES
    ref = args.ref
    common = work / "common"
    if not (common / "done").is_file():
        print(f"building the common inputs under '{ref}' ...", flush=True)
        spec = PROFILES[ref]
        common.mkdir(parents=True, exist_ok=True)
        # common inputs: train/test faces, the test sets, prior/dre/panini checkpoints, restored
        code = ("import sys; sys.argv[0]='x'; from bench.numerics import _apply_profile, "
                "_setup_common; import json; _apply_profile(json.loads(sys.argv[1])); "
                "_setup_common(sys.argv[2], int(sys.argv[3]))")
        env = {k: v for k, v in os.environ.items() if k not in _KNOBS}
        env["PYTHONPATH"] = str(ROOT)
        subprocess.run([sys.executable, "-c", code, json.dumps(spec), str(work), str(args.steps)],
                       env=env, cwd=ROOT, check=True)
        (common / "done").write_text("ok")
    results: dict[str, dict[str, str]] = {}
    times: dict[str, float] = {}
    for name in [ref] + [p for p in profiles if p != ref]:
        pdir = work / name
        own = [s for s in stages if s in PROFILES[name].get("stages", stages)]
        if not (pdir / "facts.json").is_file():
            print(f"running {name} ...", flush=True)
            times[name] = spawn(work, name, PROFILES[name], own, args.steps, pdir)
        facts = json.loads((pdir / "facts.json").read_text())
        results[name] = {"isa": facts["environment"]["isa"],
                         "threads": str(facts["environment"]["torch_threads"])}
        for st in stages:
            results[name][st] = ("ref" if name == ref else "-" if st not in own
                                 else compare_stage(st, work / ref, pdir))
    cols = ["isa", "threads", *stages]
    lines = ["| profile | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    lines += [f"| {n} | " + " | ".join(r[c] for c in cols) + " |" for n, r in results.items()]
    table = "\n".join(lines)
    print(table)
    (work / "bisect.md").write_text(table + "\n")
    return 0


def _setup_common(work: str, steps: int) -> None:
    import logging
    logging.disable(logging.WARNING)
    from pipeline.cli import main
    work_p = Path(work)
    common = work_p / "common"

    def cli(*argv):
        assert main([str(a) for a in argv]) == 0, argv
    cli("synth-faces", "--n", 16, "--size", 64, "--seed", 101, "--out", common / "hq_train")
    cli("synth-faces", "--n", 8, "--size", 64, "--seed", 202, "--out", common / "hq_test")
    for preset, sets in PRESETS.items():
        cli("degrade", "--preset", preset, "--src", common / "hq_test", "--seed", 2026,
            "--out", common / "ts" / preset, *sum((["--set", s] for s in sets), []))
    params = _params_file(work_p, common, common / "ckpt")
    for name in ("prior", "dre", "panini"):
        cli("train", name, "--params", params, "--steps", steps, "--no-progress")
    cli("restore", "--method", "panini", "--params", params,
        "--input", common / "ts" / "panini_mfr" / "lq", "--output", common / "restored")


def ops(args) -> int:
    """Per-module activations/gradients of one training step under two profiles."""
    work = Path(args.work).resolve()
    names = args.profile
    dumps = []
    for name in names:
        out = work / "ops" / f"{args.stage}-{name}.pt"
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _KNOBS}
        env["PYTHONPATH"] = str(ROOT)
        code = ("import sys, json; from bench.numerics import _apply_profile, _trace; "
                "_apply_profile(json.loads(sys.argv[1])); _trace(*sys.argv[2:])")
        cmd = [sys.executable, "-c", code, json.dumps(PROFILES[name]), str(work), args.stage,
               str(out)]
        if PROFILES[name].get("cpus"):
            cmd = ["taskset", "-c", PROFILES[name]["cpus"], *cmd]
        subprocess.run(cmd, env=env, cwd=ROOT, check=True)
        dumps.append(out)
    import torch
    a, b = (torch.load(p, weights_only=True) for p in dumps)
    shown = 0
    for (ka, va), (kb, vb) in zip(a, b):
        assert ka == kb, (ka, kb)
        same = va.shape == vb.shape and bool((va == vb).all())
        if not same:
            d = float((va.double() - vb.double()).abs().max())
            print(f"DIFF {ka}: max|d| {d:.3g}")
            shown += 1
            if shown >= args.show:
                break
    print(f"{len(a)} traced tensors; first {shown} differing shown")
    return 0


def _trace(work: str, stage: str, out: str) -> None:
    """One training step of ``stage`` from the common inputs, recording (module name/kind,
    output) in forward order, each loss and every parameter gradient. (Module backward hooks
    are not used: they break on in-place activations.)"""
    import logging
    logging.disable(logging.WARNING)
    import torch

    from methods.base import TrainContext
    from pipeline.cmd_train import build_trainee
    from pipeline.config import load_params

    work_p = Path(work)
    params = load_params(_params_file(work_p, work_p / "ops", work_p / "common" / "ckpt"))
    trainee = build_trainee(stage, params)
    trainee.setup_training(TrainContext(params, torch.device("cpu"), params.train.checkpoint_dir,
                                        0, 1))
    rec: list = []

    def fwd(name):
        def hook(mod, inp, outp):
            t = outp[0] if isinstance(outp, (tuple, list)) else outp
            if torch.is_tensor(t):
                rec.append((f"fwd {name} ({type(mod).__name__})", t.detach().clone()))
        return hook

    for n, m in trainee.named_modules():
        if n:
            m.register_forward_hook(fwd(n))
    from methods.trainer import HQFolder, StepBatches, _params_of, _set_grad
    data = StepBatches(HQFolder(params.train.hq_dir, trainee.hq_size), trainee.sample_fn(),
                       seed=params.seed, name=trainee.name, global_batch=trainee.batch_size,
                       images_per_sample=trainee.images_per_sample, rank=0, world=1)
    batch = {k: torch.as_tensor(v) for k, v in data[0].items()}
    torch.manual_seed(0)
    optims = trainee.make_optimizers()
    groups = {k: _params_of(o) for k, o in optims.items()}
    trainee.train()
    for part in trainee.step_order:
        if part not in optims:
            continue
        for k, ps in groups.items():
            _set_grad(ps, k == part)
        res = trainee.d_step(batch, 0) if part == "d" else trainee.g_step(batch, 0)
        if res is None:
            continue
        loss = res[0]
        rec.append((f"loss {part}", loss.detach().clone().reshape(1)))
        optims[part].zero_grad(set_to_none=True)
        loss.backward()
        for n, p in trainee.named_parameters():
            if p.grad is not None:
                rec.append((f"grad {part} {n}", p.grad.detach().clone()))
        optims[part].step()
    torch.save(rec, out)


def cost(args) -> int:
    """Wall time of the same short trainings under each profile, interleaved, ``--repeat`` times."""
    work = Path(args.work).resolve()
    if not (work / "common" / "done").is_file():
        raise SystemExit("run `bisect` first (it builds the common inputs)")
    stages = args.stages.split(",")
    names = args.profiles.split(",")
    t = {n: [] for n in names}
    cpu = {n: [] for n in names}
    stage_cpu = {n: [] for n in names}
    for r in range(args.repeat):
        for n in names:
            pdir = work / "cost" / f"{n}-{r}"
            t[n].append(spawn(work, n, PROFILES[n], stages, args.steps, pdir))
            cpu[n].append(spawn.cpu_s)
            facts = json.loads((pdir / "facts.json").read_text())
            tr = facts["times"]
            train_cpu = sum(tr[f"{st}_cpu"] for st in stages)
            train_wall = sum(tr[st] for st in stages)
            stage_cpu[n].append(train_cpu)
            print(f"{n} run {r}: process wall {t[n][-1]:.1f}s cpu {cpu[n][-1]:.1f}s; stages wall "
                  f"{train_wall:.1f}s cpu {train_cpu:.1f}s ("
                  + ", ".join(f"{st} {tr[st + '_cpu']:.1f}" for st in stages) + ")", flush=True)
    base, cbase = min(t[names[0]]), min(stage_cpu[names[0]])
    for n in names:
        print(f"{n}: stages cpu {min(stage_cpu[n]):.1f}s (x{min(stage_cpu[n]) / cbase:.2f} of "
              f"{names[0]}), process wall {min(t[n]):.1f}s (x{min(t[n]) / base:.2f})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.numerics", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bisect", help="compare every stage's outputs across profiles")
    b.add_argument("--work", required=True)
    b.add_argument("--steps", type=int, default=3)
    b.add_argument("--profiles", default=None, help=f"comma list (default all: {DEFAULT_PROFILES})")
    b.add_argument("--stages", default=None, help=f"comma list (default all: {STAGES})")
    b.add_argument("--ref", default="pinned")
    o = sub.add_parser("ops", help="per-module activations/gradients of one training step")
    o.add_argument("--work", required=True)
    o.add_argument("--stage", required=True)
    o.add_argument("--profile", action="append", required=True)
    o.add_argument("--show", type=int, default=10)
    c = sub.add_parser("cost", help="wall time per profile, side by side")
    c.add_argument("--work", required=True)
    c.add_argument("--stages", default="prior,panini,gpen")
    c.add_argument("--steps", type=int, default=20)
    c.add_argument("--profiles", default="native,native-1core,pinned,pinned-2threads")
    c.add_argument("--repeat", type=int, default=2)
    w = sub.add_parser("_worker")
    for k in ("--work", "--pdir", "--spec", "--stages"):
        w.add_argument(k, required=True)
    w.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    return {"bisect": bisect, "ops": ops, "cost": cost, "_worker": _worker}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
