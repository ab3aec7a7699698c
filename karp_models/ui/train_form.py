"""The Train page's settings: the task, the data, a model picker in plain words (what the model
is good for, its parameters, and how long the chosen steps take on this machine, measured), the
hyperparameters, and the TrainConfig a job gets.

Every setting is in the page's link (bind="query-params"); each widget's default is the chosen
model's recipe, so a link leaves out exactly what the recipe would give anyway, and changing the
model resets the hyperparameters to its recipe.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import streamlit as st

from karp_models.i18n import N_, _
from karp_models.models import REGISTRY
from karp_models.train.runs import RunSpec
from karp_models.train.tasks.generative import RECIPES as GENERATIVE_RECIPES
from karp_models.train.trainer import OPTIMIZERS, SCHEDULES, TrainConfig
from karp_models.ui import glossary
from karp_models.ui.loaders import dataset_statuses

TASKS = {N_("Image classification"): "image", N_("Character language model"): "text",
         N_("Generate images (GAN, VAE)"): "generative", N_("Image captioning"): "caption"}  # shown with _()
DEFAULT_MODEL = {"image": "fast", "text": "gpt", "generative": "dcgan", "caption": "caption-attention"}
DATA_KIND = {"generative": "image", "caption": "scenes"}   # the kind of dataset a form task trains on
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
    # generators: DCGAN's Adam 2e-4 at a constant rate (the CLI's recipe, tasks.generative), the
    # small preset: shapes of clothes appear within a few hundred steps
    "dcgan": dict(lr=2e-4, batch_size=64, steps=400, preset="small", schedule="constant"),
    "cdcgan": dict(lr=2e-4, batch_size=64, steps=400, preset="small", schedule="constant"),
    "vae": dict(lr=1e-3, batch_size=128, steps=300, schedule="cosine"),
    "cvae": dict(lr=1e-3, batch_size=128, steps=300, schedule="cosine"),
    # captioners learn slowly (the shipped ones took 2,000-2,500 steps of 64): a few minutes
    # shows the curve fall and the sample captions turn from one repeated word into sentences
    "caption-lstm": dict(lr=3e-3, batch_size=32, steps=300),
    "caption-attention": dict(lr=3e-3, batch_size=32, steps=300),
}
LRS = [1e-4, 2e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2, 3e-2, 1e-1]
BATCHES = [16, 32, 64, 128, 256, 512]

# What each model is, and what it is good for, for someone who has not met it yet (shown with _()).
MODEL_WORDS = {
    "classic": (N_("Classic CNN"), N_("The textbook network: two convolution layers, then a dense "
                "layer. A good first model to watch learn.")),
    "fast": (N_("Fast CNN"), N_("Built to learn clothes and digits quickly on a laptop: the best "
             "accuracy per minute here. Uses BatchNorm.")),
    "tinyvgg": ("TinyVGG", N_("The network drawn in CNN Explainer (poloclub.github.io/cnn-explainer): "
                "train it here, then compare with that page.")),
    "resnet18": ("ResNet-18", N_("A deep network with skip connections, as used on real photos. "
                 "Slow on a laptop: start with the small digits.")),
    "vit": (N_("Vision Transformer"), N_("Cuts the image into patches and uses attention instead of "
            "convolutions; see where it looks on the ViT attention page.")),
    "rnn": (N_("Simple RNN"), N_("The plainest recurrent network: reads text one character at a time "
            "and soon forgets what came long before.")),
    "lstm": ("LSTM", N_("A recurrent network with gated memory cells: learns to close quotes and "
             "brackets; look at its cells on the RNN neurons page.")),
    "gru": ("GRU", N_("A simpler gated recurrent network than the LSTM, often as good.")),
    "gpt": ("GPT", N_("A small transformer like the ones behind chat assistants: attention over the "
            "last characters; see its heads on the GPT attention page.")),
    "dcgan": ("DCGAN", N_("Two networks in a contest: a generator draws images from random "
                          "numbers, a discriminator tries to tell them from real ones. Watch the "
                          "same 64 random inputs turn into clothes.")),
    "cdcgan": (N_("Conditional DCGAN"), N_("The same contest, with the class given to both "
                                           "networks: each row of the grid asks for one class.")),
    "vae": (N_("Variational autoencoder (VAE)"), N_("Squeezes each image into a few numbers and "
                                                    "rebuilds it; drawing random numbers then gives "
                                                    "new images, blurrier than a GAN's but steady "
                                                    "to train.")),
    "cvae": (N_("Conditional VAE"), N_("A VAE told the class of each image, so it can be asked "
                                       "for one.")),
    "caption-lstm": (N_("Captioner without attention"), N_(
        "A CNN reads the whole scene into one vector and an LSTM writes a sentence about it, word "
        "by word (Show and Tell, 2015).")),
    "caption-attention": (N_("Captioner with attention"), N_(
        "The same CNN and LSTM, but before each word the LSTM looks again at the part of the "
        "picture it needs (Show, Attend and Tell, 2015); see where on the Image captioning page.")),
}


def form_kind(model: str) -> str:
    """The form's task a registered model is listed under: generators together, else its task."""
    spec = REGISTRY[model]
    return "generative" if spec.family == "generative" else spec.task


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
                            train_steps=r["steps"], train_preset=r["preset"],
                            train_schedule=r.get("schedule", SCHEDULES[0]))
    if r.get("dataset"):
        st.session_state["train_dataset"] = r["dataset"]


def _task_changed() -> None:
    st.session_state["train_model"] = DEFAULT_MODEL[TASKS[st.session_state["train_task"]]]
    _apply_recipe()


def config(kind: str, steps: int, lr: float, batch: int, optimizer: str = "adamw",
           schedule: str = "onecycle", augment: bool = True, seed: int = 0,
           model: str | None = None, *, shift: bool = True, flip: bool = True,
           adv_eps: float = 0.0) -> TrainConfig:
    """The TrainConfig of a run started from the page: about 15 validation points per run, each
    on 4 batches of text, about 128 captioned images (each written word by word) or 1,024 images.
    A generator starts from its task's recipe (no warm-up, clipping, decay or augmentation).
    Images: shift and flip turn each augmentation off (shift off: 0 pixels); adv_eps > 0 trains
    on PGD attacks of that radius (the trainer's adv_steps)."""
    base = TrainConfig(steps=1)
    if kind == "generative" and model is not None:
        base = GENERATIVE_RECIPES[REGISTRY[model].task]
    evals = {"text": 4, "caption": max(1, 128 // batch)}.get(kind, max(2, 1024 // batch))
    image = kind == "image"
    return dataclasses.replace(base, steps=int(steps), minutes=None, lr=lr, batch_size=batch,
                               optimizer=optimizer, schedule=schedule,
                               augment=bool(augment) and kind != "generative", seed=int(seed),
                               eval_every=max(20, int(steps) // 15), eval_batches=evals,
                               shift=None if shift or not image else 0, flip=bool(flip) or not image,
                               adv_eps=float(adv_eps) if image else 0.0)


def settings(param_count) -> Choice:
    """The form. param_count(model, preset, dataset) -> int | None gives the sizes shown."""
    task_label = st.radio(_("Task"), list(TASKS), format_func=_, horizontal=True, key="train_task",
                          on_change=_task_changed, bind="query-params")
    kind = TASKS[task_label]
    statuses = {s.name: s for s in dataset_statuses() if s.kind == DATA_KIND.get(kind, kind)}
    models = [n for n in REGISTRY if form_kind(n) == kind]
    c1, c2, c3 = st.columns([2, 3, 2])
    model = c2.selectbox(_("Model"), models, index=models.index(DEFAULT_MODEL[kind]), key="train_model",
                         on_change=_apply_recipe, format_func=lambda n: _(MODEL_WORDS[n][0]),
                         bind="query-params")
    spec, r = REGISTRY[model], recipe(model)
    names = list(statuses)
    default_ds = next((d for d in (r.get("dataset"), spec.default_dataset) if d in names), names[0])
    dataset = c1.selectbox(_("Dataset"), names, index=names.index(default_ds), key="train_dataset",
                           format_func=lambda n: n if statuses[n].available else _("{name} (missing)").format(name=n),
                           bind="query-params")
    presets = list(spec.presets)

    def preset_words(p: str) -> str:
        n = param_count(model, p, dataset)
        if not n:
            return p
        return (_("{preset}: {m:.2f} M parameters") if n >= 1e6 else _("{preset}: {k:.0f} k parameters")).format(
            preset=p, m=n / 1e6, k=n / 1e3)
    preset = c3.selectbox(_("Size (preset)"), presets, index=presets.index(r["preset"]),
                          key="train_preset", format_func=preset_words, bind="query-params",
                          help=glossary.tip("preset", "parameters"))
    st.caption(glossary.hover(_(MODEL_WORDS[model][1]), "BatchNorm", "attention", "transformer"),
               unsafe_allow_html=True)

    h = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
    lr = h[0].select_slider(_("Learning rate"), LRS, value=r["lr"], key="train_lr",
                            format_func=lambda v: f"{v:g}", bind="query-params",
                            help=glossary.tip("learning rate"))
    batch = h[1].select_slider(_("Batch size"), BATCHES, value=r["batch_size"], key="train_batch",
                               bind="query-params", help=glossary.tip("batch size"))
    steps = h[2].number_input(_("Steps"), min_value=20, max_value=50_000, value=r["steps"], step=50,
                              key="train_steps", bind="query-params", help=glossary.tip("step"))
    augment = h[3].toggle(_("Augment"), value=True, key="train_augment", disabled=kind != "image",
                          bind="query-params", help=glossary.tip("augmentation"))
    with st.expander(_("More settings")):
        a = st.columns(2)
        two = spec.task == "gan"              # the task brings its own two optimisers
        optimizer = a[0].selectbox(_("Optimizer"), OPTIMIZERS, key="train_optimizer",
                                   bind="query-params", disabled=two,
                                   help=_("A GAN trains with two Adam optimisers, one for each "
                                          "network (DCGAN's recipe): this setting is not used.")
                                   if two else glossary.tip("optimizer"))
        schedule = a[1].selectbox(_("Learning-rate schedule"), SCHEDULES, key="train_schedule",
                                  index=SCHEDULES.index(r.get("schedule", SCHEDULES[0])),
                                  bind="query-params")
        seed = a[0].number_input(_("Seed"), min_value=0, max_value=10_000, value=0, key="train_seed",
                                 bind="query-params")
        label = a[1].text_input(_("Run name on the charts (optional)"), key="train_label")
    ds_status = statuses[dataset]
    if not ds_status.available:
        st.error(_("**{name}** is not on this machine. {note}").format(name=dataset, note=ds_status.note))
        st.code(ds_status.how_to_get, language="bash")
    shift, flip, adv_eps = True, True, 0.0
    if kind == "image":
        shift, flip, adv_eps = augmentation(dataset, augment, ds_status.available)
    cfg = config(kind, steps, lr, batch, optimizer, schedule, augment, seed, model=model,
                 shift=shift, flip=flip, adv_eps=adv_eps)
    return Choice(kind=kind, model=model, dataset=dataset, preset=preset, config=cfg,
                  label=label, available=ds_status.available)


ADV_EPS = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3]       # PGD radii offered (pixels on the 0-1 scale)


def augmentation(dataset: str, augment: bool, available: bool) -> tuple[bool, bool, float]:
    """Image runs: each augmentation on or off, a batch as the trainer sees it, and adversarial
    training with its epsilon; (shift, flip, adversarial epsilon or 0)."""
    from karp_models.ui import compute
    from karp_models.ui.figures.training import augmentation_rows

    with st.expander(_("Augmentation and adversarial training: see a batch as the trainer sees it")):
        c = st.columns([2, 2, 3], vertical_alignment="center")
        shift = c[0].toggle(_("Random shifts"), value=True, key="train_shift", disabled=not augment,
                            bind="query-params",
                            help=_("Each image is padded with black and cropped back to its size at a "
                                   "random offset, so it moves a few pixels."))
        flip_ok = available and compute.flip_ok(dataset)
        flip = c[1].toggle(_("Mirror images"), value=True, key="train_flip",
                           disabled=not augment or not flip_ok, bind="query-params",
                           help=_("Half of the images are flipped left to right. Off for digits: "
                                  "a mirrored 3 is not a 3."))
        adversarial = c[2].checkbox(_("Adversarial training (PGD)"), key="train_adv", bind="query-params",
                                    help=glossary.tip("adversarial example"))
        eps = 0.0
        if adversarial:
            eps = st.select_slider(_("ε: largest change per pixel of the attack (0–1 scale)"), ADV_EPS,
                                   value=0.1, key="train_adv_eps", bind="query-params")
            st.caption(_("Each training batch is replaced by a PGD attack on the model being trained: {steps} "
                         "steps within ε of every pixel, from a random start (Madry et al., 2018). Training is "
                         "several times slower (the time next to Start is measured with the attack). A saved run "
                         "keeps its accuracy under attack, measured at the end: Evaluate shows it under Under "
                         "attack.").format(
                             steps=TrainConfig(steps=1).adv_steps))
        if not available:
            return shift, flip, eps
        seed = int(st.session_state.get("train_batch_seed", 0))
        stored, seen, labels = compute.augmented_batch(dataset, augment, shift, flip, seed)
        st.image(augmentation_rows(stored, seen), caption=[_("as stored"), _("as trained")])
        b, note = st.columns([2, 5], vertical_alignment="center")
        if b.button(_("Another batch"), icon=":material/refresh:", key="train_batch_next"):
            st.session_state["train_batch_seed"] = seed + 1
            st.rerun()
        note.caption(_("The same {n} training images as stored and as the training loop receives them with "
                       "these settings; with every augmentation off the two rows are identical.").format(
                           n=len(labels)))
    return shift, flip, eps


def duration(seconds: float) -> str:
    """A duration in words: '45 s', '3 min 20 s', '1 h 05 min'."""
    s = int(round(seconds))
    if s < 60:
        return _("{s} s").format(s=max(1, s))
    if s < 3600:
        return _("{min} min {s:02d} s").format(min=s // 60, s=s % 60)
    return _("{h} h {min:02d} min").format(h=s // 3600, min=s % 3600 // 60)


def estimate_text(choice: Choice, device: str, *, busy: bool) -> str:
    """The parameters and how long the chosen steps take here, measured (a few real training
    steps of this model, size and batch, once per process); while another run trains, only a
    measurement made earlier is used (measuring then would slow that run and itself)."""
    from karp_models.ui.compute import run_timing

    if not choice.available:
        return ""
    t = run_timing(choice.model, choice.dataset, choice.preset, choice.config.batch_size,
                   measure=not busy, adv_eps=choice.config.adv_eps)
    if t is None:
        return _("Trains on **{device}**. The time it takes is measured when no other run is training.").format(
            device=device)
    return _("**About {time}** for {steps:,} steps of this {params:,}-parameter model on **{device}**: measured "
             "here, {step_s:.2g} s a step, plus evaluations.").format(
                 time=duration(t.seconds(choice.config)), steps=choice.config.steps, params=t.params, device=device,
                 step_s=t.step_s)
