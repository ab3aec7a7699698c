"""The Explain page's fast path: inference_copy (BatchNorm folded into the convolutions,
channels_last) computes the model's function and every method's attribution as the model itself
does; fingerprint tells weights apart (a run retrained under the same name)."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from karp_models.introspect import attribution as A
from karp_models.models.cnn import CNN, CNNConfig


@pytest.fixture(scope="module")
def bn_cnn() -> CNN:
    """A tiny fast CNN whose BatchNorms are not the identity (trained-like statistics)."""
    torch.manual_seed(0)
    m = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    with torch.no_grad():
        for bn in (b for b in m.modules() if isinstance(b, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return m


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))


def test_inference_copy_folds_batchnorm_and_computes_the_same_function(bn_cnn, x):
    before = {k: v.clone() for k, v in bn_cnn.state_dict().items()}
    twin = A.inference_copy(bn_cnn, x)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in bn_cnn.modules())
    assert n_bn > 0 and not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules())   # all folded
    assert twin is not bn_cnn and A.inference_copy(bn_cnn, x) is twin                     # kept, reused
    xs = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(twin(xs)[0], bn_cnn(xs)[0], rtol=1e-5, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in bn_cnn.state_dict().items())        # model untouched
    assert not any(m._forward_pre_hooks for m in bn_cnn.modules())


@pytest.mark.parametrize("name", list(A.available(CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))))))
def test_every_method_on_the_inference_copy_matches_the_model(bn_cnn, x, name):
    want = A.attribute(bn_cnn, x, 2, name)
    got = A.attribute(A.inference_copy(bn_cnn, x), x, 2, name)
    scale = np.abs(want.attr).max() or 1.0
    np.testing.assert_allclose(got.attr, want.attr, rtol=0, atol=1e-4 * scale)
    assert (got.delta is None) == (want.delta is None)
    if want.delta is not None:
        assert got.delta == pytest.approx(want.delta, abs=1e-4 * max(1.0, abs(want.delta)))


def test_inference_copy_follows_new_weights(bn_cnn, x):
    m = copy.deepcopy(bn_cnn)
    first = A.inference_copy(m, x)
    with torch.no_grad():
        m.classifier.fc.weight.mul_(-1.0)                     # an in-place change: a new version
    second = A.inference_copy(m, x)
    assert second is not first
    with torch.no_grad():
        torch.testing.assert_close(second(x)[0], m(x)[0], rtol=1e-5, atol=1e-5)


class _Crossed(nn.Module):
    """A BatchNorm registered right after a convolution it does not follow: folding would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(1, 3, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(3)
        self.conv_b = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 16 * 16, 4)

    def forward(self, x, targets=None):
        h = self.conv_a(x) + self.bn_b(self.conv_b(x))        # bn_b follows conv_b, not conv_a
        return self.head(h.flatten(1)), None


def test_a_fold_that_changes_the_function_is_not_used(x):
    torch.manual_seed(3)
    m = _Crossed().eval()
    with torch.no_grad():
        m.bn_b.running_mean.uniform_(-1, 1)
        m.bn_b.running_var.uniform_(0.3, 3)
    twin = A.inference_copy(m, x)
    assert any(isinstance(q, nn.BatchNorm2d) for q in twin.modules())       # the plain copy
    xs = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(twin(xs)[0], m(xs)[0])


def test_fingerprint_tells_weights_apart(bn_cnn):
    same = copy.deepcopy(bn_cnn)
    assert A.fingerprint(same) == A.fingerprint(bn_cnn)                     # equal weights, other object
    torch.manual_seed(5)
    retrained = CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
    assert A.fingerprint(retrained) != A.fingerprint(bn_cnn)                # same name and shape, new weights
    before = A.fingerprint(same)
    with torch.no_grad():
        same.classifier.fc.bias.add_(1e-3)                                   # one step of an optimizer
    assert A.fingerprint(same) != before
    other = copy.deepcopy(bn_cnn)
    with torch.no_grad():
        next(b for b in other.modules() if isinstance(b, nn.BatchNorm2d)).running_mean.add_(1.0)
    assert A.fingerprint(other) != A.fingerprint(bn_cnn)                    # buffers count too
