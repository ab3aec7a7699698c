"""AppTest: the Image captioning page with each control, both shipped captioners (their captions
checked against introspect.captions.describe on the same scene), a composed scene checked against
the grammar, uploads (a scene, a blank, a 1x1, a bomb, a text file), and a Chinese captioner."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from karp_models.data import grammar, load as load_data
from karp_models.introspect.captions import describe
from karp_models.train.checkpoints import load_checkpoint
from karp_models.train.runs import WEIGHTS_DIR
from tests.app.test_pages import open_page
from tests.test_preprocess import _png_header_only

ATTENTION, LSTM = "caption-attention-scenes", "caption-lstm-scenes"


@pytest.fixture(scope="module")
def scenes():
    return load_data("scenes")


@pytest.fixture(scope="module")
def models():
    return {n: load_checkpoint(WEIGHTS_DIR / f"{n}.safetensors", "cpu") for n in (ATTENTION, LSTM)}


def shown(at) -> str:
    """Every HTML block on the page, tags removed: what a person reads."""
    return " ".join(re.sub(r"<[^>]+>", " ", h.proto.body) for h in at.get("html"))


def ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def caption_of(ck, x, width=1):
    return describe(ck.model, x, ck.meta["vocab"], width)


def words_shown(at, words) -> bool:
    """The caption's words appear in order on the page (each followed by its probability)."""
    return re.search(r"\s+".join(re.escape(w) + r"\s+\d+%" for w in words), shown(at)) is not None


def pick(at, key: str, label: str) -> None:
    box = at.selectbox(key=key)
    box.select_index(box.options.index(label)).run()


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def at():
    return open_page("captioning.py", timeout=300)


def test_opens_on_test_scene_0_with_its_captions_map_and_words(at, scenes, models):
    ok(at)
    assert at.title[0].value == "Image captioning"
    assert at.selectbox(key="captioning_model").value.label == ATTENTION
    x = scenes.test_x[0].numpy() / 255
    greedy, beam = caption_of(models[ATTENTION], x), caption_of(models[ATTENTION], x, 3)
    assert words_shown(at, greedy.words) and words_shown(at, beam.words)
    truth = " ".join(scenes.references("test", 0)[0])
    assert any(truth in m.value for m in at.markdown)                  # what the scene is
    said = grammar.parse(greedy.words)
    expect = "states the scene exactly" if said == grammar.Layout.decode(scenes.layouts["test"][0].tolist()) \
        else "✗"
    assert expect in shown(at)
    row = at.pills(key="captioning_word")
    assert len(row.options) == len(greedy.words) + greedy.ended
    first_noun = next(t for t, w in enumerate(greedy.words) if w in grammar.noun_classes("en"))
    assert row.value == first_noun                                     # starts at the first noun
    assert len(at.get("plotly_chart")) == 2                            # the word's map, every word's map
    assert any("of its attention is on the" in m.value for m in at.markdown)


def test_each_control(at, scenes, models):
    ck = models[ATTENTION]
    at.pills(key="captioning_word").set_value(0).run()                 # another word
    ok(at)
    x0 = scenes.test_x[0].numpy() / 255
    first = caption_of(ck, x0).words[0]
    assert any(m.value.startswith(f"**{first}**: written with probability") for m in at.markdown)

    at.slider(key="captioning_beam").set_value(1).run()                # width 1: the greedy caption
    ok(at)
    assert "Beam search, width 1" in shown(at)
    assert at.toggle(key="captioning_follow").set_value(True).run()
    ok(at)

    at.selectbox(key="captioning_filter").set_value("novel").run()     # held-out compositions
    ok(at)
    at.number_input(key="captioning_scene").set_value(2).run()
    ok(at)
    i = int(np.flatnonzero(scenes.novel.numpy())[2])
    assert any(f"test scene #{i:,}" in c.value and "never seen in training" in c.value for c in at.caption)
    assert words_shown(at, caption_of(ck, scenes.test_x[i].numpy() / 255).words)

    at.button(key="captioning_random").click().run()
    ok(at)
    assert 0 <= at.number_input(key="captioning_scene").value < int(scenes.novel.sum())

    at.selectbox(key="captioning_filter").set_value("wrong").run(timeout=600)   # the model's mistakes
    ok(at)
    at.number_input(key="captioning_scene").set_value(0).run()
    ok(at)
    assert "✗" in shown(at).split("Beam search")[0]                     # its greedy caption is wrong
    at.selectbox(key="captioning_filter").set_value("all").run()
    at.number_input(key="captioning_scene").set_value(0).run()
    at.toggle(key="captioning_follow").set_value(False).run()
    ok(at)


def test_the_other_shipped_model_has_no_attention_map(at, scenes, models):
    pick(at, "captioning_model", LSTM)
    ok(at)
    cap = caption_of(models[LSTM], scenes.test_x[0].numpy() / 255)
    assert words_shown(at, cap.words)
    assert any("This model has no attention" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1                            # the plain scene, no strip
    assert not any("Where it looked" in s.value for s in at.subheader)
    pick(at, "captioning_model", ATTENTION)
    ok(at)


def test_side_by_side_with_and_without_attention(at, scenes, models):
    assert at.selectbox(key="captioning_with").value.label == ATTENTION
    assert at.selectbox(key="captioning_without").value.label == LSTM
    x = scenes.test_x[0].numpy() / 255
    for name in (ATTENTION, LSTM):
        assert words_shown(at, caption_of(models[name], x).words)
    assert any("Its nouns' attention on their items" in c.value for c in at.caption)


def test_compose_a_scene_and_read_it_with_the_grammar(at, models):
    at.radio(key="captioning_source").set_value("compose").run()
    ok(at)
    assert any("a sneaker to the left of a bag" in m.value for m in at.markdown)   # the start
    at.slider(key="captioning_item1_x").set_value(4)                   # the bag under the sneaker
    at.slider(key="captioning_item1_y").set_value(36).run()
    ok(at)
    assert any("a sneaker above a bag" in m.value for m in at.markdown)
    at.slider(key="captioning_item1_x").set_value(40).run()            # diagonal: no exact caption
    ok(at)
    assert any("cannot state it exactly" in m.value and "diagonally" in m.value for m in at.markdown)
    at.slider(key="captioning_item1_y").set_value(10).run()
    at.segmented_control(key="captioning_n_items").set_value(3).run()  # a third item: a sneaker below
    ok(at)
    assert any("two sneakers to the left of a bag" in m.value for m in at.markdown)
    at.selectbox(key="captioning_item2_class").set_value(3).run()      # ... now a dress: three kinds
    ok(at)
    assert any("at most two kinds" in m.value for m in at.markdown)
    at.selectbox(key="captioning_item2_class").set_value(7)
    at.number_input(key="captioning_pick").set_value(5).run()          # other pictures of each class
    ok(at)
    assert "states the scene exactly" in shown(at) or "✗" in shown(at)
    at.radio(key="captioning_source").set_value("test").run()
    ok(at)


def _upload(at, name: str, data: bytes):
    at.radio(key="captioning_source").set_value("upload").run()
    at.get("file_uploader")[0].upload(name, data, "image/png").run()
    ok(at)
    return at


def test_an_uploaded_scene_is_read_as_the_scenes_are_drawn_and_captioned(at, scenes, models):
    x = scenes.test_x[5, 0].numpy()
    big = np.stack([np.repeat(np.repeat(255 - x, 5, 0), 5, 1)] * 3, -1)   # dark items on white, 320 px
    _upload(at, "scene.png", png(big))
    from karp_models import preprocess as pp

    pipe = pp.preprocess(big, "scene", size=64)
    assert words_shown(at, caption_of(models[ATTENTION], pipe.x).words)
    assert "not checked" in shown(at)                                  # nobody said what it shows
    assert any("**The scene:** not known" in m.value for m in at.markdown)
    assert any("upload: scene.png" in c.value for c in at.caption)


@pytest.mark.parametrize("name, data, words", [
    ("blank.png", png(np.full((300, 300, 3), 255, np.uint8)), "No caption for this picture"),
    ("one.png", png(np.full((1, 1, 3), 128, np.uint8)), "No caption for this picture"),
    ("huge.png", _png_header_only(30_000, 30_000), "cannot be used"),
    ("notes.png", b"just some text, renamed\n" * 10, "cannot be used"),
])
def test_odd_uploads_get_a_message_not_a_caption(at, name, data, words):
    _upload(at, name, data)
    said = [w.value for w in at.warning] + [e.value for e in at.error]
    assert any(words in s for s in said), said
    assert not at.get("plotly_chart") and not at.pills


def test_a_chinese_captioner_writes_chinese(tmp_path, monkeypatch):
    """A (barely trained) captioner on the Chinese grammar: its words are Chinese, joined without
    spaces where the scene is stated, and the verdict reads them with the Chinese parser."""
    from karp_models.train.runs import RunSpec, build_run, save_run
    from karp_models.train.trainer import TrainConfig
    from karp_models.ui.models import model_choices

    monkeypatch.setenv("KARP_RUNS", str(tmp_path))
    spec = RunSpec(model="caption-attention", dataset="scenes-zh", preset="tiny",
                   config=TrainConfig(steps=2, batch_size=8, eval_every=0), device="cpu")
    prepared = build_run(spec)
    for _ in prepared.trainer.run():
        pass
    save_run(tmp_path / "zh-tiny.safetensors", spec, prepared, {})
    model_choices.clear()
    at = open_page("captioning.py", timeout=300)
    pick(at, "captioning_model", "zh-tiny")
    ok(at)
    zh = load_data("scenes-zh")
    assert zh.text(zh.references("test", 0)[0]) in shown(at).replace(" ", "")   # the references: 两只凉鞋在...
    assert any(m.value.startswith("**The scene:** two sandals") for m in at.markdown)  # the page's language
    ck = load_checkpoint(tmp_path / "zh-tiny.safetensors", "cpu")
    cap = describe(ck.model, zh.test_x[0].numpy() / 255, ck.meta["vocab"])
    assert all(re.search("[\u4e00-\u9fff]", w) or w in ("T恤",) for w in cap.words)
    assert words_shown(at, cap.words)
