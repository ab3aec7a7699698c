"""ImageNet models from torchvision (ResNet-18, MobileNetV3-Large, VGG16, ViT-B/16) with torchvision's
own pretrained-weights loading, for photos of everyday things and as backbones to fine-tune.

Weights come from the torch hub cache (`$TORCH_HOME/hub/checkpoints/<file>`, by default
~/.cache/torch) exactly as `torchvision.models.resnet18(weights="IMAGENET1K_V1")` finds them; a
download is only tried when asked for and the host answers. Offline and not cached,
`state_dict()` and `load()` raise WeightsUnavailable whose message says how to get the file.
Loading is `weights.get_state_dict(check_hash=True, weights_only=True)` (torchvision's builders
call the same, without weights_only) into a model built with weights=None.
"""
from __future__ import annotations

import pickle
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch
from torch import nn

from karp_models.i18n import _

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Arch:
    name: str
    title: str
    builder: Callable[..., nn.Module]
    weights: Any                   # torchvision's WeightsEnum member


_ARCHS: dict[str, Arch] = {}


def _archs() -> dict[str, Arch]:
    """The table, built on first use: importing torchvision costs seconds (torch._dynamo), which a
    first page without ImageNet models should not pay."""
    if not _ARCHS:
        import torchvision.models as tvm

        _ARCHS.update({a.name: a for a in (
            Arch("resnet18", "ResNet-18", tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
            Arch("mobilenet_v3_large", "MobileNetV3-Large", tvm.mobilenet_v3_large,
                 tvm.MobileNet_V3_Large_Weights.IMAGENET1K_V2),
            Arch("vgg16", "VGG16", tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1),
            Arch("vit_b_16", "ViT-B/16", tvm.vit_b_16, tvm.ViT_B_16_Weights.IMAGENET1K_V1),
        )})
    return _ARCHS


def __getattr__(name: str):   # PEP 562: `imagenet.ARCHS` / `from karp_models.imagenet import ARCHS`
    if name == "ARCHS":
        return _archs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class WeightsUnavailable(RuntimeError):
    """The pretrained weights are neither cached nor downloadable; the message says what to do."""


# ---------------------------------------------------------------------------- where the weights live


def cached_file(name: str) -> Path:
    """Where torch hub keeps this model's weights: <torch.hub.get_dir()>/checkpoints/<file>."""
    url = _archs()[name].weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def is_cached(name: str) -> bool:
    return cached_file(name).is_file()


def size_mb(name: str) -> float:
    return float(_archs()[name].weights.meta.get("_file_size", 0.0))


def how_to_get(name: str) -> str:
    """Steps, in words and commands, that put the weights where load() finds them."""
    a = _archs()[name]
    f = cached_file(name)
    command = f"python -c \"import torchvision; torchvision.models.{a.builder.__name__}(weights='{a.weights.name}')\""
    return _("{model}'s ImageNet weights ({mb:.0f} MB) are not on this machine. On a machine with internet, "
             "run\n\n    {command}\n\nthen copy the file it reports (…/hub/checkpoints/{file}) to\n\n    "
             "{path}\n\nor download {url} into that folder (set TORCH_HOME to use another one).").format(
                 model=a.title, mb=size_mb(name), command=command, file=f.name, path=f, url=a.weights.url)


def offline_words(name: str) -> str:
    """One sentence for a machine that cannot download the weights: what to do instead."""
    return _("This computer cannot reach {host}: connect it to the internet and download again, or copy "
             "{file} from a computer that has it into {folder}.").format(
                 host=urlparse(_archs()[name].weights.url).hostname, file=cached_file(name).name,
                 folder=cached_file(name).parent)


def download(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """Put the weights into the torch hub cache with torchvision's own download
    (torch.hub.download_url_to_file: a temporary .partial file, its SHA-256 checked against the
    prefix in the file's name), calling progress(bytes so far, total bytes) while it runs.
    Raises WeightsUnavailable (offline_words) when the host cannot be reached or it fails."""
    a = _archs()[name]
    if is_cached(name):
        return cached_file(name)
    if not _reachable(a.weights.url):
        raise WeightsUnavailable(offline_words(name))
    return fetch(a.weights.url, cached_file(name), int(size_mb(name) * 2**20), progress)


def fetch(url: str, dst: Path, total: int, progress: Callable[[int, int], None] | None = None,
          poll_s: float = 0.2) -> Path:
    """torch.hub.download_url_to_file(url, dst) on a thread while this one reports the size of
    its .partial file to progress(done, total); the hash prefix in dst's name is checked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    match = torch.hub.HASH_REGEX.search(dst.name)
    failed: list[BaseException] = []

    def work() -> None:
        try:
            torch.hub.download_url_to_file(url, str(dst), match.group(1) if match else None,
                                           progress=False)
        except BaseException as e:  # noqa: BLE001 - reported on the calling thread
            failed.append(e)

    worker = threading.Thread(target=work, name="karp-download", daemon=True)
    worker.start()
    done = 0
    while worker.is_alive():
        worker.join(poll_s)
        if progress is not None:
            now = 0
            for part in dst.parent.glob(dst.name + ".*.partial"):
                try:
                    now += part.stat().st_size
                except OSError:                                 # renamed into place meanwhile
                    pass
            done = max(done, min(now, total))                  # gone once renamed: never back
            progress(done, total)
    if failed:
        raise WeightsUnavailable(_("The download failed ({error}).").format(
            error=f"{type(failed[0]).__name__}: {failed[0]}")) from None
    if progress is not None:
        progress(total, total)
    return dst


def _reachable(url: str, timeout: float = 3.0) -> bool:
    host = urlparse(url).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- the model


class ImageNetModel(nn.Module):
    """A torchvision classifier with karp's interface: forward(x in [0, 1]) -> (logits, None),
    normalising inside with ImageNet's mean/std; `classes`, `image_size` (crop) and
    `resize_size` come from the weights' own meta and transforms."""

    def __init__(self, name: str, net: nn.Module) -> None:
        super().__init__()
        a = _archs()[name]
        self.name, self.title, self.net = name, a.title, net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        t = a.weights.transforms()
        self.image_size = int(t.crop_size[0])
        self.resize_size = int(t.resize_size[0])
        self.classes: tuple[str, ...] = tuple(a.weights.meta["categories"])
        self.metrics: dict = dict(a.weights.meta.get("_metrics", {}).get("ImageNet-1K", {}))
        for m in net.modules():                                     # hooks dislike in-place ops
            if isinstance(m, nn.ReLU | nn.Hardswish | nn.ReLU6):
                m.inplace = False
        from karp_models.introspect.features import spatial_layers
        self.feature_layers: list[str] = spatial_layers(self)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.net((x - self.mean) / self.std)               # (B, 1000)
        loss = nn.functional.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


def state_dict(name: str, *, download: bool = False) -> dict[str, torch.Tensor]:
    """The pretrained weights as torchvision names them, from the torch hub cache (or downloaded
    into it when download=True and the host answers). Raises WeightsUnavailable with what to do."""
    if name not in _archs():
        raise KeyError(f"unknown ImageNet model {name!r}; choose from {', '.join(_archs())}")
    a = _archs()[name]
    if not is_cached(name):
        if not download:
            raise WeightsUnavailable(how_to_get(name))
        if not _reachable(a.weights.url):
            raise WeightsUnavailable(_("{host} cannot be reached (no internet?).").format(
                host=urlparse(a.weights.url).hostname) + "\n\n" + how_to_get(name))
    try:
        return a.weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:  # URLError: OSError
        if not is_cached(name) or "HTTP" in str(e) or "URL" in type(e).__name__:
            raise WeightsUnavailable(_("The download failed ({error}).").format(
                error=f"{type(e).__name__}: {e}") + "\n\n" + how_to_get(name)) from None
        raise WeightsUnavailable(_("{file} is damaged or not a weights file ({error}); delete it and get it "
                                   "again.").format(file=cached_file(name), error=f"{type(e).__name__}: {e}")) from None


def load(name: str, *, download: bool = False, device: torch.device | str = "cpu") -> ImageNetModel:
    """The pretrained model in eval mode, from the torch hub cache (or downloaded into it when
    download=True and the host answers). Raises WeightsUnavailable with how_to_get(name)."""
    state = state_dict(name, download=download)
    a = _archs()[name]
    net = a.builder(weights=None)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsUnavailable(_("{file} does not fit {model}: {error}").format(
            file=cached_file(name), model=a.title, error=e)) from None
    return ImageNetModel(name, net).eval().to(device)
