"""AppTest of the Train page: start a tiny run, rerun until its metrics and curve appear, stop it,
and save it under a hostile name (it lands inside the runs folder)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from karp_models.train.jobs import get_manager

ROOT = Path(__file__).resolve().parents[2]


def loss_points(at: AppTest) -> int:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    for fig in charts:
        if "Loss" in json.dumps(fig["layout"].get("title", "")):
            return sum(len(t.get("x") or []) for t in fig["data"])
    return 0


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()      # through the navigation: its page links need it
    assert not at.exception, [e.value for e in at.exception]
    yield at
    for j in get_manager().jobs(at.session_state["train_session_id"]):
        get_manager().stop(j.job_id, wait=True)


def test_start_watch_stop_and_save_a_run(app, tmp_path):
    at = app
    assert at.title[0].value == "Train"
    about = [m.value for m in at.markdown if "measured here" in m.value]   # the time, before Start
    assert about and "About" in about[0] and "300 steps" in about[0] and "parameter" in about[0]
    at.selectbox(key="train_dataset").set_value("digits")
    at.number_input(key="train_steps").set_value(50_000)  # long: the test stops it
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]

    t0 = time.monotonic()
    while not (loss_points(at) >= 2 and at.metric[0].value != "–"):
        assert time.monotonic() - t0 < 30, "no metrics after 30 s"
        time.sleep(0.3)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert float(at.metric[0].value) > 0  # training loss
    assert "step" in at.get("progress")[0].proto.text

    at.button(key="train_stop").click().run()
    sid = at.session_state["train_session_id"]
    (job,) = get_manager().jobs(sid)
    get_manager().wait(job.job_id, timeout=30)
    at.run()
    assert get_manager().status(job.job_id).state == "stopped"
    assert at.button(key="train_resume")  # a stopped run can be resumed

    at.text_input(key="train_save_name").set_value("../../class demo")
    next(b for b in at.button if "Save run" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert (tmp_path / "runs" / "class-demo.safetensors").is_file()
    assert any("class-demo" in s.value for s in at.success)
    links = {(p.proto.page, p.proto.label) for p in at.get("page_link")}   # open it elsewhere
    assert {"Open in Predict", "Open in Explain", "Open in Evaluate"} <= {label for _, label in links}

    at.button(key="train_continue_class-demo").click().run()  # train the saved run further
    assert not at.exception, [e.value for e in at.exception]
    jobs = get_manager().jobs(sid)
    assert len(jobs) == 2 and jobs[1].spec.resume_from.endswith("class-demo.safetensors")
    assert at.selectbox(key="train_view").value == jobs[1].job_id  # the page shows the new run


def test_a_failing_run_shows_its_error_within_two_seconds(app, monkeypatch):
    at = app

    def broken(spec):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(get_manager(), "builder", broken)
    at.button(key="train_start").click().run()
    t0 = time.monotonic()
    while not any("simulated" in e.value for e in at.error):
        assert time.monotonic() - t0 < 2.0, "the error is not on the page after 2 s"
        at.run()
    assert not at.exception, [e.value for e in at.exception]  # shown as a message, page fine
    assert "failed" in at.get("progress")[0].proto.text.lower()


def test_long_runs_stay_light_on_the_charts():
    from karp_models.train.jobs import JobStatus
    from karp_models.train.runs import RunSpec
    from karp_models.train.trainer import Record, TrainConfig
    from karp_models.ui import training as ui

    recs = tuple(Record(step=10 * i, epoch=i / 100, train_loss=1 / (1 + i), lr=1e-3,
                        throughput=1e3, unit="samples", elapsed_s=float(i),
                        val_loss=0.5 if i % 10 == 0 else None,
                        val_accuracy=0.8 if i % 10 == 0 else None) for i in range(20_001))
    run = JobStatus(job_id="j", session_id="s", label="long", state="done", records=recs,
                    spec=RunSpec(model="fast", dataset="digits", config=TrainConfig(steps=1)),
                    step=200_000, total_steps=200_000, progress=1.0, eta_s=None, throughput=1e3,
                    unit="samples", queue_position=None, stop_requested=False, error=None,
                    error_detail=None, preview=None, params=1,
                    device="cpu", created=0.0, saved=())
    for metric in ("loss", "accuracy", "lr"):
        fig = ui.curves_figure([run], metric)
        for trace in fig.data:
            assert 2 <= len(trace.x) <= ui.MAX_POINTS
            assert trace.x[0] == 0 and trace.x[-1] == 200_000  # the ends are kept


def test_runs_survive_a_page_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("KARP_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_dataset").set_value("digits")
    at.number_input(key="train_steps").set_value(50_000)
    at.button(key="train_start").click().run()
    sid = at.session_state["train_session_id"]
    (job,) = get_manager().jobs(sid)
    try:
        at.switch_page("pages/datasets.py").run()
        assert not at.exception, [e.value for e in at.exception]
        at.switch_page("pages/train.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.session_state["train_session_id"] == sid
        assert at.selectbox(key="train_view").value == job.job_id
        assert get_manager().status(job.job_id).state == "running"
    finally:
        get_manager().stop(job.job_id, wait=True)


def test_a_gan_trains_live_with_its_grid_diversity_and_curves(app, tmp_path):
    """A tiny DCGAN from the Train page through the same queue: the recipe's settings, the two
    losses and D's verdicts as curves, the grid of the fixed latents with its diversity, the
    Frechet distance at evaluations, and its grids saved with the run."""
    at = app
    at.radio(key="train_task").set_value("Generate images (GAN, VAE)").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train_model").value == "dcgan"
    assert at.select_slider(key="train_lr").value == 2e-4                 # DCGAN's recipe
    assert at.selectbox(key="train_schedule").value == "constant"
    assert at.selectbox(key="train_optimizer").disabled                  # two Adams of its own
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_steps").set_value(60).run()
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]

    def titles() -> list[str]:
        return [json.dumps(json.loads(c.proto.spec)["layout"].get("title", "")) for c in at.get("plotly_chart")]

    t0 = time.monotonic()
    while not any("Samples at step" in t for t in titles()):
        assert time.monotonic() - t0 < 120, "no sample grid after 120 s"
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    sid = at.session_state["train_session_id"]
    (job,) = get_manager().jobs(sid)
    while get_manager().status(job.job_id).active:   # the page's reruns keep the session alive
        assert time.monotonic() - t0 < 400, "the run did not finish in 400 s"
        time.sleep(2)
        at.run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    t = titles()
    for title in ("Generator and discriminator losses", "What the discriminator says",
                  "Frechet distance (lower is better)", "Samples at step 60"):
        assert any(title in s for s in t), (title, t)
    assert [m.label for m in at.metric] == ["Generator loss", "Discriminator loss", "D(x): real images",
                                            "D(G(z)): generated images"]
    assert all(float(m.value) > 0 for m in at.metric)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    fd = next(c for c in charts if "Frechet" in json.dumps(c["layout"].get("title", "")))
    assert sum(len(tr.get("x") or []) for tr in fd["data"]) >= 3        # every evaluation's distance
    diversity = next(c for c in charts if "Diversity of the samples" in json.dumps(c["layout"]))
    assert [tr["x"] for tr in diversity["data"]][0][-1] == 60            # the figure over the run
    assert any("Diversity" in c.value and "classes" in c.value for c in at.caption)

    at.text_input(key="train_save_name").set_value("tiny gan")
    next(b for b in at.button if "Save run" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    from karp_models.train.checkpoints import read_metadata
    meta = read_metadata(tmp_path / "runs" / "tiny-gan.safetensors")
    assert meta["sample_grids"]["steps"][-1] == 60 and meta["metrics"]["test_fd"] > 0
    links = {p.proto.label for p in at.get("page_link")}
    assert "Open in Generate images" in links


def test_a_tiny_captioner_trains_from_the_page_and_shows_sample_captions(app, tmp_path):
    """The captioning task through the same form and queue: its datasets and models, a run
    whose live preview is captions of test scenes, saved and opened on the captioning page."""
    at = app
    at.radio(key="train_task").set_value("Image captioning").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train_model").value == "caption-attention"
    assert set(at.selectbox(key="train_model").options) == {"Captioner without attention",
                                                            "Captioner with attention"}
    assert {"scenes", "scenes-zh"} <= set(at.selectbox(key="train_dataset").options)
    assert at.toggle(key="train_augment").disabled                   # nothing to augment in a sentence
    at.selectbox(key="train_preset").set_value("tiny")
    at.select_slider(key="train_batch").set_value(16)
    at.number_input(key="train_steps").set_value(40)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sid = at.session_state["train_session_id"]
    (job,) = get_manager().jobs(sid)
    assert job.spec.model == "caption-attention" and job.spec.dataset == "scenes"
    get_manager().wait(job.job_id, timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert get_manager().status(job.job_id).state == "done"
    shown = " ".join(h.proto.body for h in at.get("html"))
    assert "Captions of 6 test scenes at step 40" in shown and "reference: " in shown
    assert "state their scene exactly" in shown                      # judged by the grammar
    p = get_manager().status(job.job_id).preview
    for words in p.words:                                            # each caption is on the page
        assert all(w in shown for w in words)
    assert loss_points(at) >= 2

    at.text_input(key="train_save_name").set_value("tiny captioner")
    next(b for b in at.button if "Save run" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert (tmp_path / "runs" / "tiny-captioner.safetensors").is_file()
    links = {p.proto.label: p.proto.page for p in at.get("page_link")}
    assert "Open in Image captioning" in links
    assert at.session_state["karp_model_caption"].endswith("tiny-captioner.safetensors")


def test_augmentation_toggles_show_the_batch_and_adversarial_training_reaches_the_job(app):
    """Issue 22: each augmentation on and off (off: the trained row is the stored row), and the
    adversarial checkbox and epsilon reach the job's TrainConfig through the queue."""
    at = app

    def rows() -> tuple[str, str]:
        """The media URLs of the two rows (Streamlit names a picture by a hash of its bytes)."""
        img = next(i for i in at.image if [x.caption for x in i.proto.imgs] == ["as stored", "as trained"])
        return tuple(x.url for x in img.proto.imgs)

    assert any(t.key == "train_shift" for t in at.toggle) and not at.checkbox(key="train_adv").value
    first = rows()
    assert first[0] != first[1]                                # augmented: the lower row differs
    at.toggle(key="train_shift").set_value(False).run()
    at.toggle(key="train_flip").set_value(False).run()
    assert not at.exception, [e.value for e in at.exception]
    at.toggle(key="train_augment").set_value(False).run()
    off = rows()
    assert off[0] == off[1] == first[0]                         # no augmentation: the images as stored
    at.toggle(key="train_augment").set_value(True).run()
    assert rows() == off                                        # shifts and flips off: the same images
    at.toggle(key="train_shift").set_value(True).run()
    assert rows()[0] == off[0] and rows()[1] != off[1]          # shifts on: the lower row moves

    at.selectbox(key="train_dataset").set_value("digits").run()
    assert at.toggle(key="train_flip").disabled                # a mirrored digit is another digit
    at.checkbox(key="train_adv").check().run()
    at.select_slider(key="train_adv_eps").set_value(0.05)
    at.number_input(key="train_steps").set_value(20)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (job,) = get_manager().jobs(at.session_state["train_session_id"])
    c = job.spec.config
    assert (c.adv_eps, c.shift, c.augment) == (0.05, None, True) and "PGD ε 0.05" in job.label


def test_the_fast_small_preset_is_a_size_with_its_own_parameter_count_and_time(app):
    from karp_models import data
    from karp_models.models import build_for

    at = app
    assert any(o.startswith("fast-small: ") for o in at.selectbox(key="train_preset").options)
    at.selectbox(key="train_preset").set_value("fast-small").run()
    assert not at.exception, [e.value for e in at.exception]
    n = sum(p.numel() for p in build_for("fast", data.load("fashion-mnist"), preset="fast-small").parameters())
    about = [m.value for m in at.markdown if "measured here" in m.value]
    assert about and f"{n:,}-parameter model" in about[0]
