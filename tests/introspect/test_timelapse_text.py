"""Replaying a character model's time-lapse: at each snapshot, exactly what loading that snapshot
into the model gives (a GPT's attention, an LSTM's cells), the model itself untouched; through the
app's per-snapshot cache (ui.timelapse.frame) too."""
import copy

import numpy as np
import pytest
import torch

from karp_models.introspect import neurons
from karp_models.introspect import text as tx
from karp_models.introspect.timelapse import at_snapshots
from karp_models.models.registry import build


def _snapshots(model):
    early = copy.deepcopy(model)
    with torch.no_grad():
        for p in early.parameters():
            p.add_(0.3 * torch.randn_like(p))
    state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    return [(0, state(early)), (200, state(model))]


@pytest.mark.parametrize("name,look", [
    ("gpt", lambda m, ids: tx.attention(m, ids)),                       # (L, H, T, T)
    ("lstm", lambda m, ids: neurons.traces(m, ids)["c"]),               # (T, L, n_hidden)
])
def test_each_frame_is_the_snapshot_loaded_directly(name, look):
    torch.manual_seed(0)
    model = build(name, vocab_size=20, preset="nano" if name == "gpt" else "tiny").eval()
    before = copy.deepcopy(model.state_dict())
    snaps = _snapshots(model)
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    got = at_snapshots(model, snaps, lambda m: look(m, ids))
    assert [s for s, _ in got] == [0, 200]
    for (step, state), (_s, frame) in zip(snaps, got):
        direct = build(name, vocab_size=20, preset="nano" if name == "gpt" else "tiny").eval()
        direct.load_state_dict(state)
        np.testing.assert_array_equal(frame, look(direct, ids))
    assert not np.allclose(got[0][1], got[1][1])                       # the early weights look elsewhere
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())   # model untouched
    if name == "gpt":
        np.testing.assert_allclose(got[0][1].sum(-1), 1, atol=1e-5)    # rows of attention sum to 1


def test_the_apps_cache_gives_the_same_frame_per_snapshot():
    from karp_models.ui import timelapse as tlv

    torch.manual_seed(1)
    model = build("gpt", vocab_size=20, preset="nano").eval()
    snaps = _snapshots(model)
    lapse = tlv.Lapse(("test", id(model)), "run", snaps, {10: (2.5, None)}, model)
    ids = (1, 2, 3, 4, 5)
    for i, (_step, state) in enumerate(snaps):
        direct = copy.deepcopy(model)
        direct.load_state_dict(state)
        calls = []
        look = lambda m: calls.append(1) or tx.attention(m, ids)  # noqa: E731
        a = tlv.frame(lapse, i, ("attention", ids), look)
        b = tlv.frame(lapse, i, ("attention", ids), look)            # cached: not computed again
        assert a is b and len(calls) == 1
        np.testing.assert_array_equal(a, tx.attention(direct, ids))
    assert lapse.loss_at(0) is None and lapse.loss_at(200) == (2.5, None)


def test_a_snapshot_of_another_architecture_is_refused():
    gpt = build("gpt", vocab_size=20, preset="nano")
    other = build("gpt", vocab_size=21, preset="nano")
    with pytest.raises(RuntimeError):
        at_snapshots(gpt, [(0, other.state_dict())], lambda m: None)
    with pytest.raises(ValueError):
        at_snapshots(gpt, [], lambda m: None)


def test_align_2d_undoes_a_turn_a_mirror_a_scale_and_a_shift():
    from scipy.spatial import procrustes

    from karp_models.introspect.embeddings import align_2d

    ref = np.random.default_rng(0).normal(size=(50, 2))
    t = np.deg2rad(70)
    turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.diag([1, -1])   # and a mirror
    moved = 3.5 * ref @ turn + [10, -4]
    np.testing.assert_allclose(align_2d(moved, ref), ref, atol=1e-5)
    noisy = moved + np.random.default_rng(1).normal(scale=0.3, size=moved.shape)
    got = align_2d(noisy, ref)
    # the best fit without shearing: scipy's procrustes (both standardised) finds the same disparity
    d_ref = procrustes(ref, noisy)[2]
    d_got = ((got - ref) ** 2).sum() / ((ref - ref.mean(0)) ** 2).sum()
    assert abs(d_got - d_ref) < 0.02 and d_got < 0.05


def test_features_and_probs_is_both_in_one_pass():
    from karp_models.introspect.embeddings import features_and_probs, penultimate_features
    from karp_models.introspect.evaluate import predict_probs

    torch.manual_seed(2)
    model = build("fast", in_channels=1).eval()
    x = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    feats, probs = features_and_probs(model, x)
    np.testing.assert_allclose(feats, penultimate_features(model, x), atol=1e-5)
    np.testing.assert_allclose(probs, predict_probs(model, x), atol=1e-5)
