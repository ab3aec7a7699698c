"""similarity: which maps cannot be judged (and why), and Adebayo et al.'s three similarities on
|map| and the signed map, checked against scipy and scikit-image and their defining properties."""
import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity

from karp_models.introspect import similarity as S

RNG = np.random.default_rng(0)
A = RNG.normal(size=(28, 28))
B = RNG.normal(size=(28, 28))                                           # unrelated to A


@pytest.mark.parametrize("m,words", [
    (np.zeros((28, 28)), "zero everywhere"),
    (np.full((28, 28), 0.25), "same value (0.25)"),
    (np.where(np.eye(28, dtype=bool), np.nan, 1.0), "28 values that are not numbers"),
    (np.full((4, 4), np.inf), "16 values that are not numbers"),
    (np.zeros((0, 28)), "no pixels"),
])
def test_judgeable_names_why_a_map_ranks_nothing(m, words):
    assert words in S.judgeable(m)


def test_a_map_with_one_pixel_apart_can_be_judged():
    m = np.zeros((28, 28))
    m[3, 4] = -1e-12
    assert S.judgeable(m) is None and S.judgeable(A) is None
    assert S.judge_all({"ok": A, "flat": np.ones((2, 2))}) == {"flat": S.judgeable(np.ones((2, 2)))}


def test_a_map_against_itself_or_scaled_is_alike_by_every_measure():
    sim = S.compare(A, 7.5 * A)
    assert set(sim.values) == {f"{m} {k}" for m in S.MEASURES for k in S.KINDS}
    assert all(v == pytest.approx(1.0) for v in sim.values.values()) and sim.reason is None


def test_the_measures_are_the_libraries_on_the_scaled_maps():
    sim = S.compare(A, A + B)
    a, b = A / np.abs(A).max(), (A + B) / np.abs(A + B).max()                 # diverging_norm
    aa, bb = np.abs(A) / np.abs(A).max(), np.abs(A + B) / np.abs(A + B).max()  # abs_grayscale_norm
    assert sim.get("Spearman", "signed") == pytest.approx(spearmanr(A.ravel(), (A + B).ravel()).statistic)
    assert sim.get("Spearman") == pytest.approx(spearmanr(np.abs(A).ravel(), np.abs(A + B).ravel()).statistic)
    assert sim.get("SSIM", "signed") == pytest.approx(structural_similarity(a, b, data_range=2.0))
    assert sim.get("SSIM") == pytest.approx(structural_similarity(aa, bb, data_range=1.0))
    cell = dict(orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    assert sim.get("HOG") == pytest.approx(pearsonr(hog(aa, **cell), hog(bb, **cell)).statistic)
    assert 0.3 < sim.get("Spearman", "signed") < 0.95                        # related, not equal


def test_a_sign_flip_reverses_the_signed_ranking_but_not_the_absolute_one():
    sim = S.compare(A, -A)
    assert sim.get("Spearman", "signed") == pytest.approx(-1.0)
    assert sim.get("SSIM", "signed") < 0.5                                    # structure inverted (times
                                                                             # SSIM's luminance term, also < 0)
    assert sim.get("Spearman") == pytest.approx(1.0) and sim.get("SSIM") == pytest.approx(1.0)
    assert sim.get("HOG", "signed") == pytest.approx(1.0)                    # HOG's orientations are unsigned


def test_unrelated_maps_are_unlike_by_every_measure():
    sim = S.compare(A, B)
    assert all(abs(v) < 0.2 for v in sim.values.values()), sim.values


def test_unsigned_comparison_and_a_mask():
    assert set(S.compare(A, B, signed=False).values) == {"Spearman |map|", "SSIM |map|", "HOG |map|"}
    mask = np.zeros((28, 28), bool)
    mask[5:20, 3:9] = True
    sim = S.compare(A, A + B, mask=mask)
    assert set(sim.values) == {"Spearman |map|", "Spearman signed"}         # SSIM, HOG need the grid
    assert sim.get("Spearman", "signed") == pytest.approx(spearmanr(A[mask], (A + B)[mask]).statistic)
    tiny = np.zeros((28, 28), bool)
    tiny[0, :2] = True
    assert S.compare(A, B, mask=tiny).reason == "only 2 pixels are left to compare"


def test_a_degenerate_map_gives_no_number_and_the_reason():
    for blank in (np.zeros((28, 28)), np.full((28, 28), 3.0), np.full((28, 28), np.nan)):
        sim = S.compare(A, blank, names=("the original map", "the randomised map"))
        assert sim.values == {} and sim.reason.startswith("the randomised map ")
        assert np.isnan(sim.get("Spearman"))
    assert S.compare(np.zeros((28, 28)), A).reason.startswith("the first map is zero everywhere")
    pm = np.where(RNG.random((28, 28)) > 0.5, 1.0, -1.0)                     # signed ranks, |map| flat
    sim = S.compare(pm, -pm)
    assert set(sim.values) == {"Spearman signed", "SSIM signed", "HOG signed"}
    assert sim.get("Spearman", "signed") == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="shapes"):
        S.compare(A, A[:5])


def test_small_maps_shrink_the_windows():
    a, b = RNG.normal(size=(8, 8)), RNG.normal(size=(8, 8))
    assert set(S.compare(a, b).values) == {f"{m} {k}" for m in S.MEASURES for k in S.KINDS}
    assert "SSIM |map|" not in S.compare(a[:2, :2], b[:2, :2]).values        # no 3x3 window fits
