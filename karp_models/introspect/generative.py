"""How good are generated images, judged by a trained classifier: the Frechet distance in its
feature space, the classes it sees among the samples (coverage), how sure it is (confidence), and
how different the samples are from each other (diversity: mode collapse shows here first).

The Frechet distance is FID's formula (Heusel et al. 2017), ||mu_r - mu_g||^2 + Tr(S_r + S_g -
2 (S_r S_g)^(1/2)) between Gaussians fitted to features, computed by torchmetrics'
FrechetInceptionDistance fed karp's own features. FID proper uses Inception-v3 pool features of
ImageNet; those weights cannot be had offline, and Inception on 28x28 grey clothing would be
the wrong judge anyway, so the features here are the penultimate layer of karp's trained
Fashion-MNIST classifier (as Lucic et al. 2018 and the MNIST-GAN literature judge with a domain
classifier). The numbers are comparable only with numbers from the same classifier, the same
number of samples (the estimate is biased upward for fewer) and the same reference images: never
with published FIDs. Coverage and confidence split the Inception score (Salimans et al. 2016)
into its two factors, spread over classes and sureness: exp(H(class histogram)) / K and the
mean of max_y p(y|x).

Walking a generator's latent space: spherical interpolation (slerp; Shoemake 1985, proposed
for GAN latents by White 2016, "Sampling Generative Networks": a straight line between two
Gaussian latents passes through the low-norm middle that the generator almost never saw), latent
arithmetic over averaged samples (Radford et al. 2016, Fig. 7), a VAE encoder's means on a
plane (Kingma and Welling 2014, Fig. 4; PCA when the latent has more than two dimensions) and
the discriminator's verdict on any image.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from karp_models.introspect.evaluate import fused_for_inference
from karp_models.introspect.hooks import capture
from karp_models.introspect.embeddings import penultimate_layer

# ---------------------------------------------------------------------------- the judge


class Judge:
    """A trained classifier that scores images: penultimate features and class probabilities in
    one pass. Works on a private fused copy (the model passed in is never touched)."""

    def __init__(self, classifier: nn.Module, batch_size: int = 256):
        self.layer = penultimate_layer(classifier)
        self.model = fused_for_inference(classifier)
        self.batch_size = batch_size
        self._nhwc = False

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, H, W) uint8 or float in [0, 1] -> (features (N, D), probabilities (N, K)),
        float32 on x's device."""
        device = x.device
        nhwc = x.dim() == 4 and device.type == "cpu"   # channels-last convolutions: faster on a CPU
        if nhwc != self._nhwc:
            self.model.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
            self._nhwc = nhwc
        self.model.to(device)
        feats, probs = [], []
        with capture(self.model, [self.layer]) as acts:
            for i in range(0, len(x), self.batch_size):
                xb = x[i:i + self.batch_size]
                xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
                if nhwc:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits, _ = self.model(xb)                                   # (b, K)
                feats.append(acts[self.layer].flatten(1).float())            # (b, D)
                probs.append(torch.softmax(logits.float(), dim=-1))
        return torch.cat(feats), torch.cat(probs)


# ---------------------------------------------------------------------------- the metrics


class _Given(nn.Module):
    """torchmetrics' feature extractor slot, filled with features computed beforehand."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FrechetReference:
    """The reference features' Gaussian, accumulated once; distance(features) to any sample.

    torchmetrics' FrechetInceptionDistance keeps the real statistics (reset_real_features=False)
    and does the maths in float64 (the matrix square root's trace through eigenvalues)."""

    def __init__(self, real_features: torch.Tensor):
        from torchmetrics.image.fid import FrechetInceptionDistance

        if real_features.ndim != 2 or len(real_features) < 2:
            raise ValueError("need reference features (N >= 2, D)")
        self.metric = FrechetInceptionDistance(feature=_Given(real_features.shape[1]),
                                               reset_real_features=False)
        self.metric.update(real_features.detach().cpu().double(), real=True)
        self.n = len(real_features)

    def distance(self, features: torch.Tensor) -> float:
        """Frechet distance between the reference and `features` (M >= 2, D)."""
        if len(features) < 2:
            raise ValueError("the Frechet distance needs at least 2 samples")
        self.metric.reset()
        self.metric.update(features.detach().cpu().double(), real=False)
        return float(self.metric.compute())


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID's formula between the Gaussians fitted to features a (N, D) and b (M, D)."""
    return FrechetReference(a).distance(b)


def coverage(probs: torch.Tensor) -> float:
    """exp(entropy of the classifier's class histogram (its argmax per sample)) / K, in [1/K, 1]:
    1 when the samples spread evenly over all K classes, 1/K when it sees only one (collapse).
    The histogram, not the mean probability: a collapse onto one ambiguous image still counts
    as one class."""
    K = probs.shape[1]
    p = torch.bincount(probs.argmax(1), minlength=K).double() / len(probs)
    h = -(p * p.clamp_min(1e-12).log()).sum()
    return float(h.exp() / K)


def confidence(probs: torch.Tensor) -> float:
    """Mean top-class probability: near 1 when every sample looks clearly like some class."""
    return float(probs.max(dim=1).values.double().mean())


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance between all pairs of rows of features (N, D), N >= 2."""
    f = features.double()
    d = torch.cdist(f, f)                                                    # (N, N)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def class_counts(probs: torch.Tensor, n_classes: int) -> np.ndarray:
    """How many samples the classifier puts in each class (its argmax), (K,) int64."""
    return np.bincount(probs.argmax(1).cpu().numpy(), minlength=n_classes)


# ---------------------------------------------------------------------------- latent walks


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation from a to b (both (D,)) at fractions t ((T,) or a float in [0, 1]):
    (T, D), or (D,) for a float t.

    sin((1 - t) W) / sin W * a + sin(t W) / sin W * b, W the angle between a and b (Shoemake
    1985; White 2016). The direction turns at a constant angular speed through the plane of a
    and b, and vectors of equal length keep that length all the way (unit vectors stay on the
    unit sphere), where the straight line between two independent Gaussian latents of D
    dimensions shrinks to about 1/sqrt(2) of their length at its middle. Nearly parallel vectors
    (W < 1e-4 rad) fall back to the straight line, then the same path. Raises ValueError for
    opposite or zero vectors (no single great circle joins them).
    """
    scalar = not torch.is_tensor(t) or t.dim() == 0
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)                  # (T, 1)
    a64, b64 = a.double().flatten(), b.double().flatten()
    na, nb = a64.norm(), b64.norm()
    if na == 0 or nb == 0:
        raise ValueError("slerp needs two non-zero vectors")
    cos = torch.clamp(a64 @ b64 / (na * nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if torch.pi - omega < 1e-6:
        raise ValueError("slerp between opposite vectors is not defined (every great circle joins them)")
    if omega < 1e-4:
        out = (1 - t) * a64 + t * b64                                            # (T, D)
    else:
        out = (torch.sin((1 - t) * omega) * a64 + torch.sin(t * omega) * b64) / torch.sin(omega)
    out = out.to(a.dtype).reshape(-1, *a.shape)
    return out[0] if scalar else out


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The straight line (1 - t) a + t b, shaped as slerp's result."""
    scalar = not torch.is_tensor(t) or t.dim() == 0
    t = torch.as_tensor(t, dtype=a.dtype).reshape(-1, *([1] * a.dim()))
    out = (1 - t) * a + t * b
    return out[0] if scalar else out


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """`steps` >= 2 evenly spaced points from a to b, both ends included: (steps, D).
    method: 'slerp' (spherical) or 'lerp' (straight)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    fn = {"slerp": slerp, "lerp": lerp}.get(method)
    if fn is None:
        raise ValueError(f"unknown interpolation {method!r}; choose slerp or lerp")
    return fn(a, b, torch.linspace(0, 1, steps, dtype=torch.float64))


def arithmetic(z: torch.Tensor, a: list[int], b: list[int], c: list[int]) -> torch.Tensor:
    """Latent arithmetic over chosen samples: mean(z[a]) - mean(z[b]) + mean(z[c]), (D,).

    z: latents (N, D); a, b, c: non-empty lists of row indices (Radford et al. 2016 average three
    samples per concept so one sample's quirks cancel). Raises ValueError for an empty group or
    an index outside z."""
    out = torch.zeros(z.shape[1], dtype=z.dtype)
    for sign, group in ((1, a), (-1, b), (1, c)):
        if not group:
            raise ValueError("each of a, b and c needs at least one sample")
        if min(group) < 0 or max(group) >= len(z):
            raise ValueError(f"sample numbers must be between 0 and {len(z) - 1}")
        out = out + sign * z[list(group)].mean(0)
    return out


# ---------------------------------------------------------------------------- a VAE's latent plane


@torch.no_grad()
def encode_means(vae: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None,
                 batch_size: int = 1000) -> torch.Tensor:
    """The encoder's means mu(x) (N, latent) float32 on the CPU for images x (N, C, H, W) uint8
    or float in [0, 1] (labels (N,) for a conditional VAE). The model is used as it is (eval
    mode expected)."""
    device = next(vae.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
        lb = None if labels is None else labels[i:i + batch_size].to(device)
        out.append(vae.encode(xb, lb)[0].float().cpu())
    return torch.cat(out)


class LatentPlane:
    """A plane through latent space to draw and click on: the latent itself when it has two
    dimensions; else the two principal directions of the points it is fitted to (scikit-learn's
    PCA), through their mean. project: (N, D) -> (N, 2); lift: (N, 2) -> (N, D), the point on
    the plane (what a click on the map decodes)."""

    def __init__(self, z: np.ndarray | torch.Tensor):
        z = np.asarray(z, np.float64)
        if z.ndim != 2 or z.shape[1] < 2 or len(z) < 3:
            raise ValueError(f"need latents (N >= 3, D >= 2), got shape {z.shape}")
        D = z.shape[1]
        self.dims = D
        if D == 2:
            self.mean, self.components = np.zeros(2), np.eye(2)
            self.explained = None
        else:
            from sklearn.decomposition import PCA

            p = PCA(n_components=2, svd_solver="covariance_eigh").fit(z)
            self.mean, self.components = p.mean_, p.components_                  # (D,), (2, D)
            self.explained = p.explained_variance_ratio_.astype(np.float64)      # (2,)

    def project(self, z: np.ndarray | torch.Tensor) -> np.ndarray:
        return (np.asarray(z, np.float64) - self.mean) @ self.components.T       # (N, 2)

    def lift(self, xy: np.ndarray) -> np.ndarray:
        return self.mean + np.asarray(xy, np.float64).reshape(-1, 2) @ self.components  # (N, D)


# ---------------------------------------------------------------------------- the discriminator


@torch.no_grad()
def verdict(gan: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
    """The discriminator's raw outputs (N,) float64 for images x (N, C, H, W) uint8 or float in
    [0, 1] (mapped to the generator's [-1, 1]). With DCGAN's loss ('bce') these are logits:
    sigmoid gives its probability that each image is real; WGAN-GP's critic gives unbounded
    scores (higher: more real). labels (N,): the class a conditional D is told. The model is
    used as it is (eval mode expected: BatchNorm's running statistics)."""
    device = next(gan.parameters()).device
    x = x.to(device)
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    out = gan.discriminate(x * 2 - 1, None if labels is None else labels.to(device))
    return out.double().cpu().numpy()
