"""Built-in synthetic faces: a deterministic, offline stand-in for FFHQ-aligned face crops.

Each face is drawn at ``SUPERSAMPLE`` x the output size with numpy + OpenCV (analytic, shaded
ellipses for head/neck/ears/hair; OpenCV polylines for hair strands, brows, eyelids and lips) and
reduced with ``cv2.INTER_AREA`` (anti-aliasing). Layout follows FFHQ's alignment: eyes near
y = 0.47 H, x = 0.37 / 0.63 W, mouth near (0.5, 0.72) (with per-face jitter, small roll and yaw).
Variation per face (identity): face shape, skin tone, eye spacing/size/iris colour, brows, nose,
mouth width/lips/teeth, hair colour/style/length/fringe, ears, background, lighting direction,
skin texture and freckles. Fine, high-frequency content (hair strands, skin grain, eyelashes,
iris texture, background texture) makes restoration non-trivial.

Determinism: face ``i`` uses only ``rng_for(seed, "synthfaces", i)``, so any subset is
reproducible independently of ``n``. ``render_face(i, size, seed) -> (uint8 HWC RGB, info)``
where ``info`` holds ``left_eye``/``right_eye``/``mouth`` centres in output pixels (x, y; viewer's
left eye is ``left_eye``), ``eye_half``/``mouth_half`` (half widths in px) and the drawn
generator params.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from core.seeding import rng_for

GENERATOR_VERSION = "synthfaces-1"
SUPERSAMPLE = 4

SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 135], [198, 145, 105],
                 [160, 110, 75], [118, 80, 55], [88, 58, 40]], np.float32) / 255
SKIN_P = np.array([0.2, 0.2, 0.18, 0.14, 0.12, 0.09, 0.07])
HAIR = np.array([[20, 15, 12], [55, 35, 22], [95, 62, 35], [150, 110, 60], [210, 175, 110],
                 [140, 60, 30], [170, 170, 170], [230, 225, 215]], np.float32) / 255
HAIR_P = np.array([0.24, 0.24, 0.17, 0.1, 0.09, 0.06, 0.06, 0.04])
IRIS = np.array([[70, 45, 25], [110, 75, 40], [60, 110, 160], [80, 130, 90], [120, 110, 70],
                 [40, 30, 25]], np.float32) / 255


def _smooth_mask(d: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased inside mask from a signed 'distance' d (<0 inside), soft over ``px``."""
    return np.clip(0.5 - d / px, 0.0, 1.0).astype(np.float32)


class _Canvas:
    """Float32 RGB canvas with a face-local frame: local (u, v) -> canvas via roll + offset."""

    def __init__(self, n: int, cx: float, cy: float, roll: float):
        self.n = n
        self.img = np.zeros((n, n, 3), np.float32)
        self.cx, self.cy = cx, cy
        self.c, self.s = math.cos(roll), math.sin(roll)
        self.roll_deg = math.degrees(roll)
        ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
        dx, dy = xs - cx, ys - cy
        # inverse rotation: local coordinates of each canvas pixel
        self.U = self.c * dx + self.s * dy
        self.V = -self.s * dx + self.c * dy

    def to_canvas(self, u, v):
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        return self.cx + self.c * u - self.s * v, self.cy + self.s * u + self.c * v

    def ellipse_d(self, u0, v0, a, b, angle=0.0):
        """Approximate signed distance (px) to a local ellipse centred (u0, v0), axes a, b."""
        du, dv = self.U - u0, self.V - v0
        if angle:
            c, s = math.cos(angle), math.sin(angle)
            du, dv = c * du + s * dv, -s * du + c * dv
        r = np.sqrt((du / a) ** 2 + (dv / b) ** 2)
        return (r - 1.0) * min(a, b), du / a, dv / b

    def blend(self, mask, color):
        """img = img·(1-mask) + color·mask, computed only inside the mask's bounding box."""
        m2 = mask if mask.ndim == 2 else mask[..., 0]
        nz = m2 > 0
        rows, cols = np.flatnonzero(nz.any(1)), np.flatnonzero(nz.any(0))
        if rows.size == 0:
            return
        sl = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        m = m2[sl][..., None]
        col = np.asarray(color, np.float32)
        if col.ndim == 3:
            col = col[sl]
        self.img[sl] = self.img[sl] * (1 - m) + col * m

    def pts(self, uv) -> np.ndarray:
        x, y = self.to_canvas(uv[:, 0], uv[:, 1])
        return np.round(np.stack([x, y], 1) * 16).astype(np.int32)  # 4 fractional bits


def _draw_poly(img, pts, color, thickness, closed=False):
    cv2.polylines(img, [pts], closed, tuple(float(c) for c in color), max(1, int(round(thickness))),
                  cv2.LINE_AA, shift=4)


def _fill_poly(img, pts, color):
    cv2.fillPoly(img, [pts], tuple(float(c) for c in color), cv2.LINE_AA, shift=4)


def _lowfreq(rng, n, cells, amp):
    g = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(g, (n, n), interpolation=cv2.INTER_CUBIC) * np.float32(amp)


def sample_params(rng: np.random.Generator) -> dict:
    """Draw one identity + scene (all JSON-serialisable)."""
    skin_i = int(rng.choice(len(SKIN), p=SKIN_P))
    skin = np.clip(SKIN[skin_i] * rng.uniform(0.92, 1.08) + rng.normal(0, 0.02, 3), 0, 1)
    hair_i = int(rng.choice(len(HAIR), p=HAIR_P))
    hair = np.clip(HAIR[hair_i] * rng.uniform(0.85, 1.15) + rng.normal(0, 0.015, 3), 0, 1)
    g1, g2 = rng.uniform(0.15, 0.9, 2)
    bg1 = np.clip(g1 + rng.normal(0, 0.15, 3), 0.05, 0.95)
    bg2 = np.clip(g2 + rng.normal(0, 0.15, 3), 0.05, 0.95)
    light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.15), 1.0])
    return {
        "skin": skin.round(4).tolist(), "skin_index": skin_i,
        "hair": hair.round(4).tolist(), "hair_index": hair_i,
        "iris": np.clip(IRIS[int(rng.integers(len(IRIS)))] + rng.normal(0, 0.03, 3), 0, 1)
        .round(4).tolist(),
        "bg1": bg1.round(4).tolist(), "bg2": bg2.round(4).tolist(),
        "bg_angle": float(rng.uniform(0, 2 * math.pi)),
        "clothes": rng.uniform(0.05, 0.9, 3).round(4).tolist(),
        "light": (light / np.linalg.norm(light)).round(4).tolist(),
        "ambient": float(rng.uniform(0.45, 0.65)),
        "face_w": float(rng.uniform(0.24, 0.285)), "face_h": float(rng.uniform(0.33, 0.38)),
        "chin": float(rng.uniform(0.0, 0.25)),
        "cx": float(rng.uniform(-0.015, 0.015)), "cy": float(rng.uniform(0.535, 0.565)),
        "roll": float(rng.uniform(-0.1, 0.1)), "yaw": float(rng.uniform(-0.6, 0.6)),
        "eye_dx": float(rng.uniform(0.115, 0.135)), "eye_y": float(rng.uniform(-0.085, -0.06)),
        "eye_w": float(rng.uniform(0.045, 0.058)), "eye_open": float(rng.uniform(0.35, 0.55)),
        "brow_h": float(rng.uniform(0.04, 0.06)), "brow_t": float(rng.uniform(0.008, 0.016)),
        "brow_tilt": float(rng.uniform(-0.015, 0.02)),
        "nose_len": float(rng.uniform(0.1, 0.14)), "nose_w": float(rng.uniform(0.025, 0.04)),
        "mouth_y": float(rng.uniform(0.16, 0.19)), "mouth_w": float(rng.uniform(0.065, 0.09)),
        "lip_t": float(rng.uniform(0.012, 0.022)), "smile": float(rng.uniform(-0.005, 0.02)),
        "teeth": bool(rng.random() < 0.4),
        "hair_len": float(rng.uniform(0.0, 1.0)), "hairline": float(rng.uniform(0.2, 0.42)),
        "fringe": float(rng.uniform(-0.4, 0.4)), "hair_vol": float(rng.uniform(1.03, 1.15)),
        "bald": bool(rng.random() < 0.05),
        "ears": bool(rng.random() < 0.7),
        "freckles": bool(rng.random() < 0.25) and skin_i <= 2,
        "skin_grain": float(rng.uniform(0.01, 0.03)),
        "blush": float(rng.uniform(0.0, 0.05)),
    }


def render_face(index: int, size: int, seed: int) -> tuple[np.ndarray, dict]:
    """Face ``index`` of the set ``seed`` at ``size`` px: (uint8 (size, size, 3) RGB, info)."""
    rng = rng_for(seed, "synthfaces", int(index))
    p = sample_params(rng)
    S = SUPERSAMPLE
    n = size * S
    cx, cy = (0.5 + p["cx"]) * n, p["cy"] * n
    cv_ = _Canvas(n, cx, cy, p["roll"])
    A, B = p["face_w"] * n, p["face_h"] * n
    aa = 1.5  # anti-alias width at the supersampled scale
    skin = np.asarray(p["skin"], np.float32)
    hair = np.asarray(p["hair"], np.float32)
    L = np.asarray(p["light"], np.float32)
    yaw = p["yaw"]
    fx = yaw * 0.18 * A  # feature shift with yaw (features move toward the turned side)

    # background: gradient + low-frequency blotches + fine grain
    ys, xs = np.mgrid[0:n, 0:n].astype(np.float32) / n
    t = (np.cos(p["bg_angle"]) * (xs - 0.5) + np.sin(p["bg_angle"]) * (ys - 0.5)) + 0.5
    t = np.clip(t + _lowfreq(rng, n, 5, 0.12), 0, 1)[..., None]
    cv_.img = np.asarray(p["bg1"], np.float32) * (1 - t) + np.asarray(p["bg2"], np.float32) * t
    cv_.img += rng.normal(0, 0.015, (n, n, 1)).astype(np.float32)

    def shade(du, dv, k=1.0):
        z = np.sqrt(np.clip(1 - du ** 2 - dv ** 2, 0, 1))
        lam = np.clip(L[0] * du + L[1] * dv + L[2] * z, 0, 1)
        return (p["ambient"] + (1 - p["ambient"]) * lam * k)[..., None].astype(np.float32)

    # clothes / shoulders and neck
    d, du, dv = cv_.ellipse_d(0, 1.55 * B, 1.9 * A, 0.75 * B)
    cv_.blend(_smooth_mask(d, aa), np.asarray(p["clothes"], np.float32) * shade(du * 0.6, dv * 0.3))
    d, du, dv = cv_.ellipse_d(0, 0.85 * B, 0.55 * A, 0.7 * B)
    cv_.blend(_smooth_mask(d, aa), skin * 0.78 * shade(du, dv * 0.2))

    # long hair behind the head
    hair_len = p["hair_len"] if not p["bald"] else 0.0
    hb_mask = None
    if hair_len > 0.35:
        d, _, _ = cv_.ellipse_d(0, -0.05 * B + hair_len * 0.45 * B, A * (p["hair_vol"] + 0.18),
                                B * (1.0 + hair_len * 0.45))
        hb_mask = _smooth_mask(d, aa)
        cv_.blend(hb_mask, hair * 0.75)

    # ears
    if p["ears"]:
        for side in (-1, 1):
            d, du, dv = cv_.ellipse_d(side * (A * 0.97) + fx * 0.3, p["eye_y"] * n + 0.04 * B,
                                      0.16 * A, 0.32 * B)
            cv_.blend(_smooth_mask(d, aa), skin * 0.92 * shade(du * 0.7, dv * 0.7))

    # face: ellipse with a narrower chin, Lambert-shaded
    du0, dv0 = cv_.U / A, cv_.V / B
    narrow = 1.0 - p["chin"] * np.clip(dv0, 0, None) ** 2
    r = np.sqrt((du0 / narrow) ** 2 + dv0 ** 2)
    face_mask = _smooth_mask((r - 1) * A, aa)
    grain = rng.normal(0, p["skin_grain"], (n, n, 1)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.8)[..., None] + _lowfreq(rng, n, 9, 0.02)[..., None]
    face_col = skin * shade(np.clip(du0 / narrow, -1, 1), dv0 * 0.85) + grain
    if p["blush"] > 0:
        for side in (-1, 1):
            dd, _, _ = cv_.ellipse_d(side * 0.55 * A + fx, 0.12 * n * 0.4, 0.22 * A, 0.12 * B)
            face_col = face_col + _smooth_mask(dd, 0.15 * A)[..., None] * \
                np.array([p["blush"], -p["blush"] * 0.5, -p["blush"] * 0.4], np.float32)
    cv_.blend(face_mask, face_col)

    # nose: soft side shadow, nostrils, tip highlight
    ey = p["eye_y"] * n
    nl, nw = p["nose_len"] * n, p["nose_w"] * n
    side = -1.0 if L[0] > 0 else 1.0
    d, _, _ = cv_.ellipse_d(fx * 1.3 + side * nw * 0.6, ey + nl * 0.55, nw * 0.35, nl * 0.5)
    cv_.blend(_smooth_mask(d, nw * 0.6) * 0.35, skin * 0.55)
    for s_ in (-1, 1):
        d, _, _ = cv_.ellipse_d(fx * 1.3 + s_ * nw * 0.45, ey + nl * 1.02, nw * 0.28, nw * 0.16)
        cv_.blend(_smooth_mask(d, aa) * 0.8, skin * 0.35)
    d, _, _ = cv_.ellipse_d(fx * 1.3 + nw * 0.2 * (-side), ey + nl * 0.88, nw * 0.3, nw * 0.22)
    cv_.blend(_smooth_mask(d, nw * 0.3) * 0.4, np.minimum(skin * 1.25, 1))

    # mouth: lips, optional teeth, dark line
    my, mw, lt = p["mouth_y"] * n, p["mouth_w"] * n, p["lip_t"] * n
    lip = np.clip(skin * np.array([0.95, 0.6, 0.6]) + np.array([0.12, 0.0, 0.02]), 0, 1)
    uu = np.linspace(-1, 1, 25)
    curve = p["smile"] * n * (uu ** 2)
    upper = np.stack([fx + uu * mw, my - curve - lt * (1 - uu ** 2) * (0.8 + 0.4 * np.abs(np.sin(
        uu * math.pi)))], 1)
    lower = np.stack([fx + uu[::-1] * mw, my - curve[::-1] + lt * 1.3 * (1 - uu[::-1] ** 2)], 1)
    _fill_poly(cv_.img, cv_.pts(np.concatenate([upper, lower])), lip * 0.9)
    line = np.stack([fx + uu * mw * 0.98, my - curve], 1)
    if p["teeth"]:
        gap = np.concatenate([np.stack([fx + uu * mw * 0.8, my - curve * 0.9 - lt * 0.25], 1),
                              np.stack([fx + uu[::-1] * mw * 0.8,
                                        my - curve[::-1] * 0.9 + lt * 0.45 * (1 - uu[::-1] ** 2)],
                                       1)])
        _fill_poly(cv_.img, cv_.pts(gap), (0.93, 0.9, 0.85))
        for k in np.linspace(-0.6, 0.6, 6):
            _draw_poly(cv_.img, cv_.pts(np.array([[fx + k * mw, my - lt * 0.25],
                                                  [fx + k * mw, my + lt * 0.3]])),
                       (0.7, 0.68, 0.64), 1)
    _draw_poly(cv_.img, cv_.pts(line), lip * 0.35, max(1.0, S * 0.5))
    hl = np.stack([fx + uu[5:20] * mw * 0.5, my - curve[5:20] + lt * 0.7], 1)
    _draw_poly(cv_.img, cv_.pts(hl), np.minimum(lip * 1.3, 1), 1)

    # eyes: sclera, iris (textured), pupil, highlight, lids, lashes
    ew = p["eye_w"] * n
    eh = ew * p["eye_open"]
    iris = np.asarray(p["iris"], np.float32)
    eyes = []
    for s_ in (-1, 1):
        ex = s_ * p["eye_dx"] * n + fx
        scale = 1.0 + 0.12 * yaw * s_
        a_, b_ = ew * scale, eh * scale
        d, du, dv = cv_.ellipse_d(ex, ey, a_, b_)
        sclera = _smooth_mask(d, aa)
        cv_.blend(sclera, np.array([0.92, 0.9, 0.88], np.float32) * (0.85 + 0.15 * (1 - dv[..., None]
                                                                             ** 2)))
        ix = ex + yaw * 0.25 * a_
        di, dui, dvi = cv_.ellipse_d(ix, ey, b_ * 0.95, b_ * 0.95)
        ang = np.arctan2(dvi, dui)
        tex = (0.85 + 0.25 * np.cos(ang * 23 + rng.uniform(0, 6)) * np.sqrt(np.clip(
            dui ** 2 + dvi ** 2, 0, 1)))[..., None]
        cv_.blend(_smooth_mask(di, aa) * sclera, iris * tex * (1.1 - 0.4 * np.clip(
            np.sqrt(dui ** 2 + dvi ** 2), 0, 1))[..., None])
        dp, _, _ = cv_.ellipse_d(ix, ey, b_ * 0.42, b_ * 0.42)
        cv_.blend(_smooth_mask(dp, aa) * sclera, (0.03, 0.03, 0.03))
        dh, _, _ = cv_.ellipse_d(ix - b_ * 0.3 * L[0] - b_ * 0.2, ey - b_ * 0.35, b_ * 0.16,
                                 b_ * 0.16)
        cv_.blend(_smooth_mask(dh, aa), (1.0, 1.0, 1.0))
        uu2 = np.linspace(-1, 1, 19)
        lid = np.stack([ex + uu2 * a_ * 1.05, ey - b_ * np.sqrt(1 - uu2 ** 2) * 1.02], 1)
        _draw_poly(cv_.img, cv_.pts(lid), skin * 0.2, max(1.0, S * 0.55))
        crease = np.stack([ex + uu2 * a_ * 0.95, ey - b_ * 1.6 - b_ * 0.3 * np.sqrt(1 - uu2 ** 2)],
                          1)
        _draw_poly(cv_.img, cv_.pts(crease), skin * 0.7, 1)
        low = np.stack([ex + uu2 * a_, ey + b_ * np.sqrt(1 - uu2 ** 2)], 1)
        _draw_poly(cv_.img, cv_.pts(low), skin * 0.6, 1)
        for k in np.linspace(-0.9, 0.9, 9):
            x0, y0 = ex + k * a_, ey - b_ * math.sqrt(1 - k * k)
            _draw_poly(cv_.img, cv_.pts(np.array([[x0, y0], [x0 + s_ * k * a_ * 0.12 + k * 2,
                                                              y0 - b_ * 0.35]])), (0.05,) * 3, 1)
        # brow
        bx = np.linspace(-1.1, 1.2, 15)
        by = ey - p["brow_h"] * n - 0.35 * eh * (1 - (bx - 0.1) ** 2) + p["brow_tilt"] * n * bx
        brow = np.stack([ex + s_ * bx * a_, by], 1)
        bt = p["brow_t"] * n
        brow_col = np.minimum(hair, skin * 0.5) if not p["bald"] else skin * 0.45
        _draw_poly(cv_.img, cv_.pts(brow), brow_col, bt)
        for k in range(14):
            j = int(rng.integers(0, 14))
            x0, y0 = brow[j]
            _draw_poly(cv_.img, cv_.pts(np.array([[x0, y0 + bt * 0.4],
                                                  [x0 + s_ * bt * 1.2, y0 - bt * 0.5]])),
                       brow_col * 0.7, 1)
        eyes.append((ex, ey, a_))

    if p["freckles"]:
        k = 60
        fu = rng.uniform(-0.7, 0.7, k) * A + fx
        fv = ey + rng.uniform(0.05, 0.35, k) * B
        for u_, v_ in zip(fu, fv):
            x_, y_ = cv_.to_canvas(u_, v_)
            cv2.circle(cv_.img, (int(x_ * 16), int(y_ * 16)), int(rng.uniform(0.6, 1.3) * S / 2 * 16),
                       tuple(float(c) for c in skin * 0.7), -1, cv2.LINE_AA, shift=4)

    # hair on top: cap above a hairline, then strands (the high-frequency texture)
    if not p["bald"]:
        hv = p["hair_vol"]
        d_out, du, dv = cv_.ellipse_d(0, -0.06 * B, A * hv, B * (hv - 0.02))
        hairline = -B * (1 - p["hairline"]) + B * 0.25 * (cv_.U / A) ** 2 + \
            p["fringe"] * 0.25 * B * (cv_.U / A)
        cap = np.minimum(_smooth_mask(d_out, aa), _smooth_mask(cv_.V - hairline, aa * 2))
        sides = np.minimum(_smooth_mask(d_out, aa), _smooth_mask(np.abs(cv_.U) * -1 + A * 0.93,
                                                                  aa * 2))
        sides = sides * _smooth_mask(cv_.V - (ey + 0.1 * B + hair_len * 0.9 * B), aa * 2)
        m = np.maximum(cap, sides)
        layer = hair * shade(np.clip(du, -1, 1), np.clip(dv, -1, 1), 1.2) + \
            _lowfreq(rng, n, 12, 0.03)[..., None]
        k = 220 + int(hair_len * 120)
        root_u = rng.uniform(-1.1, 1.1, k) * A
        root_v = -B * rng.uniform(0.6, 1.1, k)
        lengths = rng.uniform(0.3, 0.9, k) * B * (0.6 + hair_len)
        bend = rng.normal(0, 0.4, k)
        shade_k = rng.integers(0, 6, k)  # strands grouped in 6 tones: one polylines call each
        tones = np.clip(hair[None] * np.linspace(0.55, 1.5, 6)[:, None], 0, 1)
        tt = np.linspace(0, 1, 7)[None, :]
        dirx = (np.sign(root_u + 1e-6) * (0.3 + 0.5 * np.abs(root_u) / A) + p["fringe"] * 0.3)
        su = root_u[:, None] + lengths[:, None] * (dirx[:, None] * tt + bend[:, None] * tt ** 2) * 0.6
        sv = root_v[:, None] + lengths[:, None] * (tt * 0.8 + 0.2 * tt ** 2)
        strands = cv_.pts(np.stack([su.ravel(), sv.ravel()], 1)).reshape(k, 7, 2)
        for g in range(6):
            cv2.polylines(layer, list(strands[shade_k == g]), False,
                          tuple(float(c) for c in tones[g]), 1, cv2.LINE_AA, shift=4)
        cv_.blend(m, layer)
        if hb_mask is not None:  # strands over the long hair behind too
            layer2 = cv_.img.copy()
            k2 = k // 2
            u0 = rng.uniform(-1.3, 1.3, k2) * A * hv
            du_ = rng.normal(0, 0.05, k2) * B
            su = u0[:, None] + du_[:, None] * tt
            sv = -0.2 * B + tt * B * (0.8 + hair_len) + 0 * su
            strands = cv_.pts(np.stack([su.ravel(), sv.ravel()], 1)).reshape(k2, 7, 2)
            g2 = rng.integers(0, 6, k2)
            for g in range(6):
                cv2.polylines(layer2, list(strands[g2 == g]), False,
                              tuple(float(c) for c in tones[g] * 0.8), 1, cv2.LINE_AA, shift=4)
            behind = hb_mask * (1 - face_mask) * (1 - m)
            cv_.blend(behind * 0.7, layer2)

    img = np.clip(cv_.img, 0, 1)
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    out = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)

    def px(u, v):
        x, y = cv_.to_canvas(u, v)
        return [round(float(x) / S, 3), round(float(y) / S, 3)]

    (lx, ly, la), (rx, ry, ra) = eyes
    info = {"left_eye": px(lx, ly), "right_eye": px(rx, ry), "mouth": px(fx, my),
            "eye_half": round(float(max(la, ra)) / S, 3), "mouth_half": round(float(mw) / S, 3),
            "size": size, "seed": seed, "index": int(index), **p}
    return out, info


def face_id(index: int) -> str:
    """5-digit id of face ``index``."""
    return f"{int(index):05d}"
