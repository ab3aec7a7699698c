"""AppTest: the text pages (GPT attention, Generate text, RNN neurons) read a typed text and draw it."""
from __future__ import annotations

import json
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


# ---------------------------------------------------------------------------- Chinese text and models

POEM_TYPED = "床前明月光,疑是地上霜.\n举头望明月，低头思故乡。Hi 月"            # ASCII marks, Latin letters, a space
POEM_READ = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。月"


def pick(at, key: str, label: str):
    box = at.selectbox(key=key)
    box.select_index(box.options.index(label)).run()
    assert not at.exception, [e.value for e in at.exception]


def unknown_warning(at) -> str:
    """The page's list of characters the model did not read, as shown (bold, an em space apart)."""
    texts = [w.value for w in at.warning if "did not read" in w.value]
    assert len(texts) == 1, texts
    return texts[0].split("**")[1]


def test_pickers_offer_the_chinese_models_to_the_pages_that_can_show_them():
    for page, key, has, lacks in (("text_attention.py", "text_attention_model", "gpt-classical-zh", "lstm-classical-zh"),
                                  ("generate.py", "generate_model", "lstm-classical-zh", None),
                                  ("rnn_neurons.py", "rnn_neurons_model", "lstm-classical-zh", "gpt-classical-zh")):
        options = open_page(page).selectbox(key=key).options
        assert has in options and lacks not in options


def test_attention_page_reads_chinese_and_lists_what_it_did_not_read():
    at = open_page("text_attention.py")
    pick(at, "text_attention_model", "gpt-classical-zh")
    assert at.text_area(key="text_attention_text_classical-zh").value.startswith("《梦李白·其二》\n")  # a Tang poem
    at.text_area(key="text_attention_text_classical-zh").set_value(POEM_TYPED).run()
    assert not at.exception, [e.value for e in at.exception]
    assert unknown_warning(at) == "H\u2003i\u2003␣"                       # once each, in the order typed
    window = next(c.value for c in at.caption if "read as a fresh context" in c.value)
    assert window.endswith(": " + POEM_READ.replace("\n", "⏎")) and window.startswith(f"Characters 0–{len(POEM_READ) - 1}")
    labels = json.loads(charts(at)[0].proto.spec)["layout"]["xaxis"]["ticktext"]
    assert "".join(labels) == POEM_READ.replace("\n", "⏎")
    assert len(at.get("iframe")) == 1


def test_generate_page_shows_only_what_the_chinese_model_read_and_wrote():
    import re

    at = open_page("generate.py")
    pick(at, "generate_model", "lstm-classical-zh")
    assert at.text_input(key="generate_prime_classical-zh").value == "《春望》\n"
    at.text_area(key="generate_text_classical-zh").set_value(POEM_TYPED).run()
    assert unknown_warning(at) == "H\u2003i\u2003␣"
    grid = at.get("html")[0].proto.body                                # the top-5 grid: one column per character read
    assert "".join(re.findall(r"class='k5h' title='#\d+'>(.*?)</div>", grid)) == POEM_READ.replace("\n", "⏎")
    at.slider(key="generate_length").set_value(20)
    at.text_input(key="generate_prime_classical-zh").set_value("Spring 春望,")
    at.button(key="generate_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value.split("**")[1] for w in at.warning if "The prime shown" in w.value] == ["S\u2003p\u2003r\u2003i\u2003n\u2003g\u2003␣"]
    out = at.code[0].value
    assert out.startswith("春望，") and len(out) == 3 + 20                 # the prime read, then 20 written
    assert not set(out) & set("Spring ,")
    assert any("The first 3 characters are the prime" in c.value for c in at.caption)


def test_neurons_page_offers_verse_signals_and_finds_the_phrase_cell():
    at = open_page("rnn_neurons.py")
    pick(at, "rnn_neurons_model", "lstm-classical-zh")
    signal = at.selectbox(key="rnn_neurons_verse_signal")
    assert signal.value == "position in phrase" and signal.options[:3] == [
        "position in phrase", "seven-character phrase", "second phrase of the couplet"]
    table = at.dataframe[0].value                                       # the default passage: Tang poems
    assert table["cell"].iloc[0] == 146 and table["correlation"].iloc[0] > 0.7   # measured: 0.745 on all of tang300 val
    at.text_area(key="rnn_neurons_text_classical-zh").set_value(POEM_TYPED * 4).run()
    assert not at.exception, [e.value for e in at.exception]
    assert unknown_warning(at) == "H\u2003i\u2003␣"
    coloured = at.get("html")[-1].proto.body
    assert "月" in coloured and ">H<" not in coloured and ">i<" not in coloured
