"""Presentation mode's figure scaling and the right/wrong marks (ui.style)."""
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from karp_models.ui import style


def test_scaled_enlarges_every_font_height_and_margin_and_leaves_the_figure_alone():
    fig = make_subplots(rows=1, cols=2, subplot_titles=["a", "b"])
    fig.add_trace(go.Bar(x=[1], y=[2], textfont=dict(size=10)), 1, 1)
    fig.add_trace(go.Heatmap(z=[[1]], colorbar=dict(title=dict(text="w", font=dict(size=14)))), 1, 2)
    style.layout(fig, height=300, title="t", margin=dict(l=5, r=5, t=40, b=20))
    before = fig.to_dict()
    d = style.scaled(fig, 1.5)
    assert fig.to_dict() == before                                       # shared figures stay as they were
    lay = d["layout"]
    assert lay["height"] == 450 and lay["font"]["size"] == 1.5 * style.SIZE
    assert lay["title"]["font"]["size"] == 1.5 * (style.SIZE + 2)
    assert lay["margin"]["t"] == 60 and lay["margin"]["b"] == 30 and lay["margin"]["l"] == 5
    assert lay["xaxis"]["tickfont"]["size"] == 1.5 * style.SMALL       # set by style.layout
    assert d["data"][0]["textfont"]["size"] == 15
    assert d["data"][1]["colorbar"]["title"]["font"]["size"] == 21
    assert d["data"][0]["x"] == [1]                                     # data untouched


def test_a_figure_without_fonts_gets_plotly_s_default_enlarged():
    d = style.scaled(go.Figure(go.Scatter(y=[1, 2])), 2)
    assert d["layout"]["font"]["size"] == 24


def test_marks_are_words_in_colour_not_emoji():
    assert style.mark(True) == ":green[**✓ right**]" and style.mark(False) == ":red[**✗ wrong**]"
    table = style.right_wrong([{"result": "right"}, {"result": "wrong"}], "result")
    css = table._compute().ctx
    assert style.RIGHT_TEXT in css[(0, 0)][0][1] and style.WRONG_TEXT in css[(1, 0)][0][1]
