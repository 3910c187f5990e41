"""deg_dlib / lmd_dlib68 (metrics/dlib_face.py) on real photos with the real dlib models:
identity separates people, both metrics rise with down-sampling; the evaluator records the
models' provenance; the weight slots fail clearly."""
import numpy as np
import pytest
from PIL import Image

import photos
from core.errors import FRBenchError
from metrics.dlib_face import DlibFace, align_face, angle_degrees, landmark_distance

SIZE = 256
PEOPLE = {"obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "biden.jpg": "biden"}


@pytest.fixture(scope="module")
def face():
    return DlibFace()


@pytest.fixture(scope="module")
def astronaut(face):
    from skimage import data
    return align_face(data.astronaut(), SIZE, face.sp68)


@pytest.fixture(scope="module")
def portraits(face):
    out = {}
    for name in PEOPLE:
        img = photos.require_photo(name)
        out[name] = align_face(img, SIZE, face.sp68)
    return out


def _down_up(img, f):
    s = img.shape[0]
    small = Image.fromarray(img).resize((s // f, s // f), Image.BICUBIC)
    return np.asarray(small.resize((s, s), Image.BICUBIC))


def test_models_resolve_to_the_pinned_files(face):
    assert set(face.provenance) == {"dlib_shape5", "dlib_resnet_v1", "dlib_shape68"}
    assert face.provenance["dlib_resnet_v1"] == \
        "file:dlib_face_recognition_resnet_model_v1.dat@sha256:55533b28a95800a5"
    assert all(v.startswith("file:") for v in face.provenance.values())


def test_same_person_closer_than_different_people(face, portraits):
    names = list(portraits)
    d = dict(zip(names, face.descriptors([portraits[n] for n in names])))
    same, diff = [], []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ang = float(angle_degrees(d[a][None], d[b][None])[0])
            (same if PEOPLE[a] == PEOPLE[b] else diff).append(ang)
    assert len(same) == 3 and len(diff) == 3
    assert max(same) < min(diff), (same, diff)      # measured: 13-18 vs 35-37 degrees


def test_identity_and_landmarks_rise_with_downsampling(face, astronaut):
    gt_desc = face.descriptors([astronaut])
    gt_lm = face.landmarks68([astronaut])
    degs, lmds = [], []
    for f in (2, 8, 32):
        x = _down_up(astronaut, f)
        degs.append(float(angle_degrees(face.descriptors([x]), gt_desc)[0]))
        lmds.append(float(landmark_distance(face.landmarks68([x]), gt_lm)[0]))
    assert degs[0] < degs[1] < degs[2], degs
    assert lmds[0] < lmds[1] < lmds[2], lmds
    # the 68 points land on the face: eyes above the nose tip above the mouth
    lm = gt_lm[0]
    assert lm[36:48, 1].mean() < lm[30, 1] < lm[48:68, 1].mean()


@pytest.mark.slow
def test_rise_with_downsampling_on_portraits(face, portraits):
    imgs = list(portraits.values())
    gd, gl = face.descriptors(imgs), face.landmarks68(imgs)
    deg, lmd = [], []
    for f in (2, 4, 8, 16):
        x = [_down_up(i, f) for i in imgs]
        deg.append(angle_degrees(face.descriptors(x), gd).mean())
        lmd.append(landmark_distance(face.landmarks68(x), gl).mean())
    assert np.all(np.diff(deg) > 0), deg
    assert lmd[-1] > lmd[0], lmd


def test_evaluator_scores_dlib_metrics_and_excludes_small_angles(face, astronaut, tmp_path):
    from metrics.evaluate import evaluate_folders
    gt, res = tmp_path / "gt", tmp_path / "res"
    gt.mkdir(), res.mkdir()
    big = np.asarray(Image.fromarray(astronaut).resize((512, 512), Image.BICUBIC))
    Image.fromarray(big).save(gt / "a.png")
    Image.fromarray(big).save(res / "a.png")                  # identical: 0 degrees, excluded
    Image.fromarray(big).save(gt / "b.png")
    Image.fromarray(_down_up(big, 16)).save(res / "b.png")
    from metrics.evaluate import Evaluator
    ev = Evaluator("gfpgan_celeba_test", ["deg_dlib", "lmd_dlib68"], bootstrap_samples=0,
                   cache_dir=tmp_path / "cache")
    s = evaluate_folders(res, gt, "gfpgan_celeba_test", ["deg_dlib", "lmd_dlib68"],
                         out=tmp_path / "out", evaluator=ev)
    assert s["provenance"] == face.provenance
    deg = s["metrics"]["deg_dlib"]
    assert deg["n_excluded"] == 1 and deg["excluded_below_deg"] == 1.0 and deg["n"] == 1
    want = angle_degrees(face.descriptors([_down_up(big, 16)]), face.descriptors([big]))[0]
    assert deg["mean"] == pytest.approx(want, abs=1e-6) and deg["mean"] > 1.0
    rows = (tmp_path / "out" / "per_image.csv").read_text().splitlines()
    assert rows[0] == "id,deg_dlib,lmd_dlib68" and float(rows[1].split(",")[2]) == 0.0
    assert float(rows[2].split(",")[2]) > 0.0
    # GT descriptors/landmarks come from the disk cache in a fresh process (memory cleared here)
    # (both GT files hold the same image: one entry)
    assert len(list((tmp_path / "cache" / "dlib" / "dlib_desc").glob("*.npy"))) == 1
    ev._gt_mem.clear()
    seen = []
    real = ev.dlib.descriptors
    ev.dlib.descriptors = lambda ims: (seen.append(len(ims)), real(ims))[1]
    s2 = ev.evaluate(res, gt)
    assert seen == [2] and s2["metrics"] == s["metrics"]     # restored side only


def test_dlib_files_have_no_random_init_stand_in(monkeypatch, tmp_path):
    import dataclasses
    from metrics import weights as W
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = dataclasses.replace(W.KNOWN["dlib_shape5"], package_dirs=("no_such_pkg_xyz/models",))
    with pytest.raises(FRBenchError, match="shape_predictor_5_face_landmarks.dat.*no random-init"):
        W.resolve("dlib_shape5", spec=spec, allow_random_init=True)


def test_vqfr_lmd_weights_have_a_slot_that_fails_clearly(monkeypatch, tmp_path):
    from metrics import METRICS
    from metrics.weights import resolve
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FRBenchError, match="alignment_WFLW_4HG.pth.*AWing"):
        resolve("awing_wflw", allow_random_init=True)
    assert "awing_wflw" not in {n for m in METRICS.values() for n in m.needs}
    assert "not VQFR" in METRICS["lmd_dlib68"].description


def test_preflight_checks_file_only_weights_even_with_random_init():
    from pipeline.cmd_preflight import check
    from pipeline.config import load_params
    from pathlib import Path
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    assert params.weights.allow_random_init and params.evaluate.protocol == "builtin"
    checked = check(params)["checked"]
    for name in ("dlib_shape5", "dlib_resnet_v1", "dlib_shape68", "niqe_pris_params"):
        assert any(c.startswith(f"{name}:file:") for c in checked), (name, checked)
