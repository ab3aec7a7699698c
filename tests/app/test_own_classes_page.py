"""AppTest of 'Your own classes': classes made by upload (a bad file refused in Predict's words),
the three ways trained as three jobs on one chart, a run saved and opened in Predict (the
backbone's recipe), Explain and Evaluate (the validation images); a torchvision backbone whose
weights the test writes into the torch hub cache (no network), and the download's offline
message when they are not there."""
from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from karp_models import imagenet
from karp_models import preprocess as pp
from karp_models.data import own as data_own
from karp_models.models import finetune as ftm
from karp_models.train import finetune as ft
from karp_models.train.checkpoints import load_checkpoint
from karp_models.train.jobs import get_manager
from karp_models.ui import finetune as ui_ft
from karp_models.ui.selection import KEY as IMAGE_KEY
from tests.app.test_pages import open_page

SHAPES = ("circle", "square", "triangle")


def shape_png(shape: str, i: int) -> bytes:
    """A dark shape on a light background, its size and place varying with i."""
    rng = np.random.default_rng(100 * SHAPES.index(shape) + i)
    a = np.full((80, 80, 3), int(rng.integers(215, 245)), np.uint8)
    r, (cy, cx) = int(rng.integers(12, 22)), rng.integers(24, 56, 2)
    yy, xx = np.mgrid[:80, :80]
    if shape == "circle":
        inside = np.hypot(yy - cy, xx - cx) < r
    elif shape == "square":
        inside = (abs(yy - cy) < r) & (abs(xx - cx) < r)
    else:
        inside = (yy > cy - r) & (yy < cy + r) & (abs(xx - cx) < (yy - cy + r) / 2)
    a[inside] = rng.integers(10, 90, 3)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)              # get_dir() reads TORCH_HOME again
    ui_ft._backbones.clear()                                        # which weights are here: this test's
    at = open_page("own_classes.py")
    yield at
    for j in get_manager().jobs(at.session_state["train_session_id"]):
        get_manager().stop(j.job_id, wait=True)
    ui_ft._backbones.clear()


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def make_classes(at, name: str, per_class: int = 8, junk: bool = False):
    """Three classes named after the shapes, each filled by one upload of several files."""
    at.button(key="own_add_class").click().run()
    for i, s in enumerate(SHAPES):
        ok(at.text_input(key=f"own_name_{i}").set_value(s).run())
    for i, s in enumerate(SHAPES):
        files = [(f"{s}{j}.png", shape_png(s, j), "image/png") for j in range(per_class)]
        if junk and i == 0:
            files.append(("notes.txt", b"a list of shapes", "text/plain"))
        up = next(u for u in at.get("file_uploader") if (u.key or "").startswith(f"own_upload_{i}_"))
        ok(up.set_value(files).run())
    ok(at.text_input(key="own_set_name").set_value(name).run())
    ok(at.slider(key="own_val").set_value(25).run())
    return at


def chart(at, key: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == key)


def finish(at) -> list:
    """Wait for this session's runs, then redraw; their statuses."""
    mgr = get_manager()
    runs = mgr.jobs(at.session_state["train_session_id"])
    for r in runs:
        st = mgr.wait(r.job_id, timeout=180)
        assert st.state == "done", st.error
    ok(at.run())
    return mgr.jobs(at.session_state["train_session_id"])


def save(at, job_id: str, name: str) -> Path:
    at.text_input(key=f"own_save_name_{job_id}").set_value(name)          # in a form: sent with its button
    next(b for b in at.button if b.label == "Save run" and job_id in str(b.proto.form_id)).click().run()
    ok(at)
    return Path(at.session_state["karp_model_image"])


def test_the_page_says_what_is_missing_before_anything_else(app):
    at = ok(app)
    assert at.title[0].value == "Your own classes"
    assert [at.text_input(key=f"own_name_{i}").value for i in range(2)] == ["Class 1", "Class 2"]
    missing = [i.value for i in at.info]
    assert sum("needs at least 2" in m for m in missing) == 2
    assert not [s for s in at.selectbox if s.key == "own_backbone"]       # nothing to fine-tune yet


def test_three_classes_three_ways_saved_and_opened_everywhere(app, tmp_path):
    at = make_classes(app, "shapes-app", junk=True)
    refused = [e.value for e in at.error]
    assert refused == ["notes.txt: " + "**This image cannot be used.** " + str(_decode_error(b"a list of shapes"))]
    counts = at.dataframe[0].value
    assert list(counts["class"]) == list(SHAPES) and list(counts["for validation"]) == [2, 2, 2]
    assert at.selectbox(key="own_backbone").value.endswith("fast-fashion-mnist.safetensors")
    blocks = chart(at, "own_blocks")["data"][0]
    assert blocks["y"][-1] == "classifier.head" and blocks["marker"]["color"][0] == "#9ca3af"   # head only: frozen

    ok(at.number_input(key="own_steps_karp").set_value(10).run())
    ok(at.button(key="own_train_all").click().run())
    runs = finish(at)
    assert [r.spec.preset for r in runs] == ["head", "whole", "scratch"]
    assert [r.label for r in runs] == ["Head only", "Whole network", "From scratch"]
    fig = chart(at, "own_modes_chart")
    assert [t["name"] for t in fig["data"]] == ["Head only", "Whole network", "From scratch"]
    assert all(t["x"] == [2, 4, 6, 8, 10] for t in fig["data"])
    assert [t["y"][-1] for t in fig["data"]] == [100 * r.records[-1].val_accuracy for r in runs]
    assert fig["layout"]["shapes"][0]["y0"] == pytest.approx(100 / 3)             # chance

    path = save(at, runs[1].job_id, "shapes whole")
    assert path == tmp_path / "runs" / "shapes-whole.safetensors" and path.is_file()
    assert (tmp_path / "runs" / "datasets" / "shapes-app.safetensors").is_file()
    assert any("Saved as **shapes-whole**" in s.value for s in at.success)
    links = {p.proto.label: p.proto.page for p in at.get("page_link")}
    assert {"Predict", "Explain", "Evaluate"} <= set(links)
    ck = load_checkpoint(path)
    assert ck.meta["classes"] == list(SHAPES) and ck.model.config.mode == "whole"

    at.switch_page("pages/predict.py").run()                      # the saved model, the validation images
    ok(at)
    assert at.selectbox(key="predict_model").value.label == "shapes-whole"
    assert at.number_input(key="predict_test_index").label == "One of your validation images (0 to 5)"
    heading = next(m.value for m in at.markdown if m.value.startswith("### ") and "%" in m.value)
    assert heading[4:].split(":")[0] in SHAPES
    at.radio(key="predict_source").set_value("Upload").run()
    ok(at.get("file_uploader")[0].upload("t.png", shape_png("triangle", 99), "image/png").run())
    assert any("(fashion recipe" in e.label for e in at.expander)  # the backbone's recipe (Fashion-MNIST's)
    inp = at.session_state[IMAGE_KEY]
    assert inp.dataset == "shapes-app" and tuple(inp.x.shape) == (1, 1, 28, 28)
    want = data_own.to_input(shape_png("triangle", 99), ft.karp_backbone(
        Path(ck.model.config.weights)).input).astype(np.float32) / 255
    np.testing.assert_allclose(inp.x[0].numpy(), want, atol=0.5 / 255)   # as the training images were made
    assert any("knows only your 3 classes" in i.value for i in at.info)

    at.switch_page("pages/explain.py").run()                      # Predict's image, every method
    ok(at)
    assert any("upload: t.png" in m.value and "predicted" in m.value for m in at.markdown)
    assert len(at.multiselect(key="explain_methods_finetune").value) >= 8
    at.switch_page("pages/evaluate.py").run()
    ok(at)
    assert at.metric[1].label == "Mistakes of 6"                   # the validation images
    ok(at.segmented_control(key="evaluate_view").set_value("Projector").run())
    assert at.segmented_control(key="evaluate_proj_when").value == "after fine-tuning"
    knn = next(m.value for m in at.markdown if "How well the classes separate" in m.value)
    assert "nearest neighbour)" in knn and "before** fine-tuning" in knn   # 2 images a class: 1-NN
    after = chart(at, "evaluate_proj_chart_PCA_6_False")
    ok(at.segmented_control(key="evaluate_proj_when").set_value("before: the pretrained backbone").run())
    before = chart(at, "evaluate_proj_chart_PCA_6_True")            # the backbone's own features
    assert [t["name"] for t in after["data"]] == [t["name"] for t in before["data"]]
    assert [t["x"] for t in after["data"]] != [t["x"] for t in before["data"]]     # other coordinates

    at.switch_page("pages/own_classes.py").run()                  # back: nothing was lost on the way
    ok(at)
    assert [at.text_input(key=f"own_name_{i}").value for i in range(3)] == list(SHAPES)
    assert sum(m.value == "**8 images**" for m in at.markdown) == 3
    assert at.text_input(key="own_set_name").value == "shapes-app" and at.slider(key="own_val").value == 25
    assert len(chart(at, "own_modes_chart")["data"]) == 3
    assert any("Saved as **shapes-whole**" in s.value for s in at.success)


def _decode_error(data: bytes) -> pp.ImageError:
    try:
        pp.decode(data, "notes.txt")
    except pp.ImageError as e:
        return e
    raise AssertionError("decoded")


def test_a_torchvision_backbone_with_weights_in_the_hub_cache(app, tmp_path, monkeypatch):
    """The architecture is a small one of torchvision's ResNet class (as tests/train/test_finetune
    does); the file, its place in the hub cache and every loading step are the real ones."""
    tiny = lambda arch: tvm.ResNet(tvm.resnet.BasicBlock, [1, 1, 1, 1])   # noqa: E731
    monkeypatch.setattr(ftm, "torchvision_net", tiny)
    torch.manual_seed(0)
    f = imagenet.cached_file("resnet18")
    f.parent.mkdir(parents=True)
    torch.save(tiny("resnet18").state_dict(), f)
    ui_ft._backbones.clear()
    at = make_classes(app, "shapes-photo", per_class=4)
    ok(at.selectbox(key="own_backbone").set_value("torchvision:resnet18").run())
    assert any("224×224 colour pictures" in c.value and "shorter side to 256" in c.value for c in at.caption)
    assert chart(at, "own_blocks")["data"][0]["y"][:3] == ["features.conv1", "features.bn1", "features.layer1"]
    ok(at.number_input(key="own_steps_torchvision").set_value(2).run())
    ok(at.button(key="own_train_one").click().run())             # head only, the default
    (run,) = finish(at)
    path = save(at, run.job_id, "shapes-resnet")
    ck = load_checkpoint(path)
    assert (ck.model.config.source, ck.model.config.image_size) == ("torchvision", 224)

    at.switch_page("pages/predict.py").run()
    ok(at)
    at.radio(key="predict_source").set_value("Upload").run()
    photo = shape_png("circle", 7)
    ok(at.get("file_uploader")[0].upload("c.png", photo, "image/png").run())
    md = " ".join(m.value for m in at.markdown)
    assert any("(imagenet recipe" in e.label for e in at.expander)
    assert "shorter side to 256" in md and "centre crop 224 x 224" in md
    x = at.session_state[IMAGE_KEY].x[0].numpy()                  # Predict's reading of the photo
    trained = data_own.to_input(photo, ft.torchvision_backbone("resnet18").input).astype(np.float32) / 255
    assert x.shape == trained.shape == (3, 224, 224)
    assert np.abs(x - trained).mean() < 0.02                       # as torchvision's transforms() made it


def test_without_the_weights_offline_the_page_says_what_to_do(app, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    at = make_classes(app, "shapes-offline", per_class=3)
    ok(at.selectbox(key="own_backbone").set_value("torchvision:mobilenet_v3_large").run())
    assert any("needs its ImageNet weights (21 MB)" in i.value for i in at.info)
    assert not [r for r in at.radio if r.key == "own_mode"]       # nothing to train from yet
    ok(at.button(key="own_download_mobilenet_v3_large").click().run())
    warning = " ".join(w.value for w in at.warning)
    assert "cannot reach download.pytorch.org" in warning and str(imagenet.cached_file("mobilenet_v3_large").parent) in warning
    assert any(imagenet.cached_file("mobilenet_v3_large").name in c.value for c in at.code)
