"""The Image captioning page's pieces: the captioner, the scene (a test scene, one composed by
placing items, or an upload or drawing read as the scenes are drawn), its captions by greedy and
beam search (cached), what the scenes' grammar makes of them, the word row, one word's look, and
the comparison of a model with attention and one without on the same scene.

The decoding is introspect.captions, the scenes and their grammar data.scenes and data.grammar,
the figures ui.figures.captioning and the caption HTML ui.caption_views.
"""
from __future__ import annotations

import html

from dataclasses import dataclass

import numpy as np
import streamlit as st

from karp_models import preprocess as pp
from karp_models.data import grammar, scenes
from karp_models.data.grammar import CLASSES, Layout, parse
from karp_models.i18n import L_, N_, _, join
from karp_models.i18n import language as ui_language
from karp_models.introspect.captions import Caption, describe, greedy_words, noun_looks
from karp_models.ui import loaders, state, style
from karp_models.ui.caption_views import caption_line_html, words_html
from karp_models.ui.compute import run_pipeline
from karp_models.ui.models import ModelChoice, load_model, model_choices, model_picker
from karp_models.ui.predict import UPLOAD_TYPES, show_pipeline

SOURCES = {"test": N_("Test scene"), "compose": N_("Compose a scene"), "upload": N_("Upload or draw")}
FILTERS = {"all": N_("All test scenes"), "novel": N_("Held-out compositions (pairs never seen in training)"),
           "seen": N_("Compositions seen in training"), "wrong": N_("Captioned wrongly by this model")}
# the composer's first items: two sneakers left of two bags (each overlapping the other in height)
START_ITEMS = ((7, 4, 8, 22), (8, 38, 10, 24), (7, 6, 38, 20), (8, 40, 40, 20))
UPLOADED = "captioning_uploaded"    # the last upload (bytes, name): kept across page visits
WORD = "captioning_word"


@dataclass(frozen=True)
class Scene:
    """What the captioner is shown: x (C, H, W) float32 in [0, 1], where it came from, what it
    shows when known (layout; else `why` not), its items' boxes (K, 4) and classes (K,) when
    known, the reference captions, and an upload's preprocessing (Decoded | None, Pipeline)."""

    x: np.ndarray
    source: str
    layout: Layout | None = None
    why: str = ""
    boxes: np.ndarray | None = None
    classes: np.ndarray | None = None
    references: tuple[tuple[str, ...], ...] = ()
    pipeline: tuple | None = None


def language(ck) -> str:
    return ck.meta.get("language", "en")


def class_name(c: int) -> str:
    return _(CLASSES[c])

# ---------------------------------------------------------------------------- the model and its captions


def captioner(container=st) -> tuple | None:
    """The captioner picker (shipped weights and saved runs, in the page's link)."""
    return model_picker("captioning_model", task="caption", label=_("Captioner"),
                        default="caption-attention-scenes", container=container, show_about=False)


def quality(ck, choice: ModelChoice) -> str:
    """One line on where the model comes from and how well it captions the held-out scenes."""
    m = ck.meta.get("metrics", {})
    where = _("shipped with karp") if choice.origin == "shipped" else _("your saved run")
    parts = [_("{name}, {where}").format(name=choice.label, where=where)]
    if m.get("test_accuracy") is not None:
        parts.append(_("{acc:.0%} of the test scenes captioned exactly right").format(acc=m["test_accuracy"]))
    if m.get("test_novel_accuracy") is not None:
        parts.append(_("{acc:.0%} of the new compositions").format(acc=m["test_novel_accuracy"]))
    if m.get("test_bleu4") is not None:
        parts.append(_("BLEU-4 {b:.2f}").format(b=m["test_bleu4"]))
    return " · ".join(parts)


@st.cache_data(max_entries=64, show_spinner=False)
def caption(path: str, mtime: float, x: np.ndarray, width: int) -> Caption:
    """The caption of x (C, H, W) by the checkpoint at `path`: greedy (width 1) or beam search."""
    ck = load_model(path, mtime)
    return describe(ck.model, x, ck.meta["vocab"], width)


@st.cache_data(max_entries=8, show_spinner=L_("Captioning every test scene once with this model…"))
def wrong_scenes(path: str, mtime: float, dataset_name: str) -> np.ndarray:
    """Indices of the test scenes whose greedy caption does not state the scene exactly."""
    ck, data = load_model(path, mtime), loaders.dataset(dataset_name)
    said = greedy_words(ck.model, data.test_x, ck.meta["vocab"])
    truth = [Layout.decode(c) for c in data.layouts["test"].tolist()]
    return np.array([i for i, (w, g) in enumerate(zip(said, truth)) if parse(w, data.language) != g], int)


def fits(ck, scene: Scene) -> bool:
    """Whether the model reads pictures of the scene's shape (channels and side)."""
    c = ck.model.config
    return scene.x.shape == (c.in_channels, c.image_size, c.image_size)

# ---------------------------------------------------------------------------- the scene


def scene_data(choice: ModelChoice):
    """The model's captioned dataset (its test scenes), or None when it is not here."""
    try:
        return loaders.dataset(choice.dataset)
    except Exception as e:  # noqa: BLE001 - data.load says what is missing
        st.info(_("The test scenes of {name} are not on this computer, so compose or upload a "
                  "scene instead. {why}").format(name=choice.dataset, why=e))
        return None


def scene_from_tests(choice: ModelChoice, data) -> Scene | None:
    """A test scene: which ones (all, held-out or seen compositions, the model's mistakes), then
    its number among them, or a random one."""
    keys = ["all"] + (["novel", "seen"] if data.novel is not None else []) + \
        (["wrong"] if data.layouts is not None else [])
    c0, c1, c2 = st.columns([4, 2, 1.3], vertical_alignment="bottom")
    which = c0.selectbox(_("Which test scenes"), keys, format_func=lambda k: _(FILTERS[k]),
                         key="captioning_filter", bind="query-params")
    n_all = len(data.test_x)
    novel = data.novel.numpy().astype(bool) if data.novel is not None else np.zeros(n_all, bool)
    idx = {"all": np.arange(n_all), "novel": np.flatnonzero(novel), "seen": np.flatnonzero(~novel)
           }.get(which) if which != "wrong" else wrong_scenes(choice.path, choice.mtime, choice.dataset)
    if not len(idx):
        st.success(_("This model captions every test scene exactly right."))
        return None
    state.forget_outside("captioning_scene", 0, len(idx) - 1)
    if c2.button(_("Random"), icon=":material/casino:", key="captioning_random", width="stretch"):
        st.session_state["captioning_scene"] = int(np.random.default_rng().integers(len(idx)))
    k = c1.number_input(_("Scene, 0 to {last:,}").format(last=len(idx) - 1), 0, len(idx) - 1,
                        key="captioning_scene", bind="query-params")
    i = int(idx[int(k)])
    source = _("test scene #{i:,}").format(i=i)
    if novel[i]:
        source += " · " + _("a composition never seen in training")
    layout = Layout.decode(data.layouts["test"][i].tolist()) if data.layouts is not None else None
    return Scene(x=data.test_x[i].numpy().astype(np.float32) / 255, source=source, layout=layout,
                 boxes=None if data.boxes is None else data.boxes["test"][i].numpy(),
                 classes=None if data.classes is None else data.classes["test"][i].numpy(),
                 references=tuple(tuple(r) for r in data.references("test", i)))


def composed_scene(lang: str) -> Scene | None:
    """A scene made by placing 2-4 Fashion-MNIST items: each item's class, place and size."""
    try:
        pool = loaders.dataset("fashion-mnist")
    except Exception as e:  # noqa: BLE001 - data.load says how to get it
        st.error(_("Composing needs Fashion-MNIST's pictures, which are not here: {why}").format(why=e))
        return None
    cols = st.columns([1.4, 2, 2, 2, 2])
    n = cols[0].segmented_control(_("Items"), [2, 3, 4], default=2, key="captioning_n_items",
                                  bind="query-params") or 2
    pick = cols[0].number_input(_("Pictures"), 0, 999, 0, key="captioning_pick",
                                help=_("Which pictures of each class are used: change it for other "
                                       "sneakers, bags, ..."))
    items = []
    for i in range(n):
        c, x, y, s = START_ITEMS[i]
        with cols[i + 1].container(border=True):
            cls = st.selectbox(_("Item {n}").format(n=i + 1), range(10), index=c, format_func=class_name,
                               key=f"captioning_item{i}_class")
            x = st.slider(_("Across"), 0, scenes.CANVAS - 1, x, key=f"captioning_item{i}_x")
            y = st.slider(_("Down"), 0, scenes.CANVAS - 1, y, key=f"captioning_item{i}_y")
            s = st.slider(_("Size"), 8, 40, s, key=f"captioning_item{i}_size",
                          help=_("The training scenes use sizes 16 to 26 pixels."))
        items.append(scenes.Placed(int(cls), int(x), int(y), int(s), int(pick) + i))
    canvas, boxes, classes = scenes.compose_placed(items, pool.test_x.numpy(), pool.test_y.numpy())
    layout, why = scenes.layout_of(boxes, classes)
    refs = tuple(tuple(r) for r in grammar.captions(layout, lang)) if layout else ()
    return Scene(x=canvas.astype(np.float32) / 255, source=_("your scene"), layout=layout,
                 why=_(why) if why else "", boxes=boxes, classes=classes, references=refs)


def _upload_changed() -> None:
    if st.session_state.get("captioning_upload") is None:
        st.session_state.pop(UPLOADED, None)


def _drawing() -> tuple[np.ndarray | None, str]:
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as e:  # noqa: BLE001 - the package or its frontend is missing
        st.warning(_("Drawing needs streamlit-drawable-canvas ({why}).").format(why=e))
        return None, ""
    st.caption(_("Draw two or three things side by side or one above the other, in white on black."))
    res = st_canvas(stroke_width=12, stroke_color="#FFFFFF", background_color="#000000", height=256,
                    width=256, drawing_mode="freedraw", return_image_data=True, key="captioning_canvas")
    img = getattr(res, "image_data", None) if res is not None else None
    if img is None or np.asarray(img)[..., :3].max() < 10:
        return None, ""
    return np.ascontiguousarray(np.asarray(img)[..., :3].astype(np.uint8)), "drawing"


def uploaded_scene(ck, choice: ModelChoice) -> Scene | None:
    """An upload or a drawing, read the way the model's pictures were made (the 'scene' recipe:
    items bright on black, every item kept in its place), or None after a message."""
    where, _right = st.columns([3, 2])
    with where:
        return _picture(ck, choice)


def _picture(ck, choice: ModelChoice) -> Scene | None:
    how = st.radio(_("Picture from"), ["upload", "draw"], horizontal=True, key="captioning_input",
                   format_func=lambda k: _("Upload") if k == "upload" else _("Draw"))
    data, rgb, name = None, None, ""
    if how == "upload":
        f = st.file_uploader(_("An image file (PNG, JPEG and many more)"), type=UPLOAD_TYPES,
                             key="captioning_upload", on_change=_upload_changed)
        if f:
            st.session_state[UPLOADED] = (f.getvalue(), f.name)
        data, name = st.session_state.get(UPLOADED, (None, ""))
        if data is None:
            st.info(_("Upload a picture of a few clothes, shoes or bags on a plain background."))
            return None
    else:
        rgb, name = _drawing()
        if rgb is None:
            st.info(_("Draw something on the canvas."))
            return None
    c = ck.model.config
    recipe = pp.style_for(choice.dataset) if c.in_channels == 1 else "photo"
    try:
        decoded, pipe = run_pipeline(data, rgb, name, recipe, c.image_size, c.in_channels, None, ui_language())
    except Exception as e:  # noqa: BLE001 - pp.ImageError says why; any other failure is a bad file
        why = str(e) if isinstance(e, pp.ImageError) else f"{type(e).__name__}: {e}"
        st.error(_("This image cannot be used. {why}").format(why=why), icon=":material/block:")
        return None
    source = _("upload: {name}").format(name=name) if how == "upload" else _("your drawing")
    return Scene(x=pipe.x, source=source, why=_("nobody has said what this picture shows"),
                 pipeline=(decoded, pipe))


def pick_scene(ck, choice: ModelChoice, data, container=st) -> Scene | None:
    """The scene source (a radio in `container`) and its widgets, below it across the page."""
    keys = (["test"] if data is not None else []) + ["compose", "upload"]
    if data is not None and data.layouts is None:
        keys.remove("compose")                          # a photo model: no scenes to compose
    source = container.radio(_("Scene"), keys, format_func=lambda k: _(SOURCES[k]), horizontal=True,
                      key="captioning_source", bind="query-params")
    if source == "test":
        return scene_from_tests(choice, data)
    if source == "compose":
        return composed_scene(language(ck))
    return uploaded_scene(ck, choice)

# ---------------------------------------------------------------------------- what the captions say


def _items_words(layout: Layout) -> str:
    return join(f"{n} × {class_name(c)}" for c, n in sorted(layout.items().items()))


def verdict(cap: Caption, scene: Scene, lang: str) -> tuple[bool | None, str]:
    """Does the caption state the scene exactly (the grammar's parser reads it back)? (True,
    False or None when the scene is unknown, and the reason in words)."""
    said = parse(cap.words, lang)
    if said is None:
        return False, _("not a sentence the scenes' grammar can read")
    if scene.layout is None:
        return None, _("a sentence of the grammar; not checked")
    if said == scene.layout:
        return True, _("states the scene exactly")
    if said.items() == scene.layout.items():
        return False, _("the right items, in the wrong places")
    return False, _("wrong items: it says {said}").format(said=_items_words(said))


def labels(cap: Caption) -> list[str]:
    """The caption's steps as the word row shows them: its words, then (end) if it ended."""
    return list(cap.words) + ([_("(end)")] if cap.ended else [])


def show_caption(title: str, cap: Caption, scene: Scene, lang: str) -> None:
    """One line: what decoded it, the words with their probabilities, and the verdict."""
    ok, why = verdict(cap, scene, lang)
    st.html(caption_line_html(title, words_html(labels(cap), cap.probs, lang, size=style.px(24)), ok, why,
                              size=style.px(19)))


def show_scene_truth(scene: Scene, lang: str) -> None:
    """What the scene is: the grammar's first wording (or why it has none)."""
    if scene.pipeline is not None:
        st.markdown(_("**The scene:** not known, because {why}.").format(why=scene.why))
        return
    if scene.layout is None:
        st.markdown(_("**The scene:** the grammar cannot state it exactly, because {why}.").format(why=scene.why))
        return
    ui = ui_language()                   # stated in the reader's language, whatever the model's
    words = grammar.captions(scene.layout, ui)[0] if ui != lang else scene.references[0] if scene.references else ()
    st.markdown(_("**The scene:** {caption}").format(caption=("" if ui == "zh" else " ").join(words)))


def show_references(scene: Scene, lang: str) -> None:
    """Every reference caption, in an expander."""
    if len(scene.references) > 1:
        with st.expander(_("All {n} reference captions (the ways the grammar says it)").format(
                n=len(scene.references))):
            # the model's own language (what its caption is scored against), not the page's
            items = "".join(f"<li>{html.escape(('' if lang == 'zh' else ' ').join(r))}</li>" for r in scene.references)
            st.html(f'<ul lang="{lang}" style="font-size: 1.05rem; margin: 0">{items}</ul>')


def word_row(cap: Caption, noun_class: dict[str, int]) -> int:
    """A row of the caption's words to click: the chosen one's map is shown (first: the first noun)."""
    labs = labels(cap)
    steps = list(range(len(labs)))
    first = next((t for t, w in enumerate(cap.words) if w in noun_class), 0)
    if st.session_state.get("captioning_word_of") != (cap.words, cap.width) or \
            st.session_state.get(WORD) not in steps:
        st.session_state[WORD] = first                  # a new caption: start at its first noun
        st.session_state["captioning_word_of"] = (cap.words, cap.width)
    style.wrap_buttons(WORD)
    t = st.pills(_("Word"), steps, format_func=lambda t: labs[t], key=WORD, label_visibility="collapsed")
    return first if t is None else int(t)


def look_words(cap: Caption, t: int, scene: Scene, noun_class: dict[str, int], size: int) -> tuple[str, np.ndarray | None]:
    """Markdown on step t (its probability; for a noun, how much of its attention is on the items it
    names) and the boxes of those items (None when it names none)."""
    word = labels(cap)[t]
    text = _("**{word}**: written with probability **{p:.0%}**.").format(word=word, p=cap.probs[t])
    if cap.attention is None:
        return text + " " + _("This model has no attention: it writes every word from one summary "
                              "of the whole picture."), None
    c = noun_class.get(word, -1)
    if c < 0 or scene.classes is None:
        return text, None
    if not (scene.classes == c).any():
        return text + " " + _("There is no {item} in this scene.").format(item=class_name(c)), None
    look = next(lk for lk in noun_looks(cap, noun_class, scene.boxes, scene.classes, size) if lk.step == t)
    return text + " " + _("**{on:.0%}** of its attention is on the {item} items (green boxes); a "
                          "uniform look would put {chance:.0%} there.").format(
        on=look.on_item, item=class_name(c), chance=look.chance), scene.boxes[scene.classes == c]

# ---------------------------------------------------------------------------- with and without attention


def comparison(scene: Scene, width: int) -> None:
    """Side by side: a captioner with attention and one without, on the same scene."""
    cols = st.columns(2, gap="large")
    for col, model, key, title in (
            (cols[0], "caption-attention", "captioning_with", _("With attention (Show, Attend and Tell)")),
            (cols[1], "caption-lstm", "captioning_without", _("Without attention (one image vector)"))):
        choices = model_choices("caption", models=(model,))
        with col:
            st.markdown(f"#### {title}")
            if not choices:
                st.info(_("No model of this kind here: train one on the Train page and save it."))
                continue
            c = st.selectbox(_("Model"), choices, format_func=lambda c: c.label, key=key)
            ck = load_model(c.path, c.mtime)
            st.caption(quality(ck, c))
            if not fits(ck, scene):
                st.info(_("This model reads pictures of another size or colour than this scene."))
                continue
            lang = language(ck)
            for name, w in ((_("Greedy"), 1), (_("Beam search, width {w}").format(w=width), width)):
                show_caption(name, caption(c.path, c.mtime, scene.x, w), scene, lang)
            g = caption(c.path, c.mtime, scene.x, 1)
            looks = noun_looks(g, grammar.noun_classes(lang), scene.boxes, scene.classes,
                               ck.model.config.image_size) if scene.classes is not None else []
            if looks:
                st.caption(_("Its nouns' attention on their items: {on:.0%} on average (chance {chance:.0%}).")
                           .format(on=np.mean([lk.on_item for lk in looks]),
                                   chance=np.mean([lk.chance for lk in looks])))


def show_upload(scene: Scene) -> bool:
    """An upload's preprocessing in an expander; False (with a message) when nothing is left."""
    decoded, pipe = scene.pipeline
    with st.expander(_("How the picture becomes the model's input ({n} steps)").format(n=len(pipe.steps)),
                     expanded=pipe.blank):
        show_pipeline(decoded, pipe)
    if pipe.blank:
        st.warning(_("**No caption for this picture.** After preprocessing nothing is left for the "
                     "model to see (the note above says why). A captioner always writes a "
                     "sentence, even about an empty picture."), icon=":material/visibility_off:")
    return not pipe.blank


def chart(fig, key: str) -> None:
    style.chart(fig, width="stretch", config={"displayModeBar": False}, key=key)
