"""Sanity check for attributions: cascading model-parameter randomisation (Adebayo et al. 2018).

Re-initialise the layers one by one from the top (the logits) down, on a private copy of the
model, and recompute every method's map after each step. A map that still looks like the
original once the weights it should explain are gone was never explaining the model (the
paper's example: Guided Backprop, which mostly shows edges of the image). The score is the
Spearman rank correlation of |map| against the original |map|, as in the paper's figures.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from karp_models.introspect.attribution import attribute

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
STILL_SIMILAR = 0.5     # |rank correlation| after full randomisation at or above this: flagged
PARTLY = 0.3

Progress = Callable[[int, int, str], None]   # (done, total, what is running now)

# ---------------------------------------------------------------------------- the layers, top first


@dataclass(frozen=True)
class Step:
    label: str                    # e.g. "features.stage3.conv2 + bn2"
    modules: tuple[str, ...]      # modules to re-initialise (reset_parameters)
    params: tuple[str, ...] = ()  # bare parameters of the root (ViT cls_token, pos_embed)


def randomisation_steps(model: nn.Module) -> list[Step]:
    """The layers with weights, grouped (a conv with the norm after it; a transformer block as
    one), in the order they are randomised: the top (logits) first."""
    blocks = tuple(getattr(model, "token_layers", []) or [])
    groups: list[tuple[str, list[str]]] = []
    for name, m in model.named_modules():
        if not name or any(True for _ in m.children()) or not any(True for _ in m.parameters(recurse=False)):
            continue
        block = next((b for b in blocks if name == b or name.startswith(b + ".")), None)
        if block is not None:
            if groups and groups[-1][0] == block:
                groups[-1][1].append(name)
            else:
                groups.append((block, [name]))
        elif isinstance(m, NORMS) and groups and groups[-1][0] not in blocks:
            groups[-1][1].append(name)                                 # conv -> BN: one step
        else:
            groups.append((name, [name]))
    root_params = tuple(n for n, _ in model.named_parameters(recurse=False))
    steps = []
    for i, (key, names) in enumerate(groups):
        extra = [n.rsplit(".", 1)[-1] for n in names if n != key and not n.startswith(key + ".")]
        label = key + "".join(f" + {e}" for e in extra)
        steps.append(Step(label, tuple(names), root_params if i == 0 else ()))
    return steps[::-1]


@torch.no_grad()
def randomise(model: nn.Module, step: Step, *, seed: int) -> None:
    """Re-initialise one step's modules in place with their own init (`reset_parameters`), seeded.
    Norm layers go back to the identity (weight 1, bias 0, running statistics 0 and 1)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in step.modules:
            m = model.get_submodule(name)
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            else:
                for p in m.parameters(recurse=False):
                    nn.init.normal_(p, std=0.02)
        for name in step.params:
            nn.init.trunc_normal_(getattr(model, name), std=0.02)


def randomised_copies(model: nn.Module, *, seed: int = 0, steps: Sequence[Step] | None = None):
    """Yield (step, model with this and every earlier step re-initialised), on one deep copy:
    `model` itself is never changed."""
    m = copy.deepcopy(model).eval()
    for i, step in enumerate(steps if steps is not None else randomisation_steps(model)):
        randomise(m, step, seed=seed * 1009 + i)
        yield step, m

# ---------------------------------------------------------------------------- the check


def rank_correlation(a: np.ndarray, b: np.ndarray, *, absolute: bool = True,
                     mask: np.ndarray | None = None) -> float:
    """Spearman rank correlation of two maps (of |map| by default), over `mask` when given;
    0 when either is constant."""
    a, b = np.ravel(a), np.ravel(b)
    if mask is not None:
        a, b = a[np.ravel(mask)], b[np.ravel(mask)]
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


@dataclass(frozen=True)
class Verdict:
    method: str
    final: float              # rank correlation after every layer is randomised
    on_object: float          # the same over the pixels that are not black (the object itself)
    flagged: bool             # the map barely changed: do not trust it to explain this model
    text: str                 # in plain words


@dataclass(frozen=True)
class SanityResult:
    steps: list[str]                      # "original model", then each randomised layer (cumulative)
    maps: dict[str, list[np.ndarray]]     # method -> one (H, W) map per step
    correlation: dict[str, list[float]]   # method -> Spearman of |map| vs the original, per step
    on_object: dict[str, list[float]]     # the same over non-black pixels only
    target_prob: list[float]              # the model's probability of the target class per step
    verdicts: dict[str, Verdict]
    seconds: float
    seed: int


def verdict(method: str, correlations: Sequence[float], on_object: Sequence[float]) -> Verdict:
    final, obj = float(correlations[-1]), float(on_object[-1])
    if abs(final) >= STILL_SIMILAR:
        text = (f"⚠️ {method} barely changes when the model's weights are replaced by random ones "
                f"(rank correlation with the original still {final:.2f}). Its map shows the image "
                f"more than what the model learned: do not trust it to explain this model.")
        if abs(obj) < PARTLY:
            text += (f" Most of the likeness is the outline: pixels equal to the black baseline "
                     f"always get 0. Inside the object the ranking does change ({obj:.2f}).")
        return Verdict(method, final, obj, True, text)
    if abs(final) >= PARTLY:
        text = (f"{method} changes only partly once every layer is random (rank correlation "
                f"{final:.2f}): part of its map comes from the image itself, not the model.")
        return Verdict(method, final, obj, False, text)
    text = (f"✅ {method} passes: its map falls apart as the layers are randomised (rank correlation "
            f"{final:.2f} at the end), so it depends on the weights the model learned.")
    return Verdict(method, final, obj, False, text)


def cascading_randomisation(model: nn.Module, x: torch.Tensor, target: int, methods: Sequence[str], *,
                            seed: int = 0, progress: Progress | None = None) -> SanityResult:
    """Adebayo et al.'s cascading randomisation for `methods` on one image x (1, C, H, W).

    Args:
        model: the trained model; a deep copy is randomised, `model` stays as it was.
        target: the class explained at every step (the original prediction, as in the paper).
        progress: called as progress(done, total, message) after each step.
    Returns:
        SanityResult with the maps, correlations per step and a verdict per method.
    """
    t0 = time.perf_counter()
    steps = randomisation_steps(model)
    total = len(steps) + 1
    device = next(model.parameters()).device
    x = x.to(device).float()

    def run(m: nn.Module, shared: bool) -> tuple[dict[str, np.ndarray], float]:
        maps = {k: attribute(m, x, target, k, seed=seed, shared=shared).map for k in methods}
        with torch.no_grad():
            p = torch.softmax(m(x)[0].float(), -1)[0, int(target)].item()
        return maps, p

    labels = ["original model"]
    first, p0 = run(model, True)
    maps = {k: [v] for k, v in first.items()}
    corr = {k: [1.0] for k in methods}
    obj = {k: [1.0] for k in methods}
    mask = (x[0].abs().sum(0) > 0).cpu().numpy()                      # (H, W) non-black pixels
    probs = [p0]
    if progress:
        progress(1, total, "original model")
    for i, (step, m) in enumerate(randomised_copies(model, seed=seed, steps=steps), start=2):
        now, p = run(m, False)                                        # m is our own copy
        labels.append(f"+ {step.label}")
        probs.append(p)
        for k in methods:
            maps[k].append(now[k])
            corr[k].append(rank_correlation(first[k], now[k]))
            obj[k].append(rank_correlation(first[k], now[k], mask=mask))
        if progress:
            progress(i, total, f"randomised {step.label}")
    verdicts = {k: verdict(k, corr[k], obj[k]) for k in methods}
    return SanityResult(labels, maps, corr, obj, probs, verdicts, time.perf_counter() - t0, seed)
