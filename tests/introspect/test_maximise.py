"""maximise: the objective rises for every layer of the shipped CNN (the old first demo, a flat
grey square whose objective fell, now rises and shows a pattern), says why when it cannot, and
its pieces match their references: the Fourier image against numpy's inverse FFT, the redirected
ReLU against F.relu's gradient and Lucid's rule."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from karp_models.introspect import features as feat
from karp_models.introspect import maximise as am
from karp_models.train.checkpoints import load_checkpoint

WEIGHTS = "weights/fast-fashion-mnist.safetensors"


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_checkpoint(WEIGHTS, "cpu").model


@pytest.fixture(scope="module")
def boot():
    from karp_models import data
    return data.load("fashion-mnist").test_x[:1].float() / 255              # (1, 1, 28, 28)


def test_the_first_demo_first_layer_channel_0_rises_and_shows_a_pattern(model):
    r = am.maximise(model, layer="features.stem", channel=0, steps=64)
    assert r.rose and r.why == ""
    assert r.end > r.start + 0.3                                         # 0.11 -> 0.6 or more
    assert np.mean(r.objective[-8:]) > r.objective[0] + 0.3
    assert r.image.shape == (1, 28, 28) and 0 <= r.image.min() and r.image.max() <= 1
    assert r.image.std() > 0.15                                          # the old one: 0.013


def test_the_old_recipe_falls_and_says_the_penalties_are_why(model):
    # pixels, 'medium' L2 and total variation, blur every 4 steps: the page's old defaults
    r = am.maximise(model, layer="features.stem", channel=0, param="pixels", steps=64,
                    l2=2e-3, tv=1e-2, blur_every=4, scale=0, degrees=0, redirect=False)
    assert r.end <= r.start and not r.rose
    assert "penalties" in r.why
    assert r.image.std() < 0.03                                          # the flat grey square


def test_every_layer_rises_for_the_channel_an_image_excites_most(model, boot):
    _, maps = feat.feature_maps(model, boot)
    for layer, m in maps.items():
        ch = int(m.mean(axis=(1, 2)).argmax())                           # the page's default channel
        r = am.maximise(model, layer=layer, channel=ch, steps=48)
        assert r.rose, (layer, ch, r.start, r.end, r.why)


def test_the_page_default_last_layer_shows_a_pattern_stronger_than_the_image(model):
    from karp_models import data
    xs = data.load("fashion-mnist").test_x[:3].float() / 255
    for i in range(len(xs)):
        _, maps = feat.feature_maps(model, xs[i:i + 1])
        layer = list(maps)[-1]
        ch = int(maps[layer].mean(axis=(1, 2)).argmax())
        r = am.maximise(model, layer=layer, channel=ch, steps=128)        # the page's default
        assert r.rose and r.end > float(maps[layer][ch].mean()), (i, ch)
        assert r.image.std() > 0.15, (i, ch)                             # a pattern, not a flat square


def test_a_unit_silent_on_faint_noise_starts_from_stronger_noise(model):
    faint = am.FourierImage((1, 28, 28), sd=am.START_SD["fourier"][0],
                            generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert am.layer_output(model, "features.stem", faint())[0, 3].max() == 0  # ReLU off everywhere
    r = am.maximise(model, layer="features.stem", channel=3, steps=48)
    assert r.start > 0 and r.rose


def test_a_class_score_rises_until_the_model_calls_it_that_class(model):
    r = am.maximise(model, class_index=7, steps=48)
    assert r.rose and r.end > r.start + 1
    assert feat.predict(model, torch.from_numpy(r.image)[None]).argmax() == 7


def test_a_dead_unit_cannot_rise_and_says_so():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(1, 2, 3, padding=1))
    net.add_module("relu", nn.ReLU())
    with torch.no_grad():
        net.conv.weight.zero_()
        net.conv.bias.copy_(torch.tensor([-1.0, 1.0]))                  # channel 0: always -1 -> 0

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x).mean((2, 3)), None

    r = am.maximise(Wrap(), layer="net.relu", channel=0, shape=(1, 8, 8), steps=24)
    assert not r.rose and r.end == 0 and set(r.objective) == {0.0}
    assert "stayed at exactly 0" in r.why and "dead" in r.why


def test_the_shared_model_is_untouched_and_progress_can_stop(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    am.maximise(model, layer="features.stage1", channel=5, steps=12, progress=lambda i, n, o: seen.append(i))
    assert seen == list(range(1, 13))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(type(m) is nn.ReLU for name, m in model.named_modules() if name.endswith("relu"))
    r = am.maximise(model, class_index=0, steps=100, progress=lambda i, n, o: i >= 3)
    assert len(r.objective) == 3


def test_arguments_are_checked(model):
    with pytest.raises(ValueError, match="either"):
        am.maximise(model)
    with pytest.raises(ValueError, match="channels"):
        am.maximise(model, layer="features.stem", channel=999, steps=1)
    with pytest.raises(ValueError, match="param"):
        am.maximise(model, class_index=0, param="wavelets")
    with pytest.raises(ValueError, match="shape"):
        am.maximise(nn.Sequential(nn.Conv2d(1, 1, 1)), layer="0", channel=0)


# ---------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize("h,w", [(28, 28), (27, 9), (8, 8)])
def test_fourier_image_is_numpys_inverse_fft_of_the_1_over_f_spectrum(h, w):
    img = am.FourierImage((1, h, w), sd=0.5, generator=torch.Generator().manual_seed(1))
    spec = img.spectrum.detach().numpy()[0, 0]                          # (h, w // 2 + 1, 2)
    assert spec.shape[:2] == torch.fft.rfft2(torch.zeros(h, w)).shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    scale = 1 / np.maximum(np.hypot(fy, fx), 1 / max(h, w))             # 1/f, capped at the DC term
    ref = np.fft.irfft2((spec[..., 0] + 1j * spec[..., 1]) * scale, s=(h, w), norm="ortho") / 4
    np.testing.assert_allclose(img().detach().numpy()[0, 0], 1 / (1 + np.exp(-ref)), atol=1e-5)


def test_fourier_image_decorrelates_three_colours_with_lucids_matrix():
    img = am.FourierImage((3, 16, 16), sd=0.5, generator=torch.Generator().manual_seed(0))
    assert img().shape == (1, 3, 16, 16)
    lucid = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    np.testing.assert_allclose(img.color.numpy(), lucid / np.linalg.norm(lucid, axis=0).max(), atol=1e-6)
    raw = torch.fft.irfft2(torch.view_as_complex(img.spectrum * img.scale), s=(16, 16), norm="ortho") / 4
    mixed = torch.einsum("dc,bchw->bdhw", torch.from_numpy(lucid).float(), raw) / np.linalg.norm(lucid, axis=0).max()
    torch.testing.assert_close(img(), torch.sigmoid(mixed))
    assert am.FourierImage((1, 16, 16)).color is None


def test_redirected_relu_matches_relu_when_any_gradient_gets_through():
    x = torch.tensor([[-1.0, 2.0, -3.0, 0.5]], requires_grad=True)
    g = torch.tensor([[0.3, -0.2, -0.4, 0.1]])
    (ref,) = torch.autograd.grad(F.relu(x), x, g)
    (out,) = torch.autograd.grad(am._RedirectedReLUFn.apply(x), x, g)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(am._RedirectedReLUFn.apply(x), F.relu(x))


def test_redirected_relu_passes_only_gradient_that_raises_an_all_off_input():
    # sample 0: all off -> Lucid's rule (drop a positive gradient at a negative input, since
    # descent would push it lower); sample 1: one unit on -> the ReLU's own gradient
    x = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, 2.0, -3.0]], requires_grad=True)
    g = torch.tensor([[-0.5, 0.7, -0.1], [-0.5, 0.7, -0.1]])
    (out,) = torch.autograd.grad(am._RedirectedReLUFn.apply(x), x, g)
    torch.testing.assert_close(out, torch.tensor([[-0.5, 0.0, -0.1], [0.0, 0.7, 0.0]]))


def test_transform_shifts_by_a_roll_and_keeps_range():
    x = torch.rand(1, 1, 12, 12)
    g = torch.Generator().manual_seed(3)
    y = am.transform(x, g, jitter=2)
    assert any(torch.equal(y, torch.roll(x, (dy, dx), (2, 3))) for dy in range(-2, 3) for dx in range(-2, 3))
    assert torch.equal(am.transform(x, g, jitter=0), x)
    z = am.transform(x, g, jitter=1, scale=0.1, degrees=10)
    assert z.shape == x.shape and 0 <= z.min() and z.max() <= 1 and not torch.equal(z, x)
