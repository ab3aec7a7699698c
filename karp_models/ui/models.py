"""Choosing a model across pages: shipped weights and saved runs (and torchvision's ImageNet
models), loaded once per process.

The chosen file is remembered per task in the session (`karp_model_image`, `karp_model_text`),
so a model picked on Predict is the one Explain and Evaluate open with; each page's picker is
also part of the page's link (?explain_model=fast-fashion-mnist; see ui.state).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import streamlit as st

from karp_models import device as dev
from karp_models.i18n import L_, _, language
from karp_models.train.runs import WEIGHTS_DIR, format_metrics, list_runs, shipped_weights
from karp_models.models import REGISTRY
from karp_models.train.checkpoints import Checkpoint, CheckpointError, load_checkpoint

if TYPE_CHECKING:
    from karp_models.imagenet import ImageNetModel


# a model's task (the registry's ModelSpec.task) -> the pickers it appears in: image classifiers
# (Predict, Explain, Evaluate) or character language models (the text pages); a fine-tuned
# network is an image classifier; GANs and VAEs are generators (Generate images); a captioner
# has pickers of its own
PICKED_AS = {"image": "image", "finetune": "image", "text": "text", "gan": "generator",
             "vae": "generator"}


@dataclass(frozen=True)
class ModelChoice:
    label: str         # what the picker shows and the page's link holds: the file's name
    path: str          # the .safetensors file
    model_name: str    # registry name: 'fast', 'vit', 'lstm', ...
    family: str        # 'cnn' | 'rnn' | 'transformer'
    task: str          # the kind of data it takes: 'image' | 'text' (the registry's ModelSpec.data)
    dataset: str
    origin: str        # 'shipped' | 'run'
    metrics: tuple[tuple[str, float], ...]   # the measured metrics (name, value), as saved
    mtime: float       # part of the cache key: a re-saved run is loaded again

    @property
    def about(self) -> str:
        """One line under the picker: where the model comes from and how good it is."""
        metrics = (generator_metrics if self.family == "generative" else format_metrics)(dict(self.metrics))
        if self.origin == "shipped":
            text = _("shipped with karp, {model} trained on {dataset}")
        else:
            text = _("your saved run, {model} trained on {dataset}")
        text = text.format(model=self.model_name, dataset=self.dataset)
        return _("{about}: {metrics}").format(about=text, metrics=metrics) if metrics else text


def generator_metrics(m: dict) -> str:
    """A generator's quality in one short phrase: its Frechet distance beside real images', and
    the judge's coverage (the full list of figures is in the file's metadata)."""
    if m.get("test_fd") is None:
        return format_metrics(m)
    text = _("Frechet distance {fd:.1f}").format(fd=m["test_fd"])
    if m.get("test_real_fd") is not None:
        text += " " + _("(real images: {fd:.2f})").format(fd=m["test_real_fd"])
    if m.get("test_coverage") is not None:
        text += ", " + _("class coverage {c:.0%}").format(c=m["test_coverage"])
    return text


def _choice(p: Path, meta: dict, origin: str) -> ModelChoice | None:
    spec = REGISTRY.get(meta.get("model", ""))
    if spec is None:
        return None
    metrics = tuple((k, float(v)) for k, v in (meta.get("metrics") or {}).items()
                    if isinstance(v, (int, float)))
    return ModelChoice(label=p.stem, path=str(p), model_name=spec.name, family=spec.family,
                       task=PICKED_AS.get(spec.task, spec.task),
                       dataset=meta.get("dataset", spec.default_dataset),
                       origin=origin, metrics=metrics, mtime=p.stat().st_mtime)


def model_choices(task: str | None = None, families: tuple[str, ...] | None = None,
                  models: tuple[str, ...] | None = None) -> list[ModelChoice]:
    """Shipped weights first, then saved runs (newest first), filtered by task/family/model name."""
    return _model_choices(task, families, models, language())


@st.cache_data(ttl=10, show_spinner=False)
def _model_choices(task: str | None, families: tuple[str, ...] | None,
                   models: tuple[str, ...] | None, lang: str) -> list[ModelChoice]:
    """model_choices; `lang` is part of the cache key (a label may have words in it)."""
    rows = [(p, m, "shipped") for p, m in shipped_weights(WEIGHTS_DIR)]
    try:
        rows += [(p, m, "run") for p, m in list_runs()]
    except (OSError, ValueError):
        pass
    out: list[ModelChoice] = []
    for p, meta, origin in rows:
        c = _choice(p, meta, origin)
        if c and (task is None or c.task == task) and (families is None or c.family in families) \
                and (models is None or c.model_name in models):
            if any(o.label == c.label for o in out):          # a run saved under a shipped name
                c = dataclasses.replace(c, label=_("{name} (your run)").format(name=c.label))
            out.append(c)
    return out


model_choices.clear = _model_choices.clear  # type: ignore[attr-defined] - st.cache_data's


@st.cache_resource(max_entries=12, show_spinner=L_("Loading the model…"))
def load_model(path: str, mtime: float = 0.0) -> Checkpoint:
    """The checkpoint in eval mode on the app's device. Shared by every session: never mutate it
    (copy.deepcopy first, e.g. to re-initialise layers)."""
    return load_checkpoint(path, dev.pick_device())


@st.cache_resource(max_entries=2, show_spinner=L_("Loading the ImageNet model…"))
def imagenet_model(name: str, download: bool = False) -> ImageNetModel:
    """Shared by every session; never mutated (features.maximise works on a copy). Imported
    here, not at the top: torchvision's model zoo is only needed by Predict."""
    from karp_models import imagenet

    return imagenet.load(name, download=download)


def model_picker(key: str, task: str = "image", *, families: tuple[str, ...] | None = None,
                 models: tuple[str, ...] | None = None, label: str | None = None,
                 default: str | None = "fast-fashion-mnist", container=st,
                 show_about: bool = True) -> tuple[Checkpoint, ModelChoice] | None:
    """A selectbox over the matching models, in the page's link (`key` is the URL parameter),
    with a line saying what the chosen one is; returns the loaded checkpoint and its choice, or
    None (with a message on the page) when there is none or it cannot be loaded. The model
    chosen on another page comes first; `default` is the file stem used otherwise. show_about
    False leaves the line out (the page says it elsewhere: ModelChoice.about)."""
    from karp_models.ui import state

    choices = model_choices(task, families, models)
    if not choices:
        container.warning(_("No trained model of this kind yet: train one on the **Train** page "
                            "and save it, or restore the files in `weights/`."))
        return None
    stems = [Path(c.path).stem for c in choices]
    index = stems.index(default) if default in stems else 0        # the same for every visitor
    remembered = st.session_state.get(f"karp_model_{task}")
    state.start_with(key, next((c for c in choices if c.path == remembered), None))
    c = container.selectbox(label or _("Model"), choices, index=index, format_func=lambda c: c.label, key=key,
                            bind="query-params")
    if show_about:
        container.caption(c.about)
    st.session_state[f"karp_model_{task}"] = c.path
    try:
        return load_model(c.path, c.mtime), c
    except CheckpointError as e:
        container.error(_("This model cannot be loaded: {error}").format(error=e))
        return None


@st.cache_data(max_entries=8, show_spinner=L_("Running the model on the test set…"))
def test_probabilities(path: str, mtime: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, n_classes), labels (N,)) of a checkpoint on its dataset's test split."""
    from karp_models.introspect.evaluate import predict_probs
    from karp_models.ui.loaders import dataset

    ck = load_model(path, mtime)
    ds = dataset(ck.meta.get("dataset") or REGISTRY[ck.model_name].default_dataset)
    return predict_probs(ck.model, ds.test_x), ds.test_y.numpy()
