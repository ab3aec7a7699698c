"""Plotly figure builders shared by pages (large fonts: the app is used on projectors)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

FONT = dict(size=16)


def class_montage(x: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...], per_class: int = 10,
                  seed: int = 0) -> go.Figure:
    """One row of `per_class` random examples per class; rows labelled with the class name.

    Args:
        x: uint8 images (N, C, H, W); y: labels (N,).
    """
    g = torch.Generator().manual_seed(seed)
    C, H, W = x.shape[1:]
    rows = []
    for k in range(len(classes)):
        idx = torch.nonzero(y == k).flatten()
        pick = idx[torch.randperm(len(idx), generator=g)[:per_class]]
        tiles = [x[i] for i in pick] + [torch.zeros(C, H, W, dtype=x.dtype)] * (per_class - len(pick))
        rows.append(torch.cat([torch.nn.functional.pad(t, (1, 1, 1, 1)) for t in tiles], dim=2))
    grid = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()  # (rows*(H+2), cols*(W+2), C)
    if C == 1:
        grid = np.repeat(grid, 3, axis=2)
    fig = go.Figure(go.Image(z=grid))
    centers = [(H + 2) * (k + 0.5) for k in range(len(classes))]
    fig.update_yaxes(tickvals=centers, ticktext=list(classes), showgrid=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(font=FONT, margin=dict(l=10, r=10, t=10, b=10),
                      height=max(300, 46 * len(classes)))
    return fig


def class_counts(y: torch.Tensor, classes: tuple[str, ...], title: str) -> go.Figure:
    counts = torch.bincount(y, minlength=len(classes)).tolist()
    fig = go.Figure(go.Bar(x=list(classes), y=counts))
    fig.update_layout(title=title, font=FONT, margin=dict(l=10, r=10, t=50, b=10), height=320)
    return fig
