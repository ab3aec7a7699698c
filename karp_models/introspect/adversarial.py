"""Adversarial examples (FGSM and PGD), robust accuracy, and how the attributions move with them.

Cites: Goodfellow et al. 2015 (FGSM), Madry et al. 2018 (PGD, and PGD adversarial training,
which the image task runs with `pgd` below). An untargeted attack pushes the image away from its
true (or predicted) class within an L-inf ball of radius epsilon on the [0, 1] pixel scale.

One implementation serves the attack on Explain, robust accuracy and adversarial training:
captum.robust's PGD, without a loss function, ascends -log of the model's output (which assumes
probabilities, and karp's models return logits) and skips pixels whose gradient is below 1e-6,
so a confident model looks more robust than it is; Madry et al.'s PGD ascends the cross-entropy
with the sign of its gradient, as `pgd` does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.i18n import _
from karp_models.introspect.attribution import METHODS, Attribution, attribute
from karp_models.introspect.similarity import Similarity, compare

ATTACKS = ("FGSM", "PGD")


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float, steps: int = 10,
        step_size: float | None = None, random_start: bool = False,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """L-inf PGD (Madry et al. 2018): `steps` steps of `step_size` (default 2.5 * epsilon / steps)
    along the sign of the gradient of the cross-entropy of labels y, each projected back into the
    epsilon ball around x and the [0, 1] pixel range. One step of size epsilon from x is FGSM.

    Args:
        model: a karp model (forward(x) -> (logits, loss)), used in the mode it is in (the
            trainer attacks in train mode, as Madry et al. and Wong et al. 2020 do); its
            parameters' .grad are left untouched.
        x: images (B, C, H, W) in [0, 1]; y: labels (B,) int64.
        random_start: start from a uniform point of the ball (training), else from x
            (deterministic: evaluation).
    Returns:
        x_adv (B, C, H, W), detached, with |x_adv - x| <= epsilon everywhere.
    Raises:
        ValueError: epsilon < 0 or steps < 1.
    """
    if epsilon < 0 or steps < 1:
        raise ValueError(f"PGD needs epsilon >= 0 and steps >= 1, got {epsilon}, {steps}")
    x = x.detach()
    if epsilon == 0:
        return x.clone()
    step = step_size if step_size is not None else 2.5 * epsilon / steps
    lo, hi = (x - epsilon).clamp(min=0.0), (x + epsilon).clamp(max=1.0)  # the ball within [0, 1]
    x_adv = x.clone()
    if random_start:
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x_adv = torch.max(torch.min(x + (2 * u - 1) * epsilon, hi), lo)
    with torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.cross_entropy(model(x_adv)[0].float(), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.max(torch.min(x_adv.detach() + step * g.sign(), hi), lo)
    return x_adv.detach()


def attack(model: nn.Module, x: torch.Tensor, label: int, *, method: str = "FGSM", epsilon: float = 0.05,
           step_num: int = 10, step_size: float | None = None, seed: int = 0) -> torch.Tensor:
    """The adversarial image (1, C, H, W) in [0, 1], made in eval mode: FGSM (one step of
    epsilon), or PGD (`pgd`: `step_num` steps of `step_size`, default 2.5 * epsilon / step_num,
    from x itself, so the same image always gives the same attack; seed is kept for callers)."""
    if method not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, not {method!r}")
    was_training = model.training
    model.eval()
    try:
        y = torch.tensor([int(label)], device=x.device)
        if method == "FGSM":
            return pgd(model, x, y, epsilon=epsilon, steps=1, step_size=epsilon)
        return pgd(model, x, y, epsilon=epsilon, steps=step_num, step_size=step_size)
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Robustness:
    """Clean and robust accuracy of a model on n images, under an L-inf PGD attack."""

    clean: float             # accuracy on the images as they are, in [0, 1]
    robust: float            # accuracy on the attacked images (attacked away from the true label)
    n: int
    epsilon: float
    steps: int
    step_size: float


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epsilon: float,
                    steps: int = 10, step_size: float | None = None,
                    batch_size: int = 250) -> Robustness:
    """Accuracy on x (N, C, H, W) floats in [0, 1] (or uint8) and on its PGD-attacked copy (from
    x, no random start: deterministic), in eval mode, batch by batch on the model's device.
    An image counts as robust when its attacked copy is still classified as y (N,)."""
    device = next(model.parameters()).device
    step = step_size if step_size is not None else 2.5 * epsilon / steps
    was_training = model.training
    model.eval()
    clean = robust = 0
    try:
        for i in range(0, len(y), batch_size):
            xb = x[i:i + batch_size].to(device)
            xb = xb.float().div(255.0) if xb.dtype == torch.uint8 else xb.float()
            yb = y[i:i + batch_size].to(device)
            with torch.no_grad():
                clean += int((model(xb)[0].argmax(-1) == yb).sum())
            xa = pgd(model, xb, yb, epsilon=epsilon, steps=steps, step_size=step)
            with torch.no_grad():
                robust += int((model(xa)[0].argmax(-1) == yb).sum())
    finally:
        model.train(was_training)
    n = len(y)
    return Robustness(clean / max(n, 1), robust / max(n, 1), n, float(epsilon), int(steps), float(step))


@dataclass(frozen=True)
class AdversarialResult:
    method: str
    epsilon: float
    x_adv: np.ndarray                     # (C, H, W) the adversarial image
    perturbation: np.ndarray              # (C, H, W) x_adv - x, within [-epsilon, epsilon]
    probs_before: np.ndarray              # (n_classes,)
    probs_after: np.ndarray
    pred_before: int
    pred_after: int
    before: dict[str, Attribution]        # attributions of the original prediction
    after: dict[str, Attribution]         # attributions of the new prediction on x_adv
    similarity: dict[str, Similarity]     # each method's map before vs after (values empty: cannot judge)

    @property
    def fooled(self) -> bool:
        return self.pred_after != self.pred_before


@torch.no_grad()
def _probs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    return torch.softmax(model(x)[0].float(), -1)[0].cpu().numpy()


def adversarial(model: nn.Module, x: torch.Tensor, label: int, methods: Sequence[str], *,
                method: str = "FGSM", epsilon: float = 0.05, step_num: int = 10, seed: int = 0) -> AdversarialResult:
    """Attack x (1, C, H, W) away from `label`, then explain the prediction before and after.

    Args:
        label: the class to move away from (the true label when known, else the prediction).
        methods: attribution methods to compare (names from attribution.METHODS).
    """
    device = next(model.parameters()).device
    x = x.to(device).float()
    x_adv = attack(model, x, label, method=method, epsilon=epsilon, step_num=step_num, seed=seed)
    pb, pa = _probs(model, x), _probs(model, x_adv)
    yb, ya = int(pb.argmax()), int(pa.argmax())
    before = {m: attribute(model, x, yb, m, seed=seed) for m in methods}
    after = {m: attribute(model, x_adv, ya, m, seed=seed) for m in methods}
    names = (_("the map before the attack"), _("the map after the attack"))
    sim = {m: compare(before[m].map, after[m].map, signed=METHODS[m].signed, names=names) for m in methods}
    return AdversarialResult(method, float(epsilon), x_adv[0].cpu().numpy(), (x_adv - x)[0].cpu().numpy(),
                             pb, pa, yb, ya, before, after, sim)


# --- do a robust model's explanations look more like the object? (Tsipras et al. 2019, sec. 5)

OBJECT_THRESHOLD = 0.1   # a pixel above this (on [0, 1]) is the object: Fashion-MNIST's background is 0


def object_share(maps: np.ndarray, x: np.ndarray,
                 threshold: float = OBJECT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Share of each map's |attribution| that lies on the object, and the object's share of the
    image (what a map spread evenly would score).

    Args:
        maps: attribution maps (N, H, W) (or (H, W)); x: the images (N, C, H, W) (or (C, H, W))
            in [0, 1] on a plain dark background; the object is every pixel whose brightest
            channel exceeds `threshold`.
    Returns:
        (share (N,), area (N,)) in [0, 1]; share is NaN for an all-zero map.
    Raises:
        ValueError: maps and images of different sizes.
    """
    m = np.abs(np.asarray(maps, dtype=np.float64))
    x = np.asarray(x, dtype=np.float64)
    if m.ndim == 2:
        m, x = m[None], x[None]
    if m.shape[0] != x.shape[0] or m.shape[1:] != x.shape[2:]:
        raise ValueError(f"maps {m.shape} do not match images {x.shape}")
    mask = x.max(axis=1) > threshold                                   # (N, H, W)
    total = m.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, (m * mask).sum(axis=(1, 2)) / total, np.nan)
    return share, mask.mean(axis=(1, 2))


def saliency_on_object(model: nn.Module, x: torch.Tensor, y: torch.Tensor, method: str = "Saliency",
                       threshold: float = OBJECT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """object_share of `method`'s map of the true class y (N,) for each image of x (N, C, H, W)
    in [0, 1] (uint8 is scaled), image by image with attribution.attribute; (share, area)."""
    maps = []
    for i in range(len(y)):
        xi = x[i:i + 1]
        xi = xi.float().div(255.0) if xi.dtype == torch.uint8 else xi.float()
        maps.append(attribute(model, xi, int(y[i]), method).map)
    xs = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    return object_share(np.stack(maps), xs.numpy(), threshold)
