"""AppTest: the ViT attention page and the seq2seq page run and draw their figures; the seq2seq
page trains a few steps (a tiny run injected into the session) and translates a typed date."""
import re
from dataclasses import replace

import torch

from karp_models.train.tasks.seq2seq import LIVE
from karp_models.ui.seq2seq import new_run
from karp_models.ui.selection import ImageInput

from test_pages import open_page  # tests/app is on sys.path (pytest prepend import mode)


def charts(at) -> list:
    return at.get("plotly_chart")


def test_vit_attention_page_draws_prediction_rollout_and_head_grid():
    at = open_page("vit_attention.py")
    assert at.title[0].value == "ViT attention"
    assert len(charts(at)) == 4                                  # prediction, rollout, layers x heads, knockout
    assert any("Ankle boot" in m.value for m in at.markdown)      # test image 0, predicted right
    at.number_input(key="vit_attention_index").set_value(1).run()
    at.toggle(key="vit_attention_shared_scale").set_value(True).run()
    at.toggle(key="vit_attention_smooth").set_value(False).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 4


def test_vit_attention_page_knocks_each_head_out_as_the_back_end_does():
    import json
    from pathlib import Path

    import numpy as np
    from test_evaluate_page import _arr as plotly_array

    from karp_models.data import load
    from karp_models.introspect import ablation as ab
    from karp_models.train.checkpoints import load_checkpoint

    at = open_page("vit_attention.py")
    vit = load_checkpoint(Path(__file__).resolve().parents[2] / "weights" / "vit-fashion-mnist.safetensors").model
    x = load("fashion-mnist").test_x[:1].float() / 255
    pred = int(vit(x)[0].argmax())
    change, clean = ab.image_knockout(vit, x, pred, ab.heads(vit))
    spec = json.loads(charts(at)[3].proto.spec)
    assert "with each head knocked out" in spec["layout"]["title"]["text"]
    assert np.allclose(plotly_array(spec["data"][0]["z"]).ravel(), change, atol=1e-4)
    # layers and heads numbered from 0, as on the text pages and in the head grid above it
    assert list(spec["data"][0]["y"])[0] == "layer 0" and list(spec["data"][0]["x"])[0] == "head 0"
    at.radio(key="vit_attention_mode").set_value("mean").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("set to mean" in c.value for c in at.caption)


def test_vit_attention_page_uses_the_shared_image_of_the_same_dataset():
    at = open_page()
    x = torch.zeros(1, 1, 28, 28)
    x[..., 4:24, 10:18] = 1
    at.session_state["karp_image"] = ImageInput(x=x, dataset="fashion-mnist", source="drawing")
    at.switch_page("pages/vit_attention.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="vit_attention_source").value.startswith("The image")
    assert any(m.value.startswith("drawing →") for m in at.markdown)
    assert len(charts(at)) == 4


def test_seq2seq_page_trains_a_few_steps_and_translates():
    at = open_page("seq2seq.py")
    assert at.title[0].value == "Seq2seq attention"
    assert len(charts(at)) == 2                                  # the watched example, and "try it"
    run = new_run(replace(LIVE, steps=10, batch_size=16, eval_every=5), preset="tiny", n_val=16)
    at.session_state["seq2seq_run"] = run
    at.run()
    assert at.button(key="seq2seq_train").label.startswith("Train 10 steps")
    at.button(key="seq2seq_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert run.step == 10 and run.records[-1].final
    assert len(charts(at)) >= 4                                  # curves, alignment, before, try it
    assert any("Step **10**" in m.value for m in at.markdown)
    at.text_input(key="seq2seq_text").input("12/25/1999").run()
    assert not at.exception, [e.value for e in at.exception]
    label = at.button(key="seq2seq_train").label                # the time the last press took
    assert re.fullmatch(r"Train 10 more steps \(about \d+ s\)", label), label
    at.button(key="seq2seq_reset").click().run()
    assert at.session_state["seq2seq_run"] is not run


def test_alignment_labels_shrink_for_long_inputs_and_stay_readable():
    import numpy as np

    from karp_models.train.tasks.seq2seq import Translation
    from karp_models.ui.seq2seq import alignment_figure

    def x_font(source: str) -> int:
        tr = Translation(source=source, output="2021-03-03", alignment=np.full((11, len(source)), 1 / len(source)))
        fig = alignment_figure(tr)
        assert list(fig.layout.xaxis.ticktext)[:3] == [("␣" if c == " " else c) for c in source[:3]]
        return fig.layout.xaxis.tickfont.size

    assert x_font("3/3/2021") == 16
    assert 10 < x_font("wednesday, the 3rd of march, 2021") < 16
    assert x_font("x" * 200) == 10


def test_seq2seq_page_reads_chinese_dates_and_lists_what_it_cannot_read():
    at = open_page("seq2seq.py")
    at.session_state["seq2seq_run"] = new_run(replace(LIVE, steps=5, batch_size=8, eval_every=5), preset="tiny", n_val=8)
    for typed, read, unknown in (("２０２６年11月30日", "2026年11月30日", None),            # full-width digits: NFKC
                                 ("二〇二六年十一月三十日", "二〇二六年十一月三十日", None),
                                 ("2026年11月30號　星期一", "2026年11月30 星期一", "號")):
        at.text_input(key="seq2seq_text").input(typed).run()
        assert not at.exception, [e.value for e in at.exception]
        shown = at.get("html")[0].proto.body                          # source → output
        assert shown.startswith(f"<div style='font-size:30px; font-family:monospace'>{read} &nbsp;→")
        warned = [w.value for w in at.warning if "did not read" in w.value]
        assert [w.split("**")[1] for w in warned] == ([unknown] if unknown else [])
    at.text_input(key="seq2seq_text").input("號").run()               # nothing read: said, not translated as "?"
    assert not at.exception and any("read none of it" in i.value for i in at.info)
    assert not [h for h in at.get("html") if "→" in h.proto.body] and not at.get("plotly_chart")[1:]
