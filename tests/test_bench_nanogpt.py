"""The bench's nanoGPT reference (bench/nanogpt_ref.py): its size against nanoGPT's parameter
formula for the README's CPU config, its lr schedule against train.py's get_lr, and one training
iteration against AdamW's first step worked out by hand."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from nanogpt_ref import RefConfig, RefGPT, RefRecipe, RefRun, param_formula  # noqa: E402


def test_cpu_config_parameter_count():
    # tiny-shakespeare's 65 characters, 4 layers x 128, context 64, no biases, tied head:
    # 65*128 + 64*128 + 4*(2*128 + 12*128^2) + 128 = 804,096; nanoGPT prints 0.80M (without wpe)
    c = RefConfig(vocab_size=65)
    m = RefGPT(c)
    assert param_formula(c) == 804_096
    assert m.get_num_params(non_embedding=False) == 804_096
    assert m.get_num_params() == 804_096 - 64 * 128
    assert m.lm_head.weight is m.transformer.wte.weight
    assert all(mod.bias is None for mod in m.modules() if isinstance(mod, torch.nn.Linear))


def test_lr_schedule_is_get_lr():
    r = RefRecipe()
    assert r.lr(0) == pytest.approx(1e-3 / 101)
    assert r.lr(99) == pytest.approx(1e-3 * 100 / 101)
    assert r.lr(100) == pytest.approx(1e-3)
    assert r.lr(1050) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))
    assert r.lr(2000) == pytest.approx(1e-4) and r.lr(5000) == pytest.approx(1e-4)


def test_one_iteration_is_adamws_first_step_by_hand():
    ids = torch.randint(0, 20, (5000,), generator=torch.Generator().manual_seed(1))
    run = RefRun(ids, vocab_size=20, seed=3)
    before = {n: p.detach().clone() for n, p in run.model.named_parameters()}
    # the batch and gradients the step will see, computed on a copy
    twin = RefGPT(run.config)
    twin.load_state_dict(run.model.state_dict())
    x, y = RefRun(ids, vocab_size=20, seed=3).get_batch()
    twin(x, y)[1].backward()
    torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
    grads = {n: p.grad for n, p in twin.named_parameters()}
    run.step()
    lr = 1e-3 / 101
    for n, p in run.model.named_parameters():
        g, p0 = grads[n], before[n]
        wd = 0.1 if p.dim() >= 2 else 0.0
        # AdamW's first step: bias-corrected m / sqrt(v) = g / |g|, after decoupled decay
        expected = p0 * (1 - lr * wd) - lr * g / (g.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, atol=1e-7, rtol=1e-5, msg=n)
    assert run.it == 1 and run.tokens == 12 * 64
