"""Replaying a time-lapse: the last frame is the final model's view, earlier frames differ."""
import copy

import numpy as np
import torch

from karp_models.introspect.attribution import attribute
from karp_models.introspect.features import feature_maps, filter_weights, spatial_layers
from karp_models.introspect.timelapse import METHODS, frames
from karp_models.models.registry import build


def _snapshots():
    torch.manual_seed(0)
    final = build("fast", in_channels=1).eval()
    early = copy.deepcopy(final)
    with torch.no_grad():
        for p in early.parameters():
            p.add_(0.2 * p.std().nan_to_num(0.1) * torch.randn_like(p))
    state = lambda m: {k: v.clone() for k, v in m.state_dict().items()}  # noqa: E731
    return final, [(0, state(early)), (100, state(final))]


def test_the_last_frame_is_the_final_models_view():
    final, snaps = _snapshots()
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    target, fr = frames(final, snaps, x)
    probs, maps = feature_maps(final, x)
    assert target == int(probs.argmax()) and [f.step for f in fr] == [0, 100]
    last = fr[-1]
    np.testing.assert_array_equal(last.probs, probs)
    np.testing.assert_array_equal(last.filters, filter_weights(final))
    layers = spatial_layers(final)
    assert list(last.maps) == [layers[0], layers[-1]]
    for k, v in last.maps.items():
        np.testing.assert_array_equal(v, maps[k])
    for k in METHODS:
        np.testing.assert_allclose(last.attributions[k], attribute(final, x, target, k).map, rtol=1e-5, atol=1e-7)
        assert last.agreement[k] == 1.0
        assert -1.0 <= fr[0].agreement[k] < 0.999
    assert not np.array_equal(fr[0].filters, last.filters)
    # the caller's model is untouched (each snapshot goes into a private copy)
    assert all(torch.equal(v, snaps[-1][1][k]) for k, v in final.state_dict().items())
