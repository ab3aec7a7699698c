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
