"""A GAN as a Task for the one Trainer: two optimisers, stepped in DCGAN's order every step.

Cites: Radford et al. 2016 and PyTorch's DCGAN example (D on real and detached fake images, then G
on the non-saturating loss; Adam 2e-4, beta1 0.5); Gulrajani et al. 2017 (the WGAN-GP losses,
Adam betas (0, 0.9)). The model is models/gan.py's DCGAN.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from karp_models.i18n import N_
from karp_models.models.gan import gradient_penalty
from karp_models.train.previews import Chart
from karp_models.train.tasks.base import as_device
from karp_models.train.tasks.generative import EVAL_SEED, FD_CHART, GenerativeTask
from karp_models.train.trainer import TrainConfig

# --- the GAN


class GANTask(GenerativeTask):
    """Two optimisers, stepped in DCGAN's order each step: the discriminator on real images and
    detached fakes, then the generator through the updated discriminator. Batches add the
    latents, drawn from the run's generator: (x, y, z (B, latent)), so a run resumes exactly.
    Adam without weight decay (cfg.weight_decay is not used), at cfg.lr for both. `charts`: the
    live curves, the two losses and D's two verdicts (probabilities; WGAN-GP: critic scores)."""

    def __init__(self, data: Any, model: nn.Module, judge: nn.Module | None | str = "auto"):
        super().__init__(data, model, judge)
        probability = getattr(model.config, "loss", "bce") == "bce"
        self.charts = (
            Chart(N_("Generator and discriminator losses"), ("g_loss", "d_loss"),
                  (N_("generator loss"), N_("discriminator loss")), N_("loss")),
            Chart(N_("What the discriminator says"), ("D(x)", "D(G(z))"),
                  (N_("D(x): real images"), N_("D(G(z)): generated images")),
                  N_("mean probability of 'real'") if probability else N_("mean critic score")),
            FD_CHART)

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
        penalty), D(x) and D(G(z)) held out, and the quality figures (see GenerativeTask.quality;
        the real-image floor only in a full evaluation). Deterministic."""
        device = as_device(device)
        x, y = self.held_out(split, device, max_batches, batch_size)
        n = len(x)
        z, labels = self.latents(n, EVAL_SEED)
        labels = y if self.conditional else None                            # D judges each real with its class
        fake = self.draw(model, z, labels, device) * 2 - 1                  # (n, C, H, W) in [-1, 1]
        sums = dict.fromkeys(("d_loss", "g_loss", "D(x)", "D(G(z))"), 0.0)
        was = model.training
        model.eval()
        try:
            for i in range(0, n, 500):
                real = x[i:i + 500].float() / 127.5 - 1
                lab = None if labels is None else labels[i:i + 500]
                d_loss, d_real, d_fake = self._losses(model, real, fake[i:i + 500], lab)
                parts = (d_loss, self._g_loss(model, d_fake), self._score(model, d_real),
                         self._score(model, d_fake))
                for k, v in zip(sums, parts):
                    sums[k] += float(v) * len(real)
        finally:
            model.train(was)
        out = {k: v / n for k, v in sums.items()}
        return {"loss": out["d_loss"] + out["g_loss"], **out} | self.quality(model, device, n,
                                                                             floor=max_batches is None)
