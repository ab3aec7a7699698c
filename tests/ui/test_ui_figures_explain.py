"""ui.figures.explain: overlays on one signed scale, the sanity check, faithfulness, adversarial."""
import warnings
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import pytest

from karp_models import i18n
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


def test_sanity_figure_one_panel_per_method_with_every_similarity():
    names = ["original", "fc (output)", "stem conv (input)"]
    nan = float("nan")
    series = {"Saliency": {"Spearman |map|": [1.0, 0.4, 0.1], "SSIM |map|": [1.0, 0.3, nan]},
              "Integrated Gradients": {"Spearman |map|": [1.0, 0.9, 0.9], "Spearman signed": [1.0, 0.2, -0.3]},
              "Grad-CAM": {}}                                            # cannot judge: an empty panel
    fig = ex.sanity_figure(names, series, [0.9, 0.5, 0.1], "Sneaker", cols=2,
                           status={"Saliency": "passes", "Grad-CAM": "cannot judge"},
                           drivers={"Integrated Gradients": ("Spearman |map|", "Spearman signed")})
    assert [a.text for a in fig.layout.annotations] == ["Saliency: passes", "IG", "Grad-CAM: cannot judge"]
    legend = [t for t in fig.data if t.showlegend is not False and not t.name.startswith("P(")]
    assert [t.name for t in legend] == ["Spearman |map|", "SSIM |map|", "Spearman signed"]  # once each, thin
    assert {t.line.width for t in legend} == {1.5} and all(t.y == (None,) for t in legend)
    lines = [t for t in fig.data if t.showlegend is False and not t.name.startswith("P(")]
    assert [t.name for t in lines] == ["Spearman |map|", "SSIM |map|", "Spearman |map|", "Spearman signed"]
    assert lines[0].line.color == lines[2].line.color and lines[3].line.dash == "dash"
    assert list(lines[1].y) == [1.0, 0.3, None]                         # a gap where it cannot be judged
    assert [t.line.width for t in lines] == [1.5, 1.5, 4, 4]            # the deciding similarities: thick
    probs = [t for t in fig.data if t.name == "P(Sneaker)"]
    assert len(probs) == 3 and list(probs[0].y) == [0.9, 0.5, 0.1] and probs[0].line.dash == "dot"
    assert [t.showlegend for t in probs] == [True, False, False]
    xs = [fig.layout[f"xaxis{'' if i == 0 else i + 1}"] for i in range(3)]
    assert list(xs[0].ticktext) == names and xs[0].tickvals == (0, 1, 2)
    assert [x.showticklabels for x in xs] == [False, True, True]        # only under the last panel of a column
    assert tuple(fig.layout.yaxis.range) == (-1.05, 1.05)
    assert len(fig.layout.shapes) == 3                                  # the band between passes and fails


def test_sanity_maps_say_cannot_judge_instead_of_a_number():
    maps = ex.sanity_maps_figure(X, {"Integrated Gradients": MAPS["Saliency"], "Grad-CAM": MAPS["Saliency"]},
                                 {"Integrated Gradients": MAPS["Integrated Gradients"], "Grad-CAM": 0 * X[0]},
                                 {"Integrated Gradients": 0.123, "Grad-CAM": float("nan")},
                                 {"Integrated Gradients": -0.27})
    assert [a.text for a in maps.layout.annotations] == ["IG: original", "IG: ρ = 0.12<br>signed map: ρ = -0.27",
                                                         "Grad-CAM: original", "Grad-CAM: ρ: cannot judge"]
    assert sum(isinstance(t, go.Heatmap) for t in maps.data) == 4


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
    maps = ex.adversarial_maps_figure(X, {"Saliency": MAPS["Saliency"], "IG": MAPS["Saliency"]},
                                      {"Saliency": MAPS["Saliency"], "IG": 0 * X[0]},
                                      {"Saliency": 0.5, "IG": float("nan")}, "Shirt", "Coat")
    assert [a.text for a in maps.layout.annotations] == ["Saliency: Shirt", "after: Coat, ρ = 0.50",
                                                         "IG: Shirt", "after: Coat, ρ: cannot judge"]


def test_png_panel_in_chinese_draws_every_glyph_from_a_font_that_has_it(monkeypatch):
    """The exported PNG in Chinese: titles and the colour bar's label in a CJK font (Debian's
    fonts-noto-cjk), never boxes; matplotlib says so when a glyph is missing from every font."""
    assert any("CJK" in f for f in style.mpl_fonts()), "no CJK font here: apt-get install fonts-noto-cjk"
    with i18n.using("zh"), warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing")
        png = ex.png_panel(X, MAPS, "测试图像 #0（T恤/上衣）")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setattr(style, "mpl_fonts", lambda: ["DejaVu Sans"])   # the check can fail: Latin only
    with i18n.using("zh"), pytest.warns(UserWarning, match="Glyph .* missing"):
        ex.png_panel(X, MAPS, "短靴")


def test_png_panel_and_exports():
    png = ex.png_panel(X, MAPS, "test image #0")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    a = {k: SimpleNamespace(map=v, delta=None, seconds=0.01) for k, v in MAPS.items()}  # an Attribution's fields
    a["Grad-CAM"] = SimpleNamespace(map=np.zeros((6, 6)), delta=None, seconds=0.01)
    csv = ex.maps_csv(a).decode().splitlines()
    assert csv[0] == "method,row,col,attribution,scaled,cannot judge because" and len(csv) == 1 + 3 * 36
    assert csv[1].endswith(",")
    assert csv[-1].endswith(',"the map is zero everywhere, so no pixel counts more than another"')
    df = ex.summary_frame(a)
    assert list(df.index) == list(MAPS) + ["Grad-CAM"]
    assert df.loc["Saliency", "sum of attributions"] == float(MAPS["Saliency"].sum())
    assert df.loc["Saliency", "can it be judged?"] == "yes"
    assert df.loc["Grad-CAM", "can it be judged?"].startswith("no: the map is zero everywhere")


def _overlay_reference(x, maps, *, title_of=None, cols=5, first="input", height_per_row=210):
    """overlay_figure as it was built before (make_subplots, add_trace and update_* per panel)."""
    from plotly.subplots import make_subplots

    from karp_models.i18n import _
    from karp_models.ui.images import display

    norm = attr.normalise(maps)
    names = ([first] if first else []) + list(maps)
    cols = min(cols, len(names))
    rows = -(-len(names) // cols)
    titles = [n if title_of is None or n == first else title_of(n) for n in names]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.1 if rows > 1 else 0.02)
    img = display(x)
    hover = _("row %{y}, col %{x}<br>scaled %{z:.2f}<br>raw %{customdata:.3g}") + "<extra></extra>"
    for i, n in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Image(z=img, opacity=1.0 if n == first else 0.55, hoverinfo="skip"), r, c)
        if n != first:
            fig.add_trace(go.Heatmap(z=norm[n], coloraxis="coloraxis", customdata=maps[n],
                                     hovertemplate=hover), r, c)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    for i in range(len(names)):
        fig.layout[f"yaxis{'' if i == 0 else i + 1}"].scaleanchor = f"x{'' if i == 0 else i + 1}"
    fig.update_annotations(font=style.SMALL_FONT)
    bar = dict(title=dict(text=_("for the class ↑<br>against ↓<br>(× the map's<br>99th pct.)")),
               tickvals=[-1, -0.5, 0, 0.5, 1], ticktext=["−1", "−0.5", "0", "+0.5", "+1"])
    return style.layout(fig, height=height_per_row * rows + 40, plot_bgcolor="white",
                        coloraxis=dict(colorscale=style.ATTRIBUTION_SCALE, cmin=-1, cmax=1, colorbar=bar))


def _same(a, b, path="fig"):
    """Equal figure dicts: the same keys and values, arrays compared by value."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, sorted(set(a) ^ set(b)))
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)) and not isinstance(b, np.ndarray):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _same(u, v, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=path)
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("kw", [dict(first="input", cols=3, height_per_row=300),     # Explain: 8 methods
                                dict(first=None, cols=2, height_per_row=250),         # normal vs robust
                                dict(first=None, cols=4, height_per_row=270),         # 2 maps in 4 columns
                                dict()])
@pytest.mark.parametrize("n", [2, 8])
def test_overlay_is_the_figure_built_panel_by_panel(kw, n):
    maps = {f"m{i}": RNG.normal(size=(6, 6)) for i in range(n)}
    for lang in ("en", "zh"):
        with i18n.using(lang):
            got = ex.overlay_figure(X, maps, title_of=str.upper, **kw)
            want = _overlay_reference(X, maps, title_of=str.upper, **kw)
        _same(got.to_dict(), want.to_dict())
