"""FGSM and PGD (one implementation, Madry et al.'s): inside the epsilon ball and the pixel range,
the loss of the attacked class goes up (on the shipped, trained fast CNN too), one step is FGSM by
hand, robust accuracy counts what survives, the attributions before and after are reported, and
the share of a map on the object."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from karp_models.introspect import adversarial as Ad

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


@pytest.fixture(scope="module")
def setup(cnn):
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    return cnn, x


@pytest.mark.parametrize("method", Ad.ATTACKS)
def test_attack_stays_in_the_ball_and_raises_the_loss(setup, method):
    model, x = setup
    label = int(model(x)[0].argmax())
    eps = 0.05
    x_adv = Ad.attack(model, x, label, method=method, epsilon=eps)
    assert x_adv.shape == x.shape
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        before = Fn.cross_entropy(model(x)[0], torch.tensor([label]))
        after = Fn.cross_entropy(model(x_adv)[0], torch.tensor([label]))
    assert after > before


def test_adversarial_reports_predictions_and_attributions(setup):
    model, x = setup
    state = {k: v.clone() for k, v in model.state_dict().items()}
    label = int(model(x)[0].argmax())
    r = Ad.adversarial(model, x, label, ["Saliency", "Grad-CAM"], method="PGD", epsilon=0.1)
    assert r.perturbation.shape == (1, 16, 16) and abs(r.perturbation).max() <= 0.1 + 1e-6
    assert r.probs_before.shape == r.probs_after.shape == (10,)
    assert r.probs_after[label] < r.probs_before[label]
    assert set(r.before) == set(r.after) == set(r.similarity) == {"Saliency", "Grad-CAM"}
    assert set(r.similarity["Saliency"].values) == {"Spearman |map|", "SSIM |map|", "HOG |map|"}  # unsigned
    assert r.fooled == (r.pred_after != r.pred_before)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="FGSM"):
        Ad.attack(model, x, 0, method="CW")


def test_maps_that_rank_nothing_are_not_compared(setup):
    model, _ = setup
    black = torch.zeros(1, 1, 16, 16)                                 # IG's baseline: its map is 0
    r = Ad.adversarial(model, black, int(model(black)[0].argmax()), ["Integrated Gradients", "Saliency"],
                       epsilon=0.05)
    ig = r.similarity["Integrated Gradients"]
    assert ig.values == {} and ig.reason.startswith("the map before the attack is zero everywhere")
    assert r.similarity["Saliency"].values and r.similarity["Saliency"].reason is None


def test_one_pgd_step_of_epsilon_is_fgsm_by_hand(setup):
    model, _ = setup
    x = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 3])
    xr = x.clone().requires_grad_(True)
    Fn.cross_entropy(model(xr)[0], y, reduction="sum").backward()
    ref = (x + 0.03 * xr.grad.sign()).clamp(0, 1)                     # Goodfellow et al.'s formula
    assert torch.allclose(Ad.pgd(model, x, y, epsilon=0.03, steps=1, step_size=0.03), ref)
    assert torch.equal(Ad.pgd(model, x, y, epsilon=0.0), x)
    with pytest.raises(ValueError, match="epsilon"):
        Ad.pgd(model, x, y, epsilon=-0.1)


@pytest.fixture(scope="module")
def shipped():
    from karp_models import data
    from karp_models.train.checkpoints import load_checkpoint

    path = WEIGHTS / "fast-fashion-mnist.safetensors"
    if not path.exists():
        pytest.skip("shipped weights missing")
    ds = data.load("fashion-mnist")
    return load_checkpoint(path).model.eval(), ds.test_x[:64].float() / 255, ds.test_y[:64]


def test_pgd_raises_the_loss_of_a_trained_model_and_beats_fgsm(shipped):
    model, x, y = shipped
    eps = 0.05
    x_pgd = Ad.pgd(model, x, y, epsilon=eps, steps=10)
    x_fgsm = Ad.pgd(model, x, y, epsilon=eps, steps=1, step_size=eps)
    x_rand = Ad.pgd(model, x, y, epsilon=eps, steps=10, random_start=True,
                    generator=torch.Generator().manual_seed(0))
    assert (x_pgd - x).abs().max() <= eps + 1e-6 and x_pgd.min() >= 0 and x_pgd.max() <= 1
    assert (x_rand - x).abs().max() <= eps + 1e-6
    with torch.no_grad():
        loss = {k: Fn.cross_entropy(model(v)[0], y).item() for k, v in
                (("clean", x), ("fgsm", x_fgsm), ("pgd", x_pgd), ("random", x_rand))}
    assert loss["pgd"] > 5 * loss["clean"] and loss["pgd"] > loss["fgsm"] > loss["clean"]
    assert loss["random"] > 5 * loss["clean"]
    r = Ad.robust_accuracy(model, x, y, epsilon=eps, steps=10, batch_size=20)
    with torch.no_grad():
        clean = (model(x)[0].argmax(-1) == y).float().mean().item()
        robust = (model(x_pgd)[0].argmax(-1) == y).float().mean().item()
    assert (r.clean, r.robust, r.n, r.steps) == (pytest.approx(clean), pytest.approx(robust), 64, 10)
    assert r.robust < r.clean - 0.5                                     # a normal model is not robust


def test_object_share_counts_the_map_on_bright_pixels():
    x = np.zeros((2, 1, 4, 4))
    x[:, :, :2, :] = 0.8                                                # the object: the top half
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, -1.0                            # |map|: 3 on the object, 1 off it
    share, area = Ad.object_share(maps, x)
    assert share[0] == pytest.approx(0.75) and np.isnan(share[1]) and area.tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="match"):
        Ad.object_share(maps, x[:, :, :3])
