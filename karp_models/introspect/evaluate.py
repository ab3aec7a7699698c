"""Test-split evaluation of an image model: class probabilities and the mistakes, most confident first."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.inference_mode()
def predict_probs(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000,
                  device: torch.device | str | None = None) -> np.ndarray:
    """Softmax probabilities (N, n_classes) float32 for uint8 images (N, C, H, W) (or float in [0, 1])."""
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
        logits, _ = model(xb)
        out.append(torch.softmax(logits.float(), -1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def misclassified(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of wrong predictions, the most confident mistake first (ties: lower index first)."""
    labels = np.asarray(labels)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    conf = probs[wrong, pred[wrong]]
    return wrong[np.lexsort((wrong, -conf))]
