"""Looking inside an agent: a policy's first-layer weights as images (Karpathy's "Pong from
Pixels" 2016 shows his 200 neurons' weights as 80x80 pictures: ball and paddle trajectories), and
the saliency of the chosen action on the frame it sees (Simonyan et al. 2014's gradient, and
gradient x input, through Captum)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from captum.attr import InputXGradient, Saliency

SALIENCY_METHODS = ("saliency", "input_x_gradient")


def first_layer_images(model: nn.Module, side: int | None = None) -> np.ndarray:
    """The first Linear layer's weight rows as square images: (hidden, side, side) float32.

    side defaults to sqrt(obs_dim); raises ValueError when the input is not a square picture."""
    w = next(m for m in model.modules() if isinstance(m, nn.Linear)).weight.detach().float().cpu()  # (H, D)
    side = side or int(round(w.shape[1] ** 0.5))
    if side * side != w.shape[1]:
        raise ValueError(f"{w.shape[1]} inputs are not a {side}x{side} picture")
    return w.reshape(-1, side, side).numpy()


def policy_action(model: nn.Module, x: torch.Tensor) -> tuple[int, np.ndarray]:
    """The most probable action for one observation (obs_dim,) and the probabilities (A,)."""
    with torch.no_grad():
        p = model.probs(x.float()[None])[0]
    return int(p.argmax()), p.cpu().numpy()


def action_saliency(model: nn.Module, x: torch.Tensor, action: int,
                    method: str = "saliency") -> np.ndarray:
    """Attribution of log pi(action | x) to each input number: (obs_dim,) float32.

    method: 'saliency' (|d log pi / dx|, Simonyan et al. 2014: where a change would move the
    choice most) or 'input_x_gradient' (x * d log pi / dx: signed, zero where the input is zero).
    Captum's call style: the attribution constructed with the forward function, then .attribute."""
    if method not in SALIENCY_METHODS:
        raise ValueError(f"method must be one of {SALIENCY_METHODS}, got {method!r}")
    was = model.training
    model.eval()

    def logp(inp: torch.Tensor) -> torch.Tensor:                        # (B, obs_dim) -> (B,)
        logits, _ = model(inp)
        return model.log_prob(logits, torch.full((inp.shape[0],), action, dtype=torch.long,
                                                 device=inp.device))
    try:
        inp = x.float()[None].clone().requires_grad_(True)             # (1, obs_dim)
        cls = Saliency if method == "saliency" else InputXGradient
        kw = {"abs": True} if method == "saliency" else {}
        a = cls(logp).attribute(inp, **kw)                              # (1, obs_dim)
    finally:
        model.train(was)
    return a[0].detach().float().cpu().numpy()
