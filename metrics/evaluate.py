"""Score a folder of restored images against GT under a named protocol, in one batched pass.

``Evaluator`` holds the networks (built once, reused across many (method, set) cells) and an
in-memory cache of GT-side network outputs (keyed by the GT file's sha256); GT Inception features
are also cached on disk under ``<cache_dir>/fid/<key>.npz``, the key hashing everything that
affects them (GT file hashes and ids, the protocol's size/resize/dims, the Inception provenance);
GT dlib descriptors/landmarks under ``<cache_dir>/dlib/<kind>/<key>.npy`` per GT image (key: the
GT file's sha256, the evaluated shape, the models' provenance), so the pipeline's cells, each its
own process, compute a GT face once.

``evaluate_folders(restored, gt, protocol, metrics=None, out=None, ...)`` writes
``per_image.csv`` (``id`` + one column per per-image metric) and ``summary.json`` (see
docs/architecture.md) atomically and returns the summary dict.

Without GT (``gt=None``) only no-reference metrics (``MetricSpec.needs_gt`` false: NIQE) are
allowed; each restored file is scored on its own (id = file stem); asking for any other metric
is an error naming them.

Pairing: restored file ``<id><suffix>.<ext>`` matches GT ``<id>.<ext'>`` when the stems are
equal, or after stripping one ``_<digits>`` suffix (GFPGAN/RestoreFormer ``restored_faces/*_00``).
Missing or extra files, two restored files for one GT, or size mismatches are errors. Every
image's header is checked (readable, within ``core.imageio.MAX_PIXELS``, GT at least
``MIN_SIDE`` px) before any pixel is decoded, and ``out`` is checked against the output-folder
rules (``core.outputs``: never an input, never a folder frbench did not make) before any work.
Non-finite values (the PSNR of an image identical to its GT is +inf) are written to
``summary.json`` as null plus ``<key>_nonfinite: "inf"`` (``core.manifest.encode_nonfinite``);
``per_image.csv`` spells them ``inf``; ``read_summary`` reads them back as floats.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import platform
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from metrics import METRICS
from metrics import functional as MF
from metrics.protocols import Protocol, get_protocol
from core.errors import FRBenchError
from core.imageio import MIN_SIDE, image_size, images_by_id, list_images, read_image
from core.manifest import decode_nonfinite, dumps_json
from core.outputs import atomic_dir, check_output_dir

log = logging.getLogger(__name__)
CACHE_FORMAT = 1
PROGRESS_DELAY_S = 2.0   # evaluate's progress bar appears once scoring has run this long
_SUFFIX = re.compile(r"^(.*)_\d+$")


# ------------------------------------------------------------------------------------------
# Pairing and decoding

def pair_files(restored: str | os.PathLike, gt: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """[(id, restored_path, gt_path)] sorted by id; FRBenchError on missing/extra/ambiguous."""
    rfiles, gfiles = list_images(restored), list_images(gt)
    gmap: dict[str, Path] = {}
    for p in gfiles:
        if p.stem in gmap:
            raise FRBenchError(f"{gt}: two GT files with id '{p.stem}' ({gmap[p.stem].name}, {p.name})")
        gmap[p.stem] = p
    rmap: dict[str, Path] = {}
    extra = []
    for p in rfiles:
        key = p.stem if p.stem in gmap else None
        if key is None:
            m = _SUFFIX.match(p.stem)
            if m and m.group(1) in gmap:
                key = m.group(1)
        if key is None:
            extra.append(p.name)
            continue
        if key in rmap:
            raise FRBenchError(f"{restored}: two restored files for GT id '{key}' "
                               f"({rmap[key].name}, {p.name}); keep one face per image")
        rmap[key] = p
    missing = sorted(set(gmap) - set(rmap))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} GT image(s) have no restored file, e.g. "
                         f"{', '.join(gmap[k].name for k in missing[:5])}")
        if extra:
            parts.append(f"{len(extra)} restored file(s) match no GT image, e.g. "
                         f"{', '.join(sorted(extra)[:5])}")
        raise FRBenchError(f"cannot pair {restored} with {gt}: " + "; ".join(parts)
                           + ". Names must match (a trailing _NN suffix is allowed).")
    return [(k, rmap[k], gmap[k]) for k in sorted(gmap)]


def check_no_reference(metrics: list[str], restored) -> None:
    """FRBenchError unless every metric in ``metrics`` scores images without ground truth."""
    need = [m for m in metrics if METRICS[m].needs_gt]
    if need:
        free = [m for m, s in METRICS.items() if not s.needs_gt]
        raise FRBenchError(f"{restored}: no ground truth given, but {', '.join(need)} need(s) it; "
                           f"pass --gt DIR, or ask only for no-reference metrics "
                           f"(--metrics {','.join(free)})")


def check_headers(pairs: list[tuple[str, Path, Path]]) -> None:
    """Every restored and GT image of ``pairs`` readable from its header, within the pixel
    limit, and GT images at least ``MIN_SIDE`` px (no pixel decoded)."""
    for _, rp, gp in pairs:
        image_size(rp)
        w, h = image_size(gp)
        if min(w, h) < MIN_SIDE:
            raise FRBenchError(f"{gp}: GT image is {w}x{h} px, below the minimum face side of "
                               f"{MIN_SIDE} px")


def check_metric_sizes(pairs: list[tuple[str, Path, Path]], proto: Protocol, metrics) -> None:
    """FRBenchError naming the first GT image too small for a requested metric at the protocol's
    evaluation size and crop (SSIM needs an 11x11 window; MS-SSIM more than 10 px), checked
    from the headers before any work (the formulas in ``metrics.functional`` would raise a bare
    ValueError mid-run)."""
    need = {"ssim": MF.SSIM_WIN, "ssim_y": MF.SSIM_WIN, "ms_ssim": MF.SSIM_WIN}
    wanted = [m for m in metrics if m in need]
    if not wanted:
        return
    for _, _, gp in pairs:
        w, h = (proto.size, proto.size) if proto.size else image_size(gp)
        side = min(w, h) - 2 * proto.crop_border
        for m in wanted:
            if side < need[m]:
                raise FRBenchError(
                    f"{gp}: {m} needs at least {need[m]}x{need[m]} px after protocol "
                    f"'{proto.name}' (evaluation size {w}x{h}, crop_border {proto.crop_border}) "
                    f"but gets {max(side, 0)} px; drop it with --metrics or use larger images")


def read_summary(path: str | os.PathLike) -> dict:
    """``summary.json`` with its non-finite values restored (null + ``*_nonfinite`` -> float)."""
    return decode_nonfinite(json.loads(Path(path).read_text(encoding="utf-8")))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prepare_image(img: np.ndarray, path: Path, proto: Protocol) -> np.ndarray:
    """Apply the protocol's evaluation size (uint8 HWC RGB in and out)."""
    if proto.size is None or img.shape[:2] == (proto.size, proto.size):
        return img
    if proto.resize == "none":
        raise FRBenchError(f"{path}: image is {img.shape[1]}x{img.shape[0]} but protocol "
                           f"'{proto.name}' evaluates at {proto.size}x{proto.size} without "
                           "resizing; resize your outputs or use a protocol for this size")
    from PIL import Image
    return np.asarray(Image.fromarray(img).resize((proto.size, proto.size), Image.BICUBIC))


@contextmanager
def ieee_fp32(device):
    """On CUDA, full-precision float32 convolutions and matmuls inside the block (PyTorch lets
    cuDNN use TF32 for float32 convolutions by default on Ampere and later, which moves LPIPS /
    Inception outputs by ~1e-3 and breaks agreement with the CPU); restored afterwards."""
    import torch
    if getattr(device, "type", str(device)) != "cuda":
        yield
        return
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cudnn.conv,
                                                         "fp32_precision"):
        knobs = [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                 (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:  # older torch
        knobs = [(torch.backends.cudnn, "allow_tf32", False),
                 (torch.backends.cuda.matmul, "allow_tf32", False)]
    old = [getattr(obj, name) for obj, name, _ in knobs]
    try:
        for obj, name, value in knobs:
            setattr(obj, name, value)
        yield
    finally:
        for (obj, name, _), value in zip(knobs, old):
            setattr(obj, name, value)


def check_finite(x, what: str):
    """Raise FRBenchError if a float array/tensor has NaN or inf (e.g. a broken backbone)."""
    import torch
    ok = bool(torch.isfinite(x).all()) if isinstance(x, torch.Tensor) else bool(np.isfinite(x).all())
    if not ok:
        raise FRBenchError(f"{what}: non-finite values (NaN/inf); check inputs and weights")


# ------------------------------------------------------------------------------------------

@dataclass
class _Ref:
    """FID reference: statistics (+ GT features when the reference is the GT set)."""
    mu: np.ndarray
    sqrt_factor: tuple[np.ndarray, np.ndarray]  # sqrt(cov) = V diag(d) V^T
    source: str


def _versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "numpy", "scipy", "lpips", "pytorch-fid", "facenet-pytorch",
                "opencv-python-headless", "pillow", "dlib-bin", "face-recognition-models"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


class Evaluator:
    """Networks + settings of one protocol; ``evaluate(restored, gt, out)`` per (method, set).

    ``weights``: a ``metrics.config.WeightsConfig`` (or anything with its attributes).
    ``device``: "cpu" or "cuda[:i]". Networks run in float32 (channels_last; outputs equal the
    reference packages' to ~1e-6 relative; on CUDA without TF32, ``ieee_fp32``); PSNR/SSIM/MS-SSIM
    in float64."""

    def __init__(self, protocol: str | Protocol, metrics=None, *, weights=None, device: str = "cpu",
                 batch_size: int = 8, cache_dir: str | os.PathLike = "cache",
                 search_dirs=(), bootstrap_samples: Optional[int] = None,
                 gt_memory_mb: float = 1024.0):
        import torch

        self.protocol = get_protocol(protocol) if isinstance(protocol, str) else protocol
        self.metrics = self.protocol.select(metrics)
        if weights is None:
            from metrics.config import WeightsConfig
            weights = WeightsConfig(allow_random_init=False, allow_download=False,
                                    random_init_seed=0)
        self.weights = weights
        self.search_dirs = tuple(search_dirs)
        from core.environment import check_device
        check_device(device, "device")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise FRBenchError(f"device '{device}' requested but CUDA is not available")
        self.device = torch.device(device)
        if batch_size < 1:
            raise FRBenchError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir)
        self.bootstrap_samples = (self.protocol.bootstrap_samples if bootstrap_samples is None
                                  else int(bootstrap_samples))
        if self.bootstrap_samples < 0:
            raise FRBenchError(f"bootstrap_samples must be >= 0 (0 = no confidence intervals), "
                               f"got {self.bootstrap_samples}")
        self.provenance: dict[str, str] = {}
        self._gt_mem: dict[tuple, object] = {}
        self._gt_mem_bytes = 0
        self._gt_mem_cap = gt_memory_mb * 2 ** 20
        self._refs: dict[str, _Ref] = {}
        self.last_fid_cache: Optional[str] = None   # "hit" | "miss" | None (for tests/logs)
        self._build()

    # -- networks --------------------------------------------------------------------------
    def _build(self):
        import torch

        from metrics import backbones as B
        m, sd = set(self.metrics), self.search_dirs
        self.lpips = self.inception = self.facenet = self.arcface = None
        self.dlib = self.niqe_params = None
        if m & {"deg_dlib", "lmd_dlib68"}:
            from metrics.dlib_face import DlibFace
            self.dlib = DlibFace(self.weights, sd, descriptor="deg_dlib" in m,
                                 landmarks="lmd_dlib68" in m)
            self.provenance.update(self.dlib.provenance)
        if "niqe" in m:
            from metrics.niqe import load_params
            res = B.resolve_for("niqe_pris_params", self.weights, sd)
            self.niqe_params = load_params(res.path)
            self.provenance["niqe_pris_params"] = res.provenance
        if "lpips" in m:
            self.lpips, p = B.build_lpips(self.protocol.lpips_net, self.weights, sd)
            self.provenance.update(p)
        if m & {"fid", "kid"}:
            self.inception, p = B.build_inception(self.weights, sd, self.protocol.fid_dims)
            self.provenance.update(p)
            if "fid" in m and self.protocol.fid_ref != "gt":
                mu, sigma, prov = B.load_fid_stats(self.protocol.fid_ref, self.weights, sd)
                self._refs[self.protocol.fid_ref] = _Ref(mu, MF.sqrt_factor_from_cov(sigma),
                                                         f"stats:{prov}")
                self.provenance[f"fid_ref:{self.protocol.fid_ref}"] = prov
        if "deg_facenet" in m:
            self.facenet, p = B.build_facenet(self.weights, sd)
            self.provenance.update(p)
        if "deg_arcface18" in m:
            self.arcface, p = B.build_arcface18(self.weights, sd)
            self.provenance.update(p)
        for net in (self.lpips, self.inception, self.facenet, self.arcface):
            if net is not None:  # channels_last: ~1.5-2x faster convs on CPU (oneDNN) and GPU
                net.to(self.device, memory_format=torch.channels_last).eval()

    @property
    def random_init(self) -> bool:
        return any(v.startswith("random-init") for v in self.provenance.values())

    def clear_memory(self) -> None:
        """Forget the in-memory GT network outputs (the disk FID cache stays). Network outputs
        differ in the last bits with the batch they are computed in, and a cache hit changes
        the batch; calling this before each (method, set) makes its numbers the same as in a
        process of its own, whatever was scored before."""
        self._gt_mem.clear()
        self._gt_mem_bytes = 0

    def _mem_get(self, key):
        return self._gt_mem.get(key)

    def _mem_fits(self, nbytes: int) -> bool:
        return self._gt_mem_bytes + nbytes <= self._gt_mem_cap

    def _mem_put(self, key, value, nbytes: int):
        if self._gt_mem_bytes + nbytes <= self._gt_mem_cap:
            self._gt_mem[key] = value
            self._gt_mem_bytes += nbytes

    # -- GT FID cache ----------------------------------------------------------------------
    def _fid_key(self, ids, gt_hashes) -> str:
        from metrics.backbones import stable_hash
        p = self.protocol
        return stable_hash({"format": CACHE_FORMAT, "gt": list(zip(ids, gt_hashes)),
                            "size": p.size, "resize": p.resize, "dims": p.fid_dims,
                            "input": "rgb[0,1]->bilinear299(pytorch-fid)",
                            "inception": self.provenance.get("inception_fid")})[:32]

    def _fid_cache_path(self, key: str) -> Path:
        return self.cache_dir / "fid" / f"{key}.npz"

    def _load_fid_cache(self, key: str, n: int) -> Optional[np.ndarray]:
        path = self._fid_cache_path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                feats = z["feats"]
        except Exception as e:  # corrupt cache: recompute
            log.warning("%s: unreadable FID cache (%s); recomputing", path, e)
            return None
        return feats if feats.shape[0] == n else None

    def _save_fid_cache(self, key: str, ids, feats: np.ndarray) -> None:
        path = self._fid_cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        buf = io.BytesIO()
        np.savez(buf, feats=feats.astype(np.float32), ids=np.asarray(ids))
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)

    # -- main ------------------------------------------------------------------------------
    def _niqe(self, img: np.ndarray) -> float:
        from metrics.niqe import niqe_rgb
        p = self.protocol
        return niqe_rgb(img, self.niqe_params, p.crop_border, p.niqe_block, p.niqe_upscale)

    def evaluate_no_reference(self, restored, out=None, force: bool = False) -> dict:
        """Score every image of ``restored`` on its own (no-reference metrics only)."""
        from tqdm import tqdm

        check_no_reference(self.metrics, restored)
        if out is not None:
            check_output_dir(out, "evaluation", (restored,), force)
        files = list(images_by_id(restored).values())
        for p in files:
            image_size(p)
        ids = [p.stem for p in files]
        per_image: dict[str, list[float]] = {m: [] for m in self.metrics}
        for p in tqdm(files, desc="evaluate", unit="img", disable=len(files) < 8):
            img = _prepare_image(read_image(p), p, self.protocol)
            per_image["niqe"].append(self._niqe(img))
        summary = self._summary(ids, per_image, {}, {})
        if out is not None:
            write_results(out, ids, per_image, summary, inputs=(restored,), force=force)
        return summary

    def _gt_side(self, name, fn, g_imgs, hashes, shape) -> np.ndarray:
        """``fn(list of GT images) -> array`` with per-image results cached in memory (keys: name,
        GT file sha256, shape) and on disk (``<cache_dir>/dlib/<name>/``; the key also hashes
        the provenance of the models); only the misses are computed."""
        from metrics.backbones import stable_hash

        prov = {k: v for k, v in self.provenance.items() if k.startswith("dlib_")}
        keys = [(name, h, shape) for h in hashes]
        files = [self.cache_dir / "dlib" / name /
                 f"{stable_hash({'gt': h, 'shape': list(shape), 'models': prov})[:32]}.npy"
                 for h in hashes]
        items = [self._mem_get(k) for k in keys]
        for i, f in enumerate(files):
            if items[i] is None and f.is_file():
                try:
                    items[i] = np.load(f, allow_pickle=False)
                except (OSError, ValueError) as e:
                    log.warning("%s: unreadable cache entry (%s); recomputing", f, e)
        miss = [i for i, it in enumerate(items) if it is None]
        if miss:
            new = fn([g_imgs[i] for i in miss])
            for j, i in enumerate(miss):
                items[i] = np.array(new[j])
                f = files[i]
                f.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.with_name(f".{f.stem}.tmp-{os.getpid()}.npy")
                np.save(tmp, items[i])
                os.replace(tmp, f)
        for k, it in zip(keys, items):
            if self._mem_get(k) is None:
                self._mem_put(k, it, it.nbytes)
        return np.stack(items)

    def evaluate(self, restored, gt, out=None, force: bool = False) -> dict:
        """Score ``restored`` against ``gt``; write ``out`` (see the module doc) when given.
        ``force``: ``out`` may replace a folder frbench made as another kind of output."""
        import torch
        from tqdm import tqdm

        if gt is None:
            return self.evaluate_no_reference(restored, out, force)
        proto, mset = self.protocol, set(self.metrics)
        if out is not None:
            check_output_dir(out, "evaluation", (restored, gt), force)
        pairs = pair_files(restored, gt)
        check_headers(pairs)
        check_metric_sizes(pairs, proto, self.metrics)
        ids = [p[0] for p in pairs]
        gt_hashes = [file_sha256(g) for _, _, g in pairs]
        need_inception = bool(mset & {"fid", "kid"})
        need_gt_feats = need_inception and ("kid" in mset or proto.fid_ref == "gt")
        gt_feats_cached = None
        fid_key = None
        if need_gt_feats:
            fid_key = self._fid_key(ids, gt_hashes)
            gt_feats_cached = self._load_fid_cache(fid_key, len(pairs))
            self.last_fid_cache = "hit" if gt_feats_cached is not None else "miss"
            log.info("GT Inception features: cache %s (%s)", self.last_fid_cache,
                     self._fid_cache_path(fid_key))
        image_metrics = [m for m in self.metrics if METRICS[m].level == "image"]
        per_image: dict[str, list[float]] = {m: [] for m in image_metrics}
        r_feats, g_feats = [], []
        bs = self.batch_size
        # a bar whenever scoring takes more than PROGRESS_DELAY_S, even for one batch: it counts
        # images and names the network at work (_progress) between updates
        self._bar = tqdm(total=len(pairs), desc="evaluate", unit="img", delay=PROGRESS_DELAY_S)
        with torch.inference_mode(), ieee_fp32(self.device):
            for start in range(0, len(pairs), bs):
                chunk = pairs[start:start + bs]
                hashes = gt_hashes[start:start + bs]
                r_imgs, g_imgs = [], []
                for (_, rp, gp) in chunk:
                    r = _prepare_image(read_image(rp), rp, proto)
                    g = _prepare_image(read_image(gp), gp, proto)
                    if r.shape != g.shape:
                        raise FRBenchError(f"{rp}: size {r.shape[1]}x{r.shape[0]} differs from GT "
                                           f"{gp.name} {g.shape[1]}x{g.shape[0]}; restored images "
                                           "must be at GT size")
                    r_imgs.append(r)
                    g_imgs.append(g)
                # sub-batches of equal shape (a set normally has one shape)
                shapes = [im.shape for im in r_imgs]
                groups: dict[tuple, list[int]] = {}
                for i, s in enumerate(shapes):
                    groups.setdefault(s, []).append(i)
                results = {m: [None] * len(chunk) for m in image_metrics}
                rf_chunk = [None] * len(chunk)
                gf_chunk = [None] * len(chunk)
                for idx in groups.values():
                    res = self._score_batch([r_imgs[i] for i in idx], [g_imgs[i] for i in idx],
                                            [hashes[i] for i in idx], need_inception,
                                            need_gt_feats and gt_feats_cached is None)
                    for m in image_metrics:
                        for j, i in enumerate(idx):
                            results[m][i] = float(res[m][j])
                    if need_inception:
                        for j, i in enumerate(idx):
                            rf_chunk[i] = res["_rfeat"][j]
                            gf_chunk[i] = res["_gfeat"][j] if res["_gfeat"] is not None else None
                for m in image_metrics:
                    per_image[m].extend(results[m])
                if need_inception:
                    r_feats.extend(rf_chunk)
                    g_feats.extend(gf_chunk)
                self._bar.update(len(chunk))
        self._bar.close()
        set_metrics, extra = {}, {}
        if need_inception:
            rf = np.stack(r_feats).astype(np.float64)
            gf = None
            if need_gt_feats:
                if gt_feats_cached is not None:
                    gf = gt_feats_cached.astype(np.float64)
                else:
                    gf = np.stack(g_feats).astype(np.float64)
                    self._save_fid_cache(fid_key, ids, gf)
            if len(pairs) < 2:
                raise FRBenchError("FID/KID need at least 2 images; drop them with --metrics")
            if "fid" in mset:
                ref = self._reference(fid_key, gf)
                set_metrics["fid"] = MF.frechet_distance_features(rf, ref.mu, ref.sqrt_factor)
                extra["fid_reference"] = ref.source
            if "kid" in mset:
                k, ks = MF.kid(rf, gf, proto.kid_subsets, proto.kid_subset_size,
                               seed=proto.bootstrap_seed)
                set_metrics["kid"] = k
                extra["kid_std"] = ks
                extra["kid_subset_size"] = min(proto.kid_subset_size, len(pairs))
        summary = self._summary(ids, per_image, set_metrics, extra)
        if out is not None:
            write_results(out, ids, per_image, summary, inputs=(restored, gt), force=force)
        return summary

    def _reference(self, fid_key, gf) -> _Ref:
        if self.protocol.fid_ref != "gt":
            return self._refs[self.protocol.fid_ref]
        if fid_key not in self._refs:
            self._refs[fid_key] = _Ref(gf.mean(0), MF.sqrt_factor_from_features(gf), "gt")
        return self._refs[fid_key]

    def _progress(self, what: str) -> None:
        """Name the step in the progress bar; draw it once PROGRESS_DELAY_S have passed."""
        bar = getattr(self, "_bar", None)
        if bar is not None and not bar.disable:
            bar.set_postfix_str(what, refresh=bar._time() - bar.start_t >= bar.delay)

    def _score_batch(self, r_imgs, g_imgs, hashes, need_inception, need_gt_inception) -> dict:
        """One batch of same-shape pairs (uint8 HWC RGB) -> {metric: (n,) array, _rfeat, _gfeat}."""
        import torch

        proto, mset, dev = self.protocol, set(self.metrics), self.device
        r8 = torch.from_numpy(np.stack(r_imgs)).to(dev).permute(0, 3, 1, 2)
        g8 = torch.from_numpy(np.stack(g_imgs)).to(dev).permute(0, 3, 1, 2)
        out: dict = {}
        if mset & {"psnr", "ssim", "psnr_y", "ssim_y", "ms_ssim"}:
            self._progress("psnr/ssim")
            r64, g64 = r8.double(), g8.double()
            y = proto.color == "y"
            rc, gc = MF.prepare(r64, proto.crop_border, y), MF.prepare(g64, proto.crop_border, y)
            if "psnr" in mset:
                out["psnr"] = MF.psnr(rc, gc).cpu().numpy()
            if "ssim" in mset:
                out["ssim"] = MF.ssim(rc, gc).cpu().numpy()
            if "ms_ssim" in mset:
                out["ms_ssim"] = MF.ms_ssim(rc, gc).cpu().numpy()
            if mset & {"psnr_y", "ssim_y"}:
                ry, gy = MF.prepare(r64, proto.crop_border, True), MF.prepare(g64, proto.crop_border, True)
                if "psnr_y" in mset:
                    out["psnr_y"] = MF.psnr(ry, gy).cpu().numpy()
                if "ssim_y" in mset:
                    out["ssim_y"] = MF.ssim(ry, gy).cpu().numpy()
        # NHWC arrays permuted to NCHW are already channels_last in memory, as the nets want
        rf01 = r8.float().div_(255.0)
        gf01 = g8.float().div_(255.0)
        shape = tuple(g8.shape[1:])
        if self.lpips is not None:
            self._progress("lpips")
            fr, fg = self._pair_net("lpips", lambda x: self.lpips.features(x * 2 - 1), rf01, gf01,
                                    hashes, shape, listy=True)
            d = self.lpips.distance(fr, fg)
            check_finite(d, "LPIPS")
            out["lpips"] = d.double().cpu().numpy()
        if self.facenet is not None:
            self._progress("facenet")
            er, eg = self._pair_net("facenet", self.facenet, rf01, gf01, hashes, shape)
            a = MF.angle_degrees(er, eg)
            check_finite(a, "FaceNet identity angle")
            out["deg_facenet"] = a.cpu().numpy()
        if self.arcface is not None:
            self._progress("arcface")
            er, eg = self._pair_net("arcface", self.arcface, self.arcface.prepare(r_imgs).to(dev),
                                    self.arcface.prepare(g_imgs).to(dev), hashes, shape)
            a = MF.angle_degrees(er, eg)
            check_finite(a, "ArcFace identity angle")
            out["deg_arcface18"] = a.cpu().numpy()
        if self.dlib is not None:
            self._progress("dlib")
            from metrics.dlib_face import angle_degrees, landmark_distance
            if "deg_dlib" in mset:
                er = self.dlib.descriptors(r_imgs)
                eg = self._gt_side("dlib_desc", self.dlib.descriptors, g_imgs, hashes, shape)
                out["deg_dlib"] = angle_degrees(er, eg)
            if "lmd_dlib68" in mset:
                lr = self.dlib.landmarks68(r_imgs)
                lg = self._gt_side("dlib_lm68", self.dlib.landmarks68, g_imgs, hashes, shape)
                out["lmd_dlib68"] = landmark_distance(lr, lg)
        if self.niqe_params is not None:
            self._progress("niqe")
            out["niqe"] = np.array([self._niqe(im) for im in r_imgs])
        out["_rfeat"] = out["_gfeat"] = None
        if need_inception:
            self._progress("inception")
            if need_gt_inception:
                fr, fg = self._pair_net("inception", self.inception, rf01, gf01, hashes, shape)
                out["_gfeat"] = fg.float().cpu().numpy()
            else:  # GT features from the disk cache
                fr = self._run_net(self.inception, rf01)
            check_finite(fr, "Inception features")
            out["_rfeat"] = fr.float().cpu().numpy()
        return out

    def _pair_net(self, name, fn, r_in, g_in, hashes, shape, listy=False):
        """Run ``fn`` on the restored batch, and on the GT images whose outputs are not in the
        in-memory cache (keys: net, GT file sha256, input shape) -> (restored_out, gt_out).
        ``listy``: ``fn`` returns a list of tensors (LPIPS layers).

        The two calls are separate on purpose: network outputs differ in the last bits with the
        batch they are computed in, so a restored image batched with however many GT misses
        there happen to be would score differently with a warm cache (in memory, or the disk
        FID cache) than with a cold one, and with the order the cells ran in."""
        import torch

        def run(x):
            return self._run_net(fn, x)

        keys = [(name, h, shape) for h in hashes]
        items = [self._mem_get(k) for k in keys]
        miss = [i for i, it in enumerate(items) if it is None]
        r_out = run(r_in)
        if miss:
            out = run(g_in[miss])
            part = (lambda a, b: [t[a:b] for t in out]) if listy else (lambda a, b: out[a:b])
            for j, i in enumerate(miss):
                it = part(j, j + 1)
                nb = sum(t.numel() * t.element_size() for t in (it if listy else [it]))
                if self._mem_fits(nb):  # a copy for the cache (a view would pin the batch)
                    it = [t.clone() for t in it] if listy else it.clone()
                    self._mem_put(keys[i], it, nb)
                items[i] = it
        g_out = [torch.cat(ts) for ts in zip(*items)] if listy else torch.cat(items)
        return r_out, g_out

    @staticmethod
    def _run_net(fn, x):
        """``fn(x)`` with image batches in channels-last layout (every network call of the
        evaluator goes through here, so one image's output never depends on the call site)."""
        import torch
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return fn(x)

    # -- summary ---------------------------------------------------------------------------
    def _summary(self, ids, per_image, set_metrics, extra) -> dict:
        proto = self.protocol
        rng = np.random.default_rng(proto.bootstrap_seed)
        n = len(ids)
        boot_idx = rng.integers(0, n, size=(self.bootstrap_samples, n)) if self.bootstrap_samples else None
        metrics = {}
        for m, vals in per_image.items():
            v = np.asarray(vals, dtype=np.float64)
            mask = np.ones(n, bool)
            entry = {}
            if m.startswith("deg_") and proto.identity_exclude_below_deg is not None:
                mask = v >= proto.identity_exclude_below_deg
                entry["n_excluded"] = int((~mask).sum())
                entry["excluded_below_deg"] = proto.identity_exclude_below_deg
            used = v[mask]
            mean = float(used.mean()) if used.size else float("nan")
            ci = None
            if boot_idx is not None and used.size:
                w = mask[boot_idx]
                with np.errstate(invalid="ignore", divide="ignore"):
                    sums = np.where(w, v[boot_idx], 0.0).sum(1)
                    means = sums / w.sum(1)
                if np.all(np.isfinite(v[mask])):
                    means = means[np.isfinite(means)]
                    ci = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
                else:  # e.g. PSNR inf for identical images
                    ci = [mean, mean]
            entry = {"mean": mean, "ci95": ci, "higher_is_better": METRICS[m].higher_is_better,
                     "n": int(used.size), **entry}
            metrics[m] = entry
        comparable = proto.published_comparable and not self.random_init
        return {
            "protocol": proto.name,
            "protocol_settings": {**proto.settings(), "bootstrap_samples": self.bootstrap_samples},
            "n": n,
            "metrics": metrics,
            "set_metrics": set_metrics,
            "set_metrics_info": extra,
            "higher_is_better": {m: METRICS[m].higher_is_better for m in self.metrics},
            "provenance": dict(sorted(self.provenance.items())),
            "comparable_with_published": bool(comparable),
            "versions": _versions(),
        }


def write_results(out, ids, per_image: dict, summary: dict, inputs=(), force: bool = False) -> None:
    """Write ``per_image.csv`` and ``summary.json`` into ``out`` atomically (whole folder)."""
    with atomic_dir(out, "evaluation", inputs, force) as tmp:
        with open(tmp / "per_image.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            cols = list(per_image)
            w.writerow(["id"] + cols)
            for i, id_ in enumerate(ids):
                w.writerow([id_] + [repr(float(per_image[c][i])) for c in cols])
        (tmp / "summary.json").write_text(dumps_json(summary, indent=2) + "\n", encoding="utf-8")


def evaluate_folders(restored, gt, protocol: str | Protocol, metrics=None, out=None, *,
                     evaluator: Optional[Evaluator] = None, force: bool = False,
                     **kwargs) -> dict:
    """Score ``restored`` against ``gt`` (see module docstring; ``gt=None``: no-reference
    metrics only). ``kwargs`` go to ``Evaluator`` (weights, device, batch_size, cache_dir,
    search_dirs, bootstrap_samples); pass ``evaluator`` to reuse networks across calls (its
    protocol and metrics must match)."""
    if gt is None:  # refuse before building any network
        proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
        check_no_reference(evaluator.metrics if evaluator else proto.select(metrics), restored)
    if out is not None:  # before any network is built
        check_output_dir(out, "evaluation", (restored, gt), force)
    if evaluator is None:
        evaluator = Evaluator(protocol, metrics, **kwargs)
    else:
        name = protocol if isinstance(protocol, str) else protocol.name
        if evaluator.protocol.name != name or (metrics is not None and
                                               evaluator.protocol.select(metrics) != evaluator.metrics):
            raise FRBenchError("evaluate_folders: the evaluator was built for another protocol "
                               "or metric set")
    return evaluator.evaluate(restored, gt, out, force=force)
