"""Model families (CNNs, char RNNs, GPT and ViT, GAN and VAE) and the registry that names, builds and rebuilds them."""

from .attention import GPT, GPT_PRESETS, VIT_PRESETS, GPTConfig, ViT, ViTConfig
from .cnn import CNN, CNNConfig
from .gan import DCGAN, GANConfig
from .registry import REGISTRY, ModelSpec, build, build_for, from_config
from .rnn import CharRNN, RNNConfig
from .vae import VAE, VAEConfig

__all__ = ["REGISTRY", "ModelSpec", "build", "build_for", "from_config",
           "CNNConfig", "RNNConfig", "GPTConfig", "ViTConfig", "GANConfig", "VAEConfig", "CNN", "CharRNN",
           "GPT", "ViT", "DCGAN", "VAE",
           "GPT_PRESETS", "VIT_PRESETS"]
