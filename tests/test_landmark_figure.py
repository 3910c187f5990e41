"""The report's dlib figure (pipeline/landmark_figure.py): its verdicts, and a real run on
built-in faces."""
import json
from types import SimpleNamespace as S

import pytest

from pipeline.landmark_figure import caption, figures


def _finding(self_deg, ladder_degs, lm_rel=0.04):
    return {"landmark_error_px": {"median": 0.7, "p90": 1.4}, "eye_distance_px": 16.0,
            "landmark_error_rel": lm_rel, "landmarks_on_target": lm_rel <= 0.10,
            "deg_different_faces": {"median": 20.0, "q25": 17.0, "q75": 22.0, "min": 11.0},
            "deg_self_down_up_x2": self_deg,
            "ladder_bicubic": {f"r{2 ** (k + 1):03d}": {"deg_dlib": d, "lmd_dlib68": 1.0 + k, "n": 8}
                               for k, d in enumerate(ladder_degs)},
            "deg_dlib_reliable": self_deg < 10.0 and all(d < 20.0 for d in ladder_degs)}


def test_caption_states_the_verdict():
    bad = caption(_finding(18.9, [27.4, 28.6, 31.8, 30.6]), builtin=True)
    assert "UNRELIABLE" in bad and "built-in (drawn) faces" in bad
    assert "deg_dlib does NOT rise monotonically" in bad and "lmd_dlib68 rises" in bad
    good = caption(_finding(1.5, [2.0, 4.0, 9.0, 15.0]), builtin=False)
    assert "UNRELIABLE" not in good and "deg_dlib rises monotonically" in good
    off = caption(_finding(1.5, [2.0], lm_rel=0.3), builtin=True)
    assert "does NOT land on the drawn features" in off


def test_no_test_faces_no_figure(tmp_path):
    p = S(testsets=S(src=str(tmp_path / "none"), names=[], sets={}, out_dir=str(tmp_path)),
          profile="builtin", weights=None)
    assert figures(p, tmp_path / "fig") == []


@pytest.mark.slow
def test_figure_on_builtin_faces(tmp_path):
    from degradations.builder import build_testset
    from pipeline.cmd_synth import write_faces
    hq = tmp_path / "hq"
    write_faces(hq, 4, 64, 202)
    build_testset(hq, tmp_path / "ts" / "ladder", "panini_ladder", 2026, set_name="ladder", n=2,
                  overrides={"factors": [2, 16]})
    p = S(testsets=S(src=str(hq), names=["ladder"], sets={"ladder": S(preset="panini_ladder")},
                     out_dir=str(tmp_path / "ts")),
          profile="builtin", weights=None)
    out = figures(p, tmp_path / "fig")
    assert [x.name for x in out] == ["landmarks_dlib.png"] and out[0].stat().st_size > 10_000
    f = json.loads((tmp_path / "fig" / "landmarks_dlib.json").read_text())
    assert f["n_faces"] == 4 and set(f["ladder_bicubic"]) == {"r002", "r016"}
    assert f["landmarks_on_target"]                  # measured: ~0.7 px at a 16 px eye distance
    assert f["caption"].startswith("68-point fit") and ("UNRELIABLE" in f["caption"]) == (
        not f["deg_dlib_reliable"])
