"""Does an attribution map say what the model does? Infidelity, max-sensitivity, deletion and insertion.

Cites: Yeh et al. 2019 (infidelity and max-sensitivity, as `captum.metrics.infidelity` and
`sensitivity_max`); Petsiuk et al. 2018, RISE (deletion and insertion curves and their areas).

- infidelity (lower is better): how badly attribution . noise predicts the change in the score
  when the image is perturbed by that noise (attributions rescaled optimally, `normalize=True`).
- max-sensitivity (lower is better): how far the map moves when the image moves by 0.02.
- deletion (lower area is better): black out the most important pixels first and follow the
  probability of the class; a faithful map makes it fall at once.
- insertion (higher area is better): start from black and put the most important pixels back first.

A map that cannot be judged (`similarity.judgeable`: zero everywhere, constant, not finite) gets
no scores and its reason; `rank` names a best only when one method is ahead of the others.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from karp_models.i18n import N_, _
from karp_models.introspect.attribution import Attribution, Logits, default_kwargs, explainer_for, seeded
from karp_models.introspect.similarity import judgeable

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
    from captum.metrics import infidelity   # lazy, as attribution.captum_attr

    a = torch.tensor(np.asarray(attr), device=x.device).float().reshape(x.shape)   # a copy: cached maps are read-only
    with seeded(seed):
        v = infidelity(Logits(model).eval(), gaussian_perturbation(std), x, a, target=int(target),
                       n_perturb_samples=n_perturb_samples, normalize=True)
    return float(v[0])


def sensitivity_score(model: nn.Module, x: torch.Tensor, method: str, target: int, *,
                      n_perturb_samples: int = 4, radius: float = 0.02, seed: int = 0) -> float:
    """captum.metrics.sensitivity_max of a method (its explainer re-run on perturbed copies)."""
    from captum.metrics import sensitivity_max   # lazy, as attribution.captum_attr

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
    infidelity: float         # nan when the map cannot be judged
    sensitivity: float
    deletion_auc: float
    insertion_auc: float
    deletion: Curve | None    # None when the map cannot be judged
    insertion: Curve | None
    seconds: float
    reason: str | None = None  # why the map cannot be judged ("the map is zero everywhere, ...")


NAN = float("nan")


def faithfulness(model: nn.Module, x: torch.Tensor, target: int, attributions: dict[str, Attribution], *,
                 steps: int = 28, seed: int = 0, sensitivity: bool = True,
                 progress: Callable[[int, int, str], None] | None = None) -> list[FaithRow]:
    """Every score for every method's attribution of `target` on x (1, C, H, W), one row each;
    a map that cannot be judged gets nan scores, no curves and its reason."""
    device = next(model.parameters()).device
    x = x.to(device).float()
    fwd = Logits(model).eval()
    rows = []
    for i, (name, a) in enumerate(attributions.items()):
        t0 = time.perf_counter()
        why = judgeable(a.map)
        if why is not None:
            rows.append(FaithRow(name, NAN, NAN, NAN, NAN, None, None, 0.0, _("the map {why}").format(why=why)))
        else:
            inf = infidelity_score(model, x, a.attr, target, seed=seed)
            sens = sensitivity_score(model, x, name, target, seed=seed) if sensitivity else NAN
            d = deletion_curve(fwd, x, a.map, target, steps=steps)
            ins = insertion_curve(fwd, x, a.map, target, steps=steps)
            rows.append(FaithRow(name, inf, sens, d.auc, ins.auc, d, ins, time.perf_counter() - t0))
        if progress:
            progress(i + 1, len(attributions), name)
    return rows

# ---------------------------------------------------------------------------- which is best


def baseline_note(x: np.ndarray | torch.Tensor, baseline: float = 0.0) -> str | None:
    """Why deletion and insertion cannot rank anything on this image (it equals the baseline
    everywhere, so removing or adding pixels changes nothing), or None."""
    a = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x)
    if a.size and np.all(a == baseline):
        return _("the image is the baseline itself (every pixel {value:g}): deleting or inserting pixels "
                 "changes nothing, and IG, DeepLift and Occlusion, which compare with that baseline, have "
                 "nothing to attribute").format(value=baseline)
    return None

COLUMNS = {   # FaithRow field -> (table header of the CSV, is higher better)
    "infidelity": ("infidelity (lower better)", False),
    "sensitivity": ("max-sensitivity (lower better)", False),
    "deletion_auc": ("deletion AUC (lower better)", False),
    "insertion_auc": ("insertion AUC (higher better)", True),
}
SHORT = {"infidelity": N_("infidelity"), "sensitivity": N_("max-sensitivity"),   # for the page (msgids)
         "deletion_auc": N_("deletion AUC"), "insertion_auc": N_("insertion AUC")}


@dataclass(frozen=True)
class Ranking:
    column: str               # a FaithRow field of COLUMNS
    places: dict[str, int]    # method -> place, 1 = best, tied methods share a place; only scored ones
    best: str | None          # the one best method, None when there is none (see reason)
    reason: str | None        # why no single best: too few scores, or a tie


TIE_RTOL, TIE_ATOL = 1e-3, 5e-4   # closer than this is closer than the table's three decimals show


def _tied(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=TIE_RTOL, atol=TIE_ATOL))


def rank(rows: Sequence[FaithRow], column: str) -> Ranking:
    """The methods ordered by one score of COLUMNS, best first. A single best is named only when
    at least two methods have a finite score and the first is not tied with the second (within
    0.1 % or 0.0005: a difference the table's three decimals would not show is no win)."""
    higher = COLUMNS[column][1]
    scored = [(r.method, float(getattr(r, column))) for r in rows if np.isfinite(getattr(r, column))]
    scored.sort(key=lambda mv: -mv[1] if higher else mv[1])          # stable: ties keep table order
    places: dict[str, int] = {}
    for i, (m, v) in enumerate(scored):
        places[m] = i + 1 if i == 0 or not _tied(v, scored[i - 1][1]) else places[scored[i - 1][0]]
    missing = [r.method for r in rows if not np.isfinite(getattr(r, column))]
    if len(scored) < 2:
        why = (_("no method has a score") if not scored else
               _("only {method} has a score, nothing to compare it with").format(method=scored[0][0]))
        if missing:
            why = _("{why} ({methods}: cannot judge)").format(why=why, methods=", ".join(missing))
        return Ranking(column, places, None, why)
    top = [m for m, p in places.items() if p == 1]
    if len(top) > 1:
        if len(top) == len(scored):
            why = _("all {n} methods tie at {value:.3g}: this score cannot tell them apart").format(
                n=len(top), value=scored[0][1])
        else:
            why = _("{methods} and {last} tie at {value:.3g}").format(
                methods=", ".join(top[:-1]), last=top[-1], value=scored[0][1])
        return Ranking(column, places, None, why)
    return Ranking(column, places, scored[0][0], None)


def table(rows: Sequence[FaithRow]) -> list[dict]:
    """Rows as plain dicts (for a DataFrame or CSV), best-is columns named in the header, and
    why a row has no scores."""
    return [{"method": r.method, **{head: getattr(r, f) for f, (head, _) in COLUMNS.items()},
             "cannot judge because": r.reason or ""} for r in rows]
