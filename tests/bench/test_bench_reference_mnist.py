"""bench/reference_mnist.py against pytorch/examples' mnist/main.py: the Net's layers, shapes and
parameter count, and one step of its recipe (Adadelta lr 1.0, rho 0.9, eps 1e-6; StepLR 0.7)
against a hand computation of the update."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import reference_mnist as ref  # noqa: E402


def test_net_matches_pytorch_examples_shapes_and_parameter_count():
    model, _, _ = ref.make(seed=1)
    assert sum(p.numel() for p in model.parameters()) == 1_199_882
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
                      "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
                      "fc1.weight": (128, 9216), "fc1.bias": (128,),
                      "fc2.weight": (10, 128), "fc2.bias": (10,)}
    assert (model.dropout1.p, model.dropout2.p) == (0.25, 0.5)
    model.eval()
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(3))  # log_softmax


def test_normalise_is_to_tensor_then_normalize():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    torch.testing.assert_close(ref.normalise(x).flatten(),
                               torch.tensor([-0.1307 / 0.3081, (1 - 0.1307) / 0.3081]))


def test_one_step_is_adadelta_on_the_nll_loss_by_hand():
    model, opt, sched = ref.make(seed=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.manual_seed(5)                          # the same dropout masks for both forwards
    loss = F.nll_loss(model(x), y)
    grads = dict(zip(before, torch.autograd.grad(loss, list(model.parameters()))))
    torch.manual_seed(5)
    step_loss = ref.train_step(model, opt, x, y)
    assert abs(step_loss - loss.item()) < 1e-6
    rho, eps, lr = 0.9, 1e-6, 1.0                 # Adadelta (Zeiler 2012), torch's defaults, lr 1.0
    for k, p in model.named_parameters():
        sq = (1 - rho) * grads[k] ** 2            # E[g^2] from zero
        delta = (0.0 + eps) ** 0.5 / (sq + eps).sqrt() * grads[k]   # E[dx^2] is still zero
        torch.testing.assert_close(p.detach(), before[k] - lr * delta, rtol=1e-5, atol=1e-7)
    sched.step()                                  # after the first epoch: lr 1.0 * 0.7
    assert opt.param_groups[0]["lr"] == 0.7
