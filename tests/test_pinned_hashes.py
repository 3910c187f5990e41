"""Pinned bytes: the fixed test sets and synthetic faces must not change by accident.

The other determinism tests compare one run with another, so a change in how ``rng_for`` hashes
its parts, in a preset's draw order or in a primitive would silently change every published set
and face and still pass. These tests pin sha256 digests of the decoded pixels (not of the PNG
files, so a new zlib does not count) and of the drawn parameters.

**Updating them deliberately.** When a change is *meant* to alter the sets or faces (a new draw,
a fixed bug in a primitive, or a library upgrade whose OpenCV/libjpeg/Pillow output differs):

    PYTHONPATH=. python tests/test_pinned_hashes.py

prints the current values in the layout of the ``PINNED_*`` tables below; paste them over the
old ones, say in the commit message which sets change and why, and rebuild the test sets
(``dvc repro``): results computed on the old sets are no longer comparable.
"""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.seeding import rng_for, stable_seed, torch_generator
from core.imageio import write_png
from degradations import PRESETS
from degradations.builder import build_testset
from pipeline.synthfaces import render_face

SMALL = {"sr16_bilinear": {"factor": 8}, "panini_ladder": {"factors": [2, 8]}}

PINNED_SEEDS = {
    "stable_seed(5, 'gfpgan', '00001')": 10242761915603666933,
    'stable_seed(0)': 4066689987807800415,
    "rng_for(5, 'gfpgan', '00001').integers(0, 2**31, 3)": [569948701, 1334386652, 1088204438],
    "rng_for(5, 'gfpgan', '00001').random()": 0.6213722061983782,
    "torch_generator(3, 'train', 'panini', 7, 0): torch.randint": [378352576, 413396327],
}

PINNED_SETS = {
    'gfpgan': 'ce799b59b943ba0982e0ea5cf3020a85c6ad6cd1dee9682880040ec37c33bb01',
    'gpen': '0fe40b1e74649997e9c26b56f4438b928dff6d339ee594b0e0a3ea4a929b36da',
    'panini_ladder': '52a7691196b3c139315f9c1fd75a5784e4ea9fcad9030082c7fe003653167bfc',
    'panini_mfr': '02d07745fdf6b9ae068ee3b1616bc62aab3e28553c8e5607f26750038dc59e76',
    'panini_mfr_literal': '9c83071f40c10d4236f7e15c52fc333e2404d20482fc389e7a45da924f6f74bc',
    'sr16_bilinear': '1ba0edf54ef712470f83c8fd2982f8d29d184d60c380e334f6d519293f07b2e1',
    'sr_bicubic': 'f8f630087f1592f1c8f019bb3eea2dc800bc5eb75f985e8c20c9a12318a9c350',
}

PINNED_FACES = {
    'render_face(0, 64, 1)': '64769b36918be6e7a4c00f83620b26fdf9bbc14df46c1ab94dce1cff5252ab94',
    'render_face(1, 64, 1)': '044e59283a1623b90bbe1d9aae935546df4524a7d21a16f6eeab12d6ff63c7aa',
    'render_face(7, 32, 2)': '7d6833a8354ac621e9c0a6457484e93d8a5f479624c41aac612060283b4e3630',
}


def seed_values() -> dict:
    g = torch_generator(3, "train", "panini", 7, 0)
    return {
        "stable_seed(5, 'gfpgan', '00001')": stable_seed(5, "gfpgan", "00001"),
        "stable_seed(0)": stable_seed(0),
        "rng_for(5, 'gfpgan', '00001').integers(0, 2**31, 3)":
            [int(v) for v in rng_for(5, "gfpgan", "00001").integers(0, 2 ** 31, 3)],
        "rng_for(5, 'gfpgan', '00001').random()": float(rng_for(5, "gfpgan", "00001").random()),
        "torch_generator(3, 'train', 'panini', 7, 0): torch.randint":
            [int(v) for v in torch.randint(0, 2 ** 31, (2,), generator=g)],
    }


def _pixels(path) -> bytes:
    return np.asarray(Image.open(path).convert("RGB")).tobytes()


def _hq_folder(root):
    """Two 64 px HQ images from integer arithmetic only (no platform-dependent float maths)."""
    folder = root / "hq"
    for i in range(2):
        yy, xx = np.mgrid[0:64, 0:64]
        img = np.stack([(xx * 3 + yy + i * 17) % 256, (yy * 5 + i * 40) % 256,
                        (xx * yy // 7 + 90) % 256], -1)
        noise = rng_for("pinned-hq", i).integers(-20, 21, img.shape)
        write_png(folder / f"{i:05d}.png", np.clip(img + noise, 0, 255).astype(np.uint8))
    return folder


def set_digest(root, name) -> str:
    """sha256 over every output image (id, GT and LQ pixels) and its drawn params, in id order."""
    out = root / name
    m = build_testset(_hq_folder(root), out, name, seed=5, overrides=SMALL.get(name))
    h = hashlib.sha256()
    for oid in sorted(m["images"]):
        rec = m["images"][oid]
        h.update(oid.encode())
        h.update(_pixels(out / "gt" / f"{oid}.png"))
        h.update(_pixels(out / "lq" / f"{oid}.png"))
        h.update(json.dumps(rec["params"], sort_keys=True).encode())
    return h.hexdigest()


def face_digest(key) -> str:
    i, size, seed = (int(v) for v in key[len("render_face("):-1].split(","))
    img, info = render_face(i, size, seed)
    h = hashlib.sha256(img.tobytes())
    h.update(json.dumps(info, sort_keys=True, default=float).encode())
    return h.hexdigest()


HOW = "(if this change is deliberate, see the module docstring to update the pinned values)"


def test_seeds_are_pinned():
    assert seed_values() == PINNED_SEEDS, HOW


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_test_sets_are_pinned(tmp_path, name):
    assert name in PINNED_SETS, f"new preset '{name}': pin it {HOW}"
    assert set_digest(tmp_path, name) == PINNED_SETS[name], f"test set '{name}' changed {HOW}"


@pytest.mark.parametrize("key", sorted(PINNED_FACES))
def test_synthetic_faces_are_pinned(key):
    assert face_digest(key) == PINNED_FACES[key], f"{key} changed {HOW}"


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    print("PINNED_SEEDS = {")
    for k, v in seed_values().items():
        print(f"    {k!r}: {v!r},")
    print("}\n\nPINNED_SETS = {")
    with tempfile.TemporaryDirectory() as d:
        for name in sorted(PRESETS):
            print(f"    {name!r}: {set_digest(Path(d) / name, name)!r},")
    print("}\n\nPINNED_FACES = {")
    for key in PINNED_FACES:
        print(f"    {key!r}: {face_digest(key)!r},")
    print("}")
