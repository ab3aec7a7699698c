"""A VAE as a Task for the one Trainer: one loss, the negative ELBO (Kingma and Welling 2014),
stepped by the trainer; reconstructions of fixed test images join the live preview. The model is
models/vae.py's VAE.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from karp_models.i18n import N_
from karp_models.train.previews import Chart
from karp_models.train.tasks.base import as_device, fixed_subset
from karp_models.train.tasks.generative import EVAL_SEED, FD_CHART, GenerativeTask, as_uint8

# --- the VAE


class VAETask(GenerativeTask):
    """One loss, the negative ELBO (recon + beta * kl, nats per image); the trainer steps it.
    The reparameterisation noise comes from torch's RNG, which the trainer seeds and saves.
    `charts`: the live curves, the loss's two terms and the Frechet distance."""

    charts = (Chart(N_("The two terms of the loss (the negative ELBO)"), ("recon", "kl"),
                    (N_("reconstruction"), N_("KL divergence")), N_("nats per image (log scale)"),
                    log=True),
              FD_CHART)

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
        x_all, y_all = self.held_out(split, device, max_batches, batch_size)
        n = len(x_all)
        sums = dict.fromkeys(("loss", "recon", "kl"), 0.0)
        was = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(EVAL_SEED)
                for i in range(0, n, 500):
                    x, y = x_all[i:i + 500].float() / 255, y_all[i:i + 500]
                    _, losses = model(x, y if self.conditional else None)
                    for k in sums:
                        sums[k] += float(losses[k]) * len(x)
        finally:
            model.train(was)
        return {k: v / n for k, v in sums.items()} | self.quality(model, device, n, floor=max_batches is None)

    def _reconstructions(self, model: nn.Module, device: torch.device) -> dict[str, np.ndarray]:
        """16 fixed test images and their reconstructions through the encoder's mean."""
        idx = fixed_subset(len(self.data.test_x), 16)
        x = self.data.test_x[idx].to(device)
        labels = self.data.test_y[idx].to(device) if self.conditional else None
        mu, _ = model.encode(x.float() / 255, labels)
        return {"originals": x.cpu().numpy(), "reconstructions": as_uint8(model.generate(mu, labels))}
