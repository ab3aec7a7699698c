"""The Predict page's widgets: the model (a karp checkpoint or an ImageNet model), the input
(upload, canvas, camera, test set, sample photos) as the model's input and the preprocessing
strip; the tabs that look inside are in ui.predict_inside. The maths is in
karp_models.preprocess and introspect, the cached computations in ui.compute, the figures in
ui.figures.predict.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from karp_models import imagenet
from karp_models import preprocess as pp
from karp_models.i18n import N_, _, join, language
from karp_models.ui import identity, loaders, style
from karp_models.ui.compute import run_pipeline
from karp_models.ui.images import display
from karp_models.ui.models import imagenet_model, model_picker
from karp_models.ui.selection import ImageInput, set_blank, set_image

SOURCES = (N_("Upload"), N_("Draw"), N_("Camera"), N_("Test image"), N_("Sample photo"))  # shown with _()
UPLOADED = "predict_uploaded"   # the last upload (a Raw): kept when the person visits another page
# every file ending the decoder can read (58 with Pillow 13), the usual ones first for the
# uploader's line of accepted types
_USUAL = ("png", "jpg", "jpeg", "jfif", "webp", "avif", "tif", "tiff", "bmp", "gif")
UPLOAD_TYPES = sorted(pp.READABLE, key=lambda e: (_USUAL.index(e) if e in _USUAL else len(_USUAL), e))

# ---------------------------------------------------------------------------- the model being used


@dataclass(frozen=True)
class Target:
    """What the page runs: a karp checkpoint or an ImageNet model, with what preprocessing needs."""

    model: torch.nn.Module
    key: str                  # cache key: file path + mtime, or 'imagenet:<name>'
    classes: tuple[str, ...]
    dataset: str              # 'fashion-mnist', ..., or 'imagenet'
    channels: int
    size: int
    resize: int | None        # ImageNet: shorter side before the centre crop
    origin: str               # 'shipped' | 'run' | 'imagenet'
    title: str
    meta: dict
    style: str = ""           # the preprocess recipe; '' = the dataset's (pp.style_for)

    @property
    def recipe(self) -> str:
        """How a picture becomes this model's input (a karp_models.preprocess style)."""
        return self.style or pp.style_for(self.dataset)

    @property
    def own_classes(self) -> bool:
        """A model fine-tuned on a person's own classes (its backbone says how pictures are read)."""
        return hasattr(getattr(self.model, "config", None), "input_style")


def karp_target(ck, choice) -> Target:
    """A checkpoint as the page runs it. A fine-tuned model reads pictures as its backbone was
    trained to: a karp backbone's dataset recipe, or an ImageNet backbone's resize and crop."""
    cfg = ck.model.config
    classes = loaders.class_names(ck.meta.get("classes") or [str(i) for i in range(cfg.n_classes)])
    style = getattr(cfg, "input_style", "")                      # FineTuneConfig
    return Target(model=ck.model, key=f"{choice.path}:{choice.mtime}", classes=classes,
                  dataset=choice.dataset, channels=cfg.in_channels, size=cfg.image_size,
                  resize=getattr(cfg, "resize_size", None), origin=choice.origin, title=choice.label,
                  meta=ck.meta, style=style)


KINDS = (N_("karp's models (clothes and digits, 28×28; your runs)"),
         N_("ImageNet models (photos of everyday things)"))     # shown with _()


def choose_target() -> Target:
    """The Models choice and the model; without one, a Target whose model is None (the input and
    its pipeline still work, with Fashion-MNIST's or ImageNet's recipe)."""
    kind = st.radio(_("Models"), KINDS, format_func=_, key="predict_kind", horizontal=True,
                    bind="query-params")
    karp = kind == KINDS[0]
    if karp:
        picked = model_picker("predict_model", task="image")
        target = karp_target(*picked) if picked is not None else None
    else:
        target = imagenet_picker()
    if target is not None:
        return target
    return Target(model=None, key="", classes=(), dataset="fashion-mnist" if karp else "imagenet",
                  channels=1 if karp else 3, size=28 if karp else 224, resize=None if karp else 256,
                  origin="none", title="", meta={})


def imagenet_picker() -> Target | None:
    """A selectbox over the torchvision models; None (with how to get the weights) if missing."""
    names = list(imagenet.ARCHS)

    def label(n: str) -> str:                        # also the page link's value: no state in it
        a = imagenet.ARCHS[n]
        acc = a.weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        return _("{model} (ImageNet top-1 {acc:.1f}%)").format(model=a.title, acc=acc)

    name = st.selectbox(_("ImageNet model"), names, format_func=label, key="predict_imagenet",
                        bind="query-params")
    if not imagenet.is_cached(name):
        if not download_weights(name, "predict_download"):
            return None
    try:
        m = imagenet_model(name)
    except imagenet.WeightsUnavailable as e:         # a damaged file: say so, with what to do
        st.warning(_("**These pretrained weights cannot be used.** {error}").format(error=e))
        return None
    return Target(model=m, key=f"imagenet:{name}", classes=loaders.class_names(m.classes), dataset="imagenet",
                  channels=3, size=m.image_size, resize=m.resize_size, origin="imagenet",
                  title=m.title, meta={})


def download_weights(name: str, key: str, message: str | None = None) -> bool:
    """torchvision's ImageNet weights of `name` are not here: `message` (what needs them and what
    works meanwhile; {model} and {mb} filled in), a button that downloads them into the torch hub
    cache with a progress bar (True when they arrived), or, offline, what to do instead and the
    other ways to get the file. Shared by Predict and the own-classes page (its backbones)."""
    a = imagenet.ARCHS[name]
    size = imagenet.size_mb(name)
    message = message or _("{model} needs its ImageNet weights ({mb:.0f} MB), which are not on this "
                           "computer yet. The rest of the page works without them: the input and its "
                           "preprocessing below.")
    st.info(message.format(model=a.title, mb=size), icon=":material/download:")
    if not st.button(_("Download them now ({mb:.0f} MB)").format(mb=size), icon=":material/download:",
                     key=f"{key}_{name}"):
        return False
    bar = st.progress(0.0, text=_("Connecting…"))

    def show(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=_("Downloading {model}: {done:.0f} of {total:.0f} MB").format(
            model=a.title, done=done / 2**20, total=total / 2**20))
    try:
        imagenet.download(name, progress=show)
    except imagenet.WeightsUnavailable as e:
        bar.empty()
        st.warning(str(e), icon=":material/wifi_off:")
        with st.expander(_("Other ways to get the file")):
            st.code(imagenet.how_to_get(name), language=None, wrap_lines=True)
        return False
    return True


def what_it_knows(t: Target) -> str:
    """What a karp model can recognise, said whenever it is given a photo or a drawing."""
    if t.own_classes:
        return _("**This model knows only your {n} classes: {classes}.** Anything else is forced "
                 "into one of them. It reads a picture the way its backbone was trained to (the "
                 "steps above).").format(n=len(t.classes), classes=join(t.classes))
    return _("**This model knows only {n} classes: {classes}**, learned from small {size}×{size} pictures on "
             "a black background. Anything else (a cat, a cup) is forced into one of them. For photos of "
             "everyday things, choose the **ImageNet models** at the top of the page.").format(
                 n=len(t.classes), classes=join(t.classes), size=t.size)


# ---------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Raw:
    """An input before preprocessing: file bytes (upload, camera), or an RGB array."""

    source: str
    data: bytes | None = None
    rgb: np.ndarray | None = None
    name: str = ""


def cannot_use(e: Exception) -> str:
    """Predict's words for a file it refuses (preprocess.ImageError's message, or any other
    decoder failure): shared with the own-classes page, which refuses the same files."""
    if isinstance(e, pp.ImageError):
        return _("**This image cannot be used.** {error}").format(error=e)
    return _("**This image cannot be used.** It could not be read ({error}). Try another file.").format(
        error=f"{type(e).__name__}: {e}")


def handle_raw(raw: Raw, t: Target) -> tuple[pp.Decoded | None, pp.Pipeline] | None:
    """The page's handler for any upload/camera/drawing/photo: the pipeline, or None after a
    clear message on the page (never a traceback)."""
    try:
        return run_pipeline(raw.data, raw.rgb, raw.name, t.recipe, t.size, t.channels, t.resize, language())
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file (cannot_use says which)
        st.error(cannot_use(e), icon=":material/block:")
    return None


def canvas_input(key: str = "predict") -> Raw | None:
    """A black 280x280 canvas to draw on in white (like MNIST's bright ink on black); `key`: the
    page's widget-key prefix."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as e:  # noqa: BLE001 - the package or its frontend is missing
        st.warning(_("Drawing needs `streamlit-drawable-canvas` ({error}).").format(
            error=f"{type(e).__name__}: {e}"))
        return None
    st.write("")                                                      # room for the canvas toolbar
    c1, c2 = st.columns([3, 2])
    with c2:
        width = st.slider(_("Pen width"), 6, 40, 20, key=f"{key}_pen")
        st.caption(_("Draw a digit or a piece of clothing, big, in the middle. The canvas is black "
                     "with a white pen, as the datasets are. The toolbar above it has undo and reset."))
    with c1:
        res = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                        height=280, width=280, drawing_mode="freedraw", return_image_data=True,
                        key=f"{key}_canvas")
    img = getattr(res, "image_data", None) if res is not None else None
    if img is None or np.asarray(img)[..., :3].max() < 10:
        st.info(_("Draw something on the canvas."))
        return None
    a = np.asarray(img)
    rgb = a[..., :3] if a.shape[-1] == 4 else a                       # black background, opaque
    return Raw(source=_("drawing"), rgb=np.ascontiguousarray(rgb.astype(np.uint8)), name="drawing")


def test_image_input(t: Target):
    """(ImageInput, index) of the chosen test image, or None when the dataset is absent."""
    from karp_models.ui.selection import test_image

    if t.dataset == "imagenet":
        st.info(_("ImageNet's images are not shipped with karp: upload a photo, use the camera or "
                  "pick a sample photo."))
        return None
    try:
        ds = loaders.dataset(t.dataset)
    except Exception as e:  # noqa: BLE001 - data.load explains what is missing
        st.error(_("The dataset {name} is not here: {error}").format(name=repr(t.dataset), error=e))
        return None
    n = len(ds.test_y)
    c1, c2 = st.columns([3, 1])
    if c2.button(_("Random"), icon=":material/casino:", key="predict_random"):
        st.session_state["predict_test_index"] = int(np.random.default_rng().integers(n))
    what = (_("One of your validation images (0 to {last:,})") if t.own_classes   # never trained on
            else _("Test image (0 to {last:,})")).format(last=n - 1)
    idx = c1.number_input(what, 0, n - 1, key="predict_test_index", bind="query-params")
    return test_image(ds, int(idx))


def _upload_changed() -> None:
    """The person removed the file (its x): forget the kept upload too, here and on the server."""
    if st.session_state.get("predict_upload") is None:
        _forget_upload()


def _forget_upload() -> None:
    st.session_state.pop(UPLOADED, None)
    identity.forget_upload()


def _keep_upload(raw: Raw) -> None:
    """Keep a new upload on the server for this browser (a refreshed tab shows it again)."""
    if st.session_state.get("predict_upload_kept") != (digest := hash(raw.data)):
        st.session_state["predict_upload_kept"] = digest
        if why := identity.keep_upload(raw.name, raw.data):
            st.session_state["predict_upload_problem"] = why


def _restored_upload() -> Raw | None:
    """This browser's last upload kept on the server (after a refresh), once a session."""
    if st.session_state.get("predict_upload_restored"):
        return None
    st.session_state["predict_upload_restored"] = True
    if (kept := identity.kept_upload()) is None:
        return None
    st.session_state["predict_upload_kept"] = hash(kept[1])
    return Raw(source=f"upload: {kept[0]}", data=kept[1], name=kept[0])


def raw_from_source(source: str, t: Target):
    """The widgets of one input source; returns a Raw, an ImageInput (test set) or None."""
    if source == SOURCES[0]:
        common = [f for f in ("PNG", "JPEG", "WEBP", "AVIF", "TIFF", "BMP", "GIF") if f in pp.READABLE.values()]
        others = len(set(pp.READABLE.values())) - len(common)
        f = st.file_uploader(_("An image file: {formats} and {n} other formats; up to {mp:.0f} megapixels, "
                               "any colour mode or bit depth").format(formats=", ".join(common), n=others,
                                                                       mp=pp.MAX_PIXELS / 1e6),
                             type=UPLOAD_TYPES, key="predict_upload", on_change=_upload_changed)
        if f:
            st.session_state[UPLOADED] = Raw(source=_("upload: {file}").format(file=f.name), data=f.getvalue(),
                                             name=f.name)
            _keep_upload(st.session_state[UPLOADED])
        elif UPLOADED not in st.session_state and (back := _restored_upload()) is not None:
            st.session_state[UPLOADED] = back   # a refreshed or reopened tab: the last upload
        if "predict_upload_problem" in st.session_state:
            st.caption(_("Kept in this tab only, not on the server: {why}").format(
                why=st.session_state.pop("predict_upload_problem")))
        kept = st.session_state.get(UPLOADED)
        if kept is not None and not f:   # the uploader empties when the page is left; the photo stays
            c1, c2 = st.columns([4, 1], vertical_alignment="center")
            c1.caption(_("Showing **{file}**, uploaded earlier. Upload another file to replace it.").format(
                file=kept.name))
            if c2.button(_("Forget it"), key="predict_forget_upload", width="stretch"):
                _forget_upload()
                st.rerun()
        return kept
    if source == SOURCES[1]:
        return canvas_input()
    if source == SOURCES[2]:
        f = st.camera_input(_("Take a photo of a shoe, a shirt, a bag, or a digit on paper"),
                            key="predict_camera")
        return Raw(source=_("camera photo"), data=f.getvalue(), name="camera.jpg") if f else None
    if source == SOURCES[3]:
        return test_image_input(t)
    photos = loaders.sample_photos()
    if not photos:
        st.info(_("No sample photos here (they come with scikit-image)."))
        return None
    name = st.selectbox(_("Sample photo (from scikit-image)"), list(photos), format_func=_, key="predict_photo",
                        bind="query-params")
    return Raw(source=_("sample photo: {name}").format(name=_(name)), rgb=np.asarray(photos[name]), name=name)


# ---------------------------------------------------------------------------- the preprocessing strip


@dataclass(frozen=True)
class Taken:
    """The image the page shows: as Explain gets it, the model's input (C, H, W) in [0, 1], and,
    for an image of a person's own, its decoding and preprocessing steps."""

    inp: ImageInput
    x: np.ndarray
    decoded: pp.Decoded | None = None
    pipe: pp.Pipeline | None = None


def take_input(got, t: Target) -> Taken | None:
    """`got` from raw_from_source as the model's input: a test image as it is, anything else
    through the preprocessing pipeline; passed on to Explain unless blank. None: nothing to show
    (the page has said why)."""
    if isinstance(got, ImageInput):
        set_image(got)
        return Taken(got, got.x[0].numpy())
    result = handle_raw(got, t)
    if result is None:
        return None
    decoded, pipe = result
    inp = ImageInput.from_array(pipe.x, dataset=t.dataset, source=got.source, original=pipe.steps[0].image)
    if pipe.blank:                                  # a blank image is not passed on to Explain
        set_blank(inp.source)
    else:
        set_image(inp)
    return Taken(inp, pipe.x, decoded, pipe)


def show_pipeline(decoded: pp.Decoded | None, pipe: pp.Pipeline) -> None:
    """Every preprocessing step side by side, with what was done."""
    steps = pipe.steps
    cols = st.columns(len(steps))
    for i, (c, s) in enumerate(zip(cols, steps)):
        with c:
            st.markdown(f"**{i + 1}. {s.name}**")
            st.image(display(s.image, side=style.px(200 if i == 0 else 150)))
            if s.note:
                st.caption(s.note)
    for n in pipe.notes:
        st.warning(n)
    if decoded is not None:
        st.caption(_("File: {format}, {w:,} x {h:,} pixels, colour mode {mode}.").format(
            format=decoded.format, w=decoded.size[0], h=decoded.size[1], mode=decoded.mode))


def no_prediction(pipe: pp.Pipeline) -> None:
    """Instead of a prediction for an image with nothing left to see: why, and what to do."""
    st.warning(_("**No prediction for this image.** After preprocessing nothing is left for the "
                 "model to see (the note above says why). A network always names one of its "
                 "classes, even for an empty picture, often with a high probability: here that "
                 "would be a guess about nothing. Try an image whose object stands out from its "
                 "background."), icon=":material/hide_image:")
