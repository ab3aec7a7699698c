"""Sanity check for attributions: cascading model-parameter randomisation (Adebayo et al. 2018,
"Sanity Checks for Saliency Maps", arXiv:1810.03292).

Re-initialise the layers one by one from the top (the logits) down, on a private copy of the
model, and recompute every method's map after each step. A map that still looks like the
original once the weights it should explain are gone was never explaining the model (the
paper's example: Guided Backprop, which mostly shows edges of the image). As in the paper, each
map is compared with the original by several similarities, on |map| and on the signed map
(`similarity.compare`: Spearman, SSIM, HOG); the verdict says which of them decides it. A map
that cannot be judged (zero everywhere, constant, not finite) gets "cannot judge" and why.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from karp_models.i18n import N_, NC_, _, pgettext
from karp_models.introspect.attribution import METHODS, attribute, title
from karp_models.introspect.similarity import Similarity, compare

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
STILL_SIMILAR = 0.5     # every similarity after full randomisation at or above this: fails
PARTLY = 0.3            # every similarity below this: passes; in between: partly

Progress = Callable[[int, int, str], None]   # (done, total, what is running now)

# ---------------------------------------------------------------------------- the layers, top first


@dataclass(frozen=True)
class Step:
    label: str                    # e.g. "features.stage3.conv2 + bn2"
    modules: tuple[str, ...]      # modules to re-initialise (reset_parameters)
    params: tuple[str, ...] = ()  # bare parameters of the root (ViT cls_token, pos_embed)
    name: str = ""                # for people: "stage3 conv2", "fc (output)", "patch embedding (input)"


SPECIAL = {"ln_f": NC_("layer", "final norm"), "patch_embed": NC_("layer", "patch embedding"),
           "head": NC_("layer", "head"), "stem.conv": NC_("layer", "stem conv")}


def readable(key: str) -> str:
    """A layer's short name: 'features.stage3.conv2' -> 'stage3 conv2', 'blocks.0' -> 'block 1',
    'ln_f' -> 'final norm' (container prefixes `features.`, `classifier.` dropped)."""
    key = re.sub(r"^(features|classifier)\.", "", key)
    key = re.sub(r"\bblocks\.(\d+)", lambda m: _("block {n}").format(n=int(m.group(1)) + 1), key)
    if key in SPECIAL:
        return pgettext("layer", SPECIAL[key])
    return key.replace(".", " ").replace("_", " ")


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
        name = (_("{layer} (input)") if i == 0 else _("{layer} (output)") if i == len(groups) - 1
                else "{layer}").format(layer=readable(key))
        steps.append(Step(label, tuple(names), root_params if i == 0 else (), name))
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

# ---------------------------------------------------------------------------- the verdict

PASSES, PARTLY_DEPENDS, FAILS, CANNOT = "passes", "partly", "fails", "cannot judge"

WHAT = {   # what survives or changes when a similarity stays high or falls, for a student (msgids)
    "Spearman |map|": N_("the ranking of the pixels by how much they count"),
    "SSIM |map|": N_("the shape of the regions that count"),
    "HOG |map|": N_("the edges of the regions that count"),
    "Spearman signed": N_("the ranking of the pixels from most for to most against the class"),
    "SSIM signed": N_("the layout of the red (for) and blue (against) regions"),
    "HOG signed": N_("the edges between the red and blue regions"),
}


def what(key: str) -> str:
    """What a similarity measures, in words of the current language."""
    return _(WHAT[key])


def measure_name(key: str) -> str:
    """'Spearman |map|' -> 'Spearman of |map|'; 'SSIM signed' -> 'SSIM of the signed map'."""
    measure, kind = key.split(" ", 1)
    return (_("{measure} of |map|") if kind == "|map|" else _("{measure} of the signed map")).format(
        measure=measure)


@dataclass(frozen=True)
class Verdict:
    method: str
    status: str                   # PASSES | PARTLY_DEPENDS | FAILS | CANNOT
    final: dict[str, float]       # every similarity after the last layer is randomised
    highest: str | None           # the similarity that stays most alike (decides "fails", "partly")
    lowest: str | None            # the one that changes most (decides "passes", "partly")
    on_object: float              # Spearman of |map| over the non-black pixels only (nan: none)
    reason: str | None            # why it cannot be judged
    text: str                     # in plain words

    @property
    def flagged(self) -> bool:
        """The map barely changed: do not trust it to explain this model."""
        return self.status == FAILS

    @property
    def drivers(self) -> tuple[str, ...]:
        """The similarities that decide the verdict."""
        return {FAILS: (self.lowest,), PASSES: (self.highest,),
                PARTLY_DEPENDS: (self.highest, self.lowest)}.get(self.status, ())


def verdict(method: str, final: Similarity, on_object: float = float("nan")) -> Verdict:
    """The verdict on one method from its similarities after every layer is randomised:
    fails when even the least alike is still >= STILL_SIMILAR, passes when even the most alike is
    < PARTLY, partly in between (naming what survives and what changes); cannot judge when
    `final` has no values (its reason is said)."""
    name = title(method)
    if not final.values:
        text = _("**{method} cannot be judged**: {reason}. A map that ranks no pixel can neither "
                 "pass nor fail.").format(method=name, reason=final.reason)
        return Verdict(method, CANNOT, {}, None, None, on_object, final.reason, text)
    vals = final.values
    hi, lo = max(vals, key=vals.get), min(vals, key=vals.get)
    outline = ""
    if vals.get("Spearman |map|", 0) >= STILL_SIMILAR and np.isfinite(on_object) and on_object < PARTLY:
        outline = " " + _("Much of that is the black background, which gets 0 whatever the weights; on "
                          "the object itself the ranking does change (Spearman of |map| {value:.2f}).").format(
                              value=on_object)
    if vals[lo] >= STILL_SIMILAR:
        status = FAILS
        text = _("**{method} fails**: with every layer random its map is still like the original by "
                 "every measure (even the least alike, {measure}, is {value:.2f}). It shows the image "
                 "more than what the model learned: do not trust it to explain this model.").format(
                     method=name, measure=measure_name(lo), value=vals[lo]) + outline
    elif vals[hi] < PARTLY:
        status = PASSES
        text = _("**{method} passes**: with every layer random its map is unlike the original by "
                 "every measure (even the most alike, {measure}, is only {value:.2f}), so it depends on "
                 "what the model learned.").format(method=name, measure=measure_name(hi), value=vals[hi])
    else:
        status = PARTLY_DEPENDS
        kept = (_("Still there with every layer random: {what} ({measure} {value:.2f}), so that comes "
                  "from the image.") if vals[hi] >= STILL_SIMILAR else
                _("Partly still there with every layer random: {what} ({measure} {value:.2f}), so that "
                  "comes from the image.")).format(what=what(hi), measure=measure_name(hi), value=vals[hi])
        lost = (_("Lost: {what} ({measure} {value:.2f}), so that comes from the model.") if vals[lo] < PARTLY
                else _("Only partly kept: {what} ({measure} {value:.2f}), so that comes from the model.")
                ).format(what=what(lo), measure=measure_name(lo), value=vals[lo])
        text = " ".join((_("**{method} depends on the model in part.**").format(method=name),
                         kept + (outline if hi == "Spearman |map|" else ""), lost))
    return Verdict(method, status, dict(vals), hi, lo, on_object, None, text)

def decide(method: str, sims: list[Similarity], on_object: list[float], names: list[str]) -> Verdict:
    """The verdict from a method's similarities at every step (index 0: the trained model): the
    last randomised step whose map can be judged decides, so one blank map at the end does not
    hide what the steps before showed. A map that is judgeable for the trained model and blank
    for every randomised one vanished with the weights: it passes."""
    if len(sims) < 2 or not sims[0].values and sims[0].reason:
        return verdict(method, sims[0] if sims else Similarity({}, "no map"), float("nan"))
    last = next((i for i in range(len(sims) - 1, 0, -1) if sims[i].values), None)
    if last is None:
        text = _("**{method} passes**: {reason}, as with every other randomised layer: what it showed "
                 "came from what the model learned.").format(method=title(method), reason=sims[-1].reason)
        return Verdict(method, PASSES, {}, None, None, float("nan"), None, text)
    v = verdict(method, sims[last], on_object[last])
    if last == len(sims) - 1:
        return v
    note = " " + _("(Judged with the layers down to {layer} random; {reason}.)").format(
        layer=names[last], reason=sims[-1].reason)
    return dataclasses.replace(v, text=v.text + note)


# ---------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class SanityResult:
    steps: list[str]                         # "original model", then "+ <layer>" per step (cumulative)
    names: list[str]                         # the same for people: "original", "fc (output)", ...
    maps: dict[str, list[np.ndarray]]        # method -> one (H, W) map per step
    similarity: dict[str, list[Similarity]]  # method -> its map vs the original, per step
    on_object: dict[str, list[float]]        # Spearman of |map| over non-black pixels (nan: cannot judge)
    target_prob: list[float]                 # the model's probability of the target class per step
    verdicts: dict[str, Verdict]
    seconds: float
    seed: int

    def series(self, method: str, key: str = "Spearman |map|") -> list[float]:
        """One similarity of `method` per step, nan where it cannot be judged."""
        return [s.values.get(key, float("nan")) for s in self.similarity[method]]

    def measures(self, method: str) -> dict[str, list[float]]:
        """Every similarity of `method` per step ({} when no step could be judged)."""
        keys = dict.fromkeys(key for s in self.similarity[method] for key in s.values)
        return {key: self.series(method, key) for key in keys}

    @property
    def correlation(self) -> dict[str, list[float]]:
        """Spearman of |map| per method and step (the paper's main figure)."""
        return {k: self.series(k) for k in self.similarity}

    def records(self) -> list[dict]:
        """Long format for a CSV: one row per step, method and similarity; a map that cannot be
        judged gets one row with an empty value and the reason."""
        rows = []
        for k, sims in self.similarity.items():
            for step, name, p, s in zip(self.steps, self.names, self.target_prob, sims):
                base = {"step": step, "layer": name, "P(target)": p, "method": k}
                if not s.values:
                    rows.append({**base, "similarity": "", "value": float("nan"), "cannot judge because": s.reason})
                rows += [{**base, "similarity": key, "value": v, "cannot judge because": ""}
                         for key, v in s.values.items()]
        return rows


def _signed(method: str) -> bool:
    m = METHODS.get(method)
    return True if m is None else m.signed


def cascading_randomisation(model: nn.Module, x: torch.Tensor, target: int, methods: Sequence[str], *,
                            seed: int = 0, progress: Progress | None = None) -> SanityResult:
    """Adebayo et al.'s cascading randomisation for `methods` on one image x (1, C, H, W).

    Args:
        model: the trained model; a deep copy is randomised, `model` stays as it was.
        target: the class explained at every step (the original prediction, as in the paper).
        progress: called as progress(done, total, message) after each step.
    Returns:
        SanityResult with the maps, the similarities per step and a verdict per method. Never
        raises for degenerate maps (a blank image, a class with no evidence): they get "cannot judge".
    """
    t0 = time.perf_counter()
    steps = randomisation_steps(model)
    total = len(steps) + 1
    device = next(model.parameters()).device
    x = x.to(device).float()
    mask = (x[0].abs().sum(0) > 0).cpu().numpy()                      # (H, W) non-black pixels

    def run(m: nn.Module, shared: bool) -> tuple[dict[str, np.ndarray], float]:
        maps = {k: attribute(m, x, target, k, seed=seed, shared=shared).map for k in methods}
        with torch.no_grad():
            p = torch.softmax(m(x)[0].float(), -1)[0, int(target)].item()
        return maps, p

    def compare_all(now: dict[str, np.ndarray], what: str) -> None:
        for k in methods:
            maps[k].append(now[k])
            names = (_("its map for the trained model"), what)
            sim[k].append(compare(first[k], now[k], signed=_signed(k), names=names))
            obj = compare(first[k], now[k], signed=False, mask=mask, measures=("Spearman",))
            on_object[k].append(obj.values.get("Spearman |map|", float("nan")))

    first, p0 = run(model, True)
    maps: dict[str, list[np.ndarray]] = {k: [] for k in methods}
    sim: dict[str, list[Similarity]] = {k: [] for k in methods}
    on_object: dict[str, list[float]] = {k: [] for k in methods}
    compare_all(first, _("its map for the trained model"))
    labels, names, probs = ["original model"], [_("original")], [p0]
    if progress:
        progress(1, total, _("original model"))
    for i, (step, m) in enumerate(randomised_copies(model, seed=seed, steps=steps), start=2):
        now, p = run(m, False)                                        # m is our own copy
        labels.append(f"+ {step.label}")
        names.append(step.name)
        probs.append(p)
        compare_all(now, _("its map with the layers down to {layer} random").format(layer=step.name))
        if progress:
            progress(i, total, _("randomised {layer}").format(layer=step.label))
    verdicts = {k: decide(k, sim[k], on_object[k], names) for k in methods}
    return SanityResult(labels, names, maps, sim, on_object, probs, verdicts, time.perf_counter() - t0, seed)
