"""Built-in synthetic faces: determinism, subset independence, landmarks, manifest."""
import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.cmd_synth import write_faces
from core.datasets import HQDataset, load_faces_json
from core.imageio import read_image
from core.manifest import sha256_file
from pipeline.synthfaces import face_id, render_face


def test_same_seed_same_bytes_and_seeds_differ():
    a, ia = render_face(3, 64, 11)
    b, ib = render_face(3, 64, 11)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, b) and ia == ib
    c, _ = render_face(3, 64, 12)
    assert np.abs(a.astype(int) - c).mean() > 10


def test_identities_differ():
    ims = [render_face(i, 64, 5)[0].astype(np.float64) for i in range(6)]
    d = [np.abs(ims[i] - ims[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(d) > 8
    # high-frequency content (restoration must be non-trivial): Laplacian energy of a face
    lap = np.abs(np.diff(ims[0], 2, axis=0)).mean() + np.abs(np.diff(ims[0], 2, axis=1)).mean()
    assert lap > 3


def test_landmarks_plausible():
    for i in range(8):
        img, info = render_face(i, 64, 2)
        (lx, ly), (rx, ry), (mx, my) = info["left_eye"], info["right_eye"], info["mouth"]
        assert 0.25 * 64 < lx < rx < 0.75 * 64  # FFHQ-like placement, viewer's left first
        assert 0.38 * 64 < ly < 0.56 * 64 and 0.38 * 64 < ry < 0.56 * 64
        assert 0.64 * 64 < my < 0.8 * 64 and lx < mx < rx
        assert 1.5 < info["eye_half"] < 6 and 2 < info["mouth_half"] < 8
        # the pupil is dark: the darkest pixel near each eye centre is darker than the image mean
        g = img.astype(float).mean(-1)
        for x, y in ((lx, ly), (rx, ry)):
            patch = g[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2]
            assert patch.min() < g.mean() - 20


def test_write_faces_subset_independent_and_worker_count(tmp_path):
    m1 = write_faces(tmp_path / "a", n=6, size=48, seed=9)
    m2 = write_faces(tmp_path / "b", n=3, size=48, seed=9, start=3, workers=2)
    for k in ("00003.png", "00004.png", "00005.png"):
        assert m1["files"][k] == m2["files"][k]
    for k, h in m1["files"].items():
        assert sha256_file(tmp_path / "a" / k) == h
    faces = load_faces_json(tmp_path / "a")
    assert sorted(faces) == [face_id(i) for i in range(6)]
    assert faces["00002"]["size"] == 48 and "skin" in faces["00002"]
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["generator"] and man["params"]["seed"] == 9 and "numpy" in man["versions"]
    assert np.array_equal(read_image(tmp_path / "a" / "00004.png"), render_face(4, 48, 9)[0])
    ds = HQDataset(tmp_path / "a", size=24)
    item = ds[2]
    assert item["id"] == "00002" and item["hq"].shape == (24, 24, 3)
    assert item["landmarks"]["left_eye"] == pytest.approx([0.5 * v for v in faces["00002"]["left_eye"]])


def test_cli_synth_errors(tmp_path, capsys):
    assert main(["synth-faces", "--n", "0", "--seed", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    assert main(["synth-faces", "--n", "2", "--seed", "1", "--size", "32",
                 "--out", str(tmp_path / "y")]) == 0
    assert sorted(p.name for p in (tmp_path / "y").iterdir()) == \
        [".frbench-output.json", "00000.png", "00001.png", "faces.json", "manifest.json"]
