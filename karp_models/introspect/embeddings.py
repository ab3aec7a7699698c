"""Penultimate-layer features of an image model and their 2-d projections (PCA, t-SNE), seeded.

The features are what the last Linear layer sees: for a CNN the input of the last Linear in
`model.classifier` (captured as the output of the module just before it), for the ViT the CLS
token after the final LayerNorm, right before `head`. t-SNE is openTSNE's FFT-accelerated
implementation (Poličar, Stražar, Zupan 2024; Linderman et al. 2019, FIt-SNE): FFT-accelerated
gradients for large N, deterministic for a seed, with progress callbacks.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from karp_models.i18n import _
from karp_models.introspect.evaluate import fused_for_inference
from karp_models.introspect.hooks import capture

Progress = Callable[[float, str], None]   # (fraction done 0..1, what is happening)

# ---------------------------------------------------------------------------- features


def penultimate_layer(model: nn.Module) -> str:
    """The layer whose output is the penultimate feature vector (B, D) of `model`."""
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        names = list(classifier._modules)
        last = max((i for i, n in enumerate(names) if isinstance(classifier._modules[n], nn.Linear)),
                   default=None)
        if last is not None:
            return f"classifier.{names[last - 1]}" if last > 0 else "features"
    if isinstance(getattr(model, "head", None), nn.Linear) and isinstance(getattr(model, "ln_f", None), nn.Module):
        return "ln_f"   # ViT: head(ln_f(x[:, 0])), so ln_f's output is the CLS token the head reads
    raise ValueError(f"{type(model).__name__} has no classifier Linear or ViT head to take features before")


def penultimate_features(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None,
                         device: torch.device | str | None = None) -> np.ndarray:
    """Features (N, D) float32 of uint8 images (N, C, H, W) (or float in [0, 1]) at
    `penultimate_layer(model)`, flattened per example. The model passed in is not changed."""
    return _features(model, x, batch_size, device, probs=False)[0]


def features_and_probs(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None,
                       device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate_features (N, D), softmax probabilities (N, n_classes)) float32 from one pass
    over x (a training time-lapse's projector needs both at every snapshot)."""
    return _features(model, x, batch_size, device, probs=True)


@torch.inference_mode()
def _features(model: nn.Module, x: torch.Tensor, batch_size: int | None, device: torch.device | str | None,
              probs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    device = device or next(model.parameters()).device
    batch_size = batch_size or 128 * torch.get_num_threads()      # as predict_probs
    name = penultimate_layer(model)
    run = fused_for_inference(model)   # a private copy: the hook never touches a shared model
    cl = x.dim() == 4 and torch.device(device).type == "cpu"
    if cl:                             # channels-last convolutions: faster on the CPU (predict_probs)
        run = run.to(memory_format=torch.channels_last)
    out, p = [], []
    with capture(run, [name]) as acts:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            xb = xb.float() / 255 if xb.dtype == torch.uint8 else xb.float()
            logits, _ = run(xb.contiguous(memory_format=torch.channels_last) if cl else xb)  # (B, n_classes)
            out.append(acts[name].flatten(1).float().cpu())       # (B, D)
            if probs:
                p.append(torch.softmax(logits.float(), dim=-1).cpu())
    feats = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
    return feats, (torch.cat(p).numpy() if p else None)


# ---------------------------------------------------------------------------- projections


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5) -> tuple[float, int]:
    """(leave-one-out k-nearest-neighbour accuracy 0..1, the k used) of `labels` (N,) from
    `features` (N, D), Euclidean: how well the classes separate in the features themselves, the
    usual k-NN probe of a representation (e.g. Wu et al. 2018, Caron et al. 2021). Each point votes
    with its k nearest others (ties: the lowest class). k is lowered to one less than the smallest
    class's size (at least 1), so a class of 2 images can still win its own vote. Raises
    ValueError for fewer than 2 points."""
    from sklearn.neighbors import NearestNeighbors

    X, y = np.asarray(features, np.float32), np.asarray(labels)
    if len(X) < 2:
        raise ValueError(f"a nearest-neighbour accuracy needs at least 2 points, got {len(X)}")
    k = int(max(1, min(k, np.bincount(y)[np.unique(y)].min() - 1, len(X) - 1)))
    _dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    others = np.array([row[row != i][:k] for i, row in enumerate(idx)])    # drop each point itself
    votes = np.apply_along_axis(np.bincount, 1, y[others], minlength=int(y.max()) + 1)
    return float((votes.argmax(1) == y).mean()), k



def pca_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coords (N, 2) float32, explained variance ratio (2,)): exact PCA through the D x D
    covariance (N >> D here), deterministic (signs fixed by scikit-learn's svd_flip)."""
    from sklearn.decomposition import PCA

    p = PCA(n_components=2, svd_solver="covariance_eigh")
    coords = p.fit_transform(np.asarray(features, np.float64))
    return coords.astype(np.float32), p.explained_variance_ratio_.astype(np.float32)


def align_2d(coords: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """coords (N, 2) turned, mirrored, scaled and moved (no shearing) to lie as close as possible
    to reference (N, 2), the same points: orthogonal Procrustes (Schönemann 1966, scipy's
    orthogonal_procrustes) with the least-squares scale, so projections of one set of points at
    different moments (a training time-lapse) keep their orientation. Returns float32 (N, 2)."""
    from scipy.linalg import orthogonal_procrustes

    a = np.asarray(coords, np.float64)
    b = np.asarray(reference, np.float64)
    a0, b0 = a - a.mean(0), b - b.mean(0)
    rot, trace = orthogonal_procrustes(a0, b0)                    # min ||a0 R - b0||, R orthogonal
    scale = trace / max(float((a0 ** 2).sum()), 1e-12)
    return (scale * a0 @ rot + b.mean(0)).astype(np.float32)


def tsne_2d(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, n_jobs: int = 1,
            progress: Progress | None = None, n_iter: int = 500, exaggeration_iter: int = 250,
            pca_dims: int = 50, method: str = "auto", ints_in_interval: float = 2.0) -> np.ndarray:
    """t-SNE coordinates (N, 2) float32 with openTSNE (PCA initialisation; repulsive forces by
    Barnes-Hut below 10,000 points and by FFT interpolation from 10,000 on: openTSNE's "auto").

    The same features, seed and n_jobs give the same coordinates; another seed gives another
    layout. Features are first reduced to `pca_dims` with PCA (standard practice, and it speeds
    the neighbour search). `progress(fraction, words)` is called every 25 iterations.

    Args:
        features: (N, D) array, N >= 4.
        ints_in_interval: FFT interpolation interval width in embedding units (openTSNE's default
            is 1). 2 made 10,000 Fashion-MNIST points 3x faster here (13.6 s against 40.9 s of
            CPU time, one thread) with the same 5-NN accuracy in 2-d (92.95% against 92.81%).
        perplexity: lowered automatically for tiny N (it must stay below N / 3).
    """
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    X = np.asarray(features, np.float32)
    N = len(X)
    if N < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {N}")
    if X.shape[1] > pca_dims:
        X = PCA(n_components=pca_dims, svd_solver="randomized", random_state=seed).fit_transform(X)
    perplexity = float(min(perplexity, max(1.0, (N - 1) / 3 - 1)))
    total, every, done = exaggeration_iter + n_iter, 25, [0]

    def callback(iteration: int, error: float, embedding) -> bool:
        done[0] += every
        if progress is not None:
            words = (_("t-SNE early exaggeration: iteration {i} of {n}, KL divergence {kl:.3f}")
                     if done[0] <= exaggeration_iter else
                     _("t-SNE refining: iteration {i} of {n}, KL divergence {kl:.3f}"))
            progress(min(done[0] / total, 1.0), words.format(i=min(done[0], total), n=total, kl=error))
        return False

    if progress is not None:
        progress(0.0, _("t-SNE: finding the nearest neighbours of {n:,} points").format(n=N))
    tsne = TSNE(n_components=2, perplexity=perplexity, initialization="pca", random_state=seed,
                n_jobs=n_jobs, n_iter=n_iter, early_exaggeration_iter=exaggeration_iter,
                negative_gradient_method=method, ints_in_interval=ints_in_interval,
                callbacks=callback if progress is not None else None, callbacks_every_iters=every,
                verbose=False)
    coords = np.asarray(tsne.fit(X), np.float32)
    if progress is not None:
        progress(1.0, _("t-SNE done"))
    return coords
