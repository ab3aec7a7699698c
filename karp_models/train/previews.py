"""What a live view shows while a model trains: the previews tasks make between records, how they
are made without disturbing the run, and the snapshots worth keeping over a run.

A task's preview(model, device, step) returns one of the frozen objects here (or its own); the
job queue calls it through `make` and never looks inside. The live text sample is min-char-rnn's
"print a sample every few hundred steps" (Karpathy 2015); the prediction grid is ConvNetJS's
live test-set view; the first-layer filters over a run are Zeiler and Fergus's (2014) Fig. 4; a
generator's grid over a run is PyTorch's DCGAN example's animation of its fixed-noise samples.

A task may also name the curves a live view draws besides the loss (`Chart`, the task's
`charts`): a GAN's two losses and D's two verdicts, a VAE's two ELBO terms.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from karp_models.introspect.features import filter_weights

GRID = 16               # test images in the live prediction grid (4 x 4)
SAMPLE_CHARS = 240      # characters in a live text sample
MAX_SNAPSHOTS = 200     # snapshots kept per run (thinned evenly beyond)

# --- what the views show


@dataclass(frozen=True)
class Chart:
    """A chart of named values a task reports (Record.scalars), drawn live beside the loss.

    title, axis and labels are English messages marked with N_ (the page translates them);
    names: the scalars, one trace each (labels: their legend names, same order); val: also the
    evaluations' values of the same names ('val_' + name) as dashed lines; floor: a scalar of
    the final evaluation drawn as a horizontal reference line (e.g. real images' Frechet
    distance); log: a logarithmic y axis; train: draw the training values (False: a quantity
    measured only at evaluations).
    """

    title: str
    names: tuple[str, ...]
    labels: tuple[str, ...]
    axis: str
    train: bool = True
    val: bool = True
    floor: str | None = None
    log: bool = False


@dataclass(frozen=True)
class TextSample:
    step: int
    text: str


@dataclass(frozen=True)
class Predictions:
    """The model's current guesses on a fixed grid of test images; `snapshot` is its first conv
    layer's weights (O, C, kh, kw) float32, kept over the run under `snapshot_key`."""

    step: int
    images: np.ndarray  # (16, C, H, W) uint8
    labels: tuple[int, ...]
    preds: tuple[int, ...]
    confidence: tuple[float, ...]  # softmax probability of the predicted class
    classes: tuple[str, ...]
    snapshot: np.ndarray | None = None
    snapshot_key: ClassVar[str] = "filter_evolution"

    @property
    def correct(self) -> int:
        return sum(p == y for p, y in zip(self.preds, self.labels))


@dataclass(frozen=True)
class Captions:
    """A captioner's greedy captions of a few fixed test scenes: each caption's words (without
    </s>), the probability of each word and of the closing </s>, the attention map each word was
    written with (n, T, g, g), rows past a caption's end meaningless; None without attention),
    the first reference, and whether each caption states its scene exactly (None for photos)."""

    step: int
    images: np.ndarray  # (n, C, H, W) uint8
    words: tuple[tuple[str, ...], ...]
    probs: tuple[tuple[float, ...], ...]
    attention: np.ndarray | None
    references: tuple[str, ...]
    correct: tuple[bool, ...] | None
    language: str = "en"

    def caption(self, i: int) -> str:
        """Caption i as a person writes it (Chinese words joined without spaces)."""
        return ("" if self.language == "zh" else " ").join(self.words[i])


@dataclass(frozen=True)
class PreviewFailed:
    """A preview that raised: the message, so the run goes on and the page says why."""

    step: int
    message: str


# --- making them


def predict_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 classes: tuple[str, ...], device: torch.device, step: int) -> Predictions:
    """Predictions on uint8 images (N, C, H, W) with labels (N,), and the first conv's weights."""
    logits, _ = model(images.to(device).float() / 255)  # (N, n_classes)
    prob = torch.softmax(logits.float(), dim=-1).cpu()
    conf, pred = prob.max(dim=-1)
    return Predictions(step=step, images=images.numpy(), labels=tuple(labels.tolist()),
                       preds=tuple(pred.tolist()), confidence=tuple(conf.tolist()),
                       classes=tuple(classes), snapshot=filter_weights(model))


def sample_text(model: nn.Module, data: Any, device: torch.device, step: int,
                n: int = SAMPLE_CHARS) -> TextSample:
    """n characters generated from a newline (or the validation text's first character)."""
    start = data.encode("\n") if "\n" in data.vocab else [int(data.val_ids[0])]
    idx = torch.tensor([start[:1]], dtype=torch.long, device=device)  # (1, 1)
    out = model.generate(idx, max_new_tokens=n, temperature=1.0)  # (1, 1 + n)
    return TextSample(step, data.decode(out[0, 1:].tolist()))


def make(task: Any, model: nn.Module, device: torch.device, step: int) -> Any:
    """task.preview(...) in eval mode, without gradients and on a forked RNG seeded by the step
    (so previews do not shift the run's randomness: an app run matches the CLI's); None for a
    task without previews, PreviewFailed when it raises (the run goes on)."""
    fn = getattr(task, "preview", None)
    if fn is None:
        return None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(1000 + step)
            return fn(model, device, step)
    except Exception as e:  # noqa: BLE001 - a failing preview must not stop the training
        return PreviewFailed(step, f"{type(e).__name__}: {e}")
    finally:
        model.train(was_training)


# --- snapshots over a run


def keep_snapshot(snapshots: list[tuple[int, np.ndarray]], preview: Any,
                  max_items: int = MAX_SNAPSHOTS) -> None:
    """Append the preview's snapshot (if it has one, and for a new step), thinning evenly past
    max_items: the first and the last stay."""
    snap = getattr(preview, "snapshot", None)
    if snap is None or (snapshots and snapshots[-1][0] == preview.step):
        return
    snapshots.append((preview.step, snap))
    if len(snapshots) > max_items:
        del snapshots[1::2]


def snapshots_meta(snapshots: list[tuple[int, np.ndarray]], max_values: int = 65536,
                   max_images: int = 32) -> dict:
    """Snapshots as JSON for a saved run's metadata. Weights (float): at most 32 evenly spaced
    (fewer for big layers, about max_values numbers in all), 4 decimals. Images (uint8, e.g. a
    generator's grids (N, C, H, W)): at most max_images evenly spaced, each a lossless PNG in
    base64 with its shape. The first and the last are always kept."""
    images = snapshots[-1][1].dtype == np.uint8
    keep = max_images if images else max(2, min(32, max_values // max(1, snapshots[-1][1].size)))
    idx = np.unique(np.linspace(0, len(snapshots) - 1, min(keep, len(snapshots))).round().astype(int))
    steps = [int(snapshots[i][0]) for i in idx]
    if images:
        return {"steps": steps, "shape": list(snapshots[-1][1].shape),
                "png": [_png(snapshots[i][1]) for i in idx]}
    return {"steps": steps, "weights": [np.round(snapshots[i][1], 4).tolist() for i in idx]}


def snapshots_from_meta(entry: dict) -> list[tuple[int, np.ndarray]]:
    """The inverse of snapshots_meta: [(step, array)], float32 weights or uint8 images.

    Raises ValueError for an entry that is not one (a damaged or foreign file)."""
    try:
        steps = [int(s) for s in entry["steps"]]
        if "png" in entry:
            shape = tuple(int(n) for n in entry["shape"])
            arrays = [_unpng(p, shape) for p in entry["png"]]
        else:
            arrays = [np.asarray(w, np.float32) for w in entry["weights"]]
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ValueError(f"snapshots that cannot be read: {type(e).__name__}: {e}") from e
    if len(steps) != len(arrays):
        raise ValueError("snapshots that cannot be read: steps and arrays differ in number")
    return list(zip(steps, arrays))


def _png(images: np.ndarray) -> str:
    """Images (N, C, H, W) uint8, C 1 or 3, as one PNG (the N stacked vertically), base64."""
    from PIL import Image

    N, C, H, W = images.shape
    a = images.transpose(0, 2, 3, 1).reshape(N * H, W, C)                   # (N * H, W, C)
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if C == 1 else a).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _unpng(data: str, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    N, C, H, W = shape
    if N * C * H * W > 2 ** 22:                        # a forged shape must not allocate much
        raise ValueError(f"{N} images of {C}x{H}x{W} are more than a snapshot holds")
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    if img.size != (W, N * H) or img.mode not in ("L", "RGB") or (C == 1) != (img.mode == "L"):
        raise ValueError(f"a {img.mode} image of {img.size}, not {N} images of {C}x{H}x{W}")
    a = np.asarray(img, dtype=np.uint8).reshape(N, H, W, C)
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))                      # (N, C, H, W)
