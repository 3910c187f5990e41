"""`frbench evaluate` end to end: perturbed image folders scored through the CLI, then every
column of ``per_image.csv`` recomputed with the reference libraries called directly (images
decoded with PIL, PSNR/SSIM by scikit-image, MS-SSIM by pytorch-msssim, BT.601 Y by its formula,
LPIPS by ``lpips.LPIPS`` with the same backbone weights, FaceNet by facenet-pytorch's network,
the ArcFace preprocessing by cv2), and the summary's means and bootstrap CIs recomputed from the
CSV."""
import csv
import io
import json
import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics import backbones as B
from metrics.config import WeightsConfig
from pipeline.cli import main
from test_metrics_reference import bootstrap_ci

SIZE = 176  # > 160: MS-SSIM takes its 5-scale path; FaceNet resizes (antialiased) to 160
COLUMNS = ["psnr", "ssim", "ms_ssim", "psnr_y", "ssim_y", "lpips", "deg_facenet", "deg_arcface18"]
BOOT = 400


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gt(i):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rng = np.random.default_rng(100 + i)
    img = np.stack([120 + 80 * np.sin(xx / (6.0 + i) + c) * np.cos(yy / (9.0 + c) - i)
                    for c in range(3)], -1)
    img[40 + 5 * i:90, 50:120 + 4 * i] *= 0.4 + 0.1 * i  # a darker block: edges at every scale
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _perturb(i, g):
    """One kind of damage per image, so the metrics disagree with each other."""
    rng = np.random.default_rng(200 + i)
    if i == 0:  # noise
        return np.clip(g + rng.normal(0, 12, g.shape), 0, 255).astype(np.uint8)
    if i == 1:  # blur + brightness
        b = np.asarray(Image.fromarray(g).filter(ImageFilter.GaussianBlur(1.5)), np.int32)
        return np.clip(b + 14, 0, 255).astype(np.uint8)
    if i == 2:  # R and B swapped: RGB metrics suffer far more than Y ones... and vice versa
        return np.ascontiguousarray(g[..., ::-1])
    if i == 3:  # JPEG (PIL)
        buf = io.BytesIO()
        Image.fromarray(g).save(buf, format="JPEG", quality=25)
        return np.asarray(Image.open(buf).convert("RGB"))
    return np.clip(g.astype(np.int32) * 0.8 + 20, 0, 255).astype(np.uint8)  # contrast


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    (root / "gt").mkdir()
    (root / "res").mkdir()
    for i in range(5):
        g = _gt(i)
        Image.fromarray(g).save(root / "gt" / f"f{i}.png")
        Image.fromarray(_perturb(i, g)).save(root / "res" / f"f{i}_00.png")
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(root / "torch_home"))  # no weight files: seeded random init
    out = root / "out"
    rc = main(["evaluate", "--restored", str(root / "res"), "--gt", str(root / "gt"),
               "--protocol", "panini", "--metrics", ",".join(COLUMNS), "--out", str(out),
               "--allow-random-init", "--bootstrap-samples", str(BOOT), "--batch-size", "3",
               "--params", "none", "--cache-dir", str(root / "cache")])
    assert rc == 0
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((out / "summary.json").read_text())
    yield root, rows, summary, mp
    mp.undo()


def _read(p):
    return np.array(Image.open(p).convert("RGB"))


def _pairs(root):
    return [(_read(root / "res" / f"f{i}_00.png"), _read(root / "gt" / f"f{i}.png"))
            for i in range(5)]


def _col(rows, name):
    return np.array([float(r[name]) for r in rows])


def _y(img):
    """BT.601 luma of RGB [0,255] as MATLAB rgb2ycbcr (BasicSR), float64, unrounded."""
    x = img.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def test_csv_layout(run):
    _, rows, summary, _ = run
    assert list(rows[0]) == ["id"] + COLUMNS
    assert [r["id"] for r in rows] == [f"f{i}" for i in range(5)]
    assert summary["n"] == 5 and summary["protocol"] == "panini"
    assert summary["comparable_with_published"] is False  # random-init backbones


def test_psnr_ssim_columns_equal_scikit_image(run):
    root, rows, _, _ = run
    pairs = _pairs(root)
    psnr = [peak_signal_noise_ratio(g, r, data_range=255) for r, g in pairs]
    ssim = [structural_similarity(g, r, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False, data_range=255, channel_axis=2)
            for r, g in pairs]
    np.testing.assert_allclose(_col(rows, "psnr"), psnr, rtol=0, atol=1e-9)
    np.testing.assert_allclose(_col(rows, "ssim"), ssim, rtol=0, atol=1e-9)


def test_y_columns_equal_scikit_image_on_bt601_luma(run):
    root, rows, _, _ = run
    pairs = [(_y(r), _y(g)) for r, g in _pairs(root)]
    psnr_y = [peak_signal_noise_ratio(g, r, data_range=255) for r, g in pairs]
    ssim_y = [structural_similarity(g, r, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
              for r, g in pairs]
    np.testing.assert_allclose(_col(rows, "psnr_y"), psnr_y, rtol=0, atol=1e-9)
    np.testing.assert_allclose(_col(rows, "ssim_y"), ssim_y, rtol=0, atol=1e-9)
    # the swapped-channel image: Y barely changes, RGB a lot (a psnr_y computed on RGB fails)
    assert _col(rows, "psnr_y")[2] > _col(rows, "psnr")[2] + 3


def test_ms_ssim_column_equals_pytorch_msssim(run):
    import pytorch_msssim
    root, rows, _, _ = run
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double()  # noqa: E731
    ref = [pytorch_msssim.ms_ssim(t(r), t(g), data_range=255).item() for r, g in _pairs(root)]
    # pytorch-msssim's own float32 window: agreement to its rounding
    np.testing.assert_allclose(_col(rows, "ms_ssim"), ref, rtol=0, atol=2e-6)


def test_lpips_column_equals_lpips_package(run):
    import lpips
    root, rows, summary, _ = run
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    ours, prov = B.build_lpips("alex", w)  # same resolver, same seed -> the evaluator's weights
    assert prov["lpips_alex"] == summary["provenance"]["lpips_alex"] == "random-init:seed=0"
    ref = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()
    ref.load_state_dict(ours.lp.state_dict())
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 * 2 - 1  # noqa: E731
    with torch.no_grad():
        vals = [ref(t(r), t(g)).item() for r, g in _pairs(root)]
    np.testing.assert_allclose(_col(rows, "lpips"), vals, rtol=1e-5, atol=1e-7)
    assert min(vals) > 1e-4  # the perturbations are visible to the (random) backbone


def _angles(e1, e2):
    e1, e2 = np.asarray(e1, np.float64), np.asarray(e2, np.float64)
    cos = (e1 * e2).sum(1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_deg_facenet_column_equals_facenet_pytorch(run):
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1
    root, rows, summary, _ = run
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    emb, prov = B.build_facenet(w)
    assert prov["facenet_vggface2"] == summary["provenance"]["facenet_vggface2"]
    net = InceptionResnetV1(pretrained=None, classify=False).eval()
    net.load_state_dict(emb.net.state_dict())

    def embed(img):  # whole image -> 160 px, PIL bilinear (antialiased) on float channels
        x = np.stack([np.asarray(Image.fromarray(img[..., c].astype(np.float32) / 255, "F")
                                 .resize((160, 160), Image.BILINEAR)) for c in range(3)])
        x = torch.from_numpy((x * 255.0 - 127.5) / 128.0)[None].float()
        with torch.no_grad():
            return net(x)[0].numpy()

    pairs = _pairs(root)
    ref = _angles([embed(r) for r, _ in pairs], [embed(g) for _, g in pairs])
    np.testing.assert_allclose(_col(rows, "deg_facenet"), ref, rtol=0, atol=2e-2)
    assert ref.max() > 0.5  # not a degenerate embedding
    # the network's input itself: resize + fixed_image_standardization as facenet-pytorch
    seen = []
    hook = emb.net.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    r = pairs[0][0]
    with torch.no_grad():
        emb(torch.from_numpy(r).permute(2, 0, 1)[None].float() / 255)
    hook.remove()
    x = np.stack([np.asarray(Image.fromarray(r[..., c].astype(np.float32) / 255, "F")
                             .resize((160, 160), Image.BILINEAR)) for c in range(3)])
    np.testing.assert_allclose(seen[0][0].numpy(), (x * 255.0 - 127.5) / 128.0, rtol=0, atol=2e-3)


def test_deg_arcface18_column_with_cv2_preprocessing(run):
    root, rows, summary, _ = run
    w = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)
    emb, prov = B.build_arcface18(w)
    assert prov["arcface18_vqfr"] == summary["provenance"]["arcface18_vqfr"]

    def embed(img):  # VQFR: cv2 RGB->gray, cv2.resize 128 INTER_LINEAR, (x - 127.5) / 127.5
        g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (128, 128),
                       interpolation=cv2.INTER_LINEAR).astype(np.float64)
        x = torch.from_numpy((g - 127.5) / 127.5)[None, None].float()
        with torch.no_grad():
            return emb.net(x)[0].numpy()

    pairs = _pairs(root)
    ref = _angles([embed(r) for r, _ in pairs], [embed(g) for _, g in pairs])
    np.testing.assert_allclose(_col(rows, "deg_arcface18"), ref, rtol=0, atol=1e-2)
    assert ref.max() > 0.5
    # the network's input itself, exactly
    r = pairs[0][0]
    g = cv2.resize(cv2.cvtColor(r, cv2.COLOR_RGB2GRAY), (128, 128), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(emb.prepare([r])[0, 0].numpy(), (g - 127.5) / 127.5, rtol=0,
                               atol=1e-6)


def test_summary_means_and_bootstrap_cis_from_the_csv(run):
    _, rows, summary, _ = run
    for m in COLUMNS:
        vals = _col(rows, m)
        e = summary["metrics"][m]
        assert e["n"] == 5 and e["mean"] == pytest.approx(vals.mean(), rel=1e-12, abs=1e-12), m
        assert e["ci95"] == pytest.approx(bootstrap_ci(vals, BOOT, 0), rel=1e-12, abs=1e-12), m
        assert e["ci95"][0] <= e["mean"] <= e["ci95"][1]
    # direction of every column: similarities up, distances and identity angles down
    better = {"psnr": True, "ssim": True, "ms_ssim": True, "psnr_y": True, "ssim_y": True,
              "lpips": False, "deg_facenet": False, "deg_arcface18": False}
    assert summary["higher_is_better"] == better
    assert {m: e["higher_is_better"] for m, e in summary["metrics"].items()} == better
    assert all(math.isfinite(v) for v in _col(rows, "psnr"))
