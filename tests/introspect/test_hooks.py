import pytest
import torch
from torch import nn

from karp_models.introspect.hooks import capture


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 3))


def test_capture_records_outputs_and_removes_hooks():
    net = _net()
    x = torch.randn(2, 1, 28, 28)
    with capture(net, ["0", "1"]) as acts:
        net(x)
    assert acts["0"].shape == (2, 4, 26, 26)
    assert torch.equal(acts["1"], torch.relu(acts["0"]))
    assert all(not m._forward_hooks for m in net.modules())


def test_capture_removes_hooks_when_forward_raises():
    net = _net()
    with pytest.raises(RuntimeError):
        with capture(net, ["0"]):
            net(torch.randn(1, 2, 28, 28))  # wrong channel count
    assert all(not m._forward_hooks for m in net.modules())


def test_unknown_layer_names_the_known_ones():
    with pytest.raises(KeyError, match="layers: 0, 1, 2, 3"):
        with capture(_net(), ["conv9"]):
            pass


def test_capture_ignores_forwards_of_other_threads():
    import threading

    net = _net()
    mine, theirs = torch.zeros(1, 1, 28, 28), torch.ones(1, 1, 28, 28)
    with capture(net, ["0"]) as acts:
        net(mine)
        t = threading.Thread(target=net, args=(theirs,))
        t.start()
        t.join()
    assert torch.equal(acts["0"], net[0](mine).detach())
