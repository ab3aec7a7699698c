"""AppTest of Generate images on the four shipped generators: every control of every view runs
without an exception and shows what it says (the grid, the two paths, the arithmetic, the latent
map's decoded point, the discriminator's verdict on a test image, an upload and a broken file,
the VAE's reconstruction); a saved run's grids play as a time-lapse; the page's seed-0 grid is
the very grid the Train page watched."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.app.test_pages import open_page

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("dcgan", "cdcgan", "vae", "cvae")
pytestmark = pytest.mark.skipif(
    not all((ROOT / "weights" / f"{n}-fashion-mnist.safetensors").exists() for n in SHIPPED),
    reason="shipped generators missing")


def ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def titles(at) -> list[str]:
    return [json.dumps(c["layout"].get("title", "")) for c in charts(at)]


def view(at, kind: str, name: str) -> None:
    at.segmented_control(key=f"generate_images_view_{kind}").set_value(name).run(timeout=180)
    ok(at)


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def page(monkeypatch, tmp_path):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))

    def open_with(model: str):
        at = open_page("generate_images.py", timeout=180)
        at.selectbox(key="generate_images_model").set_value(
            next(o for o in at.selectbox(key="generate_images_model").options
                 if o == f"{model}-fashion-mnist")).run(timeout=180)
        ok(at)
        return at
    return open_with


@pytest.mark.parametrize("model", SHIPPED)
def test_the_grid_and_its_controls(page, model):
    at = page(model)
    assert at.title[0].value == "Generate images"
    assert any("Frechet distance" in c.value for c in at.caption)      # the short quality line
    first = charts(at)[0]["data"][0]["source"]                         # the grid's PNG
    at.number_input(key="generate_images_seed").set_value(7).run()
    ok(at)
    assert charts(at)[0]["data"][0]["source"] != first                 # another seed, other samples
    at.number_input(key="generate_images_seed").set_value(0).run()
    assert charts(at)[0]["data"][0]["source"] == first                 # and back: the same grid
    at.button(key="generate_images_new_seed").click().run()
    ok(at)
    at.select_slider(key="generate_images_spread").set_value(0.5).run()
    ok(at)
    if model.startswith("c"):                                          # conditional: a row per class
        rows = [a["text"] for a in charts(at)[0]["layout"]["annotations"] if a.get("xanchor") == "right"]
        assert rows[:2] == ["T-shirt/top", "Trouser"] and len(rows) == 10
        at.selectbox(key="generate_images_class").set_value(7).run()
        ok(at)
    at.select_slider(key="generate_images_n").set_value(16).run()
    ok(at)
    numbers = [a["text"] for a in charts(at)[0]["layout"]["annotations"] if a.get("xanchor") == "left"]
    assert numbers == [str(i) for i in range(16 if model in ("dcgan", "vae") else len(numbers))]


@pytest.mark.parametrize("model", SHIPPED)
def test_interpolation_and_arithmetic(page, model):
    kind = "gan" if "gan" in model else "vae"
    at = page(model)
    view(at, kind, "Interpolate")
    t = titles(at)
    assert any("Spherical (slerp)" in s for s in t) and any("Straight line (lerp)" in s for s in t)
    norms = next(c for c in charts(at) if "How long is z" in json.dumps(c["layout"].get("title", "")))
    slerp, lerp = (np.asarray(tr["y"], float) for tr in norms["data"][:2])
    assert lerp[len(lerp) // 2] < 0.85 * slerp[len(slerp) // 2]         # the line's dip, on the page
    at.slider(key="generate_images_isteps").set_value(5).run()
    ok(at)
    at.number_input(key="generate_images_ib").set_value(0).run()         # A = B
    assert any("two different samples" in i.value for i in at.info)

    view(at, kind, "Latent arithmetic")
    assert any("= a − b + c" in json.dumps(c["layout"].get("annotations", []), ensure_ascii=False) for c in charts(at))
    at.multiselect(key="generate_images_ar_a").set_value([3, 4, 5]).run()
    ok(at)
    at.multiselect(key="generate_images_ar_b").set_value([]).run()
    assert any("at least one sample" in i.value for i in at.info)


@pytest.mark.parametrize("model", ("vae", "cvae"))
def test_the_latent_map_decodes_the_chosen_point(page, model):
    at = page(model)
    view(at, "vae", "Latent map")
    fig = next(c for c in charts(at) if len(c["data"]) >= 10)           # the grid and a trace per class
    assert {t.get("name") for t in fig["data"]} >= {"Trouser", "Sneaker", "Bag"}
    assert any("principal directions" in c.value for c in at.caption)   # a 16-d latent, projected
    before = at.image[-1].proto.imgs[0].url
    at.slider(key="generate_images_map_x").set_value(at.slider(key="generate_images_map_x").max).run()
    ok(at)
    assert "decoded at" in at.image[-1].proto.imgs[0].caption and at.image[-1].proto.imgs[0].url != before
    if model == "cvae":
        at.selectbox(key="generate_images_map_class").set_value(1).run()
        ok(at)


def test_the_map_click_reads_the_selected_point():
    from karp_models.ui.generate_images import point_xy

    assert point_xy([]) is None
    assert point_xy([{"x": 1.234, "y": -0.567, "curve_number": 0}]) == (1.23, -0.57)


@pytest.mark.parametrize("model", ("dcgan", "cdcgan"))
def test_the_discriminators_verdict(page, model, tmp_path):
    at = page(model)
    view(at, "gan", "The discriminator's verdict")
    bars = next(c for c in charts(at) if c["data"][0]["type"] == "bar")["data"][0]
    if model == "dcgan":
        assert bars["y"] == ["your image", "real test images (mean)", "generated samples (mean)"]
    else:                                                               # asked once per class
        assert len(bars["y"]) == 10 and bars["y"][0] == "a real T-shirt/top?"
    assert all(0 <= v <= 1 for v in bars["x"])
    at.radio(key="generate_images_source").set_value("A sample from the grid").run()
    ok(at)
    at.radio(key="generate_images_source").set_value("Upload").run()
    assert any("Upload a picture" in i.value for i in at.info)
    shoe = np.zeros((200, 300, 3), np.uint8) + 240                      # a dark shoe on white paper
    shoe[120:170, 40:260] = 30
    shoe[70:130, 170:260] = 30
    at.file_uploader(key="generate_images_upload").set_value(("shoe.png", png(shoe), "image/png")).run()
    ok(at)
    assert any("upload: shoe.png" in i.proto.imgs[0].caption for i in at.image)
    at.file_uploader(key="generate_images_upload").set_value(("broken.png", b"not a picture", "image/png")).run()
    ok(at)
    assert any("cannot be used" in e.value for e in at.error)
    at.radio(key="generate_images_source").set_value("Draw").run()      # the canvas: no drawing yet
    ok(at)


@pytest.mark.parametrize("model", ("vae", "cvae"))
def test_the_vaes_reconstruction_of_an_image(page, model):
    at = page(model)
    view(at, "vae", "Your image")
    assert any(m.label.startswith("Loss of this image") for m in at.metric)
    loss = float(at.metric[0].value)
    assert 100 < loss < 1000                                            # nats per image, like its test loss
    assert any("reconstructed" in i.proto.imgs[0].caption for i in at.image)


@pytest.mark.parametrize("model", SHIPPED)
def test_no_time_lapse_for_shipped_weights_says_why(page, model):
    at = page(model)
    view(at, "gan" if "gan" in model else "vae", "Time-lapse of training")
    assert any("No time-lapse" in i.value and "command line" in i.value for i in at.info)


def test_a_saved_runs_grids_play_as_a_time_lapse(page, tmp_path):
    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import TrainConfig

    mgr = JobManager(runs_dir=tmp_path / "runs", set_threads=False, grace_s=3600)  # no heartbeat here: a loaded machine must not reap it
    cfg = TrainConfig(steps=60, batch_size=32, lr=2e-4, schedule="constant", warmup=0.0,
                      grad_clip=0.0, weight_decay=0.0, augment=False, eval_every=0, eval_batches=2)
    jid = mgr.submit("s", RunSpec(model="dcgan", dataset="fashion-mnist", preset="tiny", config=cfg))
    assert mgr.wait(jid, timeout=300).state == "done"
    steps = [s for s, _ in mgr.status(jid).snapshots]
    # every 25 steps: at the first record (every 10) at or past each multiple of 25, and the last
    assert steps == [0, 30, 50, 60]
    mgr.save(jid, "tiny-gan")
    at = page("dcgan")
    stem = next(o for o in at.selectbox(key="generate_images_model").options if o == "tiny-gan")
    at.selectbox(key="generate_images_model").set_value(stem).run(timeout=180)
    ok(at)
    view(at, "gan", "Time-lapse of training")
    fig = next(c for c in charts(at) if c.get("frames"))
    assert [f["name"] for f in fig["frames"]] == [str(s) for s in steps]
    assert [s["label"] for s in fig["layout"]["sliders"][0]["steps"]] == [f"{s:,}" for s in steps]
    assert fig["frames"][0]["data"][0]["source"] != fig["frames"][-1]["data"][0]["source"]


def test_the_pages_seed_0_grid_is_the_train_pages_preview():
    """The fixed-z grid: the page's seed 0 (64 samples, every class a row) draws the very images
    of the task's live preview, and the preview draws them again whatever torch's global RNG did
    in between."""
    from karp_models import data
    from karp_models.train import previews
    from karp_models.train.checkpoints import load_checkpoint
    from karp_models.train.tasks import make_task
    from karp_models.ui.generate_images import Generator, make_grid

    ds = data.load("fashion-mnist")
    for name in ("dcgan", "cdcgan"):
        path = ROOT / "weights" / f"{name}-fashion-mnist.safetensors"
        ck = load_checkpoint(path)
        task = make_task(ds, ck.model, kind="gan")
        a = previews.make(task, ck.model, torch.device("cpu"), 0).images
        torch.manual_seed(123)
        torch.rand(1000)
        b = previews.make(task, ck.model, torch.device("cpu"), 5).images
        cfg = ck.model.config
        g = Generator(model=ck.model, path=str(path), mtime=path.stat().st_mtime, name=name, kind="gan",
                      conditional=cfg.conditional, latent=cfg.latent, classes=tuple(ds.classes),
                      dataset="fashion-mnist", channels=1, size=28, meta=ck.meta, title=path.stem,
                      origin="shipped")
        page = make_grid(g, seed=0, n=64, cls=None, spread=1.0)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, page.images)
        assert a.shape == ((80 if cfg.conditional else 64), 1, 28, 28)
        assert make_grid(g, seed=1, n=64, cls=None, spread=1.0).images.tolist() != a.tolist()
