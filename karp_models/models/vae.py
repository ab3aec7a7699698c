"""A convolutional variational autoencoder for small images, and its class-conditioned variant: an
encoder to a Gaussian over a small latent space, a decoder back to pixels, trained on the ELBO.

Cites: Kingma and Welling 2014, "Auto-Encoding Variational Bayes" (the reparameterisation trick,
the closed-form KL to N(0, I), a Bernoulli decoder for [0, 1] pixels, Appendices B and C); Sohn,
Lee and Yan 2015 (the conditional VAE: the label goes into the encoder and the decoder); Higgins
et al. 2017 (beta, the KL's weight). The convolution layout mirrors models/gan.py's DCGAN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 1
    image_size: int = 28            # square, divisible by 4: (B, in_channels, image_size, image_size)
    n_classes: int = 10             # used when conditional
    conditional: bool = False       # class-conditioned encoder and decoder (CVAE)
    latent: int = 16                # size of z
    width: int = 32                 # channels of the first encoder / last decoder convolution
    hidden: int = 256               # the dense layer between the convolutions and z
    beta: float = 1.0               # weight of the KL term (1: the ELBO)

    def __post_init__(self) -> None:
        if self.image_size % 4 or self.image_size < 8:
            raise ValueError(f"image_size must be a multiple of 4 and >= 8, got {self.image_size}")
        if self.latent < 1 or self.width < 1 or self.beta < 0 or (self.conditional and self.n_classes < 2):
            raise ValueError("latent, width >= 1, beta >= 0; a conditional VAE needs >= 2 classes")


PRESETS: dict[str, VAEConfig] = {
    "vae": VAEConfig(),                                     # the shipped one
    "2d": VAEConfig(latent=2),                              # a latent plane to walk (Kingma & Welling Fig. 4)
    "tiny": VAEConfig(latent=4, width=8, hidden=32),        # tests
}

# ---------------------------------------------------------------------------- model


class VAE(nn.Module):
    """Encoder q(z | x [, y]) = N(mu, diag(exp(logvar))), decoder p(x | z [, y]) Bernoulli per
    pixel (logits). Pixels are floats in [0, 1]; losses are nats per image."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = c = config
        self.s, w, S = c.image_size // 4, c.width, c.image_size
        cond = c.n_classes if c.conditional else 0          # one-hot label size
        self.encoder = nn.Sequential(
            nn.Conv2d(c.in_channels + (1 if cond else 0), w, 4, 2, 1), nn.ReLU(True),  # (B, w, S/2, S/2)
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(True),                             # (B, 2w, S/4, S/4)
            nn.Flatten(), nn.Linear(2 * w * self.s * self.s, c.hidden), nn.ReLU(True))
        self.label_map = nn.Embedding(c.n_classes, S * S) if cond else None  # the label as an input channel
        self.to_mu = nn.Linear(c.hidden + cond, c.latent)
        self.to_logvar = nn.Linear(c.hidden + cond, c.latent)
        self.project = nn.Sequential(nn.Linear(c.latent + cond, c.hidden), nn.ReLU(True),
                                     nn.Linear(c.hidden, 2 * w * self.s * self.s), nn.ReLU(True))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(True),                    # (B, w, S/2, S/2)
            nn.ConvTranspose2d(w, c.in_channels, 4, 2, 1))                           # (B, C, S, S) logits

    def _one_hot(self, labels: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if not self.config.conditional:
            return None
        if labels is None:
            raise ValueError("a conditional VAE needs labels (B,)")
        return F.one_hot(labels, self.config.n_classes).to(like.dtype)             # (B, K)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, S, S) in [0, 1] -> (mu, logvar), each (B, latent)."""
        y = self._one_hot(labels, x)
        if y is not None:
            S = x.size(-1)
            x = torch.cat([x, self.label_map(labels).view(-1, 1, S, S).to(x.dtype)], dim=1)  # (B, C + 1, S, S)
        h = self.encoder(x)                                                          # (B, hidden)
        if y is not None:
            h = torch.cat([h, y], dim=1)                                             # (B, hidden + K)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent) -> pixel logits (B, C, S, S)."""
        y = self._one_hot(labels, z)
        if y is not None:
            z = torch.cat([z, y], dim=1)                                             # (B, latent + K)
        h = self.project(z).view(z.size(0), -1, self.s, self.s)                     # (B, 2w, s, s)
        return self.decoder(h)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reconstruct x (B, C, S, S) in [0, 1] through a sampled z (torch's RNG).

        Returns the reconstruction's mean (B, C, S, S) in [0, 1] and the losses, means over the
        batch in nats per image: 'recon' (Bernoulli negative log-likelihood summed over pixels),
        'kl' (KL(q(z|x) || N(0, I)), closed form) and 'loss' = recon + beta * kl (the negative ELBO
        when beta is 1)."""
        mu, logvar = self.encode(x, labels)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()                        # reparameterised
        logits = self.decode(z, labels)
        B = x.size(0)
        recon = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="sum") / B
        kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).float().sum() / B
        return torch.sigmoid(logits), {"loss": recon + self.config.beta * kl, "recon": recon, "kl": kl}

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, S, S) float32 in [0, 1] (the decoder's mean) for latents z (B, latent)."""
        return torch.sigmoid(self.decode(z, labels).float())
