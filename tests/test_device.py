"""Device choice with CUDA and MPS mocked absent and present; precision and thread policy."""
import contextlib

import pytest
import torch

from karp_models import device as dev


@pytest.fixture
def fake(monkeypatch):
    def set_(cuda: bool, mps: bool):
        monkeypatch.delenv("KARP_DEVICE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    return set_


@pytest.mark.parametrize("cuda,mps,want", [(True, True, "cuda"), (True, False, "cuda"),
                                           (False, True, "mps"), (False, False, "cpu")])
def test_pick_device_order(fake, cuda, mps, want):
    fake(cuda, mps)
    assert dev.pick_device().type == want


def test_prefer_and_env_override(fake, monkeypatch):
    fake(True, True)
    assert dev.pick_device("cpu").type == "cpu"
    assert dev.pick_device("mps").type == "mps"
    monkeypatch.setenv("KARP_DEVICE", "cpu")
    assert dev.pick_device().type == "cpu"
    fake(False, False)
    assert dev.pick_device("cuda").type == "cpu"  # asked for but absent: falls back


def test_describe_cpu_names_cores(monkeypatch):
    monkeypatch.setattr(dev, "cpu_cores", lambda: 2)
    text = dev.describe_device(torch.device("cpu"))
    assert "CPU" in text and "2 cores" in text


def test_describe_cuda_names_gpu_and_memory(monkeypatch):
    class Props:
        name = "NVIDIA RTX 4090"
        total_memory = 24 * 2**30
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: Props())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    text = dev.describe_device(torch.device("cuda"))
    assert "RTX 4090" in text and "24.0 GiB" in text and "bfloat16" in text


def test_precision_policy(monkeypatch):
    assert dev.amp_dtype(torch.device("cpu")) is None
    assert isinstance(dev.autocast(torch.device("cpu")), contextlib.nullcontext)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.amp_dtype(torch.device("cuda")) is torch.bfloat16
    assert not dev.needs_grad_scaler(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.amp_dtype(torch.device("cuda")) is torch.float16
    assert dev.needs_grad_scaler(torch.device("cuda"))


@pytest.mark.parametrize("cores,want", [(1, 1), (2, 1), (4, 3), (64, 8)])
def test_app_threads_leave_a_core_for_the_server(cores, want):
    assert dev.app_threads(cores) == want


def test_set_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(dev, "cpu_cores", lambda: 2)
        monkeypatch.delenv("KARP_THREADS", raising=False)
        assert dev.set_threads(for_app=True) == 1
        assert dev.set_threads() == 2
        monkeypatch.setenv("KARP_THREADS", "1")
        assert dev.set_threads() == 1
    finally:
        torch.set_num_threads(before)
