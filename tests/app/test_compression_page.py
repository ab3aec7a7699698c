"""AppTest: the Compression page with the shipped fast CNN on the real Fashion-MNIST: a small sweep
(one pruning kind at one sparsity, with and without a short fine-tune, and int8) runs under its
button, then shows both trade-off charts, the table of every point and the maps of the original
and a compressed model."""
import json
from pathlib import Path

import pytest

from tests.app.test_pages import open_page

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (ROOT / "weights" / "fast-fashion-mnist.safetensors").exists(),
                                reason="shipped weights missing")


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_a_small_sweep_shows_curves_table_and_maps():
    at = open_page("compression.py", timeout=300)
    assert at.title[0].value == "Compress a model"
    at.multiselect(key="compression_kinds").set_value(["structured"])
    at.pills(key="compression_sparsity").set_value([0.5])
    at.select_slider(key="compression_steps").set_value(25)
    at.select_slider(key="compression_n_test").set_value(200)
    at.select_slider(key="compression_n_explain").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("plotly_chart")                        # nothing is computed before the button
    run = at.button(key="compression_run")
    assert run.label == "▶ Compress and measure 5 models"
    run.click().run()
    assert not at.exception, [e.value for e in at.exception]
    charts = _charts(at)
    titles = [c["layout"]["title"]["text"] for c in charts if c["layout"].get("title")]
    assert titles[:2] == ["Accuracy against size on disk", "Accuracy against CPU latency"]
    size = charts[0]
    star = next(t for t in size["data"] if t["name"] == "original model")
    assert 2.5 < star["x"][0] < 2.8 and 90 < star["y"][0] < 97   # 2.66 MB, ~94% on 200 images
    table = at.table[0].value
    assert list(table.index) == ["original model", "channels 50%", "channels 50% + 25 steps",
                                 "int8 dynamic (Linear)", "int8 static (conv + Linear)"]
    assert table.loc["int8 static (conv + Linear)", "size (MB)"] < 0.3 * table.loc["original model", "size (MB)"]
    assert table.loc["channels 50%", "channels at 0 (%)"] == pytest.approx(50, abs=2)
    # the maps: input, then Grad-CAM and IG of the original and of the compressed model
    heat = [t for t in charts[2]["data"] if t["type"] == "heatmap"]
    assert len(heat) == 4
    at.selectbox(key="compression_point").set_value(3).run()    # int8 static: explained on its twin
    assert not at.exception, [e.value for e in at.exception]
    assert any("dequantised twin" in i.value for i in at.info)


def test_asking_for_nothing_says_what_to_choose():
    at = open_page("compression.py")
    at.multiselect(key="compression_kinds").set_value([])
    at.toggle(key="compression_int8").set_value(False).run()
    assert not at.exception and [i.value for i in at.info] == ["Choose a kind of pruning or int8 quantisation."]
    assert not at.button                                          # nothing to run
    at.multiselect(key="compression_kinds").set_value(["unstructured"])
    at.pills(key="compression_sparsity").set_value([]).run()
    assert [i.value for i in at.info] == ["Choose at least one sparsity."]
    at.pills(key="compression_sparsity").set_value([0.9]).run()     # int8 only is fine too
    assert at.button(key="compression_run").label == "▶ Compress and measure 3 models"
