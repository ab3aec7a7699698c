"""Model registry: name -> keyword-only builder, task, default dataset and the weights files we ship.

Cites: torchvision's `resnet18(*, weights=None)` builders and weights enums carrying their `meta`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch.nn as nn

from .attention import GPT, GPT_PRESETS, VIT_PRESETS, GPTConfig, ViT, ViTConfig, fit_patch
from .captioning import PRESETS as CAPTION_PRESETS
from .captioning import CaptionConfig, Captioner
from .cnn import CNN, CNNConfig
from .cnn import PRESETS as CNN_PRESETS
from .finetune import PRESETS as FINETUNE_PRESETS
from .finetune import FineTune, FineTuneConfig, fit_data
from .gan import DCGAN, GANConfig
from .gan import PRESETS as GAN_PRESETS
from .rl import POLICY_PRESETS, Q_PRESETS, PolicyConfig, PolicyNet, QConfig, QNetwork
from .rnn import CharRNN, RNNConfig
from .rnn import PRESETS as RNN_PRESETS
from .vae import VAE, VAEConfig
from .vae import PRESETS as VAE_PRESETS

# ---------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str                    # 'cnn' | 'rnn' | 'transformer' | 'generative' | 'captioning' | 'rl'
    task: str                      # what it is trained to do: a key of train.tasks.TASKS ('image', 'text', 'caption', ...)
    default_dataset: str
    weights: tuple[str, ...]       # shipped files, relative to weights/; the first is the default
    description: str
    presets: tuple[str, ...]
    default_preset: str
    config_class: type = field(repr=False)             # the frozen config dataclass
    model_class: type = field(repr=False)              # the nn.Module taking that config
    preset_table: Mapping[str, Any] = field(repr=False)  # preset name -> config
    fixed: tuple[tuple[str, Any], ...] = ()            # config fields the name pins (arch / cell)
    fit: Callable[[Any, dict], dict] | None = field(default=None, repr=False)  # build_for: adjust to the data
    data_kind: str = ""            # the kind of dataset it trains on (data registry's kind); '' = task

    @property
    def data(self) -> str:
        """The kind of dataset the model trains on: 'image', 'text', ..."""
        return self.data_kind or self.task


def _image(name: str, family: str, weights: tuple[str, ...], description: str, presets: tuple[str, ...],
           config_class: type, model_class: type, table: dict, fixed: tuple = (), fit: Callable | None = None
           ) -> ModelSpec:
    return ModelSpec(name, family, "image", "fashion-mnist", weights, description, presets, presets[0],
                     config_class, model_class, table, fixed, fit)


def _text(name: str, family: str, weights: tuple[str, ...], description: str, presets: tuple[str, ...],
          default_preset: str, config_class: type, model_class: type, table: dict, fixed: tuple = ()) -> ModelSpec:
    return ModelSpec(name, family, "text", "shakespeare", weights, description, presets, default_preset,
                     config_class, model_class, table, fixed)


def _no_normalisation(preset: Any, values: dict) -> dict:
    """Generative models see pixels in [0, 1] (or [-1, 1]) as they are: no mean / std."""
    return {k: v for k, v in values.items() if k not in ("mean", "std")}


def _generative(name: str, task: str, weights: tuple[str, ...], description: str, presets: tuple[str, ...],
                config_class: type, model_class: type, table: dict, conditional: bool) -> ModelSpec:
    return ModelSpec(name, "generative", task, "fashion-mnist", weights, description, presets, presets[0],
                     config_class, model_class, table, (("conditional", conditional),), _no_normalisation,
                     data_kind="image")


def _caption(name: str, weights: tuple[str, ...], description: str, attention: bool) -> ModelSpec:
    return ModelSpec(name, "captioning", "caption", "scenes", weights, description, ("scenes", "tiny"),
                     "scenes", CaptionConfig, Captioner, CAPTION_PRESETS, (("attention", attention),),
                     data_kind="scenes")


_RNN_PRESETS = ("small", "shakespeare", "names", "tiny")
_GAN_PRESETS = ("dcgan", "small", "wgan-gp", "tiny")

REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (
    _image("classic", "cnn", ("classic-fashion-mnist.safetensors", "classic-mnist.safetensors"),
           "The course network: two 5x5 conv + max-pool layers, then fc 128 and the classifier.",
           ("classic", "classic-dropout"), CNNConfig, CNN, CNN_PRESETS, (("arch", "classic"),)),
    _image("fast", "cnn", ("fast-fashion-mnist.safetensors", "fast-robust-fashion-mnist.safetensors"),
           "A BatchNorm CNN built for time-to-accuracy on a CPU: pool early, conv-BN-ReLU, global max-pool.",
           ("fast", "fast-wide", "fast-small"), CNNConfig, CNN, CNN_PRESETS, (("arch", "fast"),)),
    _image("tinyvgg", "cnn", (),
           "CNN Explainer's TinyVGG: two blocks of [conv3x3, ReLU, conv3x3, ReLU, max-pool], then linear.",
           ("tinyvgg",), CNNConfig, CNN, CNN_PRESETS, (("arch", "tinyvgg"),)),
    _image("resnet18", "cnn", (),
           "torchvision ResNet-18 with a 3x3 stride-1 stem and no max-pool, for 28x28 and 32x32 inputs.",
           ("resnet18",), CNNConfig, CNN, CNN_PRESETS, (("arch", "resnet18"),)),
    _image("vit", "transformer", ("vit-fashion-mnist.safetensors",),
           "A small Vision Transformer: 7x7 patches, a CLS token, pre-LN attention blocks, head on CLS.",
           ("fashion", "fashion-p4", "tiny"), ViTConfig, ViT, VIT_PRESETS, fit=fit_patch),
    ModelSpec("finetune", "cnn", "finetune", "mnist", (),
              "Transfer learning: a pretrained CNN (karp's, or torchvision's ImageNet ResNet-18, MobileNetV3, "
              "VGG16) with a new last layer for your classes; the head alone, the whole network, or from scratch.",
              ("head", "whole", "scratch"), "head", FineTuneConfig, FineTune, FINETUNE_PRESETS,
              fit=fit_data, data_kind="image"),
    _text("rnn", "rnn", (), "A character-level vanilla (tanh) RNN.",
          _RNN_PRESETS, "small", RNNConfig, CharRNN, RNN_PRESETS, (("cell", "rnn"),)),
    _text("lstm", "rnn", ("lstm-shakespeare.safetensors", "lstm-names.safetensors", "lstm-classical-zh.safetensors"),
          "A character-level LSTM (char-rnn).",
          _RNN_PRESETS, "shakespeare", RNNConfig, CharRNN, RNN_PRESETS, (("cell", "lstm"),)),
    _text("gru", "rnn", (), "A character-level GRU.",
          _RNN_PRESETS, "small", RNNConfig, CharRNN, RNN_PRESETS, (("cell", "gru"),)),
    _text("gpt", "transformer", ("gpt-shakespeare.safetensors", "gpt-classical-zh.safetensors"),
          "A character-level GPT (nanoGPT): causal self-attention over the last block_size characters.",
          ("shakespeare", "small", "names", "nano"), "shakespeare", GPTConfig, GPT, GPT_PRESETS),
    _generative("dcgan", "gan", ("dcgan-fashion-mnist.safetensors",),
                "DCGAN: a generator draws images from noise, a discriminator learns to tell them from real ones.",
                _GAN_PRESETS, GANConfig, DCGAN, GAN_PRESETS, conditional=False),
    _generative("cdcgan", "gan", ("cdcgan-fashion-mnist.safetensors",),
                "Conditional DCGAN: the same pair, told which class to draw (and to judge).",
                _GAN_PRESETS, GANConfig, DCGAN, GAN_PRESETS, conditional=True),
    _generative("vae", "vae", ("vae-fashion-mnist.safetensors",),
                "Convolutional VAE: encodes an image to a small Gaussian latent, decodes samples back to pixels.",
                ("vae", "2d", "tiny"), VAEConfig, VAE, VAE_PRESETS, conditional=False),
    _generative("cvae", "vae", ("cvae-fashion-mnist.safetensors",),
                "Conditional VAE: the same, told the class, so a sample can be asked for one.",
                ("vae", "2d", "tiny"), VAEConfig, VAE, VAE_PRESETS, conditional=True),
    _caption("caption-lstm", ("caption-lstm-scenes.safetensors",),
             "A CNN reads the scene into one vector; an LSTM writes the caption, seeing that vector at every word.",
             attention=False),
    _caption("caption-attention", ("caption-attention-scenes.safetensors",),
             "Show, Attend and Tell: the LSTM looks again at the CNN's 8x8 grid (soft attention) before each word.",
             attention=True),
    ModelSpec("reinforce", "rl", "reinforce", "cartpole",
              ("reinforce-cartpole.safetensors", "reinforce-pong.safetensors"),
              "REINFORCE with a baseline (Williams 1992; Karpathy's Pong from Pixels): a policy network "
              "plays whole episodes, then makes the actions of better-than-average episodes more likely.",
              ("cartpole", "pong", "tiny"), "cartpole", PolicyConfig, PolicyNet, POLICY_PRESETS,
              data_kind="env"),
    ModelSpec("dqn", "rl", "dqn", "cartpole", ("dqn-cartpole.safetensors",),
              "Deep Q-learning (Mnih et al. 2015): a network estimates each action's future reward, "
              "learning from replayed experience against a slowly copied target network.",
              ("cartpole", "tiny"), "cartpole", QConfig, QNetwork, Q_PRESETS, data_kind="env"),
)}

# ---------------------------------------------------------------------------- builders


def _spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose from {sorted(REGISTRY)}")
    return REGISTRY[name]


def _as_fields(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """Check names against the config dataclass and turn JSON lists back into tuples."""
    known = {f.name for f in fields(config_class)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field(s) {sorted(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _pinned(spec: ModelSpec, values: dict[str, Any]) -> dict[str, Any]:
    for k, v in spec.fixed:
        if values.get(k, v) != v:
            raise ValueError(f"model {spec.name!r} has {k}={v!r}, not {values[k]!r}")
    return {**values, **dict(spec.fixed)}


def _preset(spec: ModelSpec, preset: str | None) -> str:
    preset = preset or spec.default_preset
    if preset not in spec.presets:
        raise ValueError(f"model {spec.name!r} has no preset {preset!r}; choose from {spec.presets}")
    return preset


def build(name: str, *, preset: str | None = None, **config_fields: Any) -> nn.Module:
    """Build model `name` from a preset (default: the spec's) with config fields overridden."""
    spec = _spec(name)
    preset = _preset(spec, preset)
    values = _pinned(spec, _as_fields(spec.config_class, config_fields))
    return spec.model_class(replace(spec.preset_table[preset], **values))


def _text_fields(name: str, data: Any) -> dict[str, Any]:
    if not hasattr(data, "vocab_size") or hasattr(data, "channels"):
        raise TypeError(f"{name!r} is a text model; it needs a TextData, got {type(data).__name__}")
    return {"vocab_size": int(data.vocab_size)}


def _image_fields(name: str, data: Any) -> dict[str, Any]:
    if not hasattr(data, "channels"):
        raise TypeError(f"{name!r} is an image model; it needs an ImageData, got {type(data).__name__}")
    size = data.size
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    if H != W:
        raise ValueError(f"{name!r} needs square images, {data.name!r} is {H}x{W}")
    return {"in_channels": int(data.channels), "image_size": int(H),
            "mean": tuple(float(m) for m in data.mean), "std": tuple(float(s) for s in data.std)}


def _classifier_fields(name: str, data: Any) -> dict[str, Any]:
    if not hasattr(data, "n_classes"):
        raise TypeError(f"{name!r} is an image model; it needs an ImageData, got {type(data).__name__}")
    return {**_image_fields(name, data), "n_classes": int(data.n_classes)}


def _caption_fields(name: str, data: Any) -> dict[str, Any]:
    if not (hasattr(data, "channels") and hasattr(data, "vocab")):
        raise TypeError(f"{name!r} is a captioning model; it needs a CaptionData, got {type(data).__name__}")
    return {**_image_fields(name, data), "vocab_size": int(data.vocab_size), "max_len": int(data.max_len) + 2,
            "pad": data.PAD, "bos": data.BOS, "eos": data.EOS}


def _env_fields(name: str, data: Any) -> dict[str, Any]:
    if not (hasattr(data, "obs_dim") and hasattr(data, "n_actions")):
        raise TypeError(f"{name!r} is an agent; it needs an environment (EnvData), got {type(data).__name__}")
    return {"obs_dim": int(data.obs_dim), "n_actions": int(data.n_actions)}


# the kind of data a model trains on (ModelSpec.data) -> the config fields a dataset fixes
FROM_DATA: dict[str, Callable[[str, Any], dict[str, Any]]] = {
    "text": _text_fields, "image": _classifier_fields, "scenes": _caption_fields, "env": _env_fields}


def build_for(name: str, data: Any, *, preset: str | None = None, **overrides: Any) -> nn.Module:
    """Build model `name` shaped for a dataset (ImageData: channels, size, classes, mean, std;
    TextData: vocab; CaptionData: channels, size, mean, std, vocab, longest caption)."""
    spec = _spec(name)
    values = {**FROM_DATA[spec.data](name, data), **overrides}
    if spec.fit is not None:
        values = spec.fit(spec.preset_table[_preset(spec, preset)], values)
    return build(name, preset=preset, **values)


def from_config(name: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild model `name` from a stored config dict (e.g. dataclasses.asdict, via JSON)."""
    spec = _spec(name)
    values = _pinned(spec, _as_fields(spec.config_class, dict(config)))
    return spec.model_class(spec.config_class(**values))
