"""imagenet: torchvision's real weights loading from a torch hub cache laid out in a tmp TORCH_HOME,
and the offline message when the weights are missing."""
import numpy as np
import pytest
import torch
import torchvision.models as tvm

from karp_models import imagenet
from karp_models.introspect import features


@pytest.fixture()
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)   # get_dir() reads TORCH_HOME again
    return tmp_path


def test_cache_layout_follows_torch_hub(torch_home):
    f = imagenet.cached_file("resnet18")
    assert f == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert not imagenet.is_cached("resnet18")


def test_offline_without_cache_says_how_to_get_them(torch_home, monkeypatch):
    monkeypatch.setattr(imagenet, "_reachable", lambda url, timeout=3.0: False)
    for name in imagenet.ARCHS:
        with pytest.raises(imagenet.WeightsUnavailable) as e:
            imagenet.load(name)
        msg = str(e.value)
        assert imagenet.cached_file(name).name in msg and str(torch_home) in msg
        assert "weights=" in msg
    with pytest.raises(imagenet.WeightsUnavailable, match="cannot be reached"):
        imagenet.load("vit_b_16", download=True)


def test_loads_a_state_dict_from_the_hub_cache(torch_home):
    torch.manual_seed(0)
    ref = tvm.resnet18(weights=None).eval()
    f = imagenet.cached_file("resnet18")
    f.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), f)
    m = imagenet.load("resnet18")           # no network: found in the cache
    assert isinstance(m, imagenet.ImageNetModel) and not m.training
    assert len(m.classes) == 1000 and m.classes[0] == "tench" and m.image_size == 224
    for k, v in ref.state_dict().items():
        assert torch.equal(m.net.state_dict()[k], v), k
    x = torch.rand(1, 3, 224, 224)
    logits, _ = m(x)
    with torch.no_grad():
        want = ref((x - m.mean) / m.std)
    torch.testing.assert_close(logits.detach(), want)
    probs, maps = features.feature_maps(m, x)
    assert probs.shape == (1000,) and abs(probs.sum() - 1) < 1e-4
    assert list(maps) == ["net.relu", "net.layer1", "net.layer2", "net.layer3", "net.layer4"]
    assert maps["net.layer4"].shape == (512, 7, 7)
    assert features.filter_weights(m).shape == (64, 3, 7, 7)


def test_damaged_cache_file_is_reported(torch_home):
    f = imagenet.cached_file("mobilenet_v3_large")
    f.parent.mkdir(parents=True)
    f.write_bytes(b"not a checkpoint")
    with pytest.raises(imagenet.WeightsUnavailable, match="damaged"):
        imagenet.load("mobilenet_v3_large")


def test_feature_layers_of_mobilenet():
    m = imagenet.ImageNetModel("mobilenet_v3_large", tvm.mobilenet_v3_large(weights=None))
    assert m.feature_layers[0] == "net.features.0" and len(m.feature_layers) == 17
    assert np.isclose(m.metrics["acc@1"], 75.274)


def _serve(folder):
    """A local HTTP server over `folder` on a free port, in a thread; returns (url base, server)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def test_fetch_downloads_with_progress_and_checks_the_hash(tmp_path):
    import hashlib

    payload = np.random.default_rng(0).bytes(3 * 2**20)              # 3 MB: several progress reports
    digest = hashlib.sha256(payload).hexdigest()
    served = tmp_path / "www"
    served.mkdir()
    (served / f"weights-{digest[:8]}.pth").write_bytes(payload)
    (served / "forged-00000000.pth").write_bytes(payload)
    base, server = _serve(served)
    try:
        seen = []
        dst = tmp_path / "hub" / "checkpoints" / f"weights-{digest[:8]}.pth"
        out = imagenet.fetch(f"{base}/{dst.name}", dst, len(payload),
                             progress=lambda done, total: seen.append((done, total)), poll_s=0.01)
        assert out == dst and dst.read_bytes() == payload
        assert seen[-1] == (len(payload), len(payload)) and all(t == len(payload) for _, t in seen)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)   # it only goes forward
        assert not list(dst.parent.glob("*.partial"))
        bad = tmp_path / "hub" / "checkpoints" / "forged-00000000.pth"
        with pytest.raises(imagenet.WeightsUnavailable, match="invalid hash"):
            imagenet.fetch(f"{base}/{bad.name}", bad, len(payload))
        assert not bad.exists() and not list(bad.parent.glob("forged*"))
        with pytest.raises(imagenet.WeightsUnavailable, match="download failed"):
            imagenet.fetch(f"{base}/missing-12345678.pth", tmp_path / "missing-12345678.pth", 1)
    finally:
        server.shutdown()


def test_download_offline_says_what_to_do_in_one_sentence(torch_home, monkeypatch):
    monkeypatch.setattr(imagenet, "_reachable", lambda url, timeout=3.0: False)
    with pytest.raises(imagenet.WeightsUnavailable) as e:
        imagenet.download("resnet18")
    msg = str(e.value)
    assert msg == imagenet.offline_words("resnet18") and msg.count(". ") == 0 and msg.endswith(".")
    assert "download.pytorch.org" in msg and "resnet18-f37072fd.pth" in msg and str(torch_home) in msg
