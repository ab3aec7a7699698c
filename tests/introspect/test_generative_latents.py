"""Walking a generator's latent space: slerp against scipy's quaternion Slerp (an independent
implementation: rotations composed, not the sine formula) and its defining properties (the
ends, a unit-norm path, equal angle steps), the straight line it replaces, latent arithmetic by
hand, the latent plane against scikit-learn's PCA, and the discriminator's verdict against the
model's own forward."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from karp_models.introspect.generative import (LatentPlane, arithmetic, encode_means, interpolate, lerp,
                                               slerp, verdict)
from karp_models.models import build


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def angle(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(torch.arccos(torch.clamp(unit(u.double()) @ unit(v.double()), -1, 1)))


@pytest.mark.parametrize("seed", range(5))
def test_slerp_matches_scipys_quaternion_slerp(seed):
    r = Rotation.random(2, rng=seed)
    q = r.as_quat()                                                  # (2, 4) unit quaternions
    if q[0] @ q[1] < 0:                                              # the same rotation, the short arc
        q[1] = -q[1]
    t = np.linspace(0, 1, 9)
    want = Slerp([0, 1], Rotation.from_quat(q))(t).as_quat()         # (9, 4), up to sign
    got = slerp(torch.tensor(q[0]), torch.tensor(q[1]), torch.tensor(t)).numpy()
    sign = np.sign((got * want).sum(1, keepdims=True))
    np.testing.assert_allclose(got, want * sign, atol=1e-10)


@pytest.mark.parametrize("D", [2, 16, 100])
def test_slerp_keeps_the_ends_the_unit_sphere_and_equal_angle_steps(D):
    g = torch.Generator().manual_seed(D)
    a, b = unit(torch.randn(D, generator=g, dtype=torch.float64)), unit(torch.randn(D, generator=g, dtype=torch.float64))
    path = interpolate(a, b, 11, "slerp")                            # (11, D)
    assert path.shape == (11, D)
    torch.testing.assert_close(path[0], a, atol=1e-12, rtol=0)
    torch.testing.assert_close(path[-1], b, atol=1e-12, rtol=0)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(11, dtype=torch.float64), atol=1e-12, rtol=0)
    steps = [angle(path[i], path[i + 1]) for i in range(10)]
    assert steps == pytest.approx([angle(a, b) / 10] * 10, abs=1e-9)
    # every point lies in the plane of a and b
    basis = torch.linalg.qr(torch.stack([a, b], 1))[0]               # (D, 2)
    torch.testing.assert_close(path @ basis @ basis.T, path, atol=1e-10, rtol=0)


def test_slerp_keeps_the_length_of_gaussian_latents_and_the_line_does_not():
    g = torch.Generator().manual_seed(0)
    D = 100
    a, b = torch.randn(D, generator=g), torch.randn(D, generator=g)
    b = b / b.norm() * a.norm()                                      # equal lengths
    s = interpolate(a, b, 21, "slerp").norm(dim=1)
    line = interpolate(a, b, 21, "lerp").norm(dim=1)
    torch.testing.assert_close(s, torch.full((21,), float(a.norm())), atol=1e-4, rtol=1e-5)
    # the straight line's middle: |a + b| / 2 = |a| sqrt((1 + cos W) / 2), about 0.71 |a| here
    assert line[10] / a.norm() == pytest.approx(np.sqrt((1 + np.cos(angle(a, b))) / 2), rel=1e-5)
    assert line[10] / a.norm() < 0.8
    torch.testing.assert_close(lerp(a, b, 0.25), 0.75 * a + 0.25 * b)


def test_slerp_edge_cases():
    a = torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(slerp(a, a * 2, 0.5), a * 1.5)        # parallel: the line
    assert slerp(a, torch.tensor([0.0, 1.0, 0.0]), 0.5).shape == (3,)  # a float t: one point
    torch.testing.assert_close(slerp(a, torch.tensor([0.0, 1.0, 0.0]), 0.5),
                               torch.tensor([1.0, 1.0, 0.0]) / 2 ** 0.5)
    with pytest.raises(ValueError, match="opposite"):
        slerp(a, -a, 0.5)
    with pytest.raises(ValueError, match="non-zero"):
        slerp(a, torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        interpolate(a, a, 1)
    with pytest.raises(ValueError, match="unknown"):
        interpolate(a, a, 3, "cubic")


def test_latent_arithmetic_averages_each_group():
    z = torch.arange(12, dtype=torch.float32).reshape(6, 2)          # rows (0,1), (2,3), ...
    got = arithmetic(z, [0, 1, 2], [3], [4, 5])
    want = z[[0, 1, 2]].mean(0) - z[3] + z[[4, 5]].mean(0)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="at least one"):
        arithmetic(z, [], [1], [2])
    with pytest.raises(ValueError, match="between 0 and 5"):
        arithmetic(z, [6], [1], [2])


def test_the_latent_plane_is_sklearns_pca_and_lifts_back_onto_itself():
    from sklearn.decomposition import PCA

    g = np.random.default_rng(0)
    z = g.normal(size=(500, 6)) * [5, 3, 1, 0.5, 0.2, 0.1] + 2
    plane = LatentPlane(z)
    want = PCA(n_components=2, svd_solver="full").fit(z)
    np.testing.assert_allclose(np.abs(plane.project(z)), np.abs(want.transform(z)), atol=1e-8)
    np.testing.assert_allclose(plane.explained, want.explained_variance_ratio_, atol=1e-10)
    xy = g.normal(size=(7, 2))
    np.testing.assert_allclose(plane.project(plane.lift(xy)), xy, atol=1e-10)  # lift is on the plane
    two = LatentPlane(z[:, :2])                                       # a 2-d latent: itself
    np.testing.assert_array_equal(two.project(z[:, :2]), z[:, :2])
    np.testing.assert_array_equal(two.lift(xy), xy)
    with pytest.raises(ValueError):
        LatentPlane(z[:, :1])


def test_encode_means_and_verdict_are_the_models_own_outputs():
    torch.manual_seed(0)
    vae = build("vae", preset="tiny").eval()
    x = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    mu = encode_means(vae, x, batch_size=3)
    torch.testing.assert_close(mu, vae.encode(x.float() / 255)[0])
    gan = build("cdcgan", preset="tiny").eval()
    y = torch.arange(7) % 10
    got = verdict(gan, x, y)
    torch.testing.assert_close(torch.from_numpy(got).float(), gan.discriminate(x.float() / 127.5 - 1, y),
                               atol=1e-5, rtol=1e-5)
