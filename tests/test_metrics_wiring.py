"""Evaluator wiring that changes no number but cost or safety: the in-memory GT cache and its
cap, the output folder checked before any network is built, a reused evaluator refused for
another protocol or metric set, and the fixed tables (protocols frozen, metric directions)."""
import dataclasses

import numpy as np
import pytest

from core.errors import FRBenchError
from core.imageio import write_png
from metrics import METRICS
from metrics.config import WeightsConfig
from metrics.evaluate import Evaluator, evaluate_folders
from metrics.protocols import PROTOCOLS, get_protocol

RAND = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=0)


@pytest.fixture(autouse=True)
def _no_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _folders(root, n=3, size=32):
    rng = np.random.default_rng(1)
    for i in range(n):
        g = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        write_png(root / "gt" / f"{i}.png", g)
        write_png(root / "res" / f"{i}.png", np.clip(g.astype(int) - 7, 0, 255).astype(np.uint8))
    return root / "res", root / "gt"


def _count_lpips_inputs(ev):
    calls = []
    orig = ev.lpips.features
    ev.lpips.features = lambda x: calls.append(len(x)) or orig(x)
    return calls


@pytest.mark.parametrize("cap_mb,second", [(1024.0, [3]), (0.0, [3, 3])])
def test_gt_network_outputs_are_kept_in_memory_up_to_the_cap(tmp_path, cap_mb, second):
    res, gt = _folders(tmp_path)
    ev = Evaluator("panini", ["lpips"], weights=RAND, batch_size=8, cache_dir=tmp_path / "c",
                   gt_memory_mb=cap_mb)
    calls = _count_lpips_inputs(ev)
    a = ev.evaluate(res, gt)
    assert calls == [3, 3]  # the restored batch, then the GT images (never in one batch)
    del calls[:]
    b = ev.evaluate(res, gt)
    assert calls == second  # GT features from memory when they fit, recomputed when not
    # the restored side never shares a batch with GT images: a cache hit changes no bit
    assert b["metrics"]["lpips"]["mean"] == a["metrics"]["lpips"]["mean"]
    assert (ev._gt_mem_bytes > 0) == (cap_mb > 0)


def test_output_folder_is_checked_before_any_network_is_built(tmp_path):
    res, gt = _folders(tmp_path)
    # no weight files and no random init: building LPIPS would fail, but the --out check
    # (an input of the command) must come first
    with pytest.raises(FRBenchError, match="is also an input of this command"):
        evaluate_folders(res, gt, "panini", ["lpips"], out=gt)


def test_reused_evaluator_must_match_protocol_and_metrics(tmp_path):
    res, gt = _folders(tmp_path)
    ev = Evaluator("panini", ["psnr"])
    with pytest.raises(FRBenchError, match="another protocol or metric set"):
        evaluate_folders(res, gt, "builtin", evaluator=ev)
    with pytest.raises(FRBenchError, match="another protocol or metric set"):
        evaluate_folders(res, gt, "panini", ["psnr", "ssim"], evaluator=ev)
    s = evaluate_folders(res, gt, get_protocol("panini"), ["psnr"], evaluator=ev)
    assert s["n"] == 3 and set(s["metrics"]) == {"psnr"}


def test_protocol_and_metric_tables_are_fixed():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROTOCOLS["panini"].crop_border = 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRICS["psnr"].higher_is_better = False
    assert not METRICS["fid"].higher_is_better and not METRICS["kid"].higher_is_better
    assert {m: s.level for m, s in METRICS.items() if s.level == "set"} == {"fid": "set",
                                                                           "kid": "set"}
    # what changes a number is recorded: the settings hold every field of the protocol
    assert set(PROTOCOLS["builtin"].settings()) == {f.name for f in
                                                    dataclasses.fields(PROTOCOLS["builtin"])}
    assert PROTOCOLS["gfpgan_celeba_test"].identity_exclude_below_deg == 1.0
    assert [p.published_comparable for p in PROTOCOLS.values()] == [True, True, False]


def test_irse50_state_dict_layout_is_insightface_pytorch():
    """``model_ir_se50.pth`` (InsightFace_Pytorch model.py Backbone(50, 'ir_se')): input layer
    Conv2d(3, 64, 3, 1, 1, bias=False) + BatchNorm2d + PReLU; output BN2d, Dropout, Flatten,
    Linear(512*7*7, 512), BN1d. A key the file lacks (e.g. a conv bias) would fail to load it."""
    from metrics.backbones import IRSE50
    sd = IRSE50().state_dict()
    assert [k for k in sd if k.startswith("input_layer.")] == [
        "input_layer.0.weight", "input_layer.1.weight", "input_layer.1.bias",
        "input_layer.1.running_mean", "input_layer.1.running_var",
        "input_layer.1.num_batches_tracked", "input_layer.2.weight"]
    assert tuple(sd["input_layer.0.weight"].shape) == (64, 3, 3, 3)
    assert [k for k in sd if k.startswith("output_layer.") and "running" not in k
            and "num_batches" not in k] == [
        "output_layer.0.weight", "output_layer.0.bias", "output_layer.3.weight",
        "output_layer.3.bias", "output_layer.4.weight", "output_layer.4.bias"]


# ------------------------------------------------------------------------------- the resolver

# file names as the libraries publish them (torchvision model URLs, pytorch-fid's release,
# facenet-pytorch's release, BasicSR's statistics, VQFR's and pSp's identity nets)
EXPECTED_FILES = {
    "inception_fid": ("pt_inception-2015-12-05-6726825d.pth", "6726825d"),
    "vgg16": ("vgg16-397923af.pth", "397923af"),
    "vgg19": ("vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    "alexnet": ("alexnet-owt-7be5be79.pth", "7be5be79"),
    "facenet_vggface2": ("20180402-114759-vggface2.pt", None),
    "arcface18_vqfr": ("resnet18_110.pth", None),
    "fid_stats_ffhq512": ("inception_FFHQ_512-f7b384ab.pth", None),
    "arcface_ir_se50": ("model_ir_se50.pth", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_missing_weights_error_names_file_hash_and_place(name, tmp_path):
    from metrics import weights as W
    filename, sha = EXPECTED_FILES[name]
    spec = W.KNOWN[name]
    assert (spec.name, spec.filename, spec.sha256) == (name, filename, sha)
    with pytest.raises(FRBenchError) as e:
        W.resolve(name)  # the defaults: no random init, no download
    msg = str(e.value)
    assert f"missing weights '{name}': file {filename}" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / filename) in msg
    assert (f"sha256 starting {sha}" if sha else "sha256 not pinned") in msg
    r = W.resolve(name, allow_random_init=True, seed=5)
    assert r.random_init and r.provenance == "random-init:seed=5"


def test_resolver_finds_files_by_name_in_search_dirs_and_cache(tmp_path):
    from metrics import weights as W
    d = tmp_path / "mine"
    d.mkdir()
    (d / "resnet18_110.pth").write_bytes(b"weights")
    r = W.resolve("arcface18_vqfr", search_dirs=(d,))
    assert r.path == d / "resnet18_110.pth" and not r.random_init
    assert r.provenance == "file:resnet18_110.pth@sha256:" + W.sha256_file(r.path)[:16]
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "model_ir_se50.pth").write_bytes(b"other")
    assert W.resolve("arcface_ir_se50").path == cache / "model_ir_se50.pth"
    (cache / "vgg16-397923af.pth").write_bytes(b"not vgg")
    with pytest.raises(FRBenchError, match="does not match the expected 397923af"):
        W.resolve("vgg16")


def test_download_goes_to_the_cache_only_when_allowed_and_online(tmp_path, monkeypatch):
    import torch.hub

    from metrics import weights as W
    got = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        got.append(url)
        with open(dst, "wb") as f:  # the hub cache folder does not exist yet
            f.write(b"downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setenv("FRBENCH_OFFLINE", "1")
    with pytest.raises(FRBenchError, match="missing weights"):
        W.resolve("facenet_vggface2", allow_download=True)
    assert got == []
    monkeypatch.setenv("FRBENCH_OFFLINE", "0")
    with pytest.raises(FRBenchError, match="missing weights"):
        W.resolve("facenet_vggface2")  # downloads not allowed
    assert got == []
    r = W.resolve("facenet_vggface2", allow_download=True)
    assert got == [W.KNOWN["facenet_vggface2"].url]
    assert r.path == tmp_path / "torch_home" / "hub" / "checkpoints" / "20180402-114759-vggface2.pt"
    assert r.path.read_bytes() == b"downloaded"
