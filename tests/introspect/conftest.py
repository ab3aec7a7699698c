"""Introspection tests run on one thread (tiny tensors) and share one tiny, seeded fast CNN."""
import pytest
import torch

from karp_models.models.cnn import CNN, CNNConfig
from tests.models.conftest import _one_thread  # noqa: F401  (autouse here too)


@pytest.fixture(scope="module")
def cnn() -> CNN:
    torch.manual_seed(0)
    return CNN(CNNConfig(arch="fast", image_size=16, widths=(4, 6, 8, 8))).eval()
