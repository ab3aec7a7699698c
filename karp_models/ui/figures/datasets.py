"""Figures of the Datasets page: a montage of examples per class and the class counts."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from karp_models.introspect.features import tile
from karp_models.ui import style
from karp_models.ui.images import display


def class_montage(x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...], per_class: int = 10,
                  seed: int = 0) -> go.Figure:
    """One row of `per_class` random examples per class; rows labelled with the class name.

    Args:
        x: uint8 images (N, C, H, W); y: labels (N,).
    """
    g = torch.Generator().manual_seed(seed)
    H, W = x.shape[2:]
    tiles = np.zeros((len(classes) * per_class, H, W, 3), np.uint8)   # black where a class is short
    for k in range(len(classes)):
        idx = torch.nonzero(y == k).flatten()
        pick = idx[torch.randperm(len(idx), generator=g)[:per_class]]
        for j, i in enumerate(pick.tolist()):
            tiles[k * per_class + j] = display(x[i])
    grid = np.pad(tile(tiles, per_class, gap=2, fill=0), ((1, 1), (1, 1), (0, 0)))
    fig = go.Figure(go.Image(z=grid))                                  # (rows*(H+2), cols*(W+2), 3)
    centers = [(H + 2) * (k + 0.5) for k in range(len(classes))]
    fig.update_yaxes(tickvals=centers, ticktext=list(classes), showgrid=False)
    fig.update_xaxes(visible=False)
    return style.layout(fig, height=max(300, 46 * len(classes)), margin=dict(l=10, r=10, t=10, b=10))


def class_counts(y: torch.Tensor, classes: tuple[str, ...], title: str) -> go.Figure:
    """Bars of how many examples each class has."""
    counts = torch.bincount(y, minlength=len(classes)).tolist()
    fig = go.Figure(go.Bar(x=list(classes), y=counts))
    return style.layout(fig, height=320, title=title)
