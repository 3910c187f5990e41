"""Images per second of each degradation preset at 512 px: ``degradations.presets`` vs a
straightforward OpenCV/PIL implementation of the same chain with the same drawn parameters
(written below, one function per preset, the way one would write it in a training script).

``python -m bench.degrade [--size 512] [--n 20] [--threads 1]``

Columns: ours (img/s), naive (img/s), speed ratio ours/naive, and the agreement between the two
outputs (PSNR in dB over 8-bit images; they differ only by float vs uint8 intermediates, the JPEG
codec (cv2 vs PIL) and kernel truncation, so expect 35-60 dB, not infinity).
HQ input: built-in synthetic faces rendered at 256 px and resized to the bench size (bicubic).
"""
from __future__ import annotations

import argparse
import io
import math
import time

import cv2
import numpy as np
from PIL import Image, ImageFilter

from degradations.presets import get_preset
from pipeline.synthfaces import render_face


# ------------------------------------------------------------------ naive chains (uint8/PIL)

def _u8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _pil_jpeg(u8, q):
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(q), subsampling=2)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _noise(u8, sigma, seed):
    rng = np.random.default_rng(int(seed))
    return _u8(u8.astype(np.float64) + rng.standard_normal(u8.shape) * sigma)


def _blur(u8, p):
    if p.get("blur") == "none":
        return u8
    if p.get("blur") == "motion":
        L = p["motion_length"]
        k = np.zeros((int(L) + 3, int(L) + 3), np.float32)
        c = k.shape[0] // 2
        dx, dy = math.cos(math.radians(p["motion_angle"])), -math.sin(math.radians(p["motion_angle"]))
        cv2.line(k, (int(round(c - dx * L / 2)), int(round(c - dy * L / 2))),
                 (int(round(c + dx * L / 2)), int(round(c + dy * L / 2))), 1.0, 1)
        return cv2.filter2D(u8, -1, k / k.sum())
    if p["sigma_x"] == p["sigma_y"]:
        ks = p["kernel_size"]
        return cv2.GaussianBlur(u8, (ks, ks), p["sigma_x"])
    ks = p["kernel_size"]
    ax = np.arange(ks) - ks // 2
    k = np.zeros((ks, ks))
    c, s = math.cos(p["theta"]), math.sin(p["theta"])
    for i, y in enumerate(ax):  # written as a loop, the way a quick script would
        for j, x in enumerate(ax):
            u, v = c * x + s * y, -s * x + c * y
            k[i, j] = math.exp(-0.5 * (u * u / p["sigma_x"] ** 2 + v * v / p["sigma_y"] ** 2))
    return cv2.filter2D(u8, -1, k / k.sum())


_CV = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def naive_mfr(u8, p):
    n = u8.shape[0] // 2
    x = np.asarray(Image.fromarray(u8).resize((n, n), Image.BOX))
    x = _blur(x, p)
    x = cv2.resize(x, (p["side"], p["side"]), interpolation=_CV[p["down_mode"]])
    x = cv2.resize(x, (n, n), interpolation=_CV[p["up_mode"]])
    x = _noise(x, p["noise_sigma"], p["noise_seed"])
    return _pil_jpeg(x, p["jpeg_quality"])


def naive_gpen(u8, p):
    n = u8.shape[0]
    x = _blur(u8, p)
    x = cv2.resize(cv2.resize(x, (p["side"], p["side"])), (n, n))
    return _pil_jpeg(_noise(x, p["noise_sigma"], p["noise_seed"]), p["jpeg_quality"])


def naive_gfpgan(u8, p):
    n = u8.shape[0]
    x = _blur(u8, p)
    s = max(1, int(n // p["factor"]))
    x = cv2.resize(x, (s, s))
    x = _pil_jpeg(_noise(x, p["noise_sigma"], p["noise_seed"]), p["jpeg_quality"])
    x = cv2.resize(x, (n, n)).astype(np.float64)
    if p["color_shift"]:
        x = x + np.array(p["color_shift"]) * 255
    if p["gray"]:
        x = np.repeat(cv2.cvtColor(_u8(x), cv2.COLOR_RGB2GRAY)[..., None], 3, 2).astype(np.float64)
    j = p["color_jitter"]
    if j:
        im = Image.fromarray(_u8(x))
        from PIL import ImageEnhance
        ops = [lambda a: ImageEnhance.Brightness(a).enhance(j["brightness"]),
               lambda a: ImageEnhance.Contrast(a).enhance(j["contrast"]),
               lambda a: ImageEnhance.Color(a).enhance(j["saturation"]),
               lambda a: _pil_hue(a, j["hue"])]
        for i in j["order"]:
            im = ops[i](im)
        x = np.asarray(im)
    return _u8(x)


def _pil_hue(im, h):
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(h * 255)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def naive_sr16(u8, p):
    return np.asarray(Image.fromarray(u8).resize((p["side"], p["side"]), Image.BILINEAR))


def naive_psp(u8, p):
    f, n = p["factor"], u8.shape[0]
    a, size = -0.5, 4 * f
    xs = np.abs((np.arange(size) - size // 2 + 0.5) / f)
    k = np.where(xs <= 1, (a + 2) * xs ** 3 - (a + 3) * xs ** 2 + 1,
                 np.where(xs < 2, a * xs ** 3 - 5 * a * xs ** 2 + 8 * a * xs - 4 * a, 0))
    k = (k / k.sum()).astype(np.float32)
    pad = 3 * f
    x = cv2.copyMakeBorder(u8.astype(np.float32) / 255, pad // 2, pad - pad // 2, pad // 2,
                           pad - pad // 2, cv2.BORDER_REFLECT_101)
    # full separable correlation, then keep every f-th sample (anchor at tap 0)
    x = cv2.sepFilter2D(x, -1, k, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    x = np.clip(x[: n:f, : n:f], 0, 1)
    return np.asarray(Image.fromarray(_u8(x * 255)).resize((n, n), Image.BILINEAR))


NAIVE = {"panini_mfr": naive_mfr, "panini_mfr_literal": naive_mfr, "panini_ladder": naive_mfr,
         "gpen": naive_gpen, "gfpgan": naive_gfpgan, "sr16_bilinear": naive_sr16,
         "sr_bicubic": naive_psp}


def _psnr(a, b):
    if a.shape != b.shape:
        return float("nan")
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--n", type=int, default=20, help="images per preset")
    ap.add_argument("--threads", type=int, default=1, help="cv2 threads (default 1)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(args.threads)
    hq_u8 = [cv2.resize(render_face(i, 256, 0)[0], (args.size, args.size),
                        interpolation=cv2.INTER_CUBIC) for i in range(4)]
    hq_f = [u.astype(np.float32) / 255 for u in hq_u8]
    rows = []
    for name, naive in NAIVE.items():
        preset = get_preset(name)
        rng = np.random.default_rng(0)
        params = [preset.sample(rng, args.size) for _ in range(args.n)]
        t = time.perf_counter()
        ours = [preset.apply(hq_f[i % 4], p) for i, p in enumerate(params)]
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        ref = [naive(hq_u8[i % 4], p) for i, p in enumerate(params)]
        t_naive = time.perf_counter() - t
        agree = np.median([_psnr(_u8(o * 255), r) for o, r in zip(ours, ref)])
        rows.append((name, args.n / t_ours, args.n / t_naive, t_naive / t_ours, agree))
    print(f"\nDegradation presets at {args.size} px, {args.n} images each, cv2 threads "
          f"{args.threads}")
    print(f"{'preset':<20} {'ours img/s':>11} {'naive img/s':>12} {'ratio':>7} {'agree dB':>9}")
    for name, a, b, r, ag in rows:
        print(f"{name:<20} {a:>11.1f} {b:>12.1f} {r:>7.2f} {ag:>9.1f}")


if __name__ == "__main__":
    main()
