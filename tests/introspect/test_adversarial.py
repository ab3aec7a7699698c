"""FGSM and PGD through captum.robust: inside the epsilon ball and the pixel range, the loss of
the attacked class goes up, and the attributions before and after are reported."""
import pytest
import torch
import torch.nn.functional as Fn

from karp_models.introspect import adversarial as Ad


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
