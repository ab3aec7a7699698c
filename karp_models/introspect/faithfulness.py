"""Does an attribution map say what the model does? Infidelity, max-sensitivity, deletion and insertion.

Cites: Yeh et al. 2019 (infidelity and max-sensitivity, as `captum.metrics.infidelity` and
`sensitivity_max`); Petsiuk et al. 2018, RISE (deletion and insertion curves and their areas).

- infidelity (lower is better): how badly attribution . noise predicts the change in the score
  when the image is perturbed by that noise (attributions rescaled optimally, `normalize=True`).
- max-sensitivity (lower is better): how far the map moves when the image moves by 0.02.
- deletion (lower area is better): black out the most important pixels first and follow the
  probability of the class; a faithful map makes it fall at once.
- insertion (higher area is better): start from black and put the most important pixels back first.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from captum.metrics import infidelity, sensitivity_max
from torch import nn

from karp_models.introspect.attribution import Attribution, Logits, default_kwargs, explainer_for, seeded

# ---------------------------------------------------------------------------- deletion and insertion


@dataclass(frozen=True)
class Curve:
    fraction: np.ndarray      # (S + 1,) share of pixels removed (deletion) or restored (insertion)
    prob: np.ndarray          # (S + 1,) probability of the target class
    auc: float                # area under prob over fraction in [0, 1]


def pixel_order(attr_map: np.ndarray) -> np.ndarray:
    """Flat pixel indices, most important (largest attribution) first; ties keep reading order."""
    flat = np.ravel(attr_map)
    return np.argsort(-flat, kind="stable")


@torch.no_grad()
def _curve(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, attr_map: np.ndarray,
           target: int, *, insertion: bool, steps: int | None, baseline: float,
           batch_size: int = 256) -> Curve:
    _, C, H, W = x.shape
    n = H * W
    steps = n if steps is None else max(1, min(int(steps), n))
    order = torch.as_tensor(pixel_order(attr_map).copy(), device=x.device)
    counts = np.round(np.linspace(0, n, steps + 1)).astype(int)       # pixels changed at each point
    rank = torch.empty(n, dtype=torch.long, device=x.device)
    rank[order] = torch.arange(n, device=x.device)                    # rank[p] = position of pixel p
    k = torch.as_tensor(counts, device=x.device).view(-1, 1)          # (S + 1, 1)
    changed = (rank.view(1, -1) < k).view(-1, 1, H, W)                # (S + 1, 1, H, W)
    base = torch.full_like(x, float(baseline))
    start, end = (base, x) if insertion else (x, base)
    probs = []
    for i in range(0, len(changed), batch_size):
        m = changed[i:i + batch_size].to(x.dtype)                     # (b, 1, H, W), broadcast over C
        xs = start * (1 - m) + end * m                                # (b, C, H, W)
        probs.append(torch.softmax(forward(xs).float(), -1)[:, int(target)].cpu())
    prob = torch.cat(probs).numpy()
    frac = counts / n
    return Curve(frac, prob, float(np.trapezoid(prob, frac)))


def deletion_curve(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, attr_map: np.ndarray,
                   target: int, *, steps: int | None = 28, baseline: float = 0.0) -> Curve:
    """Remove (set to `baseline`) the most important pixels first; `steps=None` removes one pixel
    per step. forward(x) -> logits; x (1, C, H, W); attr_map (H, W)."""
    return _curve(forward, x, attr_map, target, insertion=False, steps=steps, baseline=baseline)


def insertion_curve(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, attr_map: np.ndarray,
                    target: int, *, steps: int | None = 28, baseline: float = 0.0) -> Curve:
    """Start from a `baseline` image and restore the most important pixels first."""
    return _curve(forward, x, attr_map, target, insertion=True, steps=steps, baseline=baseline)

# ---------------------------------------------------------------------------- Captum's metrics


def gaussian_perturbation(std: float = 0.1) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Infidelity's perturb_func: returns (noise I, perturbed input x - I)."""
    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn_like(inputs) * std
        return noise, inputs - noise
    return perturb


def infidelity_score(model: nn.Module, x: torch.Tensor, attr: np.ndarray | torch.Tensor, target: int, *,
                     n_perturb_samples: int = 32, std: float = 0.1, seed: int = 0) -> float:
    """captum.metrics.infidelity of one attribution (C, H, W) for x (1, C, H, W)."""
    a = torch.as_tensor(np.asarray(attr), device=x.device).float().reshape(x.shape)
    with seeded(seed):
        v = infidelity(Logits(model).eval(), gaussian_perturbation(std), x, a, target=int(target),
                       n_perturb_samples=n_perturb_samples, normalize=True)
    return float(v[0])


def sensitivity_score(model: nn.Module, x: torch.Tensor, method: str, target: int, *,
                      n_perturb_samples: int = 4, radius: float = 0.02, seed: int = 0) -> float:
    """captum.metrics.sensitivity_max of a method (its explainer re-run on perturbed copies)."""
    kw = default_kwargs(method, x, seed=seed)
    kw.pop("return_convergence_delta", None)
    with explainer_for(method, model) as explainer, seeded(seed), warnings.catch_warnings():
        def explain(inputs: torch.Tensor | tuple[torch.Tensor], target: int) -> tuple[torch.Tensor]:
            inp = inputs[0] if isinstance(inputs, tuple) else inputs    # Captum passes a 1-tuple
            return (explainer.attribute(inp, target=target, **kw),)

        warnings.simplefilter("ignore")
        v = sensitivity_max(explain, x, perturb_radius=radius, n_perturb_samples=n_perturb_samples,
                            target=int(target))
    return float(v[0])

# ---------------------------------------------------------------------------- one table


@dataclass(frozen=True)
class FaithRow:
    method: str
    infidelity: float
    sensitivity: float
    deletion_auc: float
    insertion_auc: float
    deletion: Curve
    insertion: Curve
    seconds: float


def faithfulness(model: nn.Module, x: torch.Tensor, target: int, attributions: dict[str, Attribution], *,
                 steps: int = 28, seed: int = 0, sensitivity: bool = True,
                 progress: Callable[[int, int, str], None] | None = None) -> list[FaithRow]:
    """Every score for every method's attribution of `target` on x (1, C, H, W), one row each."""
    device = next(model.parameters()).device
    x = x.to(device).float()
    fwd = Logits(model).eval()
    rows = []
    for i, (name, a) in enumerate(attributions.items()):
        t0 = time.perf_counter()
        inf = infidelity_score(model, x, a.attr, target, seed=seed)
        sens = sensitivity_score(model, x, name, target, seed=seed) if sensitivity else float("nan")
        d = deletion_curve(fwd, x, a.map, target, steps=steps)
        ins = insertion_curve(fwd, x, a.map, target, steps=steps)
        rows.append(FaithRow(name, inf, sens, d.auc, ins.auc, d, ins, time.perf_counter() - t0))
        if progress:
            progress(i + 1, len(attributions), name)
    return rows


def table(rows: Sequence[FaithRow]) -> list[dict]:
    """Rows as plain dicts (for a DataFrame or CSV), best-is columns named in the header."""
    return [{"method": r.method, "infidelity (lower better)": r.infidelity,
             "max-sensitivity (lower better)": r.sensitivity,
             "deletion AUC (lower better)": r.deletion_auc,
             "insertion AUC (higher better)": r.insertion_auc} for r in rows]
