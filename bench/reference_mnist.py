"""pytorch/examples' MNIST recipe, re-implemented faithfully to time it against karp's fast CNN.

Follows https://github.com/pytorch/examples/blob/main/mnist/main.py (read at commit
77f55b912142e11fcfdf5b530231fb9c52f181e8, Aug 2025): `Net` (conv 1->32 3x3, ReLU, conv 32->64
3x3, ReLU, max-pool 2, dropout 0.25, flatten 9216, fc 128, ReLU, dropout 0.5, fc 10,
log_softmax; 1,199,882 parameters), NLL loss, Adadelta lr 1.0, StepLR(step_size=1, gamma=0.7)
stepped after each epoch, training batch 64, test batch 1000 after every epoch, inputs
ToTensor() then Normalize((0.1307,), (0.3081,)), torch.manual_seed(seed) before the model is
built (the script's default seed is 1). On a CPU the script's DataLoader has no shuffle=True
(only its accelerator branch adds it), so every epoch walks the training set in stored order;
so does this one.

Two differences, both in the reference's favour: the images are held in memory as one float
tensor (no per-image PIL transform or DataLoader), and nothing is printed every 10 batches.
Run on Fashion-MNIST (karp's `data.load("fashion-mnist")`) instead of MNIST.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.1307, 0.3081
BATCH, TEST_BATCH, LR, GAMMA = 64, 1000, 1.0, 0.7


class Net(nn.Module):
    """pytorch/examples' MNIST network: (B, 1, 28, 28) normalised images -> (B, 10) log-probs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))                      # (B, 32, 26, 26)
        x = F.relu(self.conv2(x))                      # (B, 64, 24, 24)
        x = self.dropout1(F.max_pool2d(x, 2))          # (B, 64, 12, 12)
        x = torch.flatten(x, 1)                        # (B, 9216)
        x = self.dropout2(F.relu(self.fc1(x)))         # (B, 128)
        return F.log_softmax(self.fc2(x), dim=1)       # (B, 10)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 1, 28, 28) -> ToTensor() then Normalize((0.1307,), (0.3081,))."""
    return (x.float() / 255.0 - MEAN) / STD


def make(seed: int = 1) -> tuple[Net, torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    """The script's model, optimiser and scheduler after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    model = Net()
    opt = torch.optim.Adadelta(model.parameters(), lr=LR)
    return model, opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=GAMMA)


def train_step(model: Net, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One step of the script's train(): zero_grad, NLL of the log-probs, backward, step."""
    opt.zero_grad()
    loss = F.nll_loss(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


@torch.no_grad()
def test(model: Net, x: torch.Tensor, y: torch.Tensor) -> float:
    """The script's test(): accuracy in batches of 1000, in eval mode."""
    model.eval()
    correct = sum((model(x[i:i + TEST_BATCH]).argmax(1) == y[i:i + TEST_BATCH]).sum().item()
                  for i in range(0, len(y), TEST_BATCH))
    return correct / len(y)


@dataclass
class Result:
    time_to_target: float | None       # s until the first end-of-epoch test at >= target
    epochs_to_target: int | None
    accuracies: list[float] = field(default_factory=list)  # test accuracy after each epoch
    seconds: list[float] = field(default_factory=list)     # wall time at each of those tests


def time_to(data: object, target: float = 0.91, epochs: int = 3, seed: int = 1) -> Result:
    """Train the script's recipe on `data` (an ImageData) for up to `epochs` epochs, testing
    after each, and stop at the first test at or above `target`. Times count the tests."""
    x, y = normalise(data.train_x), data.train_y
    tx, ty = normalise(data.test_x), data.test_y
    model, opt, sched = make(seed)
    res = Result(None, None)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        for i in range(0, len(y), BATCH):              # stored order: no shuffle on a CPU
            train_step(model, opt, x[i:i + BATCH], y[i:i + BATCH])
        res.accuracies.append(test(model, tx, ty))
        res.seconds.append(time.perf_counter() - t0)
        sched.step()
        if res.accuracies[-1] >= target:
            res.time_to_target, res.epochs_to_target = res.seconds[-1], epoch
            break
    return res
