"""Optimisation, shared by every run: the learning-rate schedules (the one-cycle shape is
PyTorch's OneCycleLR, Smith & Topin 2018; the cosine one SGDR's, Loshchilov & Hutter 2017),
weight-decay groups (minGPT's configure_optimizers), the optimisers (Muon: Jordan et al. 2024,
KellerJordan/modded-nanogpt, torch.optim.Muon on the hidden matrices, AdamW on the rest), and StepContext: one
optimiser's update (backward, clipping, AMP's loss scaling, step), which a task with several
optimisers calls itself, as Lightning's manual optimisation does.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

if TYPE_CHECKING:
    from karp_models.train.trainer import TrainConfig

SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("adamw", "sgd", "muon")
OUTPUT_LAYERS = ("lm_head", "head", "classifier", "fc_out")  # names of a model's last layer: not Muon's


# --- learning-rate schedule


def lr_factor(schedule: str, p: float, warmup: float = 0.1, final: float = 0.0) -> float:
    """Multiplier of the peak lr at progress p in [0, 1] of the budget.

    onecycle: cosine rise from 1/25 to 1 over the warmup, cosine fall to 1/25e4 (OneCycleLR's
    defaults). cosine: linear warmup from 1/25, then cosine decay to `final`. constant: linear
    warmup, then 1 (warmup=0 for a truly constant lr).
    """
    p = min(max(p, 0.0), 1.0)
    start = 1 / 25
    if schedule == "onecycle":
        if p < warmup:
            return start + (1 - start) * (1 - math.cos(math.pi * p / warmup)) / 2
        end = start / 1e4
        q = (p - warmup) / (1 - warmup)
        return end + (1 - end) * (1 + math.cos(math.pi * q)) / 2
    if p < warmup:
        return start + (1 - start) * p / warmup
    if schedule == "cosine":
        q = (p - warmup) / (1 - warmup)
        return final + (1 - final) * (1 + math.cos(math.pi * q)) / 2
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")


# --- optimisers


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices and conv kernels; not biases, norm gains, 1-D parameters or embeddings.
    Frozen parameters (requires_grad False: fine-tuning's backbone) are left out."""
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or id(p) in embedding else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def muon_params(model: nn.Module) -> list[nn.Parameter]:
    """The hidden matrices Muon orthogonalises: the 2-D weights of nn.Linear layers, except the
    model's last layer (named in OUTPUT_LAYERS) and weights shared with an embedding (a tied
    head). Embeddings, biases, norm gains and conv kernels stay with AdamW (modded-nanogpt's split)."""
    embedding = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    out = []
    for name, m in model.named_modules():
        if (isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] not in OUTPUT_LAYERS
                and m.weight.requires_grad and id(m.weight) not in embedding):
            out.append(m.weight)
    return out


class MuonAdamW(torch.optim.Optimizer):
    """torch.optim.Muon on muon_params(model), AdamW (betas 0.9, 0.95) on the other parameters,
    stepped together as one optimiser. Muon's update is scaled to AdamW's RMS (Liu et al. 2025,
    "Muon is Scalable for LLM Training": adjust_lr_fn="match_rms_adamw"), so both share lr and
    weight decay; param_groups are the two optimisers' groups, so the Trainer's lr schedule
    (and a group's 'lr_scale') reaches both."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float, momentum: float = 0.95,
                 groups: list[dict[str, Any]] | None = None) -> None:
        ids = {id(p) for p in muon_params(model)}
        groups = param_groups(model, weight_decay) if groups is None else groups
        split = [(g | {"params": [p for p in g["params"] if id(p) in ids]},
                  g | {"params": [p for p in g["params"] if id(p) not in ids]}) for g in groups]
        hidden = [m for m, _ in split if m["params"]]
        rest = [r for _, r in split if r["params"]]
        if not hidden:
            raise ValueError("the muon optimizer needs hidden Linear layers to orthogonalise; "
                             "this model has none: choose adamw or sgd")
        self.muon = torch.optim.Muon(hidden, lr=lr, weight_decay=weight_decay, momentum=momentum,
                                     adjust_lr_fn="match_rms_adamw")
        self.adamw = torch.optim.AdamW(rest, lr=lr, betas=(0.9, 0.95))
        self.defaults = {"lr": lr}
        self.state = self.adamw.state  # type: ignore[assignment]  # read by tools that peek
        self._parts = (self.muon, self.adamw)

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return self.muon.param_groups + self.adamw.param_groups

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for opt in self._parts:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self._parts:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])

    def __repr__(self) -> str:
        return f"MuonAdamW(muon={len(self.muon.param_groups[0]['params'])} matrices, adamw=rest)"


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device,
                   groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
    """cfg.optimizer over model's trainable parameters (or the given param groups, which may
    carry an 'lr_scale'): SGD with Nesterov momentum 0.9, AdamW with betas (0.9, 0.95)
    (minGPT's), fused on CUDA, or Muon on the hidden matrices with AdamW on the rest
    (MuonAdamW, each group split in two). Raises ValueError for muon on a model without hidden
    Linear layers."""
    if cfg.optimizer == "muon":
        return MuonAdamW(model, cfg.lr, cfg.weight_decay, groups=groups)
    groups = param_groups(model, cfg.weight_decay) if groups is None else groups
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), **extra)


class StepContext:
    """What a task's training_step may use: the run's config and optimisers, and step(name, loss)
    (backward, clipping, loss scaling, the optimiser's step). A task with one optimiser returns
    its loss and the Trainer steps it; a task with several steps each itself, in its order, as
    in DCGAN's loop (zero D's gradients, backward D's loss, step D; then the same for G)."""

    def __init__(self, cfg: TrainConfig, optimizers: dict[str, torch.optim.Optimizer],
                 scaler: torch.amp.GradScaler | None, device: torch.device):
        self.cfg, self.optimizers, self.scaler, self.device = cfg, optimizers, scaler, device
        self._params = {k: [p for g in o.param_groups for p in g["params"]]
                        for k, o in optimizers.items()}
        self.stepped: list[str] = []

    def step(self, name: str, loss: torch.Tensor) -> None:
        """Backpropagate `loss` into optimiser `name`'s parameters (their old gradients, say from
        another optimiser's loss, are cleared first) and step it; autocast is off for this."""
        if name not in self.optimizers:
            raise KeyError(f"no optimizer {name!r}; this task has {sorted(self.optimizers)}")
        opt, params, clip = self.optimizers[name], self._params[name], self.cfg.grad_clip
        opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=False):
            if self.scaler is not None:  # one scaler for all optimisers: update() once a step
                self.scaler.scale(loss).backward()
                if clip:
                    self.scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(params, clip)
                self.scaler.step(opt)
            else:
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(params, clip)
                opt.step()
        opt.zero_grad(set_to_none=True)
        self.stepped.append(name)
