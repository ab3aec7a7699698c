"""Model families (CNNs, char RNNs, GPT and ViT) and the registry that names, builds and rebuilds them."""

from .attention import GPT, GPT_PRESETS, VIT_PRESETS, GPTConfig, ViT, ViTConfig
from .cnn import CNN, CNNConfig
from .registry import REGISTRY, ModelSpec, build, build_for, from_config
from .rnn import CharRNN, RNNConfig

__all__ = ["REGISTRY", "ModelSpec", "build", "build_for", "from_config",
           "CNNConfig", "RNNConfig", "GPTConfig", "ViTConfig", "CNN", "CharRNN", "GPT", "ViT",
           "GPT_PRESETS", "VIT_PRESETS"]
