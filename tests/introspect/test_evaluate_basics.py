import numpy as np
import torch
from torch import nn

from karp_models.introspect.evaluate import misclassified, predict_probs


class Fixed(nn.Module):
    """Logits are the mean pixel value times a fixed row per class."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -1.0, 0.0]))

    def forward(self, x, targets=None):
        return x.mean((1, 2, 3))[:, None] * self.w, None


def test_predict_probs_batches_uint8_and_sums_to_one():
    x = torch.randint(0, 256, (7, 1, 4, 4), dtype=torch.uint8)
    p = predict_probs(Fixed(), x, batch_size=3)
    assert p.shape == (7, 3) and np.allclose(p.sum(1), 1, atol=1e-6)
    want = torch.softmax((x.float() / 255).mean((1, 2, 3))[:, None] * torch.tensor([1.0, -1.0, 0.0]), -1)
    assert np.allclose(p, want.numpy(), atol=1e-6)


def test_misclassified_orders_most_confident_mistake_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95], [0.6, 0.4]])
    labels = np.array([0, 0, 0, 0, 0])
    assert misclassified(probs, labels).tolist() == [3, 1, 2]
