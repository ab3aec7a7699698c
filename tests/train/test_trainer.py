"""Trainer: budgets, stopping, schedules, learning, clipping, weight decay groups, resume."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch

from karp_models.train.tasks import CharLM, Distillation, ImageClassification
from karp_models.train.trainer import Record, TrainConfig, Trainer, lr_factor, param_groups
from train_helpers import TinyLM, TinyLMConfig, TinyNet, TinyNetConfig, cyclic_text, quadrant_images


def image_trainer(seed: int = 0, **cfg) -> Trainer:
    torch.manual_seed(seed)
    model = TinyNet(TinyNetConfig())
    task = ImageClassification(quadrant_images(), augment=True)
    kw = dict(steps=30, batch_size=32, eval_every=0, seed=seed)
    kw.update(cfg)
    return Trainer(model, task, TrainConfig(**kw), "cpu")


# --- configuration and schedule


def test_config_needs_a_budget_and_valid_names():
    with pytest.raises(ValueError, match="budget"):
        TrainConfig()
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(steps=1, optimizer="adam!")
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig(steps=1).lr = 1.0  # type: ignore[misc]


def test_onecycle_warms_up_then_decays_to_zero():
    ps = [i / 1000 for i in range(1001)]
    f = [lr_factor("onecycle", p, warmup=0.1) for p in ps]
    peak = max(range(len(f)), key=f.__getitem__)
    assert ps[peak] == pytest.approx(0.1, abs=2e-3) and f[peak] == pytest.approx(1.0)
    assert f[0] == pytest.approx(1 / 25)
    assert all(a <= b + 1e-12 for a, b in zip(f[:peak], f[1:peak + 1]))  # rises
    assert all(a >= b - 1e-12 for a, b in zip(f[peak:], f[peak + 1:]))  # then falls
    assert f[-1] < 1e-4


def test_cosine_and_constant_shapes():
    assert lr_factor("cosine", 0.0, 0.1) == pytest.approx(1 / 25)
    assert lr_factor("cosine", 0.1, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.55, 0.1) == pytest.approx(0.5)  # half-way down the cosine
    assert lr_factor("cosine", 1.0, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("cosine", 0.5, 0.0) == pytest.approx(0.5)
    assert lr_factor("constant", 0.05, 0.1) < 1.0
    assert [lr_factor("constant", p, 0.1) for p in (0.1, 0.5, 1.0)] == [1.0, 1.0, 1.0]
    assert lr_factor("constant", 0.0, 0.0) == 1.0


def test_records_follow_the_schedule():
    tr = image_trainer(steps=40, lr=0.01, schedule="onecycle", warmup=0.25)
    recs = list(tr.run(log_every=1))
    lrs = [r.lr for r in recs if not r.final]
    assert lrs[0] < lrs[5] < lrs[10] == pytest.approx(0.01) and lrs[-1] < 1e-3  # lrs[i]: p = i/40
    assert [r.step for r in recs[:-1]] == list(range(1, 40))


# --- budgets and stopping


def test_step_budget_ends_the_run_with_a_full_evaluation():
    tr = image_trainer(steps=25, eval_every=10, eval_batches=1)
    recs = list(tr.run(log_every=5))
    assert [r.step for r in recs] == [5, 10, 15, 20, 25]
    assert all(isinstance(r, Record) for r in recs) and recs[-1].final and recs[-1].progress == 1.0
    assert [r.val_loss is not None for r in recs] == [False, True, False, True, True]
    assert sum(r.final for r in recs) == 1 and tr.step == 25
    full = tr.task.evaluate(tr.model, "cpu")
    assert recs[-1].val_loss == pytest.approx(full["loss"])
    assert recs[-1].val_accuracy == full["accuracy"]
    assert recs[-1].epoch == pytest.approx(25 * 32 / 512)
    assert recs[0].unit == "samples" and recs[0].throughput > 0 and recs[-1].elapsed_s > 0


def test_time_budget_ends_the_run():
    tr = image_trainer(steps=None, minutes=0.01)  # 0.6 s
    t0 = time.perf_counter()
    recs = list(tr.run(log_every=50))
    took = time.perf_counter() - t0
    assert recs[-1].final and recs[-1].progress == 1.0
    assert 0.6 <= tr.elapsed < 3.0 and took < 5.0 and tr.step > 5


def test_both_budgets_whichever_first():
    tr = image_trainer(steps=7, minutes=10.0)
    assert list(tr.run())[-1].step == 7


def test_stop_event_ends_the_run_promptly():
    tr = image_trainer(steps=None, minutes=5.0)
    stop = threading.Event()
    recs = []
    for r in tr.run(stop=stop, log_every=3):
        recs.append(r)
        stop.set()  # no further step is taken after this
    assert [r.step for r in recs] == [3, 3] and recs[-1].final


def test_stop_from_another_thread():
    tr = image_trainer(steps=None, minutes=5.0)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    t0 = time.perf_counter()
    recs = list(tr.run(stop=stop, log_every=1000))
    assert time.perf_counter() - t0 < 3.0 and recs[-1].final and tr.step > 0


# --- learning


@pytest.mark.parametrize("optimizer,lr", [("adamw", 3e-3), ("sgd", 0.05)])
def test_loss_decreases_on_a_learnable_problem(optimizer, lr):
    tr = image_trainer(steps=60, optimizer=optimizer, lr=lr, eval_every=0)
    before = tr.task.evaluate(tr.model, "cpu")
    recs = list(tr.run(log_every=10))
    assert recs[-1].train_loss < 0.6 * recs[0].train_loss
    assert recs[-1].val_loss < 0.5 * before["loss"] and recs[-1].val_accuracy > 0.9


def test_char_lm_learns_and_counts_tokens():
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(block_size=8))
    task = CharLM(cyclic_text(), block_size=8)
    cfg = TrainConfig(steps=60, batch_size=16, lr=0.02, eval_every=0, label_smoothing=0.05)
    recs = list(Trainer(model, task, cfg).run(log_every=20))
    assert recs[0].unit == "tokens" and recs[-1].epoch == pytest.approx(60 * 16 * 8 / 2000)
    assert recs[-1].val_loss < 0.8 and recs[-1].val_accuracy > 0.75  # chance: log 4 = 1.39, 25%


@pytest.mark.parametrize("clip", [0.5, 0.0])
def test_grad_clipping_bounds_the_norm(clip):
    tr = image_trainer(steps=5, grad_clip=clip, lr=1e-3)
    params = list(tr.model.parameters())
    norms = []
    step = tr.optimizer.step

    def spy(*a, **k):  # the gradient norm the optimizer sees
        norms.append(torch.stack([p.grad.norm() for p in params]).norm().item())
        return step(*a, **k)

    original = tr.model.forward

    def steep(x, t=None):  # the same model with a 100x steeper loss: big gradients
        logits, loss = original(x, t)
        return logits, (loss * 100 if loss is not None else None)

    tr.optimizer.step, tr.model.forward = spy, steep
    list(tr.run())
    assert len(norms) == 5
    if clip:
        assert max(norms) <= clip + 1e-4
    else:
        assert min(norms) > 10 * 0.5  # off: the same gradients are far larger


def test_no_weight_decay_on_biases_norms_and_embeddings():
    model = TinyLM(TinyLMConfig())
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model.mlp.weight)}
    assert len(no_decay["params"]) == 4  # wte (tied with lm_head, counted once), ln w/b, mlp bias
    net = TinyNet(TinyNetConfig())
    decay, _ = param_groups(net, 0.1)
    assert {id(p) for p in decay["params"]} == {id(net.conv.weight), id(net.fc.weight),
                                                 id(net.head.weight)}


def test_non_finite_loss_is_reported():
    tr = image_trainer(steps=20, lr=1.0)
    nan = torch.tensor(float("nan"), requires_grad=True)
    tr.model.forward = lambda x, t=None: (x.flatten(1)[:, :4], nan * 1)
    with pytest.raises(FloatingPointError, match="step 10"):
        list(tr.run(log_every=10))


# --- resume


def losses(records) -> list[float]:
    return [r.train_loss for r in records if not r.final]


def test_resume_continues_the_same_loss_curve_in_memory():
    N = 12
    full = image_trainer(seed=3, steps=2 * N, eval_every=5, eval_batches=1)
    ref = list(full.run(log_every=1))

    first = image_trainer(seed=3, steps=2 * N, eval_every=5, eval_batches=1)
    stop = threading.Event()
    part1 = []
    for r in first.run(stop=stop, log_every=1):
        part1.append(r)
        torch.rand(3)  # the consumer uses torch's RNG between records (e.g. sampling text)
        if r.step == N:
            stop.set()

    second = image_trainer(seed=99, steps=2 * N, eval_every=5, eval_batches=1)  # reseeds torch
    second.load_state_dict(first.state_dict())
    torch.manual_seed(123)  # anything may run between loading and running
    part2 = list(second.run(log_every=1))
    got = losses(part1) + losses(part2)
    assert len(got) == len(losses(ref)) == 2 * N - 1
    assert got == losses(ref)  # bit-exact on the CPU
    assert part2[-1].val_loss == ref[-1].val_loss
    assert second.step == 2 * N and len(second.history) == len(part1) + len(part2)
    for a, b in zip(full.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


# --- distillation


def test_distill_loss_hard_soft_and_alpha():
    torch.manual_seed(0)
    task = ImageClassification(quadrant_images(), augment=False)
    s, t, y = torch.randn(16, 4), torch.randn(16, 4), torch.randint(0, 4, (16,))
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(task.distill_loss(s, y, t, alpha=0.0), ce(s, y))
    torch.testing.assert_close(task.distill_loss(s, y, t, alpha=1.0), ce(s, t.argmax(-1)))
    torch.testing.assert_close(task.distill_loss(s, y, t, alpha=0.5),
                               0.5 * ce(s, y) + 0.5 * ce(s, t.argmax(-1)))
    assert task.distill_loss(t, y, t, alpha=1.0, temperature=4.0).abs() < 1e-6   # agrees with the teacher
    student = s.clone().requires_grad_(True)
    task.distill_loss(student, y, t, alpha=1.0, temperature=2.0).backward()
    moved = student.detach() - 0.5 * student.grad                                 # one gradient step
    kl = lambda a: torch.nn.functional.kl_div(a.log_softmax(-1), t.log_softmax(-1),  # noqa: E731
                                              reduction="batchmean", log_target=True)
    assert kl(moved / 2) < kl(s / 2)


def test_a_teacher_alone_teaches_the_right_classes():
    """Train labels scrambled: alone, a student learns noise; from a good teacher (alpha 1) it learns the
    task. The teacher is only run: its weights and eval mode are untouched."""
    good = image_trainer(steps=60, eval_every=0)
    list(good.run())
    teacher = good.model
    assert good.task.evaluate(teacher, "cpu")["accuracy"] > 0.9
    before = {k: v.clone() for k, v in teacher.state_dict().items()}

    def student(with_teacher: bool) -> float:
        data = quadrant_images()
        data.train_y = data.train_y[torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(1))]
        torch.manual_seed(0)
        task = ImageClassification(data, augment=True)
        cfg = TrainConfig(steps=60, batch_size=32, eval_every=0, distill_alpha=1.0)
        task = Distillation(task, teacher) if with_teacher else task
        tr = Trainer(TinyNet(TinyNetConfig()), task, cfg, "cpu")
        return list(tr.run())[-1].val_accuracy

    assert student(with_teacher=True) > 0.9 and student(with_teacher=False) < 0.5
    assert not teacher.training
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


# --- the shapes of the families to come: two optimisers (a GAN), frozen layers (fine-tuning)


@dataclasses.dataclass(frozen=True)
class TinyGANConfig:
    z: int = 4
    hidden: int = 16


class TinyGAN(torch.nn.Module):
    """A generator of numbers and a discriminator of numbers."""

    def __init__(self, config: TinyGANConfig = TinyGANConfig()):
        super().__init__()
        self.config = config
        nn = torch.nn
        self.G = nn.Sequential(nn.Linear(config.z, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1))
        self.D = nn.Sequential(nn.Linear(1, config.hidden), nn.LeakyReLU(0.2), nn.Linear(config.hidden, 1))


class GaussianGAN:
    """Goodfellow et al. 2014 on one number: real samples ~ N(3, 0.5); D and G each have their
    own Adam (DCGAN's betas) and the task steps them in DCGAN's order."""

    unit, items_per_epoch, eval_split = "samples", 1024, "test"

    def items_per_batch(self, batch_size):
        return batch_size

    def configure_optimizers(self, model, cfg, device):
        adam = lambda ps: torch.optim.Adam(ps, lr=cfg.lr, betas=(0.5, 0.999))  # noqa: E731
        return {"discriminator": adam(model.D.parameters()), "generator": adam(model.G.parameters())}

    def batch(self, split, batch_size, generator, device=None, augment=True):
        real = 3 + 0.5 * torch.randn(batch_size, 1, generator=generator)
        return real, torch.randn(batch_size, 4, generator=generator)

    def training_step(self, model, batch, ctx):
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        real, z = batch
        fake = model.G(z)
        d_real, d_fake = model.D(real), model.D(fake.detach())
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        ctx.step("discriminator", d_loss)
        d_gen = model.D(fake)
        g_loss = bce(d_gen, torch.ones_like(d_gen))
        ctx.step("generator", g_loss)
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss,
                "D(x)": torch.sigmoid(d_real).mean(), "D(G(z))": torch.sigmoid(d_fake).mean()}

    def evaluate(self, model, device=None, split=None, max_batches=None, batch_size=None):
        with torch.no_grad():
            x = model.G(torch.randn(2048, 4, generator=torch.Generator().manual_seed(0)))
        return {"loss": float((x.mean() - 3).abs()), "mean": float(x.mean())}


def test_a_task_with_two_optimisers_steps_each_in_its_order_and_learns():
    torch.manual_seed(0)
    model = TinyGAN()
    tr = Trainer(model, GaussianGAN(), TrainConfig(steps=600, batch_size=64, lr=2e-3, eval_every=0,
                                                   grad_clip=0, schedule="constant", warmup=0), "cpu")
    assert list(tr.optimizers) == ["discriminator", "generator"] and tr.optimizer is tr.optimizers["discriminator"]
    order = []
    for name, opt in tr.optimizers.items():  # which optimiser steps, and whose gradients it sees
        step = opt.step

        def spy(*a, _name=name, _step=step, _opt=opt, **k):
            order.append((_name, _name == "generator" or all(p.grad is None for p in model.G.parameters())))
            return _step(*a, **k)
        opt.step = spy
    start = tr.task.evaluate(model)["mean"]
    recs = list(tr.run(log_every=100))
    assert [n for n, _ in order[:4]] == ["discriminator", "generator"] * 2 and len(order) == 1200
    assert all(clean for _, clean in order)  # D's step never sees G gradients (fake.detach())
    assert recs[-1].final and {"d_loss", "g_loss", "D(x)", "D(G(z))", "val_mean"} <= set(recs[-1].scalars)
    assert recs[0].train_loss == pytest.approx(recs[0].scalars["d_loss"] + recs[0].scalars["g_loss"], rel=1e-5)
    end = recs[-1].scalars["val_mean"]
    assert abs(start - 3) > 2 and abs(end - 3) < 0.5, (start, end)  # G learned where the data is
    assert 0.2 < recs[-1].scalars["D(G(z))"] < 0.8                    # D can no longer tell


def test_a_two_optimiser_run_resumes_exactly_through_a_checkpoint(tmp_path):
    from karp_models.train.checkpoints import load_trainer_state, save_checkpoint

    def trainer():
        torch.manual_seed(1)
        return Trainer(TinyGAN(), GaussianGAN(), TrainConfig(steps=40, batch_size=32, eval_every=0), "cpu")

    ref = trainer()
    want = [r.train_loss for r in ref.run(log_every=5)]
    first, stop = trainer(), threading.Event()
    got = []
    for r in first.run(stop=stop, log_every=5):
        got.append(r.train_loss)
        if r.step == 20:
            stop.set()
    path = save_checkpoint(tmp_path / "gan.safetensors", first.model, model_name="tinygan",
                           meta={}, trainer=first)
    second = trainer()
    load_trainer_state(path, second)
    assert set(second.state_dict()["optimizers"]) == {"discriminator", "generator"}
    got = got[:-1] + [r.train_loss for r in second.run(log_every=5)]  # the stop's final record is not a step
    assert got == want


def test_frozen_layers_stay_frozen_and_out_of_the_optimiser():
    """Fine-tuning's shape: a backbone with requires_grad False is not optimised or decayed."""
    tr = image_trainer(steps=20, weight_decay=0.5)
    tr.model.conv.requires_grad_(False)
    tr = Trainer(tr.model, tr.task, tr.cfg, "cpu")  # the optimiser is made after freezing
    before = tr.model.conv.weight.detach().clone()
    in_opt = {id(p) for g in tr.optimizer.param_groups for p in g["params"]}
    assert id(tr.model.conv.weight) not in in_opt and id(tr.model.fc.weight) in in_opt
    fc_before = tr.model.fc.weight.detach().clone()
    list(tr.run())
    assert torch.equal(tr.model.conv.weight, before) and not torch.equal(tr.model.fc.weight, fc_before)


def test_quick_stop_ends_with_the_interval_subset_and_a_finished_run_with_the_whole_split():
    calls = []
    tr = image_trainer(steps=10**6, eval_every=0, eval_batches=3)
    evaluate = tr.task.evaluate
    tr.task.evaluate = lambda *a, **k: calls.append(k.get("max_batches")) or evaluate(*a, **k)
    stop = threading.Event()
    for r in tr.run(stop=stop, log_every=5, quick_stop=True):
        stop.set()
    assert calls == [3] and r.final
    done = image_trainer(steps=10, eval_every=0, eval_batches=3)
    evaluate2 = done.task.evaluate
    done.task.evaluate = lambda *a, **k: calls.append(k.get("max_batches")) or evaluate2(*a, **k)
    list(done.run(stop=threading.Event(), quick_stop=True))
    assert calls == [3, None]


def test_one_loop_at_a_time():
    """A page rerun that starts the loop again before the old one stopped must not step the same
    model twice at once (QA: 'modified by an inplace operation'): the second run() waits for the
    first, and says so when it cannot."""
    from karp_models.train.trainer import TrainerBusy

    tr = image_trainer(steps=40, eval_every=0)
    first = tr.run(log_every=5)
    next(first)                                      # the first loop is going (paused at a record)
    with pytest.raises(TrainerBusy):
        next(tr.run(wait_s=0.1))
    done = threading.Event()

    def finish():
        time.sleep(0.3)
        first.close()                                # the old script run unwinds
        done.set()

    threading.Thread(target=finish).start()
    recs = list(tr.run(log_every=5, wait_s=5))       # waits for the first, then trains on
    assert done.is_set() and recs[-1].final and tr.step == 40
