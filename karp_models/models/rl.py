"""An agent's networks: the policy of REINFORCE (Karpathy's "Pong from Pixels" 2016: one hidden
layer of 200 ReLU units on the 80x80 frame difference, one logit for the probability of UP) and
DQN's action-value network (Mnih et al. 2015's MLP form for low-dimensional states).

A two-action policy has one output (the probability of the second action is sigmoid(logit), as in
Karpathy's code); more actions get a softmax over n_actions logits.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class PolicyConfig:
    obs_dim: int = 4               # what the network sees: CartPole's state, or Pong's 6400 pixels
    n_actions: int = 2
    hidden: int = 200              # Karpathy's H
    bias: bool = False             # Karpathy's network has no biases; CartPole's small one does

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.n_actions < 2 or self.hidden < 1:
            raise ValueError("obs_dim >= 1, n_actions >= 2 and hidden >= 1")


@dataclass(frozen=True)
class QConfig:
    obs_dim: int = 4
    n_actions: int = 2
    hidden: int = 128              # two hidden layers of this width

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.n_actions < 2 or self.hidden < 1:
            raise ValueError("obs_dim >= 1, n_actions >= 2 and hidden >= 1")


POLICY_PRESETS: dict[str, PolicyConfig] = {
    "cartpole": PolicyConfig(hidden=64, bias=True),
    "pong": PolicyConfig(obs_dim=6400, hidden=200),          # Karpathy's: 6400 x 200 + 200 x 1
    "tiny": PolicyConfig(hidden=8, bias=True),               # tests
}
Q_PRESETS: dict[str, QConfig] = {
    "cartpole": QConfig(),
    "tiny": QConfig(hidden=8),
}

# ---------------------------------------------------------------------------- models


class PolicyNet(nn.Module):
    """pi(a | s): (B, obs_dim) -> logits (B, 1) for two actions, (B, n_actions) otherwise."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = c = config
        self.fc1 = nn.Linear(c.obs_dim, c.hidden, bias=c.bias)
        self.fc2 = nn.Linear(c.hidden, 1 if c.n_actions == 2 else c.n_actions, bias=c.bias)
        for lin in (self.fc1, self.fc2):     # Karpathy's "Xavier" initialisation: randn / sqrt(fan_in)
            nn.init.normal_(lin.weight, std=lin.in_features ** -0.5)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, obs_dim) float; targets: actions taken (B,) -> loss = their mean negative log
        probability (the policy-gradient loss before the advantages weigh it)."""
        logits = self.fc2(F.relu(self.fc1(x)))                          # (B, 1) or (B, A)
        loss = None if targets is None else -self.log_prob(logits, targets).mean()
        return logits, loss

    def log_prob(self, logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) of actions (B,) under logits from forward: (B,)."""
        if logits.shape[-1] == 1:                                       # Bernoulli: a = 1 with sigmoid(logit)
            z = logits[:, 0]
            return torch.where(actions == 1, F.logsigmoid(z), F.logsigmoid(-z))
        return torch.log_softmax(logits, dim=-1).gather(1, actions[:, None])[:, 0]

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Action probabilities (B, n_actions) for observations (B, obs_dim)."""
        logits, _ = self(x)
        if logits.shape[-1] == 1:
            p1 = torch.sigmoid(logits)
            return torch.cat([1 - p1, p1], dim=-1)                      # (B, 2)
        return torch.softmax(logits, dim=-1)

    def action_logit(self, x: torch.Tensor) -> torch.Tensor:
        """The number an action's choice hangs on, for attribution: (B, n_out) logits."""
        return self(x)[0]


class QNetwork(nn.Module):
    """Q(s, .): (B, obs_dim) -> (B, n_actions), two hidden ReLU layers."""

    def __init__(self, config: QConfig) -> None:
        super().__init__()
        self.config = c = config
        self.net = nn.Sequential(nn.Linear(c.obs_dim, c.hidden), nn.ReLU(),
                                 nn.Linear(c.hidden, c.hidden), nn.ReLU(),
                                 nn.Linear(c.hidden, c.n_actions))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, obs_dim) -> Q values (B, n_actions); targets (B, n_actions): mean squared error."""
        q = self.net(x)                                                 # (B, A)
        return q, None if targets is None else F.mse_loss(q, targets)
