"""dlib face models with real weights on every machine: identity descriptors and 68 landmarks.

The files come from the ``face-recognition-models`` package (CC0; Davis King's dlib models),
found through the one resolver (``metrics.weights``: names ``dlib_resnet_v1``, ``dlib_shape5``,
``dlib_shape68``; sha256 pinned); ``dlib`` itself from the ``dlib-bin`` wheel (Boost licence).

**No detector.** Benchmark images are aligned face crops (FFHQ/CelebA-HQ alignment, as the
built-in faces), so the landmark predictors are started from one fixed box, ``FACE_BOX`` (left,
top, right, bottom as fractions of the image side): where dlib's HOG frontal-face detector puts
its box on an FFHQ-aligned crop (measured on FFHQ-aligned crops of real photos: 98..419 x
134..455 at 512 px, the same box for every face since the alignment fixes eyes and mouth). A box
of the whole image was tried first and rejected: the predictors' cascades start from the mean
shape scaled to the box, and from the whole image they stopped 100+ px off the eyes at 512 px.
The box is the same for restored and GT images, so every difference comes from the pixels.

- ``descriptors(images)``: 5-point predictor in ``FACE_BOX`` -> dlib's aligned 150 px chip
  (padding 0.25) -> 128-d descriptor. ``deg_dlib`` is the angle in degrees between the restored
  and GT descriptors (as ``deg_arcface18``; protocols that exclude pairs below 1 degree, as VQFR
  does, apply the same rule to it).
- ``landmarks68(images)``: 68-point predictor in ``FACE_BOX`` -> (N, 68, 2) pixel coordinates.
  ``lmd_dlib68`` is the mean Euclidean distance over the 68 points between restored and GT, in
  pixels at the evaluated size. It is NOT VQFR's LMD (AWing, 98 WFLW points,
  ``alignment_WFLW_4HG.pth``; weight name ``awing_wflw``, not implemented).

``align_face(photo, size)`` makes such a crop from an ordinary photo (HOG detector, 68 points,
the FFHQ recipe), for users' photos and the tests.

Measured on real photos (tests/test_metrics_dlib.py; FFHQ-aligned crops of the face_recognition
test photos): one person 13-18 degrees apart across photos, different people 35-37 degrees;
down-sampling a 512 px crop by 2/4/8/16 and back moves its descriptor by 1.5/2.5/8/18 degrees.
Cost on one CPU core: ~0.25 s per descriptor, ~0.02 s per 68-point fit, at any input size
(the descriptor net sees a 150 px chip).
"""
from __future__ import annotations

import logging
from functools import lru_cache
from typing import Sequence

import numpy as np

from core.errors import FRBenchError

log = logging.getLogger(__name__)

FACE_BOX = (0.19, 0.26, 0.82, 0.89)
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def _dlib():
    try:
        import dlib
    except ImportError:
        raise FRBenchError("deg_dlib/lmd_dlib68: the 'dlib' module is missing; install the "
                           "dlib-bin wheel (pip install dlib-bin), a frbench dependency") from None
    return dlib


@lru_cache(maxsize=1)
def _detector():
    return _dlib().get_frontal_face_detector()   # ~2 s to build: once per process


def face_box(h: int, w: int):
    """``FACE_BOX`` as a dlib rectangle for an ``h`` x ``w`` image."""
    dlib = _dlib()
    l, t, r, b = FACE_BOX
    return dlib.rectangle(int(round(l * w)), int(round(t * h)),
                          int(round(r * w)) - 1, int(round(b * h)) - 1)


def _points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError("dlib models take uint8 HWC RGB images")
    return np.ascontiguousarray(img)


class DlibFace:
    """The dlib predictors/descriptor net, loaded once. ``wcfg``: a ``WeightsConfig`` (explicit
    paths and search folders apply; random init does not exist for these files)."""

    def __init__(self, wcfg=None, search_dirs=(), *, descriptor: bool = True,
                 landmarks: bool = True):
        from metrics import weights as W

        dlib = _dlib()
        paths = (getattr(wcfg, "paths", {}) or {}) if wcfg is not None else {}
        dirs = tuple(search_dirs) + tuple((getattr(wcfg, "search_dirs", []) or [])
                                          if wcfg is not None else [])
        self.provenance: dict[str, str] = {}

        def res(name):
            r = W.resolve(name, paths.get(name), allow_random_init=False, search_dirs=dirs)
            self.provenance[name] = r.provenance
            return str(r.path)

        self.sp5 = self.net = self.sp68 = None
        if descriptor:
            self.sp5 = dlib.shape_predictor(res("dlib_shape5"))
            self.net = dlib.face_recognition_model_v1(res("dlib_resnet_v1"))
        if landmarks:
            self.sp68 = dlib.shape_predictor(res("dlib_shape68"))

    def descriptors(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float64 dlib descriptors of aligned face crops (uint8 HWC RGB)."""
        if self.net is None:
            raise ValueError("built without the descriptor")
        dlib = _dlib()
        chips = []
        for im in images:
            im = _rgb(im)
            shape = self.sp5(im, face_box(*im.shape[:2]))
            chips.append(dlib.get_face_chip(im, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        if not chips:
            return np.zeros((0, 128))
        return np.array([np.asarray(d) for d in self.net.compute_face_descriptor(chips)],
                        dtype=np.float64)

    def landmarks68(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 68, 2) float64 landmark coordinates (pixels of each image)."""
        if self.sp68 is None:
            raise ValueError("built without the 68-point predictor")
        out = [_points(self.sp68(_rgb(im), face_box(*im.shape[:2]))) for im in images]
        return np.stack(out) if out else np.zeros((0, 68, 2))


def angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise angle in degrees between (N, D) descriptor arrays."""
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def landmark_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance over the points, (N, P, 2) x 2 -> (N,)."""
    return np.linalg.norm(a - b, axis=-1).mean(-1)


def align_face(photo: np.ndarray, size: int = 512, predictor68=None,
               upsample: int = 0) -> np.ndarray:
    """FFHQ-style aligned ``size`` px crop of the largest face in an ordinary photo (uint8 RGB):
    dlib's HOG frontal-face detector (built into dlib, no file), the 68-point predictor, then the
    FFHQ recipe (eye and mouth centres fix an oriented square, sampled bilinearly). ``upsample``:
    the detector's pyramid upsampling (0 finds faces of ~80 px and more). Raises
    ``FRBenchError`` when no face is found."""
    from PIL import Image

    dlib = _dlib()
    photo = _rgb(photo)
    # detect on a copy of at most ~640 px (the HOG detector's cost grows with the area)
    k = max(1, int(np.ceil(max(photo.shape[:2]) / 640)))
    small = photo if k == 1 else np.asarray(Image.fromarray(photo).reduce(k))
    dets = _detector()(small, upsample)
    if not len(dets):
        raise FRBenchError("align_face: no face found in the photo")
    d = max(dets, key=lambda r: r.area())
    box = dlib.rectangle(d.left() * k, d.top() * k, d.right() * k, d.bottom() * k)
    if predictor68 is None:
        predictor68 = DlibFace(descriptor=False).sp68
    lm = _points(predictor68(photo, box))
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_c, mouth_c = (eye_l + eye_r) / 2, (lm[48] + lm[54]) / 2
    e2e, e2m = eye_r - eye_l, mouth_c - eye_c
    x = e2e - np.flipud(e2m) * [-1, 1]
    x = x / np.hypot(*x) * max(np.hypot(*e2e) * 2.0, np.hypot(*e2m) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_c + e2m * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y]) + 0.5
    out = Image.fromarray(photo).transform((size, size), Image.QUAD, tuple(quad.ravel()),
                                           Image.BILINEAR)
    return np.asarray(out)
