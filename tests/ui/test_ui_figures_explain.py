"""ui.figures.explain: overlays on one signed scale, the sanity check, faithfulness, adversarial."""
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go

from karp_models.introspect import attribution as attr
from karp_models.ui import style
from karp_models.ui.figures import explain as ex

RNG = np.random.default_rng(0)
X = RNG.random((1, 6, 6)).astype(np.float32)                            # (C, H, W) in [0, 1]
MAPS = {"Saliency": RNG.random((6, 6)), "Integrated Gradients": RNG.normal(size=(6, 6))}


def test_overlay_draws_the_image_then_each_map_over_it_on_one_scale():
    fig = ex.overlay_figure(X, MAPS)
    kinds = [type(t).__name__ for t in fig.data]
    assert kinds == ["Image", "Image", "Heatmap", "Image", "Heatmap"]
    assert [a.text for a in fig.layout.annotations] == ["input", "Saliency", "Integrated Gradients"]
    assert fig.data[0].opacity == 1.0 and fig.data[1].opacity == 0.55
    norm = attr.normalise(MAPS)
    np.testing.assert_allclose(fig.data[4].z, norm["Integrated Gradients"])
    np.testing.assert_allclose(fig.data[4].customdata, MAPS["Integrated Gradients"])  # raw on hover
    ca = fig.layout.coloraxis
    assert (ca.cmin, ca.cmax) == (-1, 1)
    assert [list(s) for s in ca.colorscale] == [list(s) for s in style.ATTRIBUTION_SCALE]
    assert fig.data[0].z.shape == (6, 6, 3) and fig.data[0].z.dtype == np.uint8
    assert fig.layout.height == 210 + 40


def test_sanity_figures_carry_the_steps_and_correlations():
    steps = ["original", "+ classifier.fc", "+ features.stem"]
    rho = {"Saliency": [1.0, 0.4, 0.1], "Grad-CAM": [1.0, 0.9, 0.8]}
    fig = ex.sanity_figure(steps, rho, [0.9, 0.5, 0.1], "Sneaker")
    assert [t.name for t in fig.data] == ["Saliency", "Grad-CAM", "P(Sneaker)"]
    assert list(fig.data[2].y) == [0.9, 0.5, 0.1] and fig.data[2].line.dash == "dot"
    assert list(fig.layout.xaxis.ticktext) == ["original", "fc", "stem"]
    assert tuple(fig.layout.yaxis.range) == (-1, 1.05)
    maps = ex.sanity_maps_figure(X, {"Integrated Gradients": MAPS["Saliency"]},
                                 {"Integrated Gradients": MAPS["Integrated Gradients"]},
                                 {"Integrated Gradients": 0.123})
    assert [a.text for a in maps.layout.annotations] == ["IG: original", "IG: ρ = 0.12"]
    assert sum(isinstance(t, go.Heatmap) for t in maps.data) == 2


def test_faithfulness_curves_name_the_area_under_each():
    curves = {"Saliency": ([0, 0.5, 1], [0.9, 0.3, 0.1], 0.41), "IG": ([0, 1], [0.9, 0.0], 0.2)}
    fig = ex.faithfulness_curve_figure("deletion", curves, "Bag")
    assert [t.name for t in fig.data] == ["Saliency (0.41)", "IG (0.20)"]
    assert fig.layout.title.text == "Deletion: P(Bag)"
    assert fig.layout.xaxis.title.text == "share of pixels removed"
    assert "added" in ex.faithfulness_curve_figure("insertion", curves, "Bag").layout.xaxis.title.text


def test_adversarial_figures():
    pert = np.full((1, 6, 6), 0.05, np.float32)
    fig = ex.adversarial_images_figure(X, pert, np.clip(X + pert, 0, 1), eps=0.05)
    assert [type(t).__name__ for t in fig.data] == ["Image", "Heatmap", "Image"]
    assert [a.text for a in fig.layout.annotations] == ["original", "perturbation (×20)", "adversarial"]
    np.testing.assert_allclose(fig.data[1].z, 1.0)                      # +ε everywhere, scaled by 1/ε
    maps = ex.adversarial_maps_figure(X, {"Saliency": MAPS["Saliency"]}, {"Saliency": MAPS["Saliency"]},
                                      {"Saliency": 0.5}, "Shirt", "Coat")
    assert [a.text for a in maps.layout.annotations] == ["Saliency: Shirt", "after: Coat, ρ = 0.50"]


def test_png_panel_and_exports():
    png = ex.png_panel(X, MAPS, "test image #0")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    a = {k: SimpleNamespace(map=v, delta=None, seconds=0.01) for k, v in MAPS.items()}  # an Attribution's fields
    csv = ex.maps_csv(a).decode().splitlines()
    assert csv[0] == "method,row,col,attribution,scaled" and len(csv) == 1 + 2 * 36
    df = ex.summary_frame(a)
    assert list(df.index) == list(MAPS)
    assert df.loc["Saliency", "sum of attributions"] == float(MAPS["Saliency"].sum())
