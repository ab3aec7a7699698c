"""ui.images.display: every input layout and dtype -> (H, W, 3) uint8, nearest-neighbour enlarged."""
import numpy as np
import pytest
import torch

from karp_models.ui.images import display, grey, hwc, upscale


def test_a_model_input_round_trips_to_its_uint8_pixels():
    u8 = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    x = torch.from_numpy(u8).float()[None, None] / 255          # (1, 1, H, W) as the models get it
    out = display(x)
    assert out.shape == (28, 28, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], u8)          # exact: rounded, not truncated


@pytest.mark.parametrize("layout", ["chw", "hwc", "hw", "rgba"])
def test_layouts(layout):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)   # (H, W, 3)
    img = {"chw": rgb.transpose(2, 0, 1), "hwc": rgb, "hw": rgb[..., 0],
           "rgba": np.concatenate([rgb, np.full((5, 7, 1), 9, np.uint8)], -1)}[layout]
    out = display(img)
    assert out.shape == (5, 7, 3)
    want = np.repeat(rgb[..., :1], 3, -1) if layout == "hw" else rgb
    np.testing.assert_array_equal(out, want)


def test_float_is_clipped():
    out = display(np.array([[-0.5, 0.5, 1.5]], np.float32))
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255])


def test_scale_repeats_each_pixel_in_a_block():
    img = np.arange(10, dtype=np.uint8).reshape(1, 2, 5)         # (C, H, W)
    out = display(img, scale=4)
    assert out.shape == (8, 20, 3)
    for y in range(2):
        for x in range(5):
            assert (out[4 * y:4 * y + 4, 4 * x:4 * x + 4] == img[0, y, x]).all()


def test_side_enlarges_with_nearest_neighbour_and_shrinks_large_images():
    img = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    up = display(img, side=260)
    assert up.shape == (260, 260, 3)
    assert set(np.unique(up)) <= set(np.unique(img))             # no blended values
    photo = np.random.default_rng(3).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    assert display(photo, side=200).shape == (150, 200, 3)


def test_grey_and_upscale():
    img = np.stack([np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 0.5)])  # (3, H, W) float
    np.testing.assert_allclose(grey(img), np.full((2, 2), 0.5))
    np.testing.assert_allclose(grey(np.full((2, 2, 3), 255, np.uint8)), 1.0)
    assert upscale(np.eye(2), 3).shape == (6, 6) and upscale(np.eye(2), 3)[2, 2] == 1
    assert hwc(torch.zeros(1, 3, 4, 5)).shape == (4, 5, 3)
