"""int8 with torch.ao.quantization: dynamic for Linear layers, static FX graph mode for convs
and Linears, and the dequantised twin an int8 model's explanations are computed on."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from karp_models.compress.base import PRUNABLE
from karp_models.i18n import _
from karp_models.introspect.attribution import Logits
from karp_models.introspect.evaluate import fused_for_inference

# ---------------------------------------------------------------------------- int8


class KarpOutput(nn.Module):
    """A network that returns logits (a quantised GraphModule) as a karp model: forward(x,
    targets=None) -> (logits (B, n_classes), None)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.net(x), None


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao's notes that it moves to torchao and that reduce_range is deprecated: not ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        yield


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """int8 dynamic quantisation of every nn.Linear (a copy; CPU): weights stored as int8 with one
    scale, activations quantised on the fly per batch. Raises ValueError when there is no Linear."""
    from torch.ao.quantization import quantize_dynamic as qd

    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(_("the model has no Linear layer to quantise"))
    with _quiet():        # BatchNorm folded first, as static int8 and the float latency fold it
        return qd(fused_for_inference(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)


def quantize_static(model: nn.Module, calibration: torch.Tensor, batch_size: int = 64) -> nn.Module:
    """int8 static quantisation of convs and Linears in FX graph mode (`prepare_fx`, calibration on
    `calibration` (N, C, H, W) float in [0, 1], `convert_fx`; the x86 backend). Conv -> BatchNorm
    -> ReLU are fused first. Returns a KarpOutput over the int8 GraphModule (CPU only).
    Raises ValueError (in words) when torch.fx cannot trace the model."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    net = Logits(copy.deepcopy(model).cpu().eval()).eval()
    with _quiet():
        try:
            prepared = prepare_fx(net, get_default_qconfig_mapping("x86"), (calibration[:1].float(),))
        except Exception as e:  # noqa: BLE001 - torch.fx's many tracing errors, said in words
            raise ValueError(_("torch.fx cannot trace this model for static int8 ({error})").format(
                error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")) from e
        with torch.no_grad():
            for i in range(0, len(calibration), batch_size):
                prepared(calibration[i:i + batch_size].float())
        return KarpOutput(convert_fx(prepared)).eval()


def dequantised_twin(model: nn.Module, kind: str) -> nn.Module:
    """The float copy of `model` whose quantised weights hold their int8 values times their scale:
    for 'int8-static' every Conv2d and Linear weight per output channel (symmetric, as the x86
    qconfig's weight observer), for 'int8-dynamic' every Linear weight per tensor (the dynamic
    qconfig's). Per-channel symmetric rounding gives the same integers whether BatchNorm is
    folded into the conv first or not (it scales each output channel), so this is the int8 model's
    weights; its activations stay float. Differentiable: used for its explanations."""
    from torch.ao.quantization.observer import (
        default_per_channel_weight_observer,
        default_weight_observer,
    )

    twin = copy.deepcopy(model).cpu().eval()
    types = PRUNABLE if kind == "int8-static" else (nn.Linear,)
    with torch.no_grad():
        for m in twin.modules():
            if not isinstance(m, types):
                continue
            w = m.weight
            per_channel = kind == "int8-static"
            obs = (default_per_channel_weight_observer if per_channel else default_weight_observer)()
            obs(w)
            scale, zp = obs.calculate_qparams()
            if per_channel:
                q = torch.fake_quantize_per_channel_affine(w, scale, zp.int(), 0, obs.quant_min, obs.quant_max)
            else:
                q = torch.fake_quantize_per_tensor_affine(w, float(scale), int(zp), obs.quant_min, obs.quant_max)
            w.copy_(q)
    return twin
