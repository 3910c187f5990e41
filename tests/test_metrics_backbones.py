"""Backbones built offline: equal to the reference packages given the same weights; seeded;
missing weights fail clearly."""
import numpy as np
import pytest
import torch

from metrics import backbones as B
from metrics.config import WeightsConfig
from core.errors import FRBenchError

RAND = WeightsConfig(allow_random_init=True, allow_download=False, random_init_seed=3)
NONE = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _isolated_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _imgs(n, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, s, s, generator=g)


@pytest.mark.parametrize("net_name", ["alex", "vgg"])
def test_lpips_equals_direct_lpips_call_with_same_weights(net_name):
    import lpips

    net, prov = B.build_lpips(net_name, RAND)
    assert prov[f"lpips_{net_name}"] == "random-init:seed=3"
    assert prov[f"lpips_{net_name}_lin"].startswith(f"file:{net_name}.pth@sha256:")
    ref = lpips.LPIPS(net=net_name, pnet_rand=True, verbose=False).eval()
    ref.load_state_dict(net.lp.state_dict())
    x, y = _imgs(3, seed=1) * 2 - 1, _imgs(3, seed=2) * 2 - 1
    with torch.no_grad():
        ours = net.distance(net.features(x), net.features(y))
        theirs = ref(x, y).flatten()
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7)
        assert float(net.distance(net.features(x), net.features(x)).abs().max()) == 0.0


def test_lpips_loads_torchvision_backbone_file(tmp_path):
    import torchvision

    tv = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(tv.state_dict(), path)
    w = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0,
                      paths={"alexnet": str(path)})
    # the pinned hash prefix does not match our stand-in file -> a clear error
    with pytest.raises(FRBenchError, match="does not match the expected 7be5be79"):
        B.build_lpips("alex", w)
    from metrics import weights as W
    spec = W.WeightSpec("alexnet", path.name, None, None, "test")
    res = W.resolve("alexnet", path, spec=spec)
    sd = W.load_state_dict(res)
    net, _ = B.build_lpips("alex", RAND)
    mapped = {k: sd[f"features.{k.split('.')[1]}.{k.split('.')[2]}"] for k in net.lp.net.state_dict()}
    net.lp.net.load_state_dict(mapped)
    assert torch.equal(net.lp.net.slice1[0].weight, tv.features[0].weight)


def test_missing_weights_error_names_file_hash_and_place():
    with pytest.raises(FRBenchError) as e:
        B.build_inception(NONE)
    msg = str(e.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "6726825d" in msg
    assert "hub/checkpoints" in msg and "allow_random_init" in msg


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1).item()
    torch.manual_seed(123)
    a, _ = B.build_facenet(RAND)
    after = torch.rand(1).item()
    assert before == after  # construction did not consume the global RNG
    b, _ = B.build_facenet(RAND)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k
    c, _ = B.build_facenet(WeightsConfig(allow_random_init=True, allow_download=False,
                                         random_init_seed=4))
    assert not torch.equal(a.net.conv2d_1a.conv.weight, c.net.conv2d_1a.conv.weight)


def test_inception_matches_pytorch_fid_get_activations(tmp_path):
    """Our features == pytorch-fid's own file pipeline with the same state dict."""
    from pytorch_fid import fid_score

    from core.imageio import write_png
    sd, prov = B.inception_state_dict(RAND)
    ours, p2 = B.build_inception(RAND)
    assert p2["inception_fid"] == prov == "random-init:seed=3"
    rng = np.random.default_rng(0)
    files = []
    for i in range(2):
        p = tmp_path / f"{i}.png"
        write_png(p, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        files.append(str(p))
    ref_model = B.pytorch_fid_inception(sd)
    ref = fid_score.get_activations(files, ref_model, batch_size=2, dims=2048, device="cpu",
                                    num_workers=0)
    from core.imageio import read_image
    x = torch.from_numpy(np.stack([read_image(f) for f in files])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        feats = ours(x).numpy()
    assert feats.shape == (2, 2048)
    assert np.allclose(feats, ref, rtol=1e-5, atol=1e-6)
    assert feats.std() > 1e-3  # seeded init keeps activations alive


def test_facenet_loads_file_and_drops_logits(tmp_path):
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    torch.manual_seed(0)
    ref = InceptionResnetV1(pretrained=None, classify=True, num_classes=7).eval()
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(ref.state_dict(), path)
    w = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0,
                      paths={"facenet_vggface2": str(path)})
    emb, prov = B.build_facenet(w)
    assert prov["facenet_vggface2"].startswith("file:20180402-114759-vggface2.pt@sha256:")
    x = _imgs(2, 160)
    ref.classify = False
    with torch.no_grad():
        assert torch.allclose(emb(x), ref((x * 255 - 127.5) / 128), atol=1e-6)


def test_arcface18_architecture_and_module_prefix(tmp_path):
    net = B.ResNetFace18().eval()
    x = torch.randn(2, 1, 128, 128)
    with torch.no_grad():
        assert net(x).shape == (2, 512)
    path = tmp_path / "resnet18_110.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # DataParallel keys
    w = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0,
                      paths={"arcface18_vqfr": str(path)})
    emb, prov = B.build_arcface18(w)
    assert prov["arcface18_vqfr"].startswith("file:resnet18_110.pth@sha256:")
    with torch.no_grad():
        assert torch.allclose(emb(x), net(x), atol=1e-6)
    with pytest.raises(FRBenchError, match="resnet18_110.pth"):
        B.build_arcface18(NONE)


def test_irse50_architecture_file_and_identity_loss(tmp_path):
    from methods.baseline_common import ID_CROP, IdentityLoss
    torch.manual_seed(0)
    net = B.IRSE50().eval()
    sd = net.state_dict()
    # the InsightFace_Pytorch layout that model_ir_se50.pth uses: 24 IR-SE units, output layer
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(43.8e6, rel=0.01)
    assert "body.23.res_layer.5.fc2.weight" in sd and "body.24.res_layer.0.weight" not in sd
    assert tuple(sd["output_layer.3.weight"].shape) == (512, 512 * 7 * 7)
    assert isinstance(net.body[0].shortcut_layer, torch.nn.MaxPool2d)  # 64 -> 64, stride 2
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 512) and torch.allclose(y.norm(dim=1), torch.ones(2))
    with pytest.raises(FRBenchError, match="112"):
        net(torch.zeros(1, 3, 64, 64))
    path = tmp_path / "model_ir_se50.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    w = WeightsConfig(allow_random_init=False, allow_download=False, random_init_seed=0,
                      paths={"arcface_ir_se50": str(path)})
    got, prov = B.build_irse50(w)
    assert prov["arcface_ir_se50"].startswith("file:model_ir_se50.pth@sha256:")
    with torch.no_grad():
        assert torch.allclose(got(x), y, atol=1e-6)
    with pytest.raises(FRBenchError, match="model_ir_se50.pth"):
        B.build_irse50(NONE)

    class P:  # the params slice IdentityLoss reads
        weights = w
    loss = IdentityLoss(P, "irse50", "cos", ID_CROP)
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert float(loss(a, a)) == pytest.approx(0.0, abs=1e-5)
        assert float(loss(a, a.flip(0))) > 0
