"""The GAN and VAE families: shapes for every preset and image size, conditioning, the VAE's losses
against torch.distributions, and WGAN-GP's penalty against a critic whose gradient is known."""
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from karp_models.models import REGISTRY, build, from_config
from karp_models.models.gan import Discriminator, GANConfig, gradient_penalty
from karp_models.models.vae import VAEConfig

GENERATIVE = ("dcgan", "cdcgan", "vae", "cvae")


@pytest.mark.parametrize("name", GENERATIVE)
@pytest.mark.parametrize("C,S", [(1, 28), (3, 32), (1, 8)])
def test_shapes_and_ranges_for_every_size(name, C, S):
    torch.manual_seed(0)
    m = build(name, preset="tiny", in_channels=C, image_size=S).eval()
    c = m.config
    labels = torch.tensor([0, 3, 9]) if c.conditional else None
    z = torch.randn(3, c.latent)
    img = m.generate(z, labels)
    assert img.shape == (3, C, S, S) and img.dtype == torch.float32
    assert 0 <= img.min() and img.max() <= 1
    if REGISTRY[name].task == "gan":
        assert m(z, labels).shape == (3, C, S, S) and m(z, labels).abs().max() <= 1   # tanh
        assert m.discriminate(img * 2 - 1, labels).shape == (3,)
    else:
        mu, logvar = m.encode(img, labels)
        assert mu.shape == logvar.shape == (3, c.latent)
        recon, losses = m(img, labels)
        assert recon.shape == img.shape and set(losses) == {"loss", "recon", "kl"}


@pytest.mark.parametrize("name", ["cdcgan", "cvae"])
def test_a_conditional_model_needs_and_uses_its_labels(name):
    torch.manual_seed(0)
    m = build(name, preset="tiny").eval()
    z = torch.randn(2, m.config.latent)
    with pytest.raises(ValueError, match="labels"):
        m.generate(z)
    a, b = m.generate(z, torch.tensor([0, 0])), m.generate(z, torch.tensor([7, 7]))
    assert not torch.allclose(a, b)                                    # the class changes the drawing
    assert build(name.removeprefix("c"), preset="tiny").config.conditional is False


def test_names_pin_conditioning_and_configs_round_trip():
    with pytest.raises(ValueError):
        build("dcgan", conditional=True)
    m = build("cdcgan", preset="wgan-gp")
    assert m.config.conditional and m.config.loss == "wgan-gp"
    assert isinstance(m.discriminator.body[3], torch.nn.GroupNorm)     # no BatchNorm under a penalty
    assert from_config("cdcgan", vars(m.config)).config == m.config
    for bad in (dict(image_size=30), dict(loss="hinge")):
        with pytest.raises(ValueError):
            GANConfig(**bad)
    with pytest.raises(ValueError):
        VAEConfig(beta=-1)


def test_vae_losses_match_torch_distributions():
    torch.manual_seed(0)
    m = build("vae", preset="tiny", beta=0.5).eval()
    x = torch.rand(4, 1, 28, 28)
    torch.manual_seed(1)
    recon, losses = m(x)
    mu, logvar = m.encode(x)
    kl_ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum() / 4
    torch.testing.assert_close(losses["kl"], kl_ref)
    torch.manual_seed(1)                                             # the same noise as forward's
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    logits = m.decode(z)
    nll = -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum() / 4   # Bernoulli, by hand
    torch.testing.assert_close(losses["recon"], nll)
    torch.testing.assert_close(losses["loss"], nll + 0.5 * kl_ref)
    torch.testing.assert_close(recon, torch.sigmoid(logits))


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    """D(x) = w . x + b has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly."""
    torch.manual_seed(0)
    critic = Discriminator(GANConfig(image_size=8, width=2, loss="wgan-gp"))
    w = torch.randn(64)

    class Linear(torch.nn.Module):
        def forward(self, x, labels=None):
            return x.flatten(1) @ w + 0.3

    real, fake = torch.rand(5, 1, 8, 8), torch.rand(5, 1, 8, 8)
    gp = gradient_penalty(Linear(), real, fake)
    torch.testing.assert_close(gp, (w.norm() - 1) ** 2)
    gp = gradient_penalty(critic, real, fake)                          # differentiable: a second order term
    gp.backward()
    assert critic.body[0].weight.grad.abs().sum() > 0 and critic.body[-1].weight.grad.abs().sum() > 0


def test_build_for_reads_the_images_shape_and_classes_and_no_normalisation():
    from types import SimpleNamespace

    from karp_models.models import build_for

    data = SimpleNamespace(name="toy", channels=3, size=(16, 16), n_classes=4, mean=(0.5,) * 3, std=(0.2,) * 3)
    for name in GENERATIVE:
        m = build_for(name, data, preset="tiny")
        c = m.config
        assert (c.in_channels, c.image_size, c.n_classes) == (3, 16, 4)
        labels = torch.arange(2) if c.conditional else None
        assert m.generate(torch.randn(2, c.latent), labels).shape == (2, 3, 16, 16)
