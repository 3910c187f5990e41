"""Metric backbones built offline through the weight resolver (never a library's own download).

Each ``build_*`` returns ``(module, provenance)`` where provenance maps a backbone name to
``file:<name>@sha256:<16 hex>`` or ``random-init:seed=N``. Random init (only when
``WeightsConfig.allow_random_init``) is seeded and independent of the global torch RNG: modules
are constructed inside ``torch.random.fork_rng`` and every conv/linear weight is then redrawn
from a ``torch.Generator`` with Kaiming-normal (fan_in, ReLU gain) so that activations keep their
scale through deep nets (the libraries' default inits make a random Inception's pool3 features
vanish); biases 0, BatchNorm at identity statistics, PReLU slopes 0.25.

Input conventions (all float32 NCHW):
- ``LPIPSNet.features(x)``: RGB in [-1,1] at evaluation size;
- ``build_inception`` module: RGB in [0,1], any size (bilinear 299 inside), -> (N, 2048);
- ``FaceEmbedder``: RGB in [0,1] -> (N, 512) embeddings.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metrics import weights as W
from core.errors import FRBenchError

log = logging.getLogger(__name__)


def resolve_for(name: str, wcfg, search_dirs=()) -> W.Resolved:
    """Resolve weight ``name`` with the settings of a ``WeightsConfig``."""
    paths = getattr(wcfg, "paths", {}) or {}
    dirs = tuple(search_dirs) + tuple(getattr(wcfg, "search_dirs", []) or [])
    return W.resolve(name, paths.get(name), allow_random_init=wcfg.allow_random_init,
                     seed=wcfg.random_init_seed, allow_download=wcfg.allow_download,
                     search_dirs=dirs)


@contextlib.contextmanager
def _isolated_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def seeded_init(module: nn.Module, seed: int) -> None:
    """Deterministic random init (see module docstring)."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()
            elif isinstance(m, nn.PReLU):
                m.weight.fill_(0.25)


def _load(module: nn.Module, sd: dict, what: str, strict: bool = True) -> None:
    try:
        missing, unexpected = module.load_state_dict(sd, strict=strict)
    except RuntimeError as e:
        raise FRBenchError(f"{what}: weights do not fit the architecture ({str(e)[:400]})") from None
    if missing:
        raise FRBenchError(f"{what}: weights lack {len(missing)} tensors, e.g. {missing[:3]}")


def _unwrap_state(sd: dict) -> dict:
    """A training checkpoint's weights: ``{"state_dict": ...}`` unwrapped, DataParallel's
    ``module.`` prefix dropped."""
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}


def file_provenance(path: Path) -> str:
    return W.provenance_of(path, W.sha256_file(path))


# ------------------------------------------------------------------------------------------
# LPIPS

class LPIPSNet(nn.Module):
    """``lpips.LPIPS`` (v0.1, linear heads from the wheel) with the backbone from our resolver.

    ``features(x)`` returns the unit-normalised activations of the 5 layers (cacheable for GT);
    ``distance(f0, f1)`` the LPIPS value per image (N,) — the same arithmetic as
    ``lpips.LPIPS.forward`` (normalize, squared diff, 1x1 lin, spatial mean, sum over layers)."""

    def __init__(self, lp):
        super().__init__()
        self.lp = lp

    def features(self, x):
        import lpips
        outs = self.lp.net.forward(self.lp.scaling_layer(x))
        return [lpips.normalize_tensor(o) for o in outs]

    def distance(self, f0, f1):
        val = 0
        for kk in range(self.lp.L):
            d = (f0[kk] - f1[kk]) ** 2
            val = val + self.lp.lins[kk](d).mean([2, 3], keepdim=True)
        return val.flatten()


def build_lpips(net: str, wcfg, search_dirs=()) -> tuple[LPIPSNet, dict]:
    import lpips

    tv_name = {"alex": "alexnet", "vgg": "vgg16"}[net]
    res = resolve_for(tv_name, wcfg, search_dirs)
    import types
    from unittest import mock

    import lpips.pretrained_networks as pn
    import torchvision.models.vgg as tvv

    def vgg16_features_only(*_a, **_k):
        # lpips keeps only ``.features``; skip building VGG's 120M-parameter classifier.
        return types.SimpleNamespace(features=tvv.make_layers(tvv.cfgs["D"], batch_norm=False))

    with _isolated_rng(), warnings.catch_warnings(), \
            mock.patch.object(pn.tv, "vgg16", vgg16_features_only):
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation
        lp = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    prov = {f"lpips_{net}_lin": file_provenance(lin_path)}
    if res.random_init:
        seeded_init(lp.net, wcfg.random_init_seed)
    else:
        sd = W.load_state_dict(res)
        mapped = {}
        for k in lp.net.state_dict():
            _, idx, param = k.split(".")  # sliceK.IDX.weight
            mapped[k] = sd[f"features.{idx}.{param}"] if f"features.{idx}.{param}" in sd else None
        bad = [k for k, v in mapped.items() if v is None]
        if bad:
            raise FRBenchError(f"{res.path}: not a torchvision {tv_name} state dict (missing "
                               f"features for {bad[:3]})")
        _load(lp.net, mapped, str(res.path))
    prov[f"lpips_{net}"] = res.provenance
    lp.eval().requires_grad_(False)
    return LPIPSNet(lp).eval(), prov


# ------------------------------------------------------------------------------------------
# FID Inception (pytorch-fid's structure, our weights)

def fid_inception_structure():
    """pytorch-fid's ``fid_inception_v3`` without its download (patched FID blocks, 1008 classes)."""
    import pytorch_fid.inception as pfi

    inc = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    inc.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    inc.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    inc.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    inc.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    inc.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    inc.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    inc.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    inc.Mixed_7b = pfi.FIDInceptionE_1(1280)
    inc.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return inc


def inception_state_dict(wcfg, search_dirs=()) -> tuple[dict, str]:
    """State dict of the FID Inception (resolved file, or the seeded random init) + provenance."""
    res = resolve_for("inception_fid", wcfg, search_dirs)
    if res.random_init:
        with _isolated_rng():
            inc = fid_inception_structure()
        seeded_init(inc, wcfg.random_init_seed)
        return inc.state_dict(), res.provenance
    return W.load_state_dict(res), res.provenance


def pytorch_fid_inception(state_dict: dict, dims: int = 2048):
    """``pytorch_fid.inception.InceptionV3([block])`` built offline around ``state_dict``
    (its ``fid_inception_v3`` is patched for the construction only)."""
    from unittest import mock

    import pytorch_fid.inception as pfi

    def builder():
        inc = fid_inception_structure()
        _load(inc, state_dict, "inception_fid")
        return inc

    with _isolated_rng(), mock.patch.object(pfi, "fid_inception_v3", builder):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
    return model.eval()


class InceptionFeatures(nn.Module):
    """[0,1] RGB NCHW -> (N, 2048) pool3 features (pytorch-fid InceptionV3, resize_input=True)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0].flatten(1)


def build_inception(wcfg, search_dirs=(), dims: int = 2048) -> tuple[InceptionFeatures, dict]:
    if dims != 2048:
        raise FRBenchError("only 2048-d FID features are supported (lower dims are not comparable)")
    sd, prov = inception_state_dict(wcfg, search_dirs)
    return InceptionFeatures(pytorch_fid_inception(sd, dims)).eval(), {"inception_fid": prov}


# ------------------------------------------------------------------------------------------
# Identity: FaceNet (facenet-pytorch) and ArcFace ResNet-18 (VQFR)

class FaceNetEmbedder(nn.Module):
    """[0,1] RGB -> 512-d L2-normalised FaceNet embeddings: bilinear (antialias) resize of the
    whole image to 160x160, ``fixed_image_standardization`` = ``(255 x - 127.5) / 128``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        if x.shape[-2:] != (160, 160):
            x = F.interpolate(x, size=(160, 160), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > 160)
        return self.net((x * 255.0 - 127.5) / 128.0)


def build_facenet(wcfg, search_dirs=()) -> tuple[FaceNetEmbedder, dict]:
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    res = resolve_for("facenet_vggface2", wcfg, search_dirs)
    with _isolated_rng():
        net = InceptionResnetV1(pretrained=None, classify=False)
    if res.random_init:
        seeded_init(net, wcfg.random_init_seed)
    else:
        sd = W.load_state_dict(res)
        sd = {k: v for k, v in sd.items() if not k.startswith("logits.")}
        _load(net, sd, str(res.path))
    return FaceNetEmbedder(net.eval()).eval(), {"facenet_vggface2": res.provenance}


class IRBlock(nn.Module):
    """ronghuaiyang/arcface-pytorch IRBlock (BN-conv-BN-PReLU-conv-BN, + residual, PReLU)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, inplanes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + res)


class ResNetFace18(nn.Module):
    """``resnet_face18(use_se=False)`` of arcface-pytorch (evaluation.md §7): 1x128x128 gray in
    [-1,1] -> 512-d embedding (``fc5: Linear(512*8*8, 512)`` + ``bn5``)."""

    def __init__(self, layers=(2, 2, 2, 2)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn4 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(512 * 8 * 8, 512)
        self.bn5 = nn.BatchNorm1d(512)

    def _make_layer(self, planes, blocks, stride=1):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes))
        layers = [IRBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [IRBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x)).flatten(1)
        return self.bn5(self.fc5(x))


class ArcFace18Embedder(nn.Module):
    """uint8 RGB HWC images -> VQFR preprocessing (cv2 RGB->gray, cv2.resize 128 INTER_LINEAR,
    ``(x - 127.5)/127.5``) -> embeddings. ``prepare`` runs on CPU/numpy, ``forward`` on the net."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    @staticmethod
    def prepare(images_u8: list[np.ndarray]) -> torch.Tensor:
        import cv2
        out = []
        for im in images_u8:
            g = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
            g = cv2.resize(g, (128, 128), interpolation=cv2.INTER_LINEAR)
            out.append(g.astype(np.float32))
        return (torch.from_numpy(np.stack(out))[:, None] - 127.5) / 127.5

    def forward(self, x):
        return self.net(x)


def build_arcface18(wcfg, search_dirs=()) -> tuple[ArcFace18Embedder, dict]:
    res = resolve_for("arcface18_vqfr", wcfg, search_dirs)
    with _isolated_rng():
        net = ResNetFace18()
    if res.random_init:
        seeded_init(net, wcfg.random_init_seed)
    else:
        _load(net, _unwrap_state(W.load_state_dict(res)), str(res.path))
    return ArcFace18Embedder(net.eval()).eval(), {"arcface18_vqfr": res.provenance}


# ------------------------------------------------------------------------------------------
# IR-SE50 ArcFace (pSp's and GPEN's identity loss, pSp's encoder initialisation;
# methods.md §3.4, §5.1): the InsightFace_Pytorch layout that ``model_ir_se50.pth`` is saved in.

class SEModule(nn.Module):
    """Squeeze-excitation: avgpool -> 1x1 (c -> c/r, no bias) -> ReLU -> 1x1 (no bias) -> sigmoid."""

    def __init__(self, c: int, reduction: int = 16):
        super().__init__()
        h = max(1, c // reduction)
        self.fc1 = nn.Conv2d(c, h, 1, bias=False)
        self.fc2 = nn.Conv2d(h, c, 1, bias=False)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(torch.nn.functional.adaptive_avg_pool2d(
            x, 1)))))
        return x * w


class BottleneckIRSE(nn.Module):
    """shortcut: MaxPool(1, stride) if in == depth else Conv1x1(stride) + BN; residual:
    BN -> Conv3x3 -> PReLU -> Conv3x3(stride) -> BN -> SE(16)."""

    def __init__(self, cin: int, depth: int, stride: int):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth),
            SEModule(depth))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


def irse_stages(cin: int, units, widths) -> tuple[list[nn.Module], list[int]]:
    """IR-SE stages: per stage ``n`` units of ``width``, the first with stride 2.
    -> (units, index of each stage's last unit)."""
    body, taps = [], []
    for n, w in zip(units, widths):
        for j in range(n):
            body.append(BottleneckIRSE(cin, w, 2 if j == 0 else 1))
            cin = w
        taps.append(len(body) - 1)
    return body, taps


IRSE50_UNITS, IRSE50_WIDTHS = (3, 4, 14, 3), (64, 128, 256, 512)


class IRSE50(nn.Module):
    """IR-SE50 ArcFace at 112 px: ``input_layer`` Conv3x3 3->64 + BN + PReLU; ``body`` 24
    bottleneck_IR_SE units (3/4/14/3 of widths 64/128/256/512); ``output_layer`` BN2d -> Dropout ->
    Flatten -> Linear(512*7*7, 512) -> BN1d. Input RGB in [-1, 1] at 112 px; output (B, 512),
    L2-normalised."""

    def __init__(self, drop_ratio: float = 0.6):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(64), nn.PReLU(64))
        body, _ = irse_stages(64, IRSE50_UNITS, IRSE50_WIDTHS)
        self.body = nn.Sequential(*body)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(drop_ratio),
                                          nn.Flatten(), nn.Linear(512 * 7 * 7, 512),
                                          nn.BatchNorm1d(512))

    def forward(self, x):
        if x.shape[-2:] != (112, 112):
            raise FRBenchError(f"IR-SE50 expects 112x112 input, got {tuple(x.shape[-2:])}")
        x = self.output_layer(self.body(self.input_layer(x)))
        return torch.nn.functional.normalize(x, dim=1)


def load_irse50_state(wcfg, search_dirs=()) -> tuple[dict | None, W.Resolved]:
    """The ``model_ir_se50.pth`` state dict (None when it resolves to random init)."""
    res = resolve_for("arcface_ir_se50", wcfg, search_dirs)
    if res.random_init:
        return None, res
    return _unwrap_state(W.load_state_dict(res)), res


def build_irse50(wcfg, search_dirs=()) -> tuple[IRSE50, dict]:
    sd, res = load_irse50_state(wcfg, search_dirs)
    with _isolated_rng():
        net = IRSE50()
    if sd is None:
        seeded_init(net, wcfg.random_init_seed)
    else:
        _load(net, sd, str(res.path))
    return net.eval(), {"arcface_ir_se50": res.provenance}


# ------------------------------------------------------------------------------------------
# Precomputed FID statistics (BasicSR ``inception_FFHQ_512-*.pth``: {'mean', 'cov'}; or .npz mu/sigma)

def load_fid_stats(name: str, wcfg, search_dirs=()) -> tuple[np.ndarray, np.ndarray, str]:
    res = W.resolve(name, (getattr(wcfg, "paths", {}) or {}).get(name), allow_random_init=False,
                    allow_download=wcfg.allow_download,
                    search_dirs=tuple(search_dirs) + tuple(getattr(wcfg, "search_dirs", []) or []))
    if res.path.suffix == ".npz":
        with np.load(res.path) as z:
            mu, sigma = z["mu"], z["sigma"]
    else:
        d = W.load_state_dict(res, allow_numpy=True)
        try:
            mu, sigma = d["mean"], d["cov"]
        except (KeyError, TypeError):
            raise FRBenchError(f"{res.path}: expected a dict with 'mean' and 'cov'") from None
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.shape != (2048,) or sigma.shape != (2048, 2048):
        raise FRBenchError(f"{res.path}: expected 2048-d statistics, got {mu.shape}, {sigma.shape}")
    return mu, sigma, res.provenance


def stable_hash(obj) -> str:
    import json
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
