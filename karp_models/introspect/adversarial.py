"""Adversarial examples with captum.robust (FGSM and PGD) and how the attributions move with them.

Cites: Goodfellow et al. 2015 (FGSM), Madry et al. 2018 (PGD); pytorch/captum `captum.robust`.
An untargeted attack pushes the image away from its true (or predicted) class within an L-inf
ball of radius epsilon on the [0, 1] pixel scale.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from captum.robust import FGSM, PGD
from torch import nn

from karp_models.i18n import _
from karp_models.introspect.attribution import METHODS, Attribution, Logits, attribute
from karp_models.introspect.similarity import Similarity, compare

ATTACKS = ("FGSM", "PGD")


def attack(model: nn.Module, x: torch.Tensor, label: int, *, method: str = "FGSM", epsilon: float = 0.05,
           step_num: int = 10, step_size: float | None = None, seed: int = 0) -> torch.Tensor:
    """The adversarial image (1, C, H, W) in [0, 1]: captum.robust FGSM, or PGD (L-inf, `step_num`
    steps of `step_size`, default 2.5 * epsilon / step_num as in Madry et al.)."""
    fwd = Logits(model).eval()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        if method == "FGSM":
            return FGSM(fwd, lower_bound=0.0, upper_bound=1.0).perturb(x, epsilon=epsilon, target=int(label)).detach()
        if method == "PGD":
            step = step_size if step_size is not None else 2.5 * epsilon / max(1, step_num)
            return PGD(fwd, lower_bound=0.0, upper_bound=1.0).perturb(
                x, radius=epsilon, step_size=step, step_num=step_num, target=int(label)).detach()
    raise ValueError(f"attack must be one of {ATTACKS}, not {method!r}")


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
