"""AppTest: the text pages (GPT attention, Generate text, RNN neurons) read a typed text and draw it."""
from __future__ import annotations

from dataclasses import replace

from karp_models.models.rnn import PRESETS, CharRNN
from karp_models.train.checkpoints import save_checkpoint
from test_pages import open_page  # tests/app is on sys.path (pytest rootdir-less "prepend" import mode)

SHORT = 'ROMEO.\nBut soft! what light through "yonder" window breaks?\n[Aside.] It is the east.\n'


def charts(at) -> list:
    return at.get("plotly_chart")


def test_attention_page_shows_heatmap_head_view_and_model_view():
    at = open_page("text_attention.py")
    at.text_area(key="text_attention_text_shakespeare").set_value(SHORT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 2                                       # heatmap and model view (tabs all render)
    assert at.slider(key="text_attention_length").value == min(32, len(SHORT))  # labels big enough to read
    at.selectbox(key="text_attention_layer").set_value(3).run()
    at.selectbox(key="text_attention_head").set_value(2).run()
    assert not at.exception and "Layer 3, head 2" in charts(at)[0].proto.spec
    assert len(at.get("iframe")) == 1                                 # the head view component


def test_attention_page_caps_a_long_text_and_offers_a_window():
    at = open_page("text_attention.py")
    at.text_area(key="text_attention_text_shakespeare").set_value("To be or not to be. " * 150).run()   # 3,000 chars
    assert not at.exception
    assert any("only the first 2,000" in i.value for i in at.info)
    start = at.slider(key="text_attention_start")
    assert start.max == 2000 - 32
    start.set_value(1500).run()
    assert not at.exception and any("Characters 1500–1531" in c.value for c in at.caption)


def test_generate_page_shows_top5_and_streams_text():
    at = open_page("generate.py")
    at.text_area(key="generate_text_shakespeare").set_value(SHORT).run()
    assert not at.exception and len(charts(at)) == 1
    at.slider(key="generate_length").set_value(20)
    at.text_input(key="generate_prime_shakespeare").set_value("JULIET.\n")
    at.button(key="generate_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    out = at.code[0].value
    assert out.startswith("JULIET.\n") and len(out) == len("JULIET.\n") + 20
    at.button(key="generate_go").click().run()                        # same seed: the same text again
    assert at.code[0].value == out


def test_neurons_page_colours_text_by_the_best_cell():
    at = open_page("rnn_neurons.py")
    at.text_area(key="rnn_neurons_text_shakespeare").set_value(SHORT * 3).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 2                                       # trace and gate saturation
    table = at.dataframe[0].value
    assert len(table) == 10 and abs(table["correlation"].iloc[0]) >= abs(table["correlation"].iloc[-1])
    assert at.number_input[0].value == table["cell"].iloc[0]
    at.selectbox(key="rnn_neurons_signal").set_value("inside quotes").run()
    assert not at.exception and at.number_input[0].value == at.dataframe[0].value["cell"].iloc[0]


def test_neurons_page_works_for_a_person_s_untrained_gru(tmp_path, monkeypatch):
    from karp_models.ui.models import model_choices

    vocab = list("\nabcdefghijklmnopqrstuvwxyz")
    gru = CharRNN(replace(PRESETS["tiny"], cell="gru", vocab_size=len(vocab)))
    save_checkpoint(tmp_path / "my-gru.safetensors", gru, model_name="gru",
                    meta={"dataset": "names", "vocab": vocab})
    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    model_choices.clear()
    at = open_page("rnn_neurons.py")
    box = at.selectbox(key="rnn_neurons_model")
    box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("my-gru"))).run()
    at.text_area(key="rnn_neurons_text_names").set_value("anna\nbob\nzoe (x)\n").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [r.value for r in at.radio] == ["h"] and len(charts(at)) == 2
    assert list(at.dataframe[1].value["gate"]) == ["reset gate", "update gate"]
    model_choices.clear()


def test_view_builders_are_offline_and_mark_what_they_should():
    import numpy as np

    from karp_models.introspect.text import NextChar
    from karp_models.ui.figures.text import head_view_html, sharpest_head, topk_html

    T = 6
    att = np.tile(np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None], (2, 3, 1, 1))   # uniform causal
    att[1, 2] = np.eye(T)                                                                # one decided head
    assert sharpest_head(att) == (1, 2)
    page = head_view_html(att[1], "ab\nc</")
    assert "http" not in page and "<script src" not in page and page.count("</script>") == 1   # no CDN
    nc = NextChar("abc", [["b", "x"], ["q", "c"], ["a", "b"]], np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]]),
                  np.array([0.9, 0.4, np.nan]))
    cells = topk_html(nc).split("<div style=")[1:]                        # the guesses, column by column
    assert [("outline" in c) for c in cells] == [True, False, False, True, False, False]
