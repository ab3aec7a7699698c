"""A DCGAN for small images, with a class-conditioned variant and the WGAN-GP critic as the stable
alternative: a generator that draws from noise and a discriminator that tells drawn from real.

Cites: Radford, Metz and Chintala 2016 (DCGAN: strided transposed convolutions, BatchNorm in the
generator and in every discriminator layer but the first, ReLU / LeakyReLU 0.2, tanh output,
N(0, 0.02) initial weights, Adam 2e-4 with beta1 0.5); Mirza and Osindero 2014 (the conditional
GAN: the label goes into both networks); Gulrajani et al. 2017 (WGAN-GP: a critic without
BatchNorm, layer norm instead, and a gradient penalty); the layout of the generator for 28x28 is
the PyTorch/TensorFlow DCGAN-on-MNIST tutorials' (project z to 7x7, upsample twice).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

# ---------------------------------------------------------------------------- config

LOSSES = ("bce", "wgan-gp")


@dataclass(frozen=True)
class GANConfig:
    in_channels: int = 1
    image_size: int = 28            # square, divisible by 4: (B, in_channels, image_size, image_size)
    n_classes: int = 10             # used when conditional
    conditional: bool = False       # class-conditioned generator and discriminator (cGAN)
    latent: int = 100               # z ~ N(0, I) of this size (DCGAN's 100)
    width: int = 64                 # channels of the last generator / first discriminator layer
    embed: int = 16                 # conditional: size of the generator's label embedding
    loss: str = "bce"               # 'bce': DCGAN's non-saturating loss; 'wgan-gp': Wasserstein + penalty
    gp_weight: float = 10.0         # wgan-gp: lambda of the gradient penalty

    def __post_init__(self) -> None:
        if self.image_size % 4 or self.image_size < 8:
            raise ValueError(f"image_size must be a multiple of 4 and >= 8, got {self.image_size}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown GAN loss {self.loss!r}; choose from {LOSSES}")
        if self.latent < 1 or self.width < 1 or (self.conditional and self.n_classes < 2):
            raise ValueError("latent and width must be >= 1; a conditional GAN needs >= 2 classes")


PRESETS: dict[str, GANConfig] = {
    "dcgan": GANConfig(),                                    # the shipped one: ~0.7M parameters
    "small": GANConfig(latent=32, width=32),                 # a quarter of the compute
    "tiny": GANConfig(latent=8, width=8, embed=4),           # tests
    "wgan-gp": GANConfig(loss="wgan-gp"),                    # same networks, a LayerNorm critic
}

# ---------------------------------------------------------------------------- networks


def _init(m: nn.Module) -> None:
    """DCGAN's initialisation: conv and linear weights N(0, 0.02), norm gains N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z (B, latent) [and labels (B,)] -> images (B, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, c: GANConfig) -> None:
        super().__init__()
        self.s, w = c.image_size // 4, c.width
        self.label = nn.Embedding(c.n_classes, c.embed) if c.conditional else None
        z_in = c.latent + (c.embed if c.conditional else 0)
        self.project = nn.Sequential(nn.Linear(z_in, 2 * w * self.s * self.s, bias=False),
                                     nn.BatchNorm1d(2 * w * self.s * self.s), nn.ReLU(True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),  # (B, w, 2s, 2s)
            nn.ConvTranspose2d(w, c.in_channels, 4, 2, 1), nn.Tanh())                            # (B, C, 4s, 4s)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            if labels is None:
                raise ValueError("a conditional generator needs labels (B,)")
            z = torch.cat([z, self.label(labels)], dim=1)                     # (B, latent + embed)
        h = self.project(z).view(z.size(0), -1, self.s, self.s)               # (B, 2w, s, s)
        return self.up(h)


class Discriminator(nn.Module):
    """images (B, C, S, S) in [-1, 1] [and labels (B,)] -> one logit (or critic score) each (B,).

    Conditional: the label becomes an extra input channel (a learnt S x S map per class)."""

    def __init__(self, c: GANConfig) -> None:
        super().__init__()
        S, w = c.image_size, c.width
        self.label = nn.Embedding(c.n_classes, S * S) if c.conditional else None
        norm = nn.BatchNorm2d(2 * w) if c.loss == "bce" else nn.GroupNorm(1, 2 * w)  # GP: no BatchNorm
        self.body = nn.Sequential(
            nn.Conv2d(c.in_channels + (1 if c.conditional else 0), w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), norm, nn.LeakyReLU(0.2, True),  # (B, 2w, S/4, S/4)
            nn.Flatten(), nn.Linear(2 * w * (S // 4) ** 2, 1))                        # (B, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels (B,)")
            S = x.size(-1)
            x = torch.cat([x, self.label(labels).view(-1, 1, S, S).to(x.dtype)], dim=1)  # (B, C + 1, S, S)
        return self.body(x).squeeze(1)                                                   # (B,)

# ---------------------------------------------------------------------------- the pair


class DCGAN(nn.Module):
    """The generator and discriminator as one module (one checkpoint; the Task gives each its
    own optimiser). forward(z, labels) is the generator: images in [-1, 1]."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config)
        self.apply(_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent) [, labels (B,) int64] -> images (B, C, S, S) in [-1, 1]."""
        return self.generator(z, labels)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, C, S, S) in [-1, 1] -> logits (B,): > 0 means 'real' (bce loss)."""
        return self.discriminator(x, labels)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, S, S) float32 in [0, 1] for latents z (B, latent)."""
        return (self.generator(z, labels).float() + 1) / 2


def gradient_penalty(critic: Discriminator, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty, mean over the batch of (||grad_x D(x_hat)||_2 - 1)^2 at random points
    x_hat on the lines between real and fake images (Gulrajani et al. 2017, Algorithm 1)."""
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)                # (B, C, S, S)
    score = critic(x_hat, labels)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()
