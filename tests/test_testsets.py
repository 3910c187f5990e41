"""Test-set builder: byte-identical rebuilds (twice, 1 vs 2 workers, subsets), manifests, bad
input, CLI exit codes, params sections, HQ folder import."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from degradations import PRESETS
from degradations.builder import build_testset
from pipeline.cli import main
from pipeline.cmd_synth import write_faces
from pipeline.config import build, load_params
from core.datasets import list_hq, load_hq
from core.errors import FRBenchError
from core.manifest import sha256_file
from pipeline.stage_hq import import_folder

SMALL = {"sr16_bilinear": {"factor": 8}, "panini_ladder": {"factors": [2, 8]}}


@pytest.fixture(scope="module")
def hq(tmp_path_factory):
    d = tmp_path_factory.mktemp("hq") / "test"
    write_faces(d, n=4, size=64, seed=1)
    return d


def _hashes(folder):
    return {str(p.relative_to(folder)): sha256_file(p)
            for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rebuild_identical(hq, tmp_path, name):
    m1 = build_testset(hq, tmp_path / "a", name, seed=5, n=3, overrides=SMALL.get(name))
    m2 = build_testset(hq, tmp_path / "b", name, seed=5, n=3, overrides=SMALL.get(name))
    h1, h2 = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert h1 == h2 and len(h1) == 2 * m1["n_files"]
    assert m1["images"] == m2["images"]
    for oid, rec in m1["images"].items():
        assert h1[f"gt/{oid}.png"] == rec["gt_sha256"] and h1[f"lq/{oid}.png"] == rec["lq_sha256"]
        assert rec["params"] and rec["lq_size"] == PRESETS[name].override(
            **SMALL.get(name, {})).lq_size(64)
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["preset"] == name and man["seed"] == 5 and man["suite_version"]
    assert {"numpy", "Pillow", "cv2"} <= set(man["versions"])


def test_workers_order_and_subset_independent(hq, tmp_path):
    ov = {"factors": [2, 8]}
    m1 = build_testset(hq, tmp_path / "w1", "panini_ladder", seed=3, overrides=ov, workers=1)
    m2 = build_testset(hq, tmp_path / "w2", "panini_ladder", seed=3, overrides=ov, workers=2)
    assert _hashes(tmp_path / "w1") == _hashes(tmp_path / "w2")
    assert m1["images"] == m2["images"]
    assert sorted(m1["images"])[:2] == ["r002_00000", "r002_00001"]
    assert m1["images"]["r008_00002"]["level"] == "r008"
    assert m1["images"]["r008_00002"]["src_id"] == "00002"
    # a list file selecting images in another order gives the same bytes for those ids
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\n00003.png\n00001\n")
    build_testset(hq, tmp_path / "sub", "panini_ladder", seed=3, overrides=ov, list_file=lst)
    hs, hw = _hashes(tmp_path / "sub"), _hashes(tmp_path / "w1")
    assert len(hs) == 8 and all(hw[k] == v for k, v in hs.items())
    # another set name or seed gives other draws
    m3 = build_testset(hq, tmp_path / "o", "panini_ladder", seed=4, overrides=ov)
    assert m3["images"]["r002_00000"]["params"] != m1["images"]["r002_00000"]["params"]


# --------------------------------------------------------------------------- bad input

def _write_bad_folder(tmp_path, kind):
    d = tmp_path / f"src_{kind}"
    d.mkdir()
    good = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(good).save(d / "a.png")
    if kind == "corrupt":
        (d / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    elif kind == "truncated":
        Image.fromarray(good).save(d / "b.png")
        data = (d / "b.png").read_bytes()
        (d / "b.png").write_bytes(data[: len(data) // 2])
    elif kind == "small":
        Image.fromarray(good[:32, :32]).save(d / "b.png")
    elif kind == "nonsquare":
        Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(d / "b.png")
    return d


@pytest.mark.parametrize("kind, msg", [("corrupt", "b.png: cannot read image"),
                                       ("truncated", "b.png: cannot read image"),
                                       ("small", "b.png: image is 32x32 px, smaller than")])
def test_bad_images_fail_cleanly(tmp_path, kind, msg):
    src = _write_bad_folder(tmp_path, kind)
    out = tmp_path / "out" / "set"
    with pytest.raises(FRBenchError, match=msg):
        build_testset(src, out, "panini_mfr", seed=1, size=64)
    # refused from the headers before anything is written, or no temp leftovers
    parent = tmp_path / "out"
    assert not out.exists() and (not parent.exists() or list(parent.iterdir()) == [])
    if kind == "truncated":  # the same through the worker pool (header fine, decoding fails)
        with pytest.raises(FRBenchError, match=msg):
            build_testset(src, out, "panini_mfr", seed=1, size=64, workers=2)
        assert not out.exists() and list(parent.iterdir()) == []


def test_converted_inputs(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), "L").save(d / "gray.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 4), dtype=np.uint8), "RGBA").save(d / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (64, 64), dtype=np.uint16)).save(d / "deep.png")
    Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(d / "wide.png")
    m = build_testset(d, tmp_path / "out", "gfpgan", seed=1, size=64)
    assert sorted(m["images"]) == ["deep", "gray", "rgba", "wide"]
    img = load_hq(d / "wide.png")
    full = np.asarray(Image.open(d / "wide.png"))
    assert np.array_equal(img, full[:, 8:72])  # centre crop
    with pytest.raises(FRBenchError, match="wide.png: image is 80x64, not square"):
        build_testset(d, tmp_path / "out2", "gfpgan", seed=1, nonsquare="error")
    assert not (tmp_path / "out2").exists()


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FRBenchError, match="no images found"):
        build_testset(tmp_path / "empty", tmp_path / "o", "panini_mfr", seed=1)
    with pytest.raises(FRBenchError, match="no such folder"):
        build_testset(tmp_path / "missing", tmp_path / "o", "panini_mfr", seed=1)
    src = _write_bad_folder(tmp_path, "nonsquare")
    lst = tmp_path / "l.txt"
    lst.write_text("a\nzzz\n")
    with pytest.raises(FRBenchError, match="entry 'zzz' matches no image"):
        list_hq(src, lst)
    with pytest.raises(FRBenchError, match="unknown preset 'blurry'"):
        build_testset(src, tmp_path / "o", "blurry", seed=1)
    with pytest.raises(FRBenchError, match="unknown override 'sigmaa'"):
        build_testset(src, tmp_path / "o", "panini_mfr", seed=1, overrides={"sigmaa": [0, 1]})
    with pytest.raises(FRBenchError, match="asked for 9 images"):
        build_testset(src, tmp_path / "o", "panini_mfr", seed=1, n=9)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------- CLI

@pytest.mark.parametrize("argv, msg", [
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "sr16_bilinear", "--set", "factr=8"], "unknown override 'factr'"),
    (["--preset", "sr16_bilinear", "--set", "factor"], "expected KEY=VALUE"),
])
def test_cli_degrade_errors(hq, tmp_path, capsys, argv, msg):
    out = tmp_path / "o"
    rc = main(["degrade", "--src", str(hq), "--out", str(out), "--seed", "1"] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and "Traceback" not in err and not out.exists()


def test_cli_degrade_and_testsets(hq, tmp_path, capsys):
    out = tmp_path / "sr"
    assert main(["degrade", "--preset", "sr16_bilinear", "--src", str(hq), "--out", str(out),
                 "--seed", "1", "--set", "factor=8", "--n", "2"]) == 0
    assert sorted(p.name for p in (out / "lq").iterdir()) == ["00000.png", "00001.png"]
    assert Image.open(out / "lq" / "00000.png").size == (8, 8)
    params = tmp_path / "params.yaml"
    params.write_text(f"""profile: builtin
seed: 1
data: {{source: synthetic, size: 64, train: {{n: 2, seed: 1}}, test: {{n: 2, seed: 2}}}}
testsets:
  names: [mfr, lad]
  src: {hq}
  out_dir: {tmp_path / 'ts'}
  sets:
    mfr: {{preset: panini_mfr, n: 2, seed: 7}}
    lad: {{preset: panini_ladder, n: 1, seed: 7, overrides: {{factors: [2, 4]}}}}
""")
    assert main(["testsets", "--params", str(params)]) == 0
    assert len(list((tmp_path / "ts" / "lad" / "lq").iterdir())) == 2
    assert Image.open(tmp_path / "ts" / "mfr" / "lq" / "00001.png").size == (32, 32)
    assert main(["testsets", "--params", str(params), "--only", "gfp"]) == 2
    assert "unknown set 'gfp'" in capsys.readouterr().err
    params.write_text(params.read_text().replace("factors: [2, 4]", "factorz: [2, 4]"))
    assert main(["testsets", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "testsets.sets.lad" in err and "factorz" in err and "Traceback" not in err


# --------------------------------------------------------------------------- params/data

def test_repo_params_sections():
    p = load_params("params.yaml")
    assert p.data.size == 64 and p.data.source == "synthetic"
    assert set(p.testsets.names) <= set(p.testsets.sets)


def test_data_config_rejects():
    from degradations.config import DataConfig, TestsetsConfig

    with pytest.raises(FRBenchError, match="unknown key 'data.train.count'"):
        build(DataConfig, {"source": "synthetic", "size": 64, "train": {"count": 3},
                           "test": {"n": 1}}, "data")
    with pytest.raises(FRBenchError, match="data.test.folder: required"):
        build(DataConfig, {"source": "folder", "size": 64, "train": {"n": 0, "folder": "x"},
                           "test": {"n": 0}}, "data")
    with pytest.raises(FRBenchError, match="'b' has no entry"):
        build(TestsetsConfig, {"names": ["b"], "sets": {}}, "testsets")


def test_import_folder(tmp_path):
    src = _write_bad_folder(tmp_path, "nonsquare")
    m = import_folder(src, tmp_path / "hq", size=32)
    assert sorted(m["files"]) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "hq" / "b.png").size == (32, 32)
    shutil.copy(tmp_path / "hq" / "a.png", src / "c.png")
    with pytest.raises(FRBenchError, match="c.png: image is 32x32 px, smaller than"):
        import_folder(src, tmp_path / "hq2", size=64)
    assert not (tmp_path / "hq2").exists()


def test_stage_hq_entry(tmp_path, capsys):
    from pipeline.stage_hq import main as stage_main

    params = tmp_path / "params.yaml"
    params.write_text("profile: builtin\nseed: 1\ndata: {source: synthetic, size: 32, "
                      "train: {n: 3, seed: 1}, test: {n: 2, seed: 2}}\n")
    assert stage_main(["--split", "test", "--params", str(params),
                       "--out", str(tmp_path / "t")]) == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == \
        [".frbench-output.json", "00000.png", "00001.png", "faces.json", "manifest.json"]
    params.write_text("profile: builtin\nseed: 1\ndata: {source: folder, size: 32, "
                      f"train: {{n: 0, folder: {tmp_path / 'nope'}}}, "
                      f"test: {{n: 0, folder: {tmp_path / 'nope'}}}}}\n")
    assert stage_main(["--split", "train", "--params", str(params),
                       "--out", str(tmp_path / "u")]) == 2
    assert "no such folder" in capsys.readouterr().err and not (tmp_path / "u").exists()
