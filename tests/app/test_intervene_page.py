"""AppTest: the Knock it out page draws a knockout map of the shipped GPT's heads, one head's effect along the
text, attribution with its three-way comparison, patching and the logit lens; the LSTM gets its cells' map."""
from __future__ import annotations

import numpy as np

from karp_models.introspect import ablation as ab
from karp_models.train.checkpoints import load_checkpoint
from test_pages import ROOT, open_page  # tests/app is on sys.path (pytest rootdir-less "prepend" import mode)

TEXT = 'CASSIO.\nWhat noise?\n\nFOURTH GENTLEMAN.\nThey cry, "A sail!"\nAnd so they do.\n'


def chart_titles(at) -> str:
    return " ".join(c.proto.spec for c in at.get("plotly_chart"))


def test_knockout_map_of_the_gpt_heads_matches_the_back_end():
    at = open_page("intervene.py")
    at.text_area(key="intervene_text_shakespeare").set_value(TEXT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "with each part knocked out" in chart_titles(at)
    gpt = load_checkpoint(ROOT / "weights" / "gpt-shakespeare.safetensors").model
    vocab = load_checkpoint(ROOT / "weights" / "gpt-shakespeare.safetensors").meta["vocab"]
    k = ab.knockout_map(gpt, [vocab.index(c) for c in TEXT], ab.heads(gpt), ab.behaviour_mask("ending a line", TEXT))
    part = at.selectbox(key="intervene_part")
    assert part.value == int(np.argmin(k.effect))                                  # the most needed head first
    assert at.metric[2].value == f"{k.clean + k.effect.min():.2f}"
    at.selectbox(key="intervene_behaviour").set_value("closing a quote").run()
    assert not at.exception and "closing a quote" in chart_titles(at)
    at.text_area(key="intervene_text_shakespeare").set_value("no quotes here\nat all\n").run()
    assert any("no character for 'closing a quote'" in i.value for i in at.info)


def test_attribution_patching_and_lens_tabs():
    at = open_page("intervene.py")
    at.text_area(key="intervene_text_shakespeare").set_value(TEXT).run()
    assert not at.exception
    titles = chart_titles(at)
    assert "Which characters mattered for" in titles                               # side by side
    assert "Residual stream patched" in titles and "What each layer would predict" in titles
    pairs = at.dataframe[0].value
    assert len(pairs) == 3 and pairs.iloc[:, 1].between(-1, 1).all()
    assert any("the scores sum to" in c.value for c in at.caption)
    at.text_input(key="intervene_corrupt_shakespeare").set_value("(Enter Romeo").run()       # not the clean text's length
    assert any("same length" in w.value for w in at.warning)
    at.text_area(key="intervene_text_shakespeare").set_value("").run()
    assert any("at least three characters" in w.value for w in at.warning)


def test_the_chinese_gpt_patches_a_couplet_and_reads_its_own_context():
    at = open_page("intervene.py")
    box = at.selectbox(key="intervene_model")
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("gpt-classical-zh"))).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="intervene_clean_classical-zh").value == "白日依山尽，黄河入海流"
    assert "Residual stream patched" in chart_titles(at)
    at.selectbox(key="intervene_behaviour").set_value("ending a phrase").run()
    assert not at.exception and "ending a phrase" in chart_titles(at)


def test_lstm_cells_knockout_and_attribution():
    at = open_page("intervene.py")
    box = at.selectbox(key="intervene_model")
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("lstm-shakespeare"))).run()
    at.text_area(key="intervene_text_shakespeare").set_value(TEXT[:60]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "with each part knocked out" in chart_titles(at)
    assert "cell" in at.selectbox(key="intervene_part").format_func(at.selectbox(key="intervene_part").value)
    assert any("Patching and the logit lens are for the GPT" in i.value for i in at.info)
