"""Operations the transformers (attention.py) train with, each checked against torch's own in the
tests: a CPU dropout whose mask is drawn with rand, the linear layer and cross-entropy fused a chunk
of rows at a time, and rotary position embeddings (issue 25)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class _RandDropout(torch.autograd.Function):
    """Inverted dropout whose keep-mask is torch.rand >= p, saved scaled by 1 / (1 - p)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))      # 0 or 1 / (1 - p), like x
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout (Srivastava et al. 2014, inverted: kept values scaled by 1 / (1 - p)), same shape as x.

    On the CPU the keep-mask is drawn as uniform >= p: the same Bernoulli(1 - p) mask as
    F.dropout's, but torch's CPU bernoulli_ is several times slower than rand (issue 25: dropout
    0.3 cost the classical-Chinese GPT a fifth of its training step). Elsewhere, F.dropout.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _RandDropout.apply(x, p)


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (h @ W^T) against targets, a chunk of rows at a time; the gradients
    are computed in the forward (the loss is the graph's end) and scaled in the backward."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int) -> torch.Tensor:
        grad_h, grad_w = torch.zeros_like(h), torch.zeros_like(weight)  # (N, C), (V, C)
        total, count = h.new_zeros(()), (targets >= 0).sum()
        for s in range(0, h.size(0), rows):
            hc, yc = h[s:s + rows], targets[s:s + rows]                 # (n, C), (n,)
            keep = yc >= 0                                               # ignore_index -1
            yk = yc.clamp(min=0)
            logits = hc @ weight.t()                                     # (n, V), fits in cache
            lse = torch.logsumexp(logits, dim=-1)                        # (n,)
            total += ((lse - logits.gather(1, yk[:, None]).squeeze(1)) * keep).sum()
            g = logits.sub_(lse[:, None]).exp_()                         # softmax, in place
            g[torch.arange(len(yk)), yk] -= 1.0                          # d loss_i / d logits_i
            g.mul_(keep[:, None])
            grad_h[s:s + rows] = g @ weight                              # (n, C)
            grad_w.addmm_(g.t(), hc)                                     # (V, C)
        ctx.save_for_backward(grad_h, grad_w, count)
        return total / count

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        grad_h, grad_w, count = ctx.saved_tensors
        scale = grad / count
        return grad_h * scale, grad_w * scale, None, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         rows: int = 64) -> torch.Tensor:
    """F.cross_entropy(h @ weight.T, targets, ignore_index=-1) without the (N, V) logits.

    h (N, C), weight (V, C), targets (N,) int64 in [0, V) or -1 (ignored); returns the mean over
    the kept rows (NaN if none), differentiable in h and weight. The logits of `rows` rows at a
    time stay in cache, so a wide vocabulary's head and loss cost about half the time of the
    materialised pair on a CPU (issue 25: the 5,688-character Chinese GPT). Follows the fused
    linear cross-entropy of Liger Kernel (Hsu et al. 2024) and Wijmans et al. 2024, "Cut Your
    Losses in Large-Vocabulary Language Models".
    """
    return _LinearCrossEntropy.apply(h, weight, targets, rows)


class Dropout(nn.Dropout):
    """nn.Dropout through `dropout` above (no parameters: checkpoints are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)



def rotary_tables(length: int, dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (length, dim // 2) of the angles m * base^(-2i / dim): position m, pair i (RoFormer eq. 15)."""
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)   # (dim / 2,)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq      # (length, dim / 2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x_i, x_{i + d/2}) of x (..., T, d) by its position's angle; cos, sin (T, d/2).

    The half-split pairing of GPT-NeoX and modded-nanogpt; a rotation, so norms are kept and
    q_m . k_n depends on m - n only.
    """
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)
