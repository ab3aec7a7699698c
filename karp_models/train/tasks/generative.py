"""Generative models as Tasks for the one Trainer: a GAN (two optimisers, stepped in DCGAN's order)
and a VAE (one loss, the negative ELBO), judged by a trained classifier, with a live preview of
samples from fixed latent vectors and a diversity figure beside them so mode collapse shows.

Cites: Radford et al. 2016 and PyTorch's DCGAN example (the training loop: D on real and detached
fake, then G on the non-saturating loss; Adam 2e-4, beta1 0.5; a fixed noise batch to watch);
Gulrajani et al. 2017 (the WGAN-GP losses, Adam betas (0, 0.9)); Kingma and Welling 2014 (the
VAE's ELBO); introspect/generative.py for the metrics (FID's formula in a classifier's features).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.introspect import generative as quality
from karp_models.train.tasks.base import as_device, fixed_subset
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


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


# --- the shared part: data, judge, fixed latents, quality


class _Generative:
    """Batches of real images (x (B, C, H, W) float in [0, 1], y (B,)) from an ImageData, never
    augmented; the judge (JUDGES[data.name], or `judge`, or none) and the quality figures."""

    unit = "samples"
    eval_split = "test"
    preview_every = 50

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
            if model == "auto":
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
        z = torch.randn(n, self.latent, generator=torch.Generator().manual_seed(seed))
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

    def _eval_n(self, max_batches: int | None, batch_size: int | None) -> int:
        n = EVAL_SAMPLES if max_batches is None else max_batches * (batch_size or 128)
        return max(2, min(EVAL_SAMPLES, n, len(self.data.test_x)))

    # --- preview and metadata

    def _grid_latents(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.conditional:
            return self.latents(GRID, GRID_SEED)
        z, _ = self.latents(COLUMNS, GRID_SEED)
        K = self.n_classes
        return z.repeat(K, 1), torch.arange(K).repeat_interleave(COLUMNS)        # (K * 8, latent), (K * 8,)

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
        return Samples(step=step, images=_uint8(x), columns=COLUMNS,
                       labels=None if labels is None else tuple(labels.tolist()),
                       classes=tuple(self.data.classes), diversity=diversity, **extra,
                       **self._reconstructions(model, device))

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


# --- the GAN


class GANTask(_Generative):
    """Two optimisers, stepped in DCGAN's order each step: the discriminator on real images and
    detached fakes, then the generator through the updated discriminator. Batches add the
    latents, drawn from the run's generator: (x, y, z (B, latent)), so a run resumes exactly.
    Adam without weight decay (cfg.weight_decay is not used), at cfg.lr for both."""

    def batch(self, split: str, batch_size: int, generator: torch.Generator,
              device: torch.device | str | None = None, augment: bool = True) -> Any:
        x, y = super().batch(split, batch_size, generator, device)
        return x, y, torch.randn(batch_size, self.latent, generator=generator).to(x.device)

    def configure_optimizers(self, model: nn.Module, cfg: TrainConfig,
                             device: torch.device) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999) if model.config.loss == "bce" else (0.0, 0.9)
        return {"discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr, betas=betas),
                "generator": torch.optim.Adam(model.generator.parameters(), lr=cfg.lr, betas=betas)}

    def _losses(self, model: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                labels: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """(d_loss without penalty, d_real, d_fake) logits or critic scores, for images in [-1, 1]."""
        d_real, d_fake = model.discriminate(real, labels), model.discriminate(fake, labels)
        if model.config.loss == "bce":
            d_loss = (F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real.float()))
                      + F.binary_cross_entropy_with_logits(d_fake.float(), torch.zeros_like(d_fake.float())))
        else:
            d_loss = d_fake.float().mean() - d_real.float().mean()
        return d_loss, d_real, d_fake

    def _g_loss(self, model: nn.Module, d_gen: torch.Tensor) -> torch.Tensor:
        if model.config.loss == "bce":  # non-saturating: maximise log D(G(z))
            return F.binary_cross_entropy_with_logits(d_gen.float(), torch.ones_like(d_gen.float()))
        return -d_gen.float().mean()

    @staticmethod
    def _score(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
        """D's mean belief that images are real (bce: a probability; wgan-gp: the critic's score)."""
        return (torch.sigmoid(logits.float()) if model.config.loss == "bce" else logits.float()).mean()

    def training_step(self, model: nn.Module, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        """Returns loss (d_loss + g_loss), d_loss, g_loss, D(x) and D(G(z)) (before D's step)."""
        from karp_models.models.gan import gradient_penalty

        x, y, z = batch
        labels = y if self.conditional else None
        real = x * 2 - 1                                                   # (B, C, H, W) in [-1, 1]
        fake = model(z, labels)
        d_loss, d_real, d_fake = self._losses(model, real, fake.detach(), labels)
        if model.config.loss == "wgan-gp":
            d_loss = d_loss + model.config.gp_weight * gradient_penalty(
                model.discriminator, real, fake.detach(), labels)
        ctx.step("discriminator", d_loss)
        g_loss = self._g_loss(model, model.discriminate(fake, labels))
        ctx.step("generator", g_loss)
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "D(x)": self._score(model, d_real), "D(G(z))": self._score(model, d_fake)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "test", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """On n fixed test images and n samples from fixed latents (n: EVAL_SAMPLES, or
        max_batches * batch_size, at most the split): the training losses (without the gradient
        penalty), D(x) and D(G(z)) held out, and the quality figures (see _Generative.quality;
        the real-image floor only in a full evaluation). Deterministic."""
        device = as_device(device)
        n = self._eval_n(max_batches, batch_size)
        t = self.images._split(split).on(device)
        idx = fixed_subset(t["x"].shape[0], n).to(device)
        real = t["x"][idx].float() / 127.5 - 1                              # (n, C, H, W) in [-1, 1]
        z, labels = self.latents(n, EVAL_SEED)
        if self.conditional:
            labels = t["y"][idx]                                            # D judges each real with its class
        labels = None if labels is None else labels.to(device)
        fake = self.draw(model, z, labels, device) * 2 - 1
        was = model.training
        model.eval()
        try:
            d_loss, d_real, d_fake = self._losses(model, real, fake, labels)
            g_loss = self._g_loss(model, d_fake)
        finally:
            model.train(was)
        out = {"loss": float(d_loss + g_loss), "d_loss": float(d_loss), "g_loss": float(g_loss),
               "D(x)": float(self._score(model, d_real)), "D(G(z))": float(self._score(model, d_fake))}
        return out | self.quality(model, device, n, floor=max_batches is None)


# --- the VAE


class VAETask(_Generative):
    """One loss, the negative ELBO (recon + beta * kl, nats per image); the trainer steps it.
    The reparameterisation noise comes from torch's RNG, which the trainer seeds and saves."""

    def training_step(self, model: nn.Module, batch: Any, ctx: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        _, losses = model(x, y if self.conditional else None)
        return losses

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str | None = None,
                 split: str = "test", max_batches: int | None = None,
                 batch_size: int | None = None) -> dict[str, float]:
        """loss, recon and kl (nats per image) on n fixed test images with noise from EVAL_SEED,
        and the quality figures of n samples from the prior. Deterministic."""
        device = as_device(device)
        n = self._eval_n(max_batches, batch_size)
        t = self.images._split(split).on(device)
        idx = fixed_subset(t["x"].shape[0], n).to(device)
        sums = dict.fromkeys(("loss", "recon", "kl"), 0.0)
        was = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(EVAL_SEED)
                for i in range(0, n, 500):
                    sel = idx[i:i + 500]
                    x = t["x"][sel].float() / 255
                    _, losses = model(x, t["y"][sel] if self.conditional else None)
                    for k in sums:
                        sums[k] += float(losses[k]) * len(sel)
        finally:
            model.train(was)
        return {k: v / n for k, v in sums.items()} | self.quality(model, device, n, floor=max_batches is None)

    def _reconstructions(self, model: nn.Module, device: torch.device) -> dict[str, np.ndarray]:
        """16 fixed test images and their reconstructions through the encoder's mean."""
        idx = fixed_subset(len(self.data.test_x), 16)
        x = self.data.test_x[idx].to(device)
        labels = self.data.test_y[idx].to(device) if self.conditional else None
        mu, _ = model.encode(x.float() / 255, labels)
        return {"originals": x.cpu().numpy(), "reconstructions": _uint8(model.generate(mu, labels))}
