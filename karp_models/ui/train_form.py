"""The Train page's settings: the task, the data, a model picker in plain words (what the model
is good for, its parameters, and how long the chosen steps take on this machine, measured), the
hyperparameters, and the TrainConfig a job gets.

Every setting is in the page's link (bind="query-params"); each widget's default is the chosen
model's recipe, so a link leaves out exactly what the recipe would give anyway, and changing the
model resets the hyperparameters to its recipe.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from karp_models.i18n import N_, _
from karp_models.models import REGISTRY
from karp_models.train.runs import RunSpec
from karp_models.train.trainer import OPTIMIZERS, SCHEDULES, TrainConfig
from karp_models.ui import glossary
from karp_models.ui.loaders import dataset_statuses

TASKS = {"Image classification": "image", "Character language model": "text",
         N_("Image captioning"): "caption"}
DEFAULT_MODEL = {"image": "fast", "text": "gpt", "caption": "caption-attention"}
# Per model: hyperparameters (and a lighter preset or dataset where the default is slow) that
# draw a good curve in under a minute with one torch thread of a 2-core laptop CPU.
RECIPES = {
    "classic": dict(lr=1e-3, batch_size=64, steps=500),
    "fast": dict(lr=4e-3, batch_size=128, steps=300),
    "tinyvgg": dict(lr=3e-3, batch_size=64, steps=1000),
    "resnet18": dict(lr=2e-3, batch_size=64, steps=150, dataset="digits"),
    "vit": dict(lr=3e-3, batch_size=128, steps=1500, preset="tiny"),
    "rnn": dict(lr=3e-3, batch_size=32, steps=2000, preset="small"),
    "lstm": dict(lr=3e-3, batch_size=32, steps=1500, preset="small"),
    "gru": dict(lr=3e-3, batch_size=32, steps=1200, preset="small"),
    "gpt": dict(lr=3e-3, batch_size=32, steps=1500, preset="nano"),
    # captioners learn slowly (the shipped ones took 2,000-2,500 steps of 64): a few minutes
    # shows the curve fall and the sample captions turn from one repeated word into sentences
    "caption-lstm": dict(lr=3e-3, batch_size=32, steps=300),
    "caption-attention": dict(lr=3e-3, batch_size=32, steps=300),
}
LRS = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2, 3e-2, 1e-1]
BATCHES = [16, 32, 64, 128, 256, 512]

# What each model is, and what it is good for, for someone who has not met it yet.
MODEL_WORDS = {
    "classic": ("Classic CNN", "The textbook network: two convolution layers, then a dense "
                "layer. A good first model to watch learn."),
    "fast": ("Fast CNN", "Built to learn clothes and digits quickly on a laptop: the best "
             "accuracy per minute here. Uses BatchNorm."),
    "tinyvgg": ("TinyVGG", "The network drawn in CNN Explainer (poloclub.github.io/cnn-explainer): "
                "train it here, then compare with that page."),
    "resnet18": ("ResNet-18", "A deep network with skip connections, as used on real photos. "
                 "Slow on a laptop: start with the small digits."),
    "vit": ("Vision Transformer", "Cuts the image into patches and uses attention instead of "
            "convolutions; see where it looks on the ViT attention page."),
    "rnn": ("Simple RNN", "The plainest recurrent network: reads text one character at a time "
            "and soon forgets what came long before."),
    "lstm": ("LSTM", "A recurrent network with gated memory cells: learns to close quotes and "
             "brackets; look at its cells on the RNN neurons page."),
    "gru": ("GRU", "A simpler gated recurrent network than the LSTM, often as good."),
    "gpt": ("GPT", "A small transformer like the ones behind chat assistants: attention over the "
            "last characters; see its heads on the GPT attention page."),
    "caption-lstm": (N_("Captioner without attention"), N_(
        "A CNN reads the whole scene into one vector and an LSTM writes a sentence about it, word "
        "by word (Show and Tell, 2015).")),
    "caption-attention": (N_("Captioner with attention"), N_(
        "The same CNN and LSTM, but before each word the LSTM looks again at the part of the "
        "picture it needs (Show, Attend and Tell, 2015); see where on the Image captioning page.")),
}


@dataclass(frozen=True)
class Choice:
    """What the form says to train."""

    kind: str
    model: str
    dataset: str
    preset: str
    config: TrainConfig
    label: str
    available: bool            # the dataset is on this machine

    def spec(self) -> RunSpec:
        return RunSpec(model=self.model, dataset=self.dataset, preset=self.preset,
                       config=self.config, label=self.label.strip())


def recipe(model: str) -> dict:
    r = dict(RECIPES.get(model, dict(lr=3e-3, batch_size=64, steps=300)))
    r["lr"] = min(LRS, key=lambda v: abs(v - r["lr"]))
    r.setdefault("preset", REGISTRY[model].default_preset)
    return r


def _apply_recipe() -> None:
    """The model changed: its hyperparameters (and its dataset, where the recipe names one)."""
    r = recipe(st.session_state["train_model"])
    st.session_state.update(train_lr=r["lr"], train_batch=r["batch_size"],
                            train_steps=r["steps"], train_preset=r["preset"])
    if r.get("dataset"):
        st.session_state["train_dataset"] = r["dataset"]


def _task_changed() -> None:
    st.session_state["train_model"] = DEFAULT_MODEL[TASKS[st.session_state["train_task"]]]
    _apply_recipe()


def config(kind: str, steps: int, lr: float, batch: int, optimizer: str = "adamw",
           schedule: str = "onecycle", augment: bool = True, seed: int = 0) -> TrainConfig:
    """The TrainConfig of a run started from the page: about 15 validation points per run, each
    on 4 batches of text, about 128 captioned images (each written word by word) or 1,024 images."""
    evals = {"text": 4, "caption": max(1, 128 // batch)}.get(kind, max(2, 1024 // batch))
    return TrainConfig(steps=int(steps), lr=lr, batch_size=batch, optimizer=optimizer,
                       schedule=schedule, augment=bool(augment), seed=int(seed),
                       eval_every=max(20, int(steps) // 15), eval_batches=evals)


def settings(param_count) -> Choice:
    """The form. param_count(model, preset, dataset) -> int | None gives the sizes shown."""
    task_label = st.radio("Task", list(TASKS), horizontal=True, key="train_task", format_func=_,
                          on_change=_task_changed, bind="query-params")
    kind = TASKS[task_label]
    data_kind = REGISTRY[DEFAULT_MODEL[kind]].data        # what the task's models train on
    statuses = {s.name: s for s in dataset_statuses() if s.kind == data_kind}
    models = [n for n, s in REGISTRY.items() if s.task == kind]
    c1, c2, c3 = st.columns([2, 3, 2])
    model = c2.selectbox("Model", models, index=models.index(DEFAULT_MODEL[kind]), key="train_model",
                         on_change=_apply_recipe, format_func=lambda n: _(MODEL_WORDS[n][0]),
                         bind="query-params")
    spec, r = REGISTRY[model], recipe(model)
    names = list(statuses)
    default_ds = next((d for d in (r.get("dataset"), spec.default_dataset) if d in names), names[0])
    dataset = c1.selectbox("Dataset", names, index=names.index(default_ds), key="train_dataset",
                           format_func=lambda n: n if statuses[n].available else f"{n} (missing)",
                           bind="query-params")
    presets = list(spec.presets)

    def preset_words(p: str) -> str:
        n = param_count(model, p, dataset)
        return f"{p}: {n / 1e6:.2f} M parameters" if n and n >= 1e6 else \
            f"{p}: {n / 1e3:.0f} k parameters" if n else p
    preset = c3.selectbox("Size (preset)", presets, index=presets.index(r["preset"]),
                          key="train_preset", format_func=preset_words, bind="query-params",
                          help=glossary.tip("preset", "parameters"))
    st.caption(glossary.hover(_(MODEL_WORDS[model][1]), "BatchNorm", "attention", "transformer"),
               unsafe_allow_html=True)

    h = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
    lr = h[0].select_slider("Learning rate", LRS, value=r["lr"], key="train_lr",
                            format_func=lambda v: f"{v:g}", bind="query-params",
                            help=glossary.tip("learning rate"))
    batch = h[1].select_slider("Batch size", BATCHES, value=r["batch_size"], key="train_batch",
                               bind="query-params", help=glossary.tip("batch size"))
    steps = h[2].number_input("Steps", min_value=20, max_value=50_000, value=r["steps"], step=50,
                              key="train_steps", bind="query-params", help=glossary.tip("step"))
    augment = h[3].toggle("Augment", value=True, key="train_augment", disabled=kind != "image",
                          bind="query-params", help=glossary.tip("augmentation"))
    with st.expander("More settings"):
        a = st.columns(2)
        optimizer = a[0].selectbox("Optimizer", OPTIMIZERS, key="train_optimizer",
                                   bind="query-params", help=glossary.tip("optimizer"))
        schedule = a[1].selectbox("Learning-rate schedule", SCHEDULES, key="train_schedule",
                                  bind="query-params")
        seed = a[0].number_input("Seed", min_value=0, max_value=10_000, value=0, key="train_seed",
                                 bind="query-params")
        label = a[1].text_input("Run name on the charts (optional)", key="train_label")
    ds_status = statuses[dataset]
    if not ds_status.available:
        st.error(f"**{dataset}** is not on this machine. {ds_status.note}")
        st.code(ds_status.how_to_get, language="bash")
    cfg = config(kind, steps, lr, batch, optimizer, schedule, augment, seed)
    return Choice(kind=kind, model=model, dataset=dataset, preset=preset, config=cfg,
                  label=label, available=ds_status.available)


def duration(seconds: float) -> str:
    """A duration in words: '45 s', '3 min 20 s', '1 h 05 min'."""
    s = int(round(seconds))
    if s < 60:
        return f"{max(1, s)} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def estimate_text(choice: Choice, device: str, *, busy: bool) -> str:
    """The parameters and how long the chosen steps take here, measured (a few real training
    steps of this model, size and batch, once per process); while another run trains, only a
    measurement made earlier is used (measuring then would slow that run and itself)."""
    from karp_models.ui.compute import run_timing

    if not choice.available:
        return ""
    t = run_timing(choice.model, choice.dataset, choice.preset, choice.config.batch_size,
                   measure=not busy)
    if t is None:
        return (f"Trains on **{device}**. The time it takes is measured when no other run is "
                f"training.")
    return (f"**About {duration(t.seconds(choice.config))}** for {choice.config.steps:,} steps of "
            f"this {t.params:,}-parameter model on **{device}**: measured here, "
            f"{t.step_s:.2g} s a step, plus evaluations.")
