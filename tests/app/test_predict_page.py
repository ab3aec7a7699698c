"""AppTest: the Predict page with each input source, bad uploads (a message, never a traceback),
the shared image for Explain, and the ImageNet models' offline message."""
import io

import numpy as np
import pytest
from PIL import Image

from karp_models.ui.selection import KEY as IMAGE_KEY
from tests.app.test_pages import open_page


def _png(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, **kw)
    return buf.getvalue()


def _shirt() -> np.ndarray:
    a = np.full((240, 180, 3), 240, np.uint8)
    a[40:200, 60:120] = (30, 40, 90)
    a[40:80, 20:160] = (30, 40, 90)
    return a


@pytest.fixture(scope="module")
def at():
    return open_page("predict.py")


def _source(at, label: str):
    radio = at.radio(key="predict_source")
    radio.set_value(next(o for o in radio.options if label in o)).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_opens_with_a_test_image_predicted_then_offers_upload(at):
    assert at.title[0].value.endswith("Predict and look inside")
    assert "Test image" in at.radio(key="predict_source").value
    assert any("%" in m.value for m in at.markdown if m.value.startswith("###"))
    assert at.session_state[IMAGE_KEY].source.startswith("test image #")
    _source(at, "Upload")
    assert len(at.get("file_uploader")) == 1


def test_upload_photo_shows_pipeline_prediction_and_sets_the_shared_image(at):
    _source(at, "Upload")
    at.get("file_uploader")[0].upload("shirt.jpg", _png(_shirt(), "JPEG"), "image/jpeg").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    md = " ".join(m.value for m in at.markdown)
    assert "crop to the object" in md and "pad to 28 x 28" in md
    assert any("%" in m.value for m in at.markdown if m.value.startswith("###"))
    inp = at.session_state[IMAGE_KEY]
    assert inp.dataset == "fashion-mnist" and tuple(inp.x.shape) == (1, 1, 28, 28)
    assert inp.source == "upload: shirt.jpg" and inp.original is not None
    assert at.button(key="predict_explain")
    assert at.selectbox(key="predict_layer").options     # feature maps of every layer
    knows = [i.value for i in at.info if "This model knows only 10 classes" in i.value]
    assert knows and "T-shirt/top" in knows[0] and "ImageNet models" in knows[0]   # said on upload too


@pytest.mark.parametrize("name,data,words", [
    ("empty.png", b"", "empty"),
    ("notes.png", b"just some text, renamed\n" * 10, "not an image"),
    ("cut.jpg", _png(_shirt(), "JPEG")[:1500], "cut short"),
])
def test_bad_uploads_get_a_message_and_the_page_stays_usable(at, name, data, words):
    _source(at, "Upload")
    at.get("file_uploader")[0].upload(name, data, "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and words in at.error[0].value
    assert at.radio(key="predict_source")                 # the rest of the page is still there


def test_bomb_upload_is_refused(at):
    from tests.test_preprocess import _png_header_only

    _source(at, "Upload")
    at.get("file_uploader")[0].upload("huge.png", _png_header_only(30_000, 30_000), "image/png").run()
    assert not at.exception and at.error and "megapixels" in at.error[0].value


def test_test_image_and_sample_photo(at):
    _source(at, "Test image")
    at.number_input(key="predict_test_index").set_value(7).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[IMAGE_KEY].source == "test image #7"
    assert any("True class" in m.value for m in at.markdown)
    _source(at, "Sample photo")
    assert at.session_state[IMAGE_KEY].source.startswith("sample photo:")


def test_camera_photo(at):
    _source(at, "Camera")
    at.camera_input(key="predict_camera").set_value(("photo.jpg", _png(_shirt(), "JPEG"), "image/jpeg")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[IMAGE_KEY].source == "camera photo"


def test_activation_maximisation_defaults_show_a_rising_objective(at):
    from karp_models.introspect import features as feat
    from karp_models.train.checkpoints import load_checkpoint

    _source(at, "Test image")
    assert at.selectbox(key="predict_model").value.path.endswith("fast-fashion-mnist.safetensors")
    layer = at.selectbox(key="predict_am_layer")
    assert layer.value == layer.options[-1] == "features.stage3"          # the last feature layer
    model = load_checkpoint("weights/fast-fashion-mnist.safetensors", "cpu").model
    _, maps = feat.feature_maps(model, at.session_state[IMAGE_KEY].x)
    strongest = int(maps["features.stage3"].mean(axis=(1, 2)).argmax())
    assert at.number_input(key=f"predict_am_channel_features.stage3_{strongest}").value == strongest
    at.button(key="predict_am_run").click().run()                         # 128 steps, Fourier image
    assert not at.exception, [e.value for e in at.exception]
    assert not at.warning
    md = " ".join(m.value for m in at.markdown)
    assert "mean activation rose from" in md and "your image gives" in md
    assert "The model calls this image" in md


def test_activation_maximisation_with_the_old_penalties_says_why_it_fell(at):
    _source(at, "Test image")
    at.selectbox(key="predict_am_layer").set_value("features.stem").run()
    next(n for n in at.number_input if n.key.startswith("predict_am_channel_features.stem")).set_value(0)
    at.radio(key="predict_am_param").set_value("pixels").run()         # enables the blur box
    at.select_slider(key="predict_am_reg").set_value("medium")
    at.checkbox(key="predict_am_blur").check().run()
    at.slider(key="predict_am_steps").set_value(64)
    at.button(key="predict_am_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("did not rise" in w.value and "penalties" in w.value for w in at.warning)


def test_filter_evolution_explains_why_not_for_shipped_weights(at):
    assert any("not available for this model" in i.value for i in at.info)


def test_imagenet_offline_says_how_to_get_weights(tmp_path, monkeypatch):
    import torch

    from karp_models import imagenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(imagenet, "_reachable", lambda url, timeout=3.0: False)
    at = open_page("predict.py")
    at.radio(key="predict_kind").set_value(at.radio(key="predict_kind").options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("not on this computer yet" in i.value for i in at.info)
    at.button(key="predict_download_resnet18").click().run()   # offline: one sentence on what to do
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot reach download.pytorch.org" in w.value for w in at.warning)
    assert any("resnet18-f37072fd.pth" in c.value for c in at.code)
    _source(at, "Upload")
    at.get("file_uploader")[0].upload("shirt.png", _png(_shirt()), "image/png").run()
    assert not at.exception and not at.error                   # the pipeline still works
    assert at.session_state[IMAGE_KEY].dataset == "imagenet"


def test_draw_source_shows_the_canvas_without_error(at):
    _source(at, "Draw")   # AppTest cannot draw: the canvas renders and asks for a drawing
    assert any("Draw something" in i.value for i in at.info)


def test_imagenet_model_from_the_hub_cache_predicts_and_shows_layers(tmp_path, monkeypatch):
    import torch
    import torchvision.models as tvm

    from karp_models import imagenet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    f = imagenet.cached_file("resnet18")
    f.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(tvm.resnet18(weights=None).state_dict(), f)   # random weights, the real layout
    at = open_page("predict.py")
    at.radio(key="predict_kind").set_value(at.radio(key="predict_kind").options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any(b.key == "predict_download_resnet18" for b in at.button)   # it is here
    _source(at, "Sample photo")
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[IMAGE_KEY].x.shape == (1, 3, 224, 224)
    assert any(o.startswith("net.layer4: 512 channels of 7×7") for o in at.selectbox(key="predict_layer").options)
    assert any(m.value.startswith("###") and "%" in m.value for m in at.markdown)


def test_vit_model_predicts_and_says_it_has_no_feature_maps(at):
    box = at.selectbox(key="predict_model")
    vit = next(o for o in box.options if o.startswith("vit-fashion-mnist"))
    box.select(vit).run()
    _source(at, "Test image")
    assert not at.exception, [e.value for e in at.exception]
    assert any("no convolutional feature maps" in i.value for i in at.info)
    at.radio(key="predict_am_goal").set_value("a class").run()
    at.slider(key="predict_am_steps").set_value(16).run()
    at.button(key="predict_am_run").click().run()
    assert not at.exception, [e.value for e in at.exception]


# ---------------------------------------------------------------------------- odd uploads (issue 15)


def _t_shirt_16bit() -> bytes:
    """12-bit data in a 16-bit PNG (values 640..3920 of 65,535): a dark T-shirt on a light ground."""
    a = np.full((240, 180), 3920, np.uint16)
    a[40:200, 60:120] = 640
    a[40:80, 20:160] = 640
    return _png(a)


def test_a_16_bit_partial_range_upload_is_read_by_its_range_and_predicted(at):
    _source(at, "Upload")
    at.get("file_uploader")[0].upload("camera.png", _t_shirt_16bit(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning
    assert any("(640 black, 3,920 white)" in c.value for c in at.caption)   # said on the page
    assert any(m.value.startswith("###") and "%" in m.value for m in at.markdown)
    x = at.session_state[IMAGE_KEY].x
    assert at.session_state[IMAGE_KEY].source == "upload: camera.png" and float(x.max()) > 0.9


@pytest.mark.parametrize("name,data", [
    ("flat16.png", _png(np.full((60, 40), 3920, np.uint16))),            # one value, 16 bits
    ("white.png", _png(np.full((60, 40, 3), 255, np.uint8))),             # nothing on white
])
def test_a_blank_upload_gets_no_prediction_but_a_message(at, name, data):
    _source(at, "Upload")
    at.get("file_uploader")[0].upload(name, data, "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No prediction for this image" in w.value for w in at.warning)
    assert any("nothing for the model to see" in w.value for w in at.warning)
    assert not any(m.value.startswith("###") and "%" in m.value for m in at.markdown)
    assert IMAGE_KEY not in at.session_state                              # not passed to Explain:
    assert at.session_state["karp_image_blank"] == f"upload: {name}"     # Explain says why instead
    at.switch_page("pages/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"upload: {name}" in i.value and "blank" in i.value for i in at.info)
    at.switch_page("pages/predict.py").run()


def test_the_uploader_accepts_every_ending_the_decoder_reads(at):
    from karp_models import preprocess as pp

    _source(at, "Upload")
    accepted = {t.lstrip(".") for t in at.get("file_uploader")[0].proto.type}
    assert accepted == set(pp.READABLE) and {"jfif", "avif", "png", "tif"} <= accepted


@pytest.mark.parametrize("name,fmt", [("shirt.jfif", "JPEG"), ("shirt.avif", "AVIF")])
def test_jfif_and_avif_uploads_are_predicted(at, name, fmt):
    _source(at, "Upload")
    at.get("file_uploader")[0].upload(name, _png(_shirt(), fmt), f"image/{fmt.lower()}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    assert any(m.value.startswith("###") and "%" in m.value for m in at.markdown)
    assert at.session_state[IMAGE_KEY].source == f"upload: {name}"
