"""The GAN and VAE tasks through the one Trainer: the two-optimiser step, named scalars in the
records, the fixed-z grid, deterministic evaluation, the quality figures on generators whose
answer is known (real images replayed, one image repeated, noise), and resuming through a
checkpoint."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from karp_models.models import build, build_for
from karp_models.train import previews
from karp_models.train.checkpoints import load_checkpoint, load_trainer_state, save_checkpoint
from karp_models.train.tasks import TASKS, make_task
from karp_models.train.tasks import GANTask, VAETask
from karp_models.train.tasks.generative import COLUMNS, GRID, Samples
from karp_models.train.trainer import TrainConfig, Trainer
from train_helpers import quadrant_images

CFG = dict(batch_size=32, lr=2e-3, schedule="constant", warmup=0.0, grad_clip=0.0, weight_decay=0.0,
           augment=False, eval_every=0)


@pytest.fixture(scope="module")
def data():
    d = quadrant_images(n_train=256, n_test=128)
    d.n_classes, d.channels, d.size = 4, 1, (8, 8)
    return d


@pytest.fixture(scope="module")
def judge(data):
    """A classic CNN trained for a few steps to tell the quadrants apart: the test's classifier."""
    torch.manual_seed(0)
    model = build_for("classic", data)
    tr = Trainer(model, make_task(data, model), TrainConfig(steps=60, batch_size=64, eval_every=0), "cpu")
    assert list(tr.run())[-1].val_accuracy > 0.9
    return model.eval()


def gan(data, judge, name="dcgan", **over):
    torch.manual_seed(0)
    model = build_for(name, data, preset="tiny", **over)
    return model, GANTask(data, model, judge=judge)


class Stub(nn.Module):
    """A 'generator' whose samples are known: real test images picked by z, one image, or noise."""

    def __init__(self, images: torch.Tensor, mode: str):
        super().__init__()
        self.config = SimpleNamespace(conditional=False, latent=4)
        self.images, self.mode = images, mode
        self.p = nn.Parameter(torch.zeros(()))

    def generate(self, z, labels=None):
        x = self.images.float() / 255
        if self.mode == "replay":
            return x[(z[:, 0].abs() * 1e4).long() % len(x)]
        if self.mode == "one":
            return x[:1].expand(len(z), -1, -1, -1)
        return torch.rand(len(z), *x.shape[1:], generator=torch.Generator().manual_seed(int(z[0, 0] * 1e6)))


def test_registry_task_kinds_build_these_tasks(data):
    assert isinstance(TASKS["gan"](data, build_for("dcgan", data, preset="tiny")), GANTask)
    assert isinstance(make_task(data, build_for("cvae", data, preset="tiny"), kind="vae"), VAETask)


def test_the_two_optimisers_each_step_their_own_parameters_in_dcgans_order(data, judge):
    model, task = gan(data, judge)
    tr = Trainer(model, task, TrainConfig(steps=6, **CFG), "cpu")
    G, D = list(model.generator.parameters()), list(model.discriminator.parameters())
    assert {id(p) for g in tr.optimizers["discriminator"].param_groups for p in g["params"]} == {id(p) for p in D}
    assert {id(p) for g in tr.optimizers["generator"].param_groups for p in g["params"]} == {id(p) for p in G}
    seen, after_d = [], {}

    def spy(name, step):
        def run(*a, **k):
            mine, other = (D, G) if name == "discriminator" else (G, D)
            if name == "discriminator":                                  # D's step sees no G gradients
                assert all(p.grad is None for p in G)
            before_mine, before_other = [p.clone() for p in mine], [p.clone() for p in other]
            out = step(*a, **k)
            assert all(torch.equal(p, q) for p, q in zip(other, before_other))   # the other net untouched
            assert any(not torch.equal(p, q) for p, q in zip(mine, before_mine))
            if name == "generator":
                assert all(torch.equal(p, q) for p, q in zip(D, after_d["D"]))
            else:
                after_d["D"] = [p.clone() for p in D]
            seen.append(name)
            return out
        return run

    for name, opt in tr.optimizers.items():
        opt.step = spy(name, opt.step)
    recs = list(tr.run(log_every=3))
    assert seen == ["discriminator", "generator"] * 6
    s = recs[0].scalars
    assert {"d_loss", "g_loss", "D(x)", "D(G(z))"} <= set(s)
    assert recs[0].train_loss == pytest.approx(s["d_loss"] + s["g_loss"], rel=1e-5)
    assert 0 < s["D(x)"] < 1 and 0 < s["D(G(z))"] < 1
    final = recs[-1].scalars                                             # the evaluation's figures
    assert {"val_fd", "val_coverage", "val_confidence", "val_real_fd", "val_D(x)"} <= set(final)


def test_a_gan_learns_to_draw_the_quadrants(data, judge):
    model, task = gan(data, judge, width=16)
    tr = Trainer(model, task, TrainConfig(steps=300, **CFG), "cpu")
    start = task.evaluate(model)
    end = list(tr.run(log_every=100))[-1].scalars
    assert end["val_fd"] < start["fd"] / 3, (start["fd"], end["val_fd"])
    assert end["val_coverage"] > 0.8                                     # all four quadrants drawn


def test_wgan_gp_steps_with_raw_critic_scores(data, judge):
    model, task = gan(data, judge, loss="wgan-gp")
    tr = Trainer(model, task, TrainConfig(steps=4, **CFG), "cpu")
    assert tr.optimizers["generator"].defaults["betas"] == (0.0, 0.9)
    rec = list(tr.run(log_every=2))[0]
    assert rec.scalars["d_loss"] != pytest.approx(rec.scalars["D(G(z))"] - rec.scalars["D(x)"])  # + the penalty


@pytest.mark.parametrize("name", ["dcgan", "cdcgan", "cvae"])
def test_the_fixed_z_grid_is_the_same_whatever_the_rng(data, judge, name):
    model = build_for(name, data, preset="tiny")
    Task = GANTask if "gan" in name else VAETask
    task = Task(data, model, judge=judge)
    torch.manual_seed(1)
    a = previews.make(task, model, torch.device("cpu"), 10)
    torch.manual_seed(2)
    torch.rand(5)
    b = task.preview(model.eval(), torch.device("cpu"), 10)
    c = Task(data, model, judge=judge).preview(model, torch.device("cpu"), 10)
    assert isinstance(a, Samples) and a.images.dtype.name == "uint8"
    assert (a.images == b.images).all() and (a.images == c.images).all() and a.diversity == c.diversity
    if model.config.conditional:                                         # a row per class, z shared down a column
        K = len(data.classes)
        assert a.images.shape[0] == K * COLUMNS and a.labels == tuple(k for k in range(K) for _ in range(COLUMNS))
        z, _ = task._grid_latents()
        assert torch.equal(z[:COLUMNS], z[COLUMNS:2 * COLUMNS])
    else:
        assert a.images.shape == (GRID, 1, 8, 8) and a.labels is None
    assert (a.reconstructions is not None) == (name == "cvae")


def test_the_figures_tell_real_images_from_collapse_and_noise(data, judge):
    figures = {}
    for mode in ("replay", "one", "noise"):
        stub = Stub(data.test_x, mode)
        task = GANTask(data, stub, judge=judge)
        p = task.preview(stub, torch.device("cpu"), 0)
        q = task.quality(stub, torch.device("cpu"), 10_000)
        figures[mode] = (p.diversity, p.distinct, q)
    (div_r, k_r, real), (div_1, k_1, one), (_, _, noise) = figures["replay"], figures["one"], figures["noise"]
    assert 0.7 < div_r < 1.3 and k_r == 4                               # as varied as real images
    assert div_1 == pytest.approx(0, abs=1e-6) and k_1 == 1             # collapse: one image, one class
    assert one["coverage"] == pytest.approx(1 / 4) and real["coverage"] > 0.95
    assert real["fd"] < one["fd"] / 10 and real["fd"] < noise["fd"] / 10
    assert real["fd"] == pytest.approx(real["real_fd"], abs=0.5 * one["fd"] / 10)  # near the floor
    assert real["real_coverage"] > 0.95 and 0 < real["real_confidence"] <= 1


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_evaluation_is_deterministic_and_leaves_the_rng_and_mode_alone(data, judge, kind):
    name = "dcgan" if kind == "gan" else "vae"
    model = build_for(name, data, preset="tiny")
    task = (GANTask if kind == "gan" else VAETask)(data, model, judge=judge)
    model.train()
    state = torch.get_rng_state()
    a, b = task.evaluate(model), task.evaluate(model, max_batches=2, batch_size=16)
    assert torch.equal(torch.get_rng_state(), state) and model.training
    assert task.evaluate(model) == a and task.evaluate(model, max_batches=2, batch_size=16) == b
    assert "real_fd" in a and "real_fd" not in b                        # the floor: full evaluations only
    if kind == "vae":
        assert a["loss"] == pytest.approx(a["recon"] + a["kl"])


def test_a_vae_learns_and_reports_its_two_terms(data):
    torch.manual_seed(0)
    model = build_for("vae", data, preset="tiny")
    tr = Trainer(model, VAETask(data, model, judge=None), TrainConfig(steps=120, **CFG), "cpu")
    recs = list(tr.run(log_every=20))
    assert {"recon", "kl"} <= set(recs[0].scalars) and "val_fd" not in recs[-1].scalars  # no judge
    final = recs[-1]
    assert final.val_loss == pytest.approx(final.scalars["val_recon"] + final.scalars["val_kl"])
    # the reference: every pixel a Bernoulli with the training images' mean, which knows no quadrant
    mean = (data.train_x.float() / 255).mean(0, keepdim=True)
    t = data.test_x.float() / 255
    baseline = torch.nn.functional.binary_cross_entropy(mean.expand_as(t), t, reduction="sum") / len(t)
    assert final.val_loss < float(baseline) - 1.5, (final.val_loss, float(baseline))
    assert final.scalars["val_kl"] > 0.5                                  # z carries the quadrant


@pytest.mark.parametrize("name", ["cdcgan", "cvae"])
def test_a_run_resumes_exactly_through_a_checkpoint_and_loads_by_name(data, tmp_path, name):
    kind = "gan" if "gan" in name else "vae"

    def trainer():
        torch.manual_seed(3)
        model = build_for(name, data, preset="tiny")
        return Trainer(model, make_task(data, model, kind=kind), TrainConfig(steps=24, **CFG), "cpu")

    want = [r.train_loss for r in trainer().run(log_every=4)]
    first, stop, got = trainer(), threading.Event(), []
    for r in first.run(stop=stop, log_every=4):
        got.append(r.train_loss)
        if r.step == 12:
            stop.set()
    path = save_checkpoint(tmp_path / f"{name}.safetensors", first.model, model_name=name,
                           meta=first.task.meta(), trainer=first)
    second = trainer()
    load_trainer_state(path, second)
    got = got[:-1] + [r.train_loss for r in second.run(log_every=4)]
    assert got == want
    ck = load_checkpoint(path)
    z, labels = torch.randn(3, ck.model.config.latent), torch.tensor([0, 1, 2])
    torch.testing.assert_close(ck.model.generate(z, labels), first.model.eval().generate(z, labels))
    assert ck.meta["conditional"] is True and ck.meta["latent"] == ck.model.config.latent


# --- what the live view and the time-lapse get


def test_the_preview_keeps_the_diversity_history_and_its_grid_as_the_snapshot(data, judge):
    model, task = gan(data, judge)
    shots: list = []
    for step in (0, 10, 20, 20, 30):                                    # 20 twice: redone, kept once
        p = previews.make(task, model, torch.device("cpu"), step)
        previews.keep_snapshot(shots, p)
    assert [h[0] for h in p.history] == [0, 10, 20, 30]
    assert p.history[-1] == (30, p.diversity, p.distinct)
    assert [s for s, _ in shots] == [0, 10, 20, 30] and p.snapshot_key == "sample_grids"
    assert shots[-1][1] is p.images and p.images.dtype.name == "uint8"
    again = previews.make(task, model, torch.device("cpu"), 5)          # an earlier step: a resumed run
    assert [h[0] for h in again.history] == [0, 5]


def test_sample_grids_are_saved_as_png_and_read_back_exactly():
    g = torch.Generator().manual_seed(0)
    grids = [(s, torch.randint(0, 256, (80, 1, 28, 28), generator=g, dtype=torch.uint8).numpy())
             for s in range(0, 1000, 25)]                                 # 40 grids
    meta = previews.snapshots_meta(grids)
    assert set(meta) == {"steps", "shape", "png"} and len(meta["steps"]) == 32
    assert meta["steps"][0] == 0 and meta["steps"][-1] == 975
    back = previews.snapshots_from_meta(meta)
    by_step = dict(grids)
    for step, a in back:
        assert a.dtype.name == "uint8" and (a == by_step[step]).all()
    rgb = [(0, torch.randint(0, 256, (4, 3, 8, 8), generator=g, dtype=torch.uint8).numpy())]
    assert (previews.snapshots_from_meta(previews.snapshots_meta(rgb))[0][1] == rgb[0][1]).all()
    weights = [(0, torch.randn(4, 1, 3, 3, generator=g).numpy()), (50, torch.randn(4, 1, 3, 3, generator=g).numpy())]
    back = previews.snapshots_from_meta(previews.snapshots_meta(weights))
    assert [s for s, _ in back] == [0, 50] and abs(back[1][1] - weights[1][1]).max() < 1e-4
    for forged in ({"steps": [0]}, {"steps": [0], "shape": [1, 1, 8, 8], "png": ["!!"]},
                   {"steps": [0], "shape": [10 ** 6, 1, 28, 28], "png": [meta["png"][0]]},
                   {"steps": [0, 1], "shape": [80, 1, 28, 28], "png": [meta["png"][0]]},
                   {"steps": [0], "shape": [40, 1, 28, 28], "png": [meta["png"][0]]}):
        with pytest.raises(ValueError):
            previews.snapshots_from_meta(forged)


def test_the_job_queue_passes_the_tasks_charts_and_grids_without_knowing_the_family(data, judge):
    from karp_models.train.jobs import JobManager
    from karp_models.train.runs import Prepared, RunSpec

    def builder(spec):
        model, task = gan(data, judge)
        return Prepared(trainer=Trainer(model, task, spec.config, "cpu"), data=data)

    mgr = JobManager(builder=builder, set_threads=False)
    jid = mgr.submit("s", RunSpec(model="dcgan", dataset="quadrants", config=TrainConfig(steps=40, **CFG)))
    st = mgr.wait(jid, timeout=120)
    assert st.state == "done", st.error_detail
    assert [c.names for c in st.charts] == [("g_loss", "d_loss"), ("D(x)", "D(G(z))"), ("fd",)]
    assert st.snapshot_key == "sample_grids" and [s for s, _ in st.snapshots] == [0, 30, 40]
    assert isinstance(st.preview, Samples) and st.preview.step == 40
    assert {"g_loss", "d_loss", "D(x)", "D(G(z))"} <= set(st.records[-1].scalars)
    mgr.shutdown()
