"""The ViT wrapper: CLS maps per layer and head in the patch grid's layout, CLS rows sum to 1
(patches + CLS itself), rollout's CLS row likewise, identity attention gives no patch attention,
and the upsampling and overlay helpers keep shapes."""
from pathlib import Path

import numpy as np
import pytest
import torch

from karp_models.introspect.vit import cls_rows, overlay, rollout_cls, upsample, vit_attention
from karp_models.models.attention import VIT_PRESETS, ViT
from karp_models.train.checkpoints import load_checkpoint

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "vit-fashion-mnist.safetensors"


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return load_checkpoint(WEIGHTS, torch.device("cpu")).model


def test_maps_have_the_grid_shape_and_cls_rows_sum_to_one(shipped):
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a = vit_attention(shipped, x)
    L, H = shipped.config.n_layer, shipped.config.n_head
    assert a.grid == shipped.grid == (4, 4)
    assert a.cls_maps.shape == (L, H, 4, 4) and a.cls_self.shape == (L, H)
    assert np.allclose(a.cls_maps.sum((2, 3)) + a.cls_self, 1, atol=1e-5)
    assert a.rollout_map.shape == (4, 4)
    assert np.isclose(a.rollout_map.sum() + a.rollout_self, 1, atol=1e-5)
    assert a.probs.shape == (10,) and np.isclose(a.probs.sum(), 1, atol=1e-5)
    logits, _ = shipped(x)
    assert np.allclose(a.probs, torch.softmax(logits, -1)[0].detach().numpy(), atol=1e-5)


def test_cls_maps_follow_the_patch_layout():
    """Token 1 + r * gw + c is patch (r, c): patch_embed flattens the grid row by row."""
    gh, gw, P = 3, 4, 12
    A = torch.zeros(1, 2, 1 + P, 1 + P)
    A[0, 0, 0, 1 + 1 * gw + 2] = 1.0                                # head 0: CLS -> patch (1, 2)
    A[0, 1, 0, 0] = 1.0                                             # head 1: CLS keeps it all
    maps, self_ = cls_rows([A], (gh, gw))
    assert maps.shape == (1, 1, 2, gh, gw)
    assert maps[0, 0, 0, 1, 2] == 1 and maps[0, 0, 0].sum() == 1
    assert maps[0, 0, 1].sum() == 0 and self_[0, 0, 1] == 1
    model = ViT(VIT_PRESETS["tiny"])
    x = torch.zeros(1, 1, 28, 28)
    x[..., 7:14, 14:21] = 1                                         # the patch in row 1, column 2
    tokens = model.patch_embed(x).flatten(2).transpose(1, 2)        # (1, 16, D), as ViT._run
    empty = model.patch_embed(torch.zeros(1, 1, 28, 28)).flatten(2).transpose(1, 2)
    changed = (tokens - empty).abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [1 * 4 + 2]


def test_identity_attention_leaves_everything_on_cls():
    eye = torch.eye(17).expand(1, 4, 17, 17)
    maps, self_ = cls_rows([eye, eye], (4, 4))
    assert maps.abs().sum() == 0 and torch.all(self_ == 1)
    roll, roll_self = rollout_cls([eye, eye, eye], (4, 4))
    assert roll.shape == (1, 4, 4) and roll.abs().sum() == 0 and torch.allclose(roll_self, torch.ones(1))


def test_random_tiny_vit_through_the_wrapper():
    torch.manual_seed(0)
    model = ViT(VIT_PRESETS["tiny"]).eval()
    a = vit_attention(model, torch.rand(1, 28, 28).unsqueeze(0))
    assert a.cls_maps.shape == (1, 2, 4, 4) and a.n_layer == 1 and a.n_head == 2
    assert np.allclose(a.cls_maps.sum((2, 3)) + a.cls_self, 1, atol=1e-5)


def test_upsample_and_overlay_shapes():
    m = np.arange(16, dtype=np.float32).reshape(4, 4)
    up = upsample(m, (28, 28), "nearest")
    assert up.shape == (28, 28) and up[0, 0] == 0 and up[27, 27] == 15 and up[7, 7] == 5
    assert upsample(np.stack([m, m]), (8, 8)).shape == (2, 8, 8)
    rgb = overlay(np.zeros((28, 28)), m)
    assert rgb.shape == (28, 28, 3) and rgb.dtype == np.uint8
    assert overlay(np.zeros((1, 28, 28)), np.zeros((4, 4))).shape == (28, 28, 3)  # (C, H, W), flat heat
