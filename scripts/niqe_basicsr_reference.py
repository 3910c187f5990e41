"""Reference NIQE figures from BasicSR itself, for tests/test_metrics_niqe.py (run by hand).

BasicSR is NOT a frbench dependency; run this in a scratch environment that has it, e.g.

    python3.11 -m venv /tmp/basicsr-venv
    echo $PWD/.venv/lib/python3.11/site-packages > /tmp/basicsr-venv/lib/python3.11/site-packages/frbench.pth
    /tmp/basicsr-venv/bin/pip install wheel
    /tmp/basicsr-venv/bin/pip install --no-deps --no-build-isolation basicsr==1.4.2
    make test-photos
    /tmp/basicsr-venv/bin/python scripts/niqe_basicsr_reference.py tests/data/niqe_basicsr_reference.json

(the .pth line lends the scratch venv frbench's numpy/scipy/torch/cv2/Pillow/scikit-image).
basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor`` (gone from recent torchvision)
at package import; this script aliases it to ``torchvision.transforms.functional`` before
importing, which does not touch NIQE. Every image is decoded by ``tests/photos.py`` (Pillow ->
uint8 RGB) and handed to BasicSR in its BGR order:
``calculate_niqe(bgr, crop_border=0, input_order='HWC', convert_to='y')``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(out: str) -> int:
    import importlib.metadata as md

    import torchvision.transforms.functional as tvf
    sys.modules.setdefault("torchvision.transforms.functional_tensor", tvf)
    from basicsr.metrics.niqe import calculate_niqe

    import photos
    imgs = photos.skimage_images()
    for name in photos.PHOTOS:
        img = photos.photo(name)
        if img is None:
            print(f"{name} absent: {photos.FETCH_HINT}", file=sys.stderr)
            return 1
        imgs[name] = img
    res = {}
    for name, img in imgs.items():
        res[name] = float(calculate_niqe(img[..., ::-1], 0, input_order="HWC", convert_to="y"))
        print(f"{name:16s} {img.shape[1]}x{img.shape[0]}  {res[name]:.7f}")
    doc = {"basicsr": md.version("basicsr"), "pillow": md.version("pillow"),
           "numpy": md.version("numpy"), "scipy": md.version("scipy"),
           "call": "calculate_niqe(rgb[..., ::-1], 0, input_order='HWC', convert_to='y')",
           "images": "tests/photos.py: skimage_images() and the face_recognition 1.3.0 photos",
           "niqe": res}
    Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/niqe_basicsr_reference.json"))
