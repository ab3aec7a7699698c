"""features: predictions, filters, feature maps (against a manual forward) and filter evolution
(activation maximisation: test_maximise.py)."""
import numpy as np
import pytest
import torch

from karp_models.introspect import features as feat
from karp_models.models.attention import ViT, ViTConfig
from karp_models.train.checkpoints import load_checkpoint

WEIGHTS = "weights/fast-fashion-mnist.safetensors"


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_checkpoint(WEIGHTS, "cpu").model


@pytest.fixture(scope="module")
def x():
    from karp_models import data
    ds = data.load("fashion-mnist")
    return ds.test_x[:1].float() / 255, int(ds.test_y[0])


def test_predict_and_top_k(model, x):
    p = feat.predict(model, x[0])
    assert p.shape == (10,) and abs(p.sum() - 1) < 1e-5
    top = feat.top_k(p, [str(i) for i in range(10)], 3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and int(top[0][0]) == x[1]


def test_feature_maps_match_the_layers_outputs(model, x):
    probs, maps = feat.feature_maps(model, x[0])
    assert list(maps) == model.feature_layers
    h = (x[0] - model.mean) / model.std
    with torch.no_grad():
        for name, stage in model.features.named_children():
            h = stage(h)
            np.testing.assert_allclose(maps[f"features.{name}"], h[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, feat.predict(model, x[0]), atol=1e-6)
    grid, cols = feat.map_grid(maps["features.stem"])
    assert cols == 6 and np.nanmax(grid) <= 1 and np.isnan(grid).any()


def test_filters(model):
    name, conv = feat.first_conv(model)
    assert name == "features.stem.conv"
    w = feat.filter_weights(model)
    assert w.shape == tuple(conv.weight.shape)
    img = feat.filter_images(w)
    assert img.shape == (w.shape[0], 3, 3) and 0 <= img.min() and img.max() <= 1
    rgb = feat.filter_images(np.random.default_rng(0).normal(size=(4, 3, 5, 5)))
    assert rgb.shape == (4, 5, 5, 3)
    zero = feat.filter_images(np.zeros((2, 1, 3, 3)))
    assert np.allclose(zero, 0.5)                       # a zero weight is mid-grey


def test_evolution_uses_one_scale_per_filter():
    w0 = np.full((2, 1, 3, 3), 0.1, np.float32)
    w1 = np.full((2, 1, 3, 3), 0.4, np.float32)
    scale = feat.evolution_scale([(0, w0), (50, w1)])
    imgs = [feat.filter_images(w, scale) for w in (w0, w1)]
    assert scale.shape == (2,)
    assert np.allclose(imgs[1], 1.0) and np.allclose(imgs[0], 0.5 + 0.5 * 0.25)


def test_spatial_layers_of_a_vit_is_empty():
    vit = ViT(ViTConfig(patch_size=7, n_embd=16, n_layer=1, n_head=2))
    assert feat.spatial_layers(vit) == []
    assert feat.first_conv(vit)[0] == "patch_embed"


def test_training_jobs_keep_first_layer_snapshots_for_filter_evolution(tmp_path):
    from karp_models.train.checkpoints import read_metadata
    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import TrainConfig

    torch.set_num_threads(1)
    m = JobManager(runs_dir=tmp_path / "runs", set_threads=False, grace_s=3600)  # no heartbeat here: a loaded machine must not reap it
    try:
        cfg = TrainConfig(steps=20, batch_size=32, eval_every=10, eval_batches=1)
        jid = m.submit("s1", RunSpec(model="fast", dataset="digits", config=cfg, preset="fast",
                                     overrides={"widths": (8, 8, 8, 8)}, preview_every=10))
        st = m.wait(jid, timeout=60)
        assert st.state == "done", st.error
        assert [s for s, _ in st.snapshots] == [0, 10, 20]
        assert st.snapshots[0][1].shape == (8, 1, 3, 3)
        assert not np.array_equal(st.snapshots[0][1], st.snapshots[-1][1])   # training moved them
        evo = read_metadata(m.save(jid, "evo"))["filter_evolution"]
        assert evo["steps"] == [0, 10, 20]
        snaps = [(s, np.asarray(w, np.float32)) for s, w in zip(evo["steps"], evo["weights"])]
        assert feat.filter_images(snaps[0][1], feat.evolution_scale(snaps)).shape == (8, 3, 3)
    finally:
        m.shutdown()


def test_tile_places_each_tile_with_gaps_between():
    tiles = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)      # (N, h, w)
    grid = feat.tile(tiles, cols=3, gap=1)
    assert grid.shape == (2 * 3 - 1, 3 * 4 - 1)                          # no gap after the last
    for n in range(5):
        r, c = divmod(n, 3)
        np.testing.assert_array_equal(grid[r * 3:r * 3 + 2, c * 4:c * 4 + 3], tiles[n])
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all()        # the gaps
    assert np.isnan(grid[3:, 8:]).all()                                  # the unused sixth place


def test_tile_two_gaps_colour_tiles_and_index():
    tiles = np.zeros((3, 2, 2, 3), np.uint8) + np.arange(1, 4, dtype=np.uint8)[:, None, None, None]
    grid = feat.tile(tiles, cols=2, gap=(3, 1), fill=255)
    assert grid.shape == (2 + 3 + 2, 2 + 1 + 2, 3) and grid.dtype == np.uint8
    assert (grid[5:7, 0:2] == 3).all() and (grid[2:5] == 255).all() and (grid[:, 2] == 255).all()
    idx = feat.tile_index(3, 2, 2, 2, gap=(3, 1))
    assert idx.shape == grid.shape[:2]
    assert idx[0, 0] == 0 and idx[1, 4] == 1 and idx[6, 1] == 2
    assert idx[3, 0] == -1 and idx[0, 2] == -1 and idx[6, 4] == -1


def test_map_grid_scales_each_channel_to_its_own_range():
    maps = np.stack([np.array([[0.0, 2.0]]), np.array([[-1.0, -3.0]]), np.full((1, 2), 7.0)])
    grid, cols = feat.map_grid(maps)
    assert cols == 2 and grid.shape == (3, 5)
    np.testing.assert_allclose(grid[0, :2], [0, 1])
    np.testing.assert_allclose(grid[0, 3:], [1, 0])
    np.testing.assert_allclose(grid[2, :2], [0, 0])                     # a flat map: 0, not NaN
