"""Activation capture with forward hooks that remove themselves (pytorch-grad-cam's BaseCAM style)."""
from __future__ import annotations

import threading

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


def layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called `name` (dotted path, as in `model.feature_layers`)."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        known = ", ".join(n for n, _ in model.named_modules() if n) or "none"
        raise KeyError(f"{type(model).__name__} has no layer {name!r} (layers: {known})") from None


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], *, detach: bool = True
            ) -> Iterator[dict[str, torch.Tensor]]:
    """`with capture(model, ["features.relu1"]) as acts: model(x)` fills acts[name] with each
    layer's output (the last call wins; tuple outputs keep their first element). Hooks are
    removed on exit, also when the forward raises.

    Only forwards run by the calling thread are recorded: a model cached for the whole app may
    run for other sessions (other threads) at the same moment, and their activations must not
    land here."""
    acts: dict[str, torch.Tensor] = {}
    handles = []
    owner = threading.get_ident()

    def hook_for(name: str):
        def hook(_m: nn.Module, _inp: tuple, out: torch.Tensor | tuple) -> None:
            if threading.get_ident() != owner:
                return
            t = out[0] if isinstance(out, tuple) else out
            acts[name] = t.detach() if detach else t
        return hook

    try:
        for name in layers:
            handles.append(layer(model, name).register_forward_hook(hook_for(name)))
        yield acts
    finally:
        for h in handles:
            h.remove()
