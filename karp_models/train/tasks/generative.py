"""What the generative tasks share (gan.py: two optimisers; vae.py: the ELBO): real images as
batches, the classifier that judges samples, fixed latents, the quality figures and the live
preview, a grid drawn from fixed latent vectors with a diversity figure beside it so mode collapse
shows (PyTorch's DCGAN example watches a fixed noise batch the same way).

The metrics are introspect/generative.py's: FID's formula (Heusel et al. 2017) in the
penultimate features of karp's own trained classifier (no Inception weights offline).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from karp_models.i18n import N_
from karp_models.introspect import generative as quality
from karp_models.train.previews import Chart
from karp_models.train.tasks.base import fixed_subset
from karp_models.train.tasks.images import ImageClassification
from karp_models.train.trainer import TrainConfig

WEIGHTS = Path(__file__).resolve().parents[3] / "weights"
# the classifier that judges each dataset's samples (its penultimate features: 192 for fast-wide)
JUDGES = {"fashion-mnist": "fast-fashion-mnist.safetensors", "mnist": "classic-mnist.safetensors"}
EVAL_SAMPLES = 10_000   # samples in the full evaluation: as many as Fashion-MNIST's test images
EVAL_SEED = 4321        # latents (and the VAE's noise) of every evaluation
GRID_SEED = 0           # the preview's fixed latents
GRID = 64               # unconditional preview: 8 x 8 samples; conditional: one row per class x 8
COLUMNS = 8
# the recipes the shipped weights were trained with (the app's defaults): DCGAN's Adam 2e-4,
# constant; no clipping, decay or augmentation (the model learns the images as they are)
RECIPES = {
    "gan": TrainConfig(steps=6000, batch_size=128, lr=2e-4, schedule="constant", warmup=0.0,
                       grad_clip=0.0, weight_decay=0.0, augment=False, eval_every=500, eval_batches=20),
    "vae": TrainConfig(steps=6000, batch_size=128, lr=1e-3, schedule="cosine", warmup=0.02,
                       final_lr=0.1, grad_clip=0.0, weight_decay=0.0, augment=False, eval_every=500,
                       eval_batches=20),
}

# the quality curve both families draw live: measured at every evaluation on eval_batches *
# batch_size samples, at the end on EVAL_SAMPLES, beside real images' own distance (the floor)
FD_CHART = Chart(N_("Frechet distance (lower is better)"), ("fd",), (N_("Frechet distance"),),
                 N_("to the test images (log scale)"), train=False, floor="real_fd", log=True)

# --- the live preview


@dataclass(frozen=True)
class Samples:
    """What a generator draws from its fixed latents at a step, and how varied it is.

    images: (N, C, H, W) uint8, a grid of `columns` per row; conditional: row k asks for class
    labels[k * columns] and column j uses the same z in every row. diversity: mean pairwise
    distance of the samples over that of as many fixed real test images (the judge's features;
    pixels without a judge): about 1 as varied as real images, towards 0 as they collapse onto
    one. predicted / distinct: the judge's class per sample and how many classes it sees.
    VAE: originals and reconstructions, (16, C, H, W) uint8 each (fixed test images, through mu).
    history: (step, diversity, distinct or None) of every preview of this run so far, oldest
    first (this one last): a fall in diversity is mode collapse as it happens. `snapshot` (the
    images) is kept over the run under `snapshot_key` (train/previews.keep_snapshot), for the
    time-lapse.
    """

    step: int
    images: np.ndarray
    columns: int
    labels: tuple[int, ...] | None
    classes: tuple[str, ...]
    diversity: float
    predicted: tuple[int, ...] | None = None
    distinct: int | None = None
    originals: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    history: tuple[tuple[int, float, int | None], ...] = ()
    snapshot_key: ClassVar[str] = "sample_grids"

    @property
    def snapshot(self) -> np.ndarray:
        return self.images


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def fixed_latents(n: int, latent: int, seed: int) -> torch.Tensor:
    """n latents z (n, latent) ~ N(0, I) from `seed`, drawn on the CPU by their own generator:
    the same on every device and whatever else used torch's RNG."""
    return torch.randn(n, latent, generator=torch.Generator().manual_seed(int(seed)))


def grid_latents(latent: int, seed: int, n_classes: int | None = None, n: int = GRID,
                 columns: int = COLUMNS) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The latents of a sample grid: n from `seed` (unconditional), or for a conditional model
    (n_classes given) `columns` latents repeated in one row per class, with the labels
    (n_classes * columns,): column j shows the same z in every row. The live preview's grid is
    grid_latents(latent, GRID_SEED[, K])."""
    if n_classes is None:
        return fixed_latents(n, latent, seed), None
    z = fixed_latents(columns, latent, seed)
    return z.repeat(n_classes, 1), torch.arange(n_classes).repeat_interleave(columns)   # (K * c, latent), (K * c,)


# --- the shared part: data, judge, fixed latents, quality


class GenerativeTask:
    """Batches of real images (x (B, C, H, W) float in [0, 1], y (B,)) from an ImageData, never
    augmented; the judge (JUDGES[data.name], or `judge`, or none) and the quality figures."""

    unit = "samples"
    eval_split = "test"
    preview_every = 25          # a grid costs a few milliseconds: often, so the time-lapse is smooth

    def __init__(self, data: Any, model: nn.Module, judge: nn.Module | None | str = "auto"):
        self.data = data
        self.images = ImageClassification(data, augment=False)
        self.items_per_epoch = self.images.items_per_epoch
        self.conditional = bool(model.config.conditional)
        self.latent = int(model.config.latent)
        self.n_classes = len(data.classes)
        self._judge_arg = judge
        self._judge: quality.Judge | None = None
        self._judge_file: Path | None = None
        self._cache: dict[str, Any] = {}

    def items_per_batch(self, batch_size: int) -> int:
        return batch_size

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None, augment: bool = True) -> Any:
        return self.images.batch(split, batch_size, generator, device, augment=False)

    # --- the judge

    @property
    def judge(self) -> quality.Judge | None:
        """The classifier scoring samples, loaded on first use; None when there is none."""
        if self._judge is None and self._judge_arg is not None:
            model = self._judge_arg
            if isinstance(model, str):  # 'auto': the shipped classifier for this dataset
                from karp_models.train.checkpoints import load_checkpoint

                name = JUDGES.get(getattr(self.data, "name", ""))
                if name is None or not (WEIGHTS / name).is_file():
                    self._judge_arg = None
                    return None
                ck = load_checkpoint(WEIGHTS / name)
                if list(ck.meta.get("classes", [])) != list(self.data.classes):
                    raise ValueError(f"{name} has other classes than {self.data.name}")
                model, self._judge_file = ck.model, WEIGHTS / name
            self._judge = quality.Judge(model)
        return self._judge

    def _reference(self, device: torch.device) -> quality.FrechetReference:
        """The Gaussian of the whole test split's features (computed once)."""
        if "reference" not in self._cache:
            feats, probs = self.judge(self.data.test_x.to(device))
            self._cache["reference"] = quality.FrechetReference(feats)
            self._cache["real_probs"] = probs
        return self._cache["reference"]

    # --- drawing

    def latents(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n latents z (n, latent) ~ N(0, I) from `seed`, and for a conditional model the labels
        (n,) cycling over the classes (balanced). On the CPU, so every device draws the same."""
        z = fixed_latents(n, self.latent, seed)
        return z, (torch.arange(n) % self.n_classes if self.conditional else None)

    @torch.no_grad()
    def draw(self, model: nn.Module, z: torch.Tensor, labels: torch.Tensor | None,
             device: torch.device, batch_size: int = 500) -> torch.Tensor:
        """model.generate in eval mode, in batches: images (n, C, H, W) float in [0, 1]."""
        was = model.training
        model.eval()
        try:
            out = [model.generate(z[i:i + batch_size].to(device),
                                  None if labels is None else labels[i:i + batch_size].to(device))
                   for i in range(0, len(z), batch_size)]
        finally:
            model.train(was)
        return torch.cat(out)

    def quality(self, model: nn.Module, device: torch.device, n: int,
                floor: bool = True) -> dict[str, float]:
        """Frechet distance to the whole test split, coverage and confidence of n samples drawn
        from EVAL_SEED's latents; with floor, the same figures for real images: the FD of n
        training images (a fixed choice) and the test images' own coverage and confidence.
        {} without a judge."""
        if self.judge is None:
            return {}
        ref = self._reference(device)
        feats, probs = self.judge(self.draw(model, *self.latents(n, EVAL_SEED), device))
        out = {"fd": ref.distance(feats), "coverage": quality.coverage(probs),
               "confidence": quality.confidence(probs)}
        if floor:
            if "floor" not in self._cache:
                idx = fixed_subset(len(self.data.train_x), min(n, len(self.data.train_x)))
                real_feats, _ = self.judge(self.data.train_x[idx].to(device))
                real = self._cache["real_probs"]
                self._cache["floor"] = {"real_fd": ref.distance(real_feats),
                                        "real_coverage": quality.coverage(real),
                                        "real_confidence": quality.confidence(real)}
            out.update(self._cache["floor"])
        return out

    def held_out(self, split: str, device: torch.device, max_batches: int | None,
                 batch_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The evaluation's real images: n of the split (a fixed choice), uint8 (n, C, H, W) and
        labels (n,) on `device`; n = EVAL_SAMPLES, or max_batches * batch_size, at most the split."""
        t = self.images._split(split).on(device)
        n = EVAL_SAMPLES if max_batches is None else max_batches * (batch_size or 128)
        n = max(2, min(EVAL_SAMPLES, n, t["x"].shape[0]))
        idx = fixed_subset(t["x"].shape[0], n).to(device)
        return t["x"][idx], t["y"][idx]

    # --- preview and metadata

    def _grid_latents(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return grid_latents(self.latent, GRID_SEED, self.n_classes if self.conditional else None)

    def preview(self, model: nn.Module, device: torch.device, step: int) -> Samples:
        """Samples from the fixed latents (the same every call), the judge's view of them and
        their diversity relative to real test images."""
        z, labels = self._grid_latents()
        x = self.draw(model, z, labels, device)
        n, judge = len(x), self.judge
        real = self.data.test_x[fixed_subset(len(self.data.test_x), n)].to(device)
        if judge is not None:
            feats, probs = judge(x)
            key = f"diversity_real_{n}"
            if key not in self._cache:
                self._cache[key] = quality.mean_pairwise_distance(judge(real)[0])
            pred = probs.argmax(1)
            extra = {"predicted": tuple(pred.tolist()), "distinct": int(pred.unique().numel())}
        else:
            feats, extra = x.flatten(1), {}
            self._cache.setdefault(f"diversity_real_{n}", quality.mean_pairwise_distance(
                real.float().div(255).flatten(1)))
        diversity = quality.mean_pairwise_distance(feats) / max(self._cache[f"diversity_real_{n}"], 1e-12)
        history = [h for h in self._cache.get("history", ()) if h[0] < step]   # a rerun step replaces
        history.append((step, diversity, extra.get("distinct")))
        self._cache["history"] = history
        return Samples(step=step, images=as_uint8(x), columns=COLUMNS,
                       labels=None if labels is None else tuple(labels.tolist()),
                       classes=tuple(self.data.classes), diversity=diversity, **extra,
                       history=tuple(history), **self._reconstructions(model, device))

    def _reconstructions(self, model: nn.Module, device: torch.device) -> dict[str, np.ndarray]:
        return {}

    def meta(self) -> dict[str, Any]:
        """Classes, latent size and the judge (file, sha256, layer) the metrics were measured with."""
        judge = None
        if self.judge is not None:
            judge = {"layer": self.judge.layer, "eval_samples": EVAL_SAMPLES, "eval_seed": EVAL_SEED}
            if self._judge_file is not None:
                judge.update(file=self._judge_file.name,
                             sha256=hashlib.sha256(self._judge_file.read_bytes()).hexdigest())
        return {"classes": list(self.data.classes), "latent": self.latent,
                "conditional": self.conditional, "judge": judge}

    def state_dict(self) -> dict[str, Any]:
        return self.images.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images.load_state_dict(state)
