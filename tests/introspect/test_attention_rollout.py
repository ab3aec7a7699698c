import pytest
import torch

from karp_models.introspect.attention import rollout


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)
    assert torch.allclose(rollout([eye, eye, eye]), torch.eye(5).expand(2, 5, 5))


def test_rollout_rows_sum_to_one_and_matches_manual_product():
    torch.manual_seed(0)
    maps = [torch.softmax(torch.randn(1, 4, 6, 6), -1) for _ in range(3)]
    r = rollout(maps)
    assert torch.allclose(r.sum(-1), torch.ones(1, 6), atol=1e-5)
    hat = [(m.mean(1) + torch.eye(6)) / 2 for m in maps]
    assert torch.allclose(r, hat[2] @ hat[1] @ hat[0], atol=1e-6)


def test_rollout_rejects_unknown_fusion():
    with pytest.raises(ValueError, match="head_fusion"):
        rollout([torch.eye(3).expand(1, 1, 3, 3)], head_fusion="median")
