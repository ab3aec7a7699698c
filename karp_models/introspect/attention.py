"""Attention maps turned into explanations: attention rollout (Abnar and Zuidema 2020)."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def rollout(attentions: Sequence[torch.Tensor], *, head_fusion: str = "mean",
            residual: bool = True) -> torch.Tensor:
    """Attention rollout: multiply the layers' attention, each averaged over heads and mixed with
    the identity for the residual path, A_hat = (A + I) / 2 with rows renormalised.

    Args:
        attentions: one (B, H, T, T) map per layer, first layer first (rows sum to 1).
        head_fusion: 'mean', 'max' or 'min' over heads.
        residual: add the identity for the skip connection (the paper does).
    Returns:
        (B, T, T): row i says how much each input token flows into token i at the top.
        For a ViT, row 0 (CLS) over tokens 1: is the patch relevance map.
    """
    fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion must be one of {sorted(fuse)}, not {head_fusion!r}")
    if not attentions:
        raise ValueError("rollout needs at least one attention map")
    out = None
    for a in attentions:
        a = fuse[head_fusion](a.float())                              # (B, T, T)
        if residual:
            a = a + torch.eye(a.shape[-1], device=a.device)
        a = a / a.sum(-1, keepdim=True)
        out = a if out is None else a @ out                           # later layers on the left
    return out
